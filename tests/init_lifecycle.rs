//! `tend init` as PID 1: the lifecycle promises of issue 13 — hung oneshots fail at their
//! `timeout-up`, permanent start errors fail fast, `restart-limit`, a bounded stop, and a
//! final sweep that wakes stopped processes.

mod support;
use std::process::Stdio;
use std::time::Duration;
use support::*;

const LIMIT: Duration = Duration::from_secs(40);

/// Runs init over `t` with CMD `sh -c SCRIPT` and extra env to its end.
fn run_env(t: &Tree, script: &str, env: &[(&str, &str)]) -> Ran {
    let mut cmd = t.init(&["sh", "-c", script]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Ran::new(cmd, LIMIT)
}

#[test]
fn a_hung_oneshot_fails_at_its_timeout_up() {
    let t = Tree::new("oneshot-hang");
    t.file("setup", "type", "oneshot\n", false);
    t.file("setup", "up", "#!/bin/sh\nexec sleep 60\n", true);
    t.file("setup", "timeout-up", "500\n", false);
    // As for any failed `up`: its exit status (killed: 128+9).
    let took = run_env(&t, "echo cmd > $OUT/cmd", &[])
        .expect(
            137,
            &[
                "tend: setup: up not done after 500 ms (timeout-up); killing it",
                "start-up stopped",
            ],
        )
        .took;
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
    let (mut child, pid) = t.spawn_init_with(&[("TEND_KILL_GRACE", "6000")], Stdio::null());
    let pidfile = t.out().join("daemon.pid");
    assert!(wait_for(Duration::from_secs(20), || pidfile.exists()));
    // Wait until it is really stopped (state T in its namespace's /proc, seen from here by
    // its pid in ours: find it as a descendant of tend).
    std::thread::sleep(Duration::from_millis(500));
    let (rc, took) = stop_timed(&mut child, pid, "TERM");
    assert_eq!(rc, 0);
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
    let ran = Ran::new(cmd, LIMIT);
    ran.expect(
        111,
        &["tend: privileged: a permanent start error; start-up stopped"],
    );
    assert!(!t.out().join("cmd").exists(), "CMD ran");
    assert!(ran.took < Duration::from_secs(10));
}

/// A critical service that fails for good while CMD (`sleep 30`) waits.
struct ForGood {
    tag: &'static str,
    svc: &'static str,
    /// Its `run` script and other files.
    run: &'static str,
    files: &'static [(&'static str, &'static str)],
    /// Init's exit code and the line saying why.
    code: i32,
    line: &'static str,
    /// How often `run` ran, and how long init may take at most.
    runs: usize,
    within: Duration,
}

/// The ways a service fails for good: each takes the container down with it, at once.
#[test]
fn critical_services_that_fail_for_good_end_init() {
    let cases = [
        // The first run makes `run` unexecutable: the restart cannot exec it.
        ForGood {
            tag: "permanent-later",
            svc: "flaky",
            run: "echo run >> $OUT/flaky.runs; chmod -x \"$0\"; sleep 0.3; exit 1",
            files: &[("critical", ""), ("restart", "always\n")],
            code: 126,
            line: "tend: flaky: a permanent start error; failed for good",
            runs: 1,
            within: Duration::from_secs(20),
        },
        // Backoff 0 + 1 + 2 s.
        ForGood {
            tag: "restart-limit",
            svc: "loop",
            run: "echo run >> $OUT/loop.runs; exit 3",
            files: &[
                ("restart-limit", "3/60s\n"),
                ("critical", ""),
                ("restart", "always\n"),
            ],
            code: 3,
            line: "tend: loop: failed 3 times within 60000 ms; failed for good (restart-limit)",
            runs: 3,
            within: Duration::from_secs(15),
        },
        // `critical` alone: the default restart policy does not restart it.
        ForGood {
            tag: "critical-alone",
            svc: "app",
            run: "echo run >> $OUT/app.runs; sleep 0.3; exit 4",
            files: &[("critical", "")],
            code: 4,
            line: "critical service app stopped for good (exit code 4)",
            runs: 1,
            within: Duration::from_secs(15),
        },
    ];
    for c in &cases {
        eprintln!("case {}", c.tag);
        let t = Tree::new(c.tag);
        t.longrun(c.svc, c.run);
        for (rel, body) in c.files {
            t.file(c.svc, rel, body, false);
        }
        let took = run_env(&t, "sleep 30", &[]).expect(c.code, &[c.line]).took;
        let runs = t.out().join(format!("{}.runs", c.svc));
        assert_eq!(read(&runs).lines().count(), c.runs);
        assert!(took < c.within, "took {took:?}");
    }
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

/// Starts init over `t` with `env`, and once both services run, stops it with SIGTERM;
/// returns its exit code and how long the stop took.
fn stop_time(t: &Tree, env: &[(&str, &str)]) -> (i32, Duration) {
    let (mut child, pid) = t.spawn_init_with(env, Stdio::null());
    assert!(wait_for(Duration::from_secs(20), || {
        t.out().join("base.start").exists() && t.out().join("top.start").exists()
    }));
    std::thread::sleep(Duration::from_millis(300));
    stop_timed(&mut child, pid, "TERM")
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
    run_env(&t, "true", &[("TEND_STOP_DEADLINE", "9s")]).expect(111, &["TEND_STOP_DEADLINE: '9s'"]);
}

#[test]
fn a_hung_finish_is_killed_with_one_line() {
    let t = Tree::new("finish-hang");
    t.longrun("once", "exit 1");
    t.file("once", "restart", "never\n", false);
    t.file("once", "finish", "#!/bin/sh\nexec sleep 60\n", true);
    t.file("once", "timeout-finish", "300\n", false);
    let ran = run_env(&t, "sleep 2", &[]);
    let err = &ran.expect(0, &[]).err;
    assert_eq!(
        err.matches("tend: once: finish did not exit within 300 ms; killed")
            .count(),
        1,
        "{err}"
    );
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
