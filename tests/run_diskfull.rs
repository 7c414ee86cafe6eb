//! `run` on a full disk: PID 1 stays responsive to SIGTERM while a log directory is being
//! repaired, and `--on-full block` keeps waiting for space after the command has exited.

mod support;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// Fills the filesystem with `path` until a write fails.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![b'f'; 4096];
    while f.write_all(&chunk).is_ok() {}
    let small = [b'f'; 64];
    while f.write_all(&small).is_ok() {}
}

/// `tend run` capturing to `root` with identity ns/app/pod; stderr goes to `errlog`.
fn run_capturing(root: &Path, errlog: &Path, cmd: &[&str], as_pid1: bool) -> Child {
    let mut args = vec![
        "run",
        "--format",
        "plain",
        "--on-full",
        "block",
        "--rotate-size",
        "1GiB",
        "--log-root",
        root.to_str().unwrap(),
        "--",
    ];
    args.extend_from_slice(cmd);
    let mut c = if as_pid1 { pid1(&args) } else { plain(&args) };
    c.env("TEND_NAMESPACE", "ns")
        .env("TEND_APP", "app")
        .env("TEND_POD", "pod")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(errlog).unwrap());
    c.spawn().unwrap()
}

/// Waits up to `limit` for the child to exit; kills it and returns None past that.
fn exit_within(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(code(st));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn sigterm_works_while_a_torn_current_waits_for_space() {
    let Some((t, m)) = temp_mount("torn-full", "1m") else {
        return;
    };
    let dir = m.0.join("ns/app/pod/main");
    std::fs::create_dir_all(&dir).unwrap();
    // A crash left a record without its newline: opening the sink must repair it, which
    // needs a write, which a full disk under `block` makes wait.
    // One whole tmpfs page, so any byte appended needs a page the full disk does not have.
    let mut torn = b"whole line\n".to_vec();
    torn.resize(4096, b't');
    std::fs::write(dir.join("current"), &torn).unwrap();
    fill(&m.0.join("filler"));
    let errlog = t.join("stderr");
    let mut child = run_capturing(&m.0, &errlog, &["sleep", "100"], true);
    let pid = tend_pid_under(&child);
    assert!(
        wait_for(Duration::from_secs(20), || read(&errlog)
            .contains("waiting for space")),
        "never blocked on the full disk: {}",
        read(&errlog)
    );
    let t0 = Instant::now();
    signal(pid, "TERM");
    let code = exit_within(&mut child, Duration::from_secs(15));
    assert!(
        code.is_some(),
        "tend ignored SIGTERM while opening its log; stderr: {}",
        read(&errlog)
    );
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t0.elapsed()
    );
}

/// Starts `tend run` whose command waits for `go`, then writes ~300 KB (less than the pipe holds) and exits 0; fills
/// the disk before letting it go. Returns tend, the filler path and the expected output.
fn full_after_start(t: &TempDir, m: &Mount, as_pid1: bool) -> (Child, PathBuf, Vec<u8>) {
    let go = t.join("go");
    let errlog = t.join("stderr");
    let script = format!(
        "while [ ! -e {go} ]; do sleep 0.02; done; \
         i=0; while [ $i -lt 4000 ]; do echo \"line $i {pad}\"; i=$((i+1)); done",
        go = go.display(),
        pad = "p".repeat(60)
    );
    let expected: Vec<u8> = (0..4000)
        .flat_map(|i| format!("line {i} {}\n", "p".repeat(60)).into_bytes())
        .collect();
    let child = run_capturing(&m.0, &errlog, &["sh", "-c", &script], as_pid1);
    let current = m.0.join("ns/app/pod/main/current");
    assert!(wait_for(Duration::from_secs(20), || current.exists()));
    let filler = m.0.join("filler");
    fill(&filler);
    std::fs::write(&go, "").unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || read(&errlog)
            .contains("waiting for space")),
        "never blocked: {}",
        read(&errlog)
    );
    (child, filler, expected)
}

#[test]
fn block_keeps_waiting_after_the_command_exits_until_space_comes() {
    let Some((t, m)) = temp_mount("full-exit", "4m") else {
        return;
    };
    let (mut child, filler, expected) = full_after_start(&t, &m, false);
    // Far past the old fixed 5 s give-up: tend must still be waiting, not exited 0.
    std::thread::sleep(Duration::from_secs(9));
    assert!(
        child.try_wait().unwrap().is_none(),
        "tend gave up on a full disk although no one asked it to stop; stderr: {}",
        read(&t.join("stderr"))
    );
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(exit_within(&mut child, Duration::from_secs(30)), Some(0));
    let got = std::fs::read(m.0.join("ns/app/pod/main/current")).unwrap();
    assert!(
        got == expected,
        "bytes lost: {} of {}",
        got.len(),
        expected.len()
    );
}

#[test]
fn block_gives_up_at_a_stop_signal_and_says_what_was_lost() {
    let Some((t, m)) = temp_mount("full-giveup", "4m") else {
        return;
    };
    let (mut child, _filler, _) = full_after_start(&t, &m, true);
    let pid = tend_pid_under(&child);
    // Let the command finish writing into the pipe and exit.
    std::thread::sleep(Duration::from_secs(3));
    signal(pid, "TERM");
    let code = exit_within(&mut child, Duration::from_secs(15));
    let err = read(&t.join("stderr"));
    assert!(code.is_some(), "tend did not give up at SIGTERM: {err}");
    let lost = err
        .lines()
        .find(|l| l.contains("bytes of output lost"))
        .unwrap_or_else(|| panic!("lost bytes not reported: {err}"));
    let n: u64 = lost
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or(0);
    assert!(n > 0, "{lost}");
}
