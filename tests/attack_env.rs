//! Attacks on what a service is started with: bytes that are not UTF-8 where tend promises
//! bytes (SPEC §6), and a `user` that is no user.

mod support;
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;
use support::*;

/// An `env/` value is an environment value: bytes, as s6-envdir passes them. It was read
/// as text, so `tend init` refused to start ("env/X: not UTF-8 text").
#[test]
fn a_non_utf8_env_value_reaches_the_service() {
    let t = Tree::new("atk-env");
    t.file("a", "type", "oneshot\n", false);
    t.file(
        "a",
        "up",
        "#!/bin/sh\nprintf %s \"$X\" > \"$OUT/x\"\n",
        true,
    );
    t.file("a", "env/X", "", false);
    std::fs::write(t.tmp.join("services/a/env/X"), b"a\xffb \n").unwrap();
    let services = t.tmp.join("services");
    let check = output_within(
        plain(&["check", services.to_str().unwrap()]),
        Duration::from_secs(20),
    );
    assert_eq!(
        code(check.status),
        0,
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut c = t.init(&["true"]);
    c.env("TEND_RUN_DIR", t.tmp.join("run"));
    let (rc, err) = init_within(c, Duration::from_secs(30));
    assert_eq!(rc, 0, "{err}");
    assert_eq!(std::fs::read(t.out().join("x")).unwrap(), b"a\xffb");
}

/// A services directory whose path is not UTF-8 (given by `TEND_SERVICES`, a path variable):
/// the program paths were made text with U+FFFD in place of the bad byte, so every `run`
/// was "No such file or directory", retried forever with CMD waiting.
#[test]
fn a_non_utf8_services_path_runs_its_programs() {
    use std::os::unix::ffi::OsStrExt;
    let t = Tree::new("atk-path");
    let mut dir = t.tmp.join("services").into_os_string().into_vec();
    dir.extend_from_slice(b"\xff");
    let dir = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&dir));
    put(
        &dir.join("a"),
        "run",
        "#!/bin/sh\necho ran > \"$OUT/ran\"\nexec sleep 100",
        true,
    );
    put(
        &dir.join("a"),
        "finish",
        "#!/bin/sh\necho \"finish $1 $2\" >> \"$OUT/ran\"",
        true,
    );
    let logs = t.tmp.join("logs");
    let mut c = pid1(&[
        "init",
        "--log-root",
        logs.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        // Ends once `run` has written its line, so `finish` comes after it.
        "until [ -s \"$OUT/ran\" ]; do sleep 0.05; done",
    ]);
    c.env("TEND_SERVICES", &dir)
        .env("TEND_RUN_DIR", t.tmp.join("run"))
        .env("OUT", t.out());
    let (rc, err) = init_within(c, Duration::from_secs(15));
    assert_eq!(rc, 0, "{err}");
    assert_eq!(read(&t.out().join("ran")), "ran\nfinish 256 15\n");
}

/// 4294967295 is (uid_t)-1: `tend check` took it as a uid, and setuid's EINVAL at start
/// was retried forever with CMD waiting. Now it is no id at all: an error at load time.
#[test]
fn uid_minus_one_is_refused_before_anything_starts() {
    let t = Tree::new("atk-user");
    t.longrun("a", "exec sleep 100");
    t.file("a", "user", "4294967295:4294967295\n", false);
    let services = t.tmp.join("services");
    let check = output_within(
        plain(&["check", services.to_str().unwrap()]),
        Duration::from_secs(20),
    );
    assert_eq!(code(check.status), 111);
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(err.contains("a: user: no such user '4294967295'"), "{err}");
    let mut c = t.init(&["true"]);
    c.env("TEND_RUN_DIR", t.tmp.join("run"));
    let (rc, err) = init_within(c, Duration::from_secs(15));
    assert_eq!(rc, 111, "{err}");
}

/// Runs `tend init` under `unshare` (a `pid1` command) for at most `limit`: killing the
/// namespace's PID 1 on time-out, since killing `unshare` would leave tend holding the pipes.
/// Returns the exit code (-1 after a time-out) and stderr.
pub fn init_within(mut c: std::process::Command, limit: Duration) -> (i32, String) {
    let err = tempfile_path();
    c.stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap());
    let mut child = c.spawn().unwrap();
    let t0 = std::time::Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break code(s);
        }
        if t0.elapsed() > limit {
            // Looked up only now: a tend that exits at once is gone before it could be seen.
            signal(tend_pid_under(&child), "KILL");
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = String::from_utf8_lossy(&std::fs::read(&err).unwrap()).into_owned();
    let _ = std::fs::remove_file(&err);
    (code, text)
}

fn tempfile_path() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "tend-atk-stderr-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}
