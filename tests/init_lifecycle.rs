//! `tend init` as PID 1: the lifecycle promises of issue 13 — hung oneshots fail at their
//! `timeout-up`, permanent start errors fail fast, `restart-limit`, a bounded stop, and a
//! final sweep that wakes stopped processes.

mod support;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;

const LIMIT: Duration = Duration::from_secs(40);

/// Runs init over `t` with CMD `sh -c SCRIPT` and extra env; returns (code, stderr, elapsed).
fn run_env(t: &Tree, script: &str, env: &[(&str, &str)]) -> (i32, String, Duration) {
    let mut cmd = t.init(&["sh", "-c", script]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let out = output_within(cmd, LIMIT);
    (
        code(out.status),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed(),
    )
}

#[test]
fn a_hung_oneshot_fails_at_its_timeout_up() {
    let t = Tree::new("oneshot-hang");
    t.file("setup", "type", "oneshot\n", false);
    t.file("setup", "up", "#!/bin/sh\nexec sleep 60\n", true);
    t.file("setup", "timeout-up", "500\n", false);
    let (rc, err, took) = run_env(&t, "echo cmd > $OUT/cmd", &[]);
    assert!(
        err.contains("tend: setup: up not done after 500 ms (timeout-up); killing it"),
        "{err}"
    );
    assert!(err.contains("start-up stopped"), "{err}");
    // As for any failed `up`: its exit status (killed: 128+9).
    assert_eq!(rc, 137, "{err}");
    assert!(
        !t.out().join("cmd").exists(),
        "CMD ran after a oneshot failed"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn the_final_sweep_wakes_stopped_processes() {
    let t = Tree::new("sweep-cont");
    // A daemon that left its service's session, handles TERM, and is stopped: SIGTERM alone
    // stays pending until SIGKILL; with SIGCONT it exits at once.
    t.longrun(
        "leaver",
        "setsid sh -c 'trap \"echo term > $OUT/daemon; exit 0\" TERM; echo $$ > $OUT/daemon.pid; kill -STOP $$; while :; do sleep 0.05; done' &\ntrap 'exit 0' TERM\nwhile :; do sleep 0.05; done",
    );
    let mut cmd = t.init(&[]);
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .env("TEND_KILL_GRACE", "6000");
    let mut child = cmd.spawn().unwrap();
    let pid = tend_pid_under(&child);
    let pidfile = t.out().join("daemon.pid");
    assert!(wait_for(Duration::from_secs(20), || pidfile.exists()));
    // Wait until it is really stopped (state T in its namespace's /proc, seen from here by
    // its pid in ours: find it as a descendant of tend).
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    signal(pid, "TERM");
    let status = child.wait().unwrap();
    let took = start.elapsed();
    assert_eq!(code(status), 0);
    assert_eq!(
        read(&t.out().join("daemon")).trim(),
        "term",
        "not stopped by its TERM"
    );
    assert!(
        took < Duration::from_secs(4),
        "waited for SIGKILL: {took:?}"
    );
}

#[test]
fn a_permanent_start_error_at_startup_exits_111_naming_the_service() {
    let t = Tree::new("permanent");
    // tend runs as nobody, so it cannot switch to root: retrying cannot help.
    t.longrun("privileged", "exec sleep 60");
    t.file("privileged", "user", "root\n", false);
    for d in ["logs", "out"] {
        std::fs::set_permissions(
            t.tmp.join(d),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
    }
    std::fs::set_permissions(
        t.tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let services = t.tmp.join("services");
    let logs = t.tmp.join("logs");
    let mut cmd = std::process::Command::new("unshare");
    // --kill-child: if the time limit kills unshare, tend (its child) goes too.
    cmd.args(["--pid", "--fork", "--kill-child", "--mount-proc"])
        .args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .arg(tend())
        .args(["init", "--services"])
        .arg(&services)
        .arg("--log-root")
        .arg(&logs)
        .args(["--", "sh", "-c", "echo cmd > $OUT/cmd"])
        .env("TEND_NAMESPACE", "ns")
        .env("TEND_APP", "app")
        .env("TEND_POD", "pod")
        .env("OUT", t.out())
        .env("TEND_RUN_DIR", t.tmp.join("run"))
        .stdin(Stdio::null());
    let start = Instant::now();
    let out = output_within(cmd, LIMIT);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(out.status), 111, "{err}");
    assert!(
        err.contains("tend: privileged: a permanent start error; start-up stopped"),
        "{err}"
    );
    assert!(!t.out().join("cmd").exists(), "CMD ran");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_permanent_start_error_later_fails_the_service_for_good() {
    let t = Tree::new("permanent-later");
    // The first run makes `run` unexecutable: the restart cannot exec it.
    t.longrun(
        "flaky",
        "echo run >> $OUT/flaky.runs; chmod -x \"$0\"; sleep 0.3; exit 1",
    );
    t.file("flaky", "critical", "", false);
    t.file("flaky", "restart", "always\n", false);
    let (rc, err, took) = run_env(&t, "sleep 30", &[]);
    assert_eq!(rc, 126, "{err}");
    assert!(
        err.contains("tend: flaky: a permanent start error; failed for good"),
        "{err}"
    );
    assert_eq!(read(&t.out().join("flaky.runs")).lines().count(), 1);
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn restart_limit_fails_a_crash_looping_service_for_good() {
    let t = Tree::new("restart-limit");
    t.longrun("loop", "echo run >> $OUT/loop.runs; exit 3");
    t.file("loop", "restart-limit", "3/60s\n", false);
    t.file("loop", "critical", "", false);
    t.file("loop", "restart", "always\n", false);
    let (rc, err, took) = run_env(&t, "sleep 30", &[]);
    assert_eq!(rc, 3, "{err}");
    assert!(
        err.contains("tend: loop: failed 3 times within 60000 ms; failed for good (restart-limit)"),
        "{err}"
    );
    assert_eq!(read(&t.out().join("loop.runs")).lines().count(), 3);
    // Backoff 0 + 1 + 2 s.
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

/// Two TERM-ignoring services in a chain and a detached TERM-ignoring daemon.
fn stubborn_tree(tag: &str) -> Tree {
    let t = Tree::new(tag);
    t.longrun(
        "base",
        "setsid sh -c 'trap \"\" TERM; while :; do sleep 0.05; done' &\ntrap '' TERM\ndate +%s%3N > $OUT/base.start\nwhile :; do sleep 0.05; done",
    );
    t.longrun(
        "top",
        "trap '' TERM\ndate +%s%3N > $OUT/top.start\nwhile :; do sleep 0.05; done",
    );
    t.dep("top", "base");
    t
}

fn stop_time(t: &Tree, env: &[(&str, &str)]) -> (i32, Duration) {
    let mut cmd = t.init(&[]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let pid = tend_pid_under(&child);
    assert!(wait_for(Duration::from_secs(20), || {
        t.out().join("base.start").exists() && t.out().join("top.start").exists()
    }));
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    signal(pid, "TERM");
    let status = child.wait().unwrap();
    (code(status), start.elapsed())
}

#[test]
fn the_whole_stop_fits_the_stop_deadline() {
    let t = stubborn_tree("deadline-default");
    let (rc, took) = stop_time(&t, &[]);
    assert_eq!(rc, 0);
    // Docker sends SIGKILL after 10 s; the default deadline is 9 s.
    assert!(took < Duration::from_millis(9800), "took {took:?}");
    assert!(
        took > Duration::from_secs(5),
        "stopped before the grace: {took:?}"
    );
    let t = stubborn_tree("deadline-small");
    let (rc, took) = stop_time(&t, &[("TEND_STOP_DEADLINE", "2000")]);
    assert_eq!(rc, 0);
    assert!(took < Duration::from_millis(3500), "took {took:?}");
}

#[test]
fn a_bad_stop_deadline_is_refused() {
    let t = Tree::new("deadline-bad");
    let (rc, err, _) = run_env(&t, "true", &[("TEND_STOP_DEADLINE", "9s")]);
    assert_eq!(rc, 111);
    assert!(err.contains("TEND_STOP_DEADLINE: '9s'"), "{err}");
}

#[test]
fn a_hung_finish_is_killed_with_one_line() {
    let t = Tree::new("finish-hang");
    t.longrun("once", "exit 1");
    t.file("once", "restart", "never\n", false);
    t.file("once", "finish", "#!/bin/sh\nexec sleep 60\n", true);
    t.file("once", "timeout-finish", "300\n", false);
    let (rc, err, _) = run_env(&t, "sleep 2", &[]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(
        err.matches("tend: once: finish did not exit within 300 ms; killed")
            .count(),
        1,
        "{err}"
    );
}

#[test]
fn critical_alone_takes_the_container_down_with_the_service() {
    let t = Tree::new("critical-alone");
    t.longrun("app", "echo run >> $OUT/app.runs; sleep 0.3; exit 4");
    t.file("app", "critical", "", false);
    let (rc, err, took) = run_env(&t, "sleep 30", &[]);
    assert_eq!(rc, 4, "{err}");
    assert!(
        err.contains("critical service app stopped for good (exit code 4)"),
        "{err}"
    );
    assert_eq!(read(&t.out().join("app.runs")).lines().count(), 1);
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn a_service_never_ready_is_reported_every_30_s() {
    let t = Tree::new("never-ready");
    // Declares notification-fd 3 but never writes to it, and has no timeout-up.
    t.longrun("mute", "trap 'exit 0' TERM\nwhile :; do sleep 0.05; done");
    t.file("mute", "notification-fd", "3\n", false);
    let errfile = t.tmp.join("stderr");
    let mut cmd = t.init(&["sh", "-c", "echo cmd > $OUT/cmd"]);
    cmd.stdout(Stdio::null())
        .stderr(std::fs::File::create(&errfile).unwrap());
    let mut child = cmd.spawn().unwrap();
    let pid = tend_pid_under(&child);
    let line = "tend: mute: still not ready after 30 s, waiting for a newline on its notification-fd 3; CMD waits for it";
    let seen = wait_for(Duration::from_secs(45), || read(&errfile).contains(line));
    signal(pid, "TERM");
    let _ = child.wait();
    let err = read(&errfile);
    assert!(seen, "{err}");
    assert_eq!(err.matches("still not ready").count(), 1, "{err}");
    assert!(!t.out().join("cmd").exists());
}
