//! `tend init` as PID 1 over real service trees: ordering, readiness, restarts, shutdown,
//! exit codes, environment, users and log capture.

mod support;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;

const LIMIT: Duration = Duration::from_secs(60);

/// A longrun that stops at once on SIGTERM (trap set first, so no TERM finds it unarmed)
/// and marks `$OUT/<name>.start`.
fn obedient(name: &str, extra: &str) -> String {
    format!(
        "trap 'date +%s%3N > $OUT/{name}.stop; exit 0' TERM\ndate +%s%3N > $OUT/{name}.start\n{extra}\nwhile :; do sleep 0.05; done"
    )
}

/// Runs init with CMD `sh -c SCRIPT` and returns (exit code, stderr, elapsed).
fn run_cmd(t: &Tree, script: &str) -> (i32, String, Duration) {
    run_init(t.init(&["sh", "-c", script]))
}

/// Runs a `tend init` command to its end and returns (exit code, stderr, elapsed).
fn run_init(cmd: std::process::Command) -> (i32, String, Duration) {
    let start = Instant::now();
    let out = output_within(cmd, LIMIT);
    (
        code(out.status),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed(),
    )
}

/// Asserts the exit code and that stderr holds every one of `lines`.
fn assert_exit(got: &(i32, String, Duration), want: i32, lines: &[&str]) {
    let (rc, err, _) = got;
    assert_eq!(*rc, want, "{err}");
    for l in lines {
        assert!(err.contains(l), "no {l:?} in {err}");
    }
}

#[test]
fn dependencies_wait_for_each_readiness_protocol() {
    let t = Tree::new("ready");
    // notification-fd: ready 400 ms after start.
    t.longrun(
        "fdsvc",
        &obedient(
            "fdsvc",
            "sleep 0.4; date +%s%3N > $OUT/fdsvc.ready; echo >&3",
        ),
    );
    t.file("fdsvc", "notification-fd", "3\n", false);
    // sd_notify: READY=1 on $NOTIFY_SOCKET (abstract) 400 ms after start.
    let notify = "sleep 0.4; date +%s%3N > $OUT/sdsvc.ready; python3 -c \"import os,socket; a=os.environ['NOTIFY_SOCKET']; a='\\0'+a[1:] if a[0]=='@' else a; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'STATUS=x\\nREADY=1', a)\"";
    t.longrun("sdsvc", &obedient("sdsvc", notify));
    t.file("sdsvc", "notify", "systemd\n", false);
    // check: passes once run has created a flag file 400 ms after start.
    t.longrun(
        "cksvc",
        &obedient(
            "cksvc",
            "sleep 0.4; date +%s%3N > $OUT/cksvc.ready; touch $OUT/cksvc.flag",
        ),
    );
    t.file(
        "cksvc",
        "check",
        "#!/bin/sh\ntest -e $OUT/cksvc.flag\n",
        true,
    );
    for (dependent, on) in [
        ("after-fd", "fdsvc"),
        ("after-sd", "sdsvc"),
        ("after-ck", "cksvc"),
    ] {
        t.longrun(dependent, &obedient(dependent, ""));
        t.dep(dependent, on);
    }
    // CMD stays until the dependents have written their start time, so the shutdown it
    // triggers cannot cut them off first.
    assert_exit(
        &run_cmd(
            &t,
            "date +%s%3N > $OUT/cmd.start; i=0; until [ -s $OUT/after-fd.start ] && [ -s $OUT/after-sd.start ] && [ -s $OUT/after-ck.start ] || [ $i -ge 200 ]; do sleep 0.05; i=$((i+1)); done",
        ),
        0,
        &[],
    );
    let o = t.out();
    for (dependent, on) in [
        ("after-fd", "fdsvc"),
        ("after-sd", "sdsvc"),
        ("after-ck", "cksvc"),
    ] {
        let ready = read_ms(&o.join(format!("{on}.ready")));
        let started = read_ms(&o.join(format!("{dependent}.start")));
        assert!(
            started >= ready,
            "{dependent} started {started} before {on} was ready at {ready}"
        );
        // Without a readiness protocol a service is ready once spawned (s6), so CMD may
        // run before a dependent's first line; it must not run before a readiness report.
        assert!(
            read_ms(&o.join("cmd.start")) >= ready,
            "CMD started before {on} was ready"
        );
    }
    // The three independent services started together, not one after another's readiness.
    let starts: Vec<u64> = ["fdsvc", "sdsvc", "cksvc"]
        .iter()
        .map(|n| read_ms(&o.join(format!("{n}.start"))))
        .collect();
    let spread = starts.iter().max().unwrap() - starts.iter().min().unwrap();
    assert!(
        spread < 350,
        "independent services started {spread} ms apart"
    );
}

#[test]
fn shutdown_runs_in_reverse_dependency_order_and_fast() {
    let t = Tree::new("order");
    // Each takes 60 ms to stop, so a parallel stop would show as equal stop times.
    for n in ["a", "b", "c", "d", "e"] {
        t.longrun(
            n,
            &format!("date +%s%3N > $OUT/{n}.start\ntrap 'date +%s%3N > $OUT/{n}.stop; sleep 0.06; exit 0' TERM\nwhile :; do sleep 0.05; done"),
        );
    }
    t.dep("b", "a").dep("c", "b").dep("d", "c").dep("e", "d");
    let (mut child, pid) = t.spawn_init();
    assert!(wait_for(Duration::from_secs(20), || t
        .out()
        .join("e.start")
        .exists()));
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    signal(pid, "TERM");
    let status = child.wait().unwrap();
    let took = start.elapsed();
    assert_eq!(code(status), 0);
    assert!(
        took < Duration::from_secs(1),
        "5 services took {took:?} to stop"
    );
    let stops: Vec<u64> = ["e", "d", "c", "b", "a"]
        .iter()
        .map(|n| read_ms(&t.out().join(format!("{n}.stop"))))
        .collect();
    assert!(
        stops.windows(2).all(|w| w[1] >= w[0] + 50),
        "stop order not reversed: {stops:?}"
    );
    eprintln!("five-service shutdown took {took:?}");
}

#[test]
fn a_service_ignoring_term_is_killed_after_its_timeout_and_leftovers_are_swept() {
    let t = Tree::new("stubborn");
    t.longrun(
        "stubborn",
        "trap '' TERM; date +%s%3N > $OUT/stubborn.start; while :; do sleep 0.05; done",
    );
    t.file("stubborn", "timeout-kill", "700\n", false);
    // A grandchild that escapes its service's process group: only the final sweep reaches it.
    t.longrun(
        "leaver",
        "setsid sh -c 'trap \"echo swept > $OUT/grandchild; exit 0\" TERM; while :; do sleep 0.05; done' &\ntrap 'exit 0' TERM\ndate +%s%3N > $OUT/leaver.start\nwhile :; do sleep 0.05; done",
    );
    let mut cmd = t.init(&[]);
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("TEND_KILL_GRACE", "3000");
    let mut child = cmd.spawn().unwrap();
    let pid = tend_pid_under(&child);
    assert!(wait_for(Duration::from_secs(20), || {
        t.out().join("stubborn.start").exists() && t.out().join("leaver.start").exists()
    }));
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    signal(pid, "TERM");
    let status = child.wait().unwrap();
    let took = start.elapsed();
    assert_eq!(code(status), 0);
    assert!(
        took >= Duration::from_millis(700),
        "killed before timeout-kill: {took:?}"
    );
    assert!(
        took < Duration::from_millis(2900),
        "waited for the global grace: {took:?}"
    );
    assert_eq!(read(&t.out().join("grandchild")).trim(), "swept");
}

#[test]
fn exit_codes_follow_cmd_and_critical_services() {
    let t = Tree::new("codes");
    t.longrun("quiet", &obedient("quiet", ""));
    for (script, want) in [("exit 5", 5), ("kill -9 $$", 137)] {
        assert_eq!(run_cmd(&t, script).0, want, "{script}");
    }

    let t = Tree::new("critical");
    t.longrun("quiet", &obedient("quiet", ""));
    t.longrun("dies", "sleep 0.3; exit 3");
    t.file("dies", "critical", "", false)
        .file("dies", "restart", "never\n", false);
    assert_exit(
        &run_init(t.init(&[])),
        3,
        &["critical service dies stopped for good (exit code 3)"],
    );
}

#[test]
fn a_bad_tree_exits_111_naming_the_problem() {
    let t = Tree::new("bad");
    t.longrun("web", "exit 0");
    t.file("web", "restart", "sometimes\n", false);
    assert_exit(
        &run_init(t.init(&["true"])),
        111,
        &[
            "web: restart: 'sometimes' is not a restart policy (expected always, on-failure or never)",
        ],
    );
}

#[test]
fn init_refuses_a_misspelled_file_and_a_fifo_at_start_up() {
    let t = Tree::new("strict");
    t.longrun("web", "exec sleep 1000");
    t.file("web", "stopsignal", "QUIT\n", false);
    t.longrun("db", "exec sleep 1000");
    mkfifo(&t.tmp.join("services/db/down-signal"));
    // Before, init blocked forever opening the FIFO: output_within fails the test then.
    assert_exit(
        &run_init(t.init(&["true"])),
        111,
        &[
            "db: down-signal: is a FIFO (expected a regular file)",
            "web: stopsignal: not a service file (did you mean down-signal?)",
        ],
    );
}

#[test]
fn restarts_back_off_one_then_two_seconds() {
    let t = Tree::new("backoff");
    t.longrun("crash", "date +%s%3N >> $OUT/crash.starts; exit 1");
    let (mut child, pid) = t.spawn_init();
    let starts = t.out().join("crash.starts");
    assert!(wait_for(Duration::from_secs(15), || read(&starts)
        .lines()
        .count()
        >= 4));
    signal(pid, "TERM");
    child.wait().unwrap();
    let ms: Vec<i64> = read(&starts).lines().map(|l| l.parse().unwrap()).collect();
    let gaps: Vec<i64> = ms.windows(2).map(|w| w[1] - w[0]).take(3).collect();
    // Immediately, then 1 s, then 2 s (loaded-machine tolerance on each).
    assert!(gaps[0] < 400, "first restart not immediate: {gaps:?}");
    assert!(
        (950..1700).contains(&gaps[1]),
        "second restart not after 1 s: {gaps:?}"
    );
    assert!(
        (1950..2800).contains(&gaps[2]),
        "third restart not after 2 s: {gaps:?}"
    );
}

#[test]
fn restart_policies_and_finish_arguments() {
    let t = Tree::new("policies");
    t.longrun("ok-once", "echo x >> $OUT/ok-once.starts; exit 0");
    t.file("ok-once", "restart", "on-failure\n", false);
    t.longrun("fail-retry", "echo x >> $OUT/fail-retry.starts; exit 2");
    t.file("fail-retry", "restart", "on-failure\n", false);
    t.longrun("never", "echo x >> $OUT/never.starts; exit 2");
    t.file("never", "restart", "never\n", false);
    t.file(
        "never",
        "finish",
        "#!/bin/sh\necho \"$@\" >> $OUT/never.finish\n",
        true,
    );
    t.longrun("killed", "echo x >> $OUT/killed.starts; kill -9 $$");
    t.file("killed", "restart", "never\n", false);
    t.file(
        "killed",
        "finish",
        "#!/bin/sh\necho \"$@\" >> $OUT/killed.finish\n",
        true,
    );
    let (mut child, pid) = t.spawn_init();
    let o = t.out();
    assert!(wait_for(Duration::from_secs(15), || read(
        &o.join("fail-retry.starts")
    )
    .lines()
    .count()
        >= 2));
    assert!(wait_for(Duration::from_secs(5), || o
        .join("killed.finish")
        .exists()
        && o.join("never.finish").exists()));
    std::thread::sleep(Duration::from_millis(300));
    signal(pid, "TERM");
    child.wait().unwrap();
    assert_eq!(read(&o.join("ok-once.starts")).lines().count(), 1);
    assert_eq!(read(&o.join("never.starts")).lines().count(), 1);
    assert_eq!(read(&o.join("never.finish")), "2 0\n");
    assert_eq!(read(&o.join("killed.finish")), "256 9\n");
}

#[test]
fn a_failing_oneshot_stops_startup() {
    let t = Tree::new("oneshot");
    t.file("setup", "type", "oneshot\n", false);
    t.file("setup", "up", "#!/bin/sh\necho preparing; exit 4\n", true);
    t.longrun("app", &obedient("app", ""));
    t.dep("app", "setup");
    assert_exit(
        &run_cmd(&t, "echo cmd > $OUT/cmd"),
        4,
        &["tend: setup: up failed (exit code 4); start-up stopped"],
    );
    assert!(
        !t.out().join("app.start").exists(),
        "a dependent started after its oneshot failed"
    );
    assert!(
        !t.out().join("cmd").exists(),
        "CMD started after a oneshot failed"
    );
}

#[test]
fn oneshot_up_and_down_run_in_order() {
    let t = Tree::new("updown");
    t.file("first", "type", "oneshot\n", false);
    t.file(
        "first",
        "up",
        "#!/bin/sh\necho up-first >> $OUT/seq\n",
        true,
    );
    t.file(
        "first",
        "down",
        "#!/bin/sh\necho down-first >> $OUT/seq\n",
        true,
    );
    t.file("second", "type", "oneshot\n", false);
    t.file(
        "second",
        "up",
        "#!/bin/sh\necho up-second >> $OUT/seq\n",
        true,
    );
    t.file(
        "second",
        "down",
        "#!/bin/sh\necho down-second >> $OUT/seq\n",
        true,
    );
    t.dep("second", "first");
    // Ready only after its first line, so the sequence below is fixed, not a race.
    t.longrun("svc", "trap 'echo stop-svc >> $OUT/seq; exit 0' TERM; echo run-svc >> $OUT/seq; echo >&3; while :; do sleep 0.05; done");
    t.file("svc", "notification-fd", "3\n", false);
    t.dep("svc", "second");
    assert_exit(&run_cmd(&t, "echo cmd >> $OUT/seq"), 0, &[]);
    assert_eq!(
        read(&t.out().join("seq")),
        "up-first\nup-second\nrun-svc\ncmd\nstop-svc\ndown-second\ndown-first\n"
    );
}

#[test]
fn env_dir_container_env_and_user_reach_services() {
    let t = Tree::new("env");
    t.longrun(
        "envy",
        "echo \"$FROM_DIR|$FROM_CONTAINER|${GONE-unset}|$(id -u)\" > $OUT/env; exec sleep 600",
    );
    t.file(
        "envy",
        "env/FROM_DIR",
        "from the envdir\nsecond line ignored\n",
        false,
    );
    t.file("envy", "env/GONE", "", false);
    t.file("envy", "user", "nobody\n", false);
    std::fs::set_permissions(t.out(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mut cmd = t.init(&[
        "sh",
        "-c",
        "i=0; while [ ! -s $OUT/env ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done",
    ]);
    cmd.env("FROM_CONTAINER", "from the container")
        .env("GONE", "should be unset");
    assert_exit(&run_init(cmd), 0, &[]);
    assert_eq!(
        read(&t.out().join("env")),
        "from the envdir|from the container|unset|65534\n"
    );
}

#[test]
fn every_service_and_cmd_are_captured_in_their_own_log() {
    let t = Tree::new("capture");
    t.longrun(
        "talker",
        "echo out-line; echo err-line >&2; touch $OUT/talked; exec sleep 600",
    );
    t.file("talker", "log-options", "--format plain\n", false);
    assert_exit(
        &run_cmd(
            &t,
            "while [ ! -e $OUT/talked ]; do sleep 0.02; done; echo from-cmd",
        ),
        0,
        &[],
    );
    let talker = read(&t.log_dir("talker").join("current"));
    let mut lines: Vec<&str> = talker.lines().collect();
    lines.sort();
    assert_eq!(lines, ["err-line", "out-line"]);
    let main = read(&t.log_dir("main").join("current"));
    let line = main.lines().next().unwrap_or_default();
    assert!(
        line.ends_with(" stdout F from-cmd") && line.len() == 30 + 18,
        "{main:?}"
    );
}

#[test]
fn timeout_up_fails_a_service_that_never_gets_ready_and_restarts_it() {
    let t = Tree::new("timeout-up");
    // Never writes to fd 3: not ready after 300 ms, so it is stopped and restarted.
    t.longrun(
        "mute",
        "echo x >> $OUT/mute.starts; trap 'exit 0' TERM; while :; do sleep 0.05; done",
    );
    t.file("mute", "notification-fd", "3\n", false);
    t.file("mute", "timeout-up", "300\n", false);
    let mut cmd = t.init(&[]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = tend_pid_under(&child);
    let starts = t.out().join("mute.starts");
    assert!(
        wait_for(Duration::from_secs(10), || read(&starts).lines().count()
            >= 2),
        "not restarted"
    );
    signal(pid, "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(out.status), 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tend: mute: not ready after 300 ms (timeout-up); stopping it"),
        "{err}"
    );
}

#[test]
fn down_signal_is_what_stops_the_service() {
    let t = Tree::new("down-signal");
    t.longrun(
        "hupper",
        "trap 'echo TERM > $OUT/got' TERM; trap 'echo HUP > $OUT/got; exit 0' HUP; touch $OUT/up; while :; do sleep 0.05; done",
    );
    t.file("hupper", "down-signal", "SIGHUP\n", false);
    assert_exit(
        &run_cmd(&t, "while [ ! -e $OUT/up ]; do sleep 0.02; done"),
        0,
        &[],
    );
    assert_eq!(read(&t.out().join("got")), "HUP\n");
}

#[test]
fn tend_cmd_wait_starts_cmd_even_if_a_service_is_never_ready() {
    let t = Tree::new("cmd-wait");
    t.longrun("mute", "trap 'exit 0' TERM; while :; do sleep 0.05; done");
    t.file("mute", "notification-fd", "3\n", false);
    let mut cmd = t.init(&["sh", "-c", "exit 6"]);
    cmd.env("TEND_CMD_WAIT", "500");
    let got = run_init(cmd);
    assert_exit(&got, 6, &["TEND_CMD_WAIT elapsed"]);
    let took = got.2;
    assert!(
        took >= Duration::from_millis(500),
        "CMD did not wait: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}
