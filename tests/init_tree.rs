//! `tend init` as PID 1 over real service trees: ordering, readiness, restarts, shutdown,
//! exit codes, environment, users and log capture.

mod support;
use std::process::Stdio;
use std::time::Duration;
use support::*;

const LIMIT: Duration = Duration::from_secs(60);

/// A longrun that stops at once on SIGTERM (trap set first, so no TERM finds it unarmed)
/// and marks `$OUT/<name>.start`.
fn obedient(name: &str, extra: &str) -> String {
    format!(
        "trap 'date +%s%3N > $OUT/{name}.stop; exit 0' TERM\ndate +%s%3N > $OUT/{name}.start\n{extra}\nwhile :; do sleep 0.05; done"
    )
}

/// A tree run to its end: what it holds, and what init must exit with, print and leave.
struct Case<'a> {
    tag: &'a str,
    /// (service, file, content): a content starting with `#!` is made executable.
    files: &'a [(&'a str, &'a str, &'a str)],
    /// CMD, a `sh -c` script; `None`: no CMD.
    cmd: Option<&'a str>,
    env: &'a [(&'a str, &'a str)],
    code: i32,
    /// Lines stderr must hold.
    stderr: &'a [&'a str],
    /// ($OUT file, its whole content; `None`: it must not exist).
    out: &'a [(&'a str, Option<&'a str>)],
}

impl Case<'_> {
    fn run(&self) {
        let t = Tree::new(self.tag);
        for (svc, rel, body) in self.files {
            t.file(svc, rel, body, body.starts_with("#!"));
        }
        // World-writable: a service with a `user` file writes there too.
        std::fs::set_permissions(t.out(), std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let mut cmd = match self.cmd {
            Some(script) => t.init(&["sh", "-c", script]),
            None => t.init(&[]),
        };
        for (k, v) in self.env {
            cmd.env(k, v);
        }
        eprintln!("case {}", self.tag);
        Ran::new(cmd, LIMIT).expect(self.code, self.stderr);
        for (file, want) in self.out {
            let p = t.out().join(file);
            match want {
                Some(w) => assert_eq!(read(&p), *w, "{}: $OUT/{file}", self.tag),
                None => assert!(!p.exists(), "{}: $OUT/{file} exists", self.tag),
            }
        }
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
    let cmd = "date +%s%3N > $OUT/cmd.start; i=0; until [ -s $OUT/after-fd.start ] && [ -s $OUT/after-sd.start ] && [ -s $OUT/after-ck.start ] || [ $i -ge 200 ]; do sleep 0.05; i=$((i+1)); done";
    Ran::new(t.init(&["sh", "-c", cmd]), LIMIT).expect(0, &[]);
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

/// Trees run to their end with their exit code, stderr and what the services left in $OUT.
#[test]
fn trees_run_to_their_end() {
    let quiet = format!("#!/bin/sh\n{}\n", obedient("quiet", ""));
    let app = format!("#!/bin/sh\n{}\n", obedient("app", ""));
    let cases = [
        // CMD's exit code, or 128+N for a signal, is init's.
        Case {
            tag: "codes",
            files: &[("quiet", "run", &quiet)],
            cmd: Some("exit 5"),
            env: &[],
            code: 5,
            stderr: &[],
            out: &[],
        },
        Case {
            tag: "codes-signal",
            files: &[("quiet", "run", &quiet)],
            cmd: Some("kill -9 $$"),
            env: &[],
            code: 137,
            stderr: &[],
            out: &[],
        },
        // A critical service that stops for good ends init with its code.
        Case {
            tag: "critical",
            files: &[
                ("quiet", "run", &quiet),
                ("dies", "run", "#!/bin/sh\nsleep 0.3; exit 3\n"),
                ("dies", "critical", ""),
                ("dies", "restart", "never\n"),
            ],
            cmd: None,
            env: &[],
            code: 3,
            stderr: &["critical service dies stopped for good (exit code 3)"],
            out: &[],
        },
        // A bad tree exits 111 naming the problem.
        Case {
            tag: "bad",
            files: &[
                ("web", "run", "#!/bin/sh\nexit 0\n"),
                ("web", "restart", "sometimes\n"),
            ],
            cmd: Some("true"),
            env: &[],
            code: 111,
            stderr: &[
                "web: restart: 'sometimes' is not a restart policy (expected always, on-failure or never)",
            ],
            out: &[],
        },
        // A failing oneshot stops start-up: neither its dependent nor CMD starts.
        Case {
            tag: "oneshot",
            files: &[
                ("setup", "type", "oneshot\n"),
                ("setup", "up", "#!/bin/sh\necho preparing; exit 4\n"),
                ("app", "run", &app),
                ("app", "dependencies.d/setup", ""),
            ],
            cmd: Some("echo cmd > $OUT/cmd"),
            env: &[],
            code: 4,
            stderr: &["tend: setup: up failed (exit code 4); start-up stopped"],
            out: &[("app.start", None), ("cmd", None)],
        },
        // Oneshots' up and down run in dependency order around longruns and CMD; svc is
        // ready only after its first line, so the sequence is fixed, not a race.
        Case {
            tag: "updown",
            files: &[
                ("first", "type", "oneshot\n"),
                ("first", "up", "#!/bin/sh\necho up-first >> $OUT/seq\n"),
                ("first", "down", "#!/bin/sh\necho down-first >> $OUT/seq\n"),
                ("second", "type", "oneshot\n"),
                ("second", "up", "#!/bin/sh\necho up-second >> $OUT/seq\n"),
                (
                    "second",
                    "down",
                    "#!/bin/sh\necho down-second >> $OUT/seq\n",
                ),
                ("second", "dependencies.d/first", ""),
                (
                    "svc",
                    "run",
                    "#!/bin/sh\ntrap 'echo stop-svc >> $OUT/seq; exit 0' TERM; echo run-svc >> $OUT/seq; echo >&3; while :; do sleep 0.05; done\n",
                ),
                ("svc", "notification-fd", "3\n"),
                ("svc", "dependencies.d/second", ""),
            ],
            cmd: Some("echo cmd >> $OUT/seq"),
            env: &[],
            code: 0,
            stderr: &[],
            out: &[(
                "seq",
                Some("up-first\nup-second\nrun-svc\ncmd\nstop-svc\ndown-second\ndown-first\n"),
            )],
        },
        // env/ (first line; empty unsets), the container's environment and `user` reach
        // the service.
        Case {
            tag: "env",
            files: &[
                (
                    "envy",
                    "run",
                    "#!/bin/sh\necho \"$FROM_DIR|$FROM_CONTAINER|${GONE-unset}|$(id -u)\" > $OUT/env; exec sleep 600\n",
                ),
                (
                    "envy",
                    "env/FROM_DIR",
                    "from the envdir\nsecond line ignored\n",
                ),
                ("envy", "env/GONE", ""),
                ("envy", "user", "nobody\n"),
            ],
            cmd: Some(
                "i=0; while [ ! -s $OUT/env ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done",
            ),
            env: &[
                ("FROM_CONTAINER", "from the container"),
                ("GONE", "should be unset"),
            ],
            code: 0,
            stderr: &[],
            out: &[(
                "env",
                Some("from the envdir|from the container|unset|65534\n"),
            )],
        },
        // down-signal is what stops the service.
        Case {
            tag: "down-signal",
            files: &[
                (
                    "hupper",
                    "run",
                    "#!/bin/sh\ntrap 'echo TERM > $OUT/got' TERM; trap 'echo HUP > $OUT/got; exit 0' HUP; touch $OUT/up; while :; do sleep 0.05; done\n",
                ),
                ("hupper", "down-signal", "SIGHUP\n"),
            ],
            cmd: Some("while [ ! -e $OUT/up ]; do sleep 0.02; done"),
            env: &[],
            code: 0,
            stderr: &[],
            out: &[("got", Some("HUP\n"))],
        },
    ];
    for case in &cases {
        case.run();
    }
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
    let (rc, took) = stop_timed(&mut child, pid, "TERM");
    assert_eq!(rc, 0);
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
    let (mut child, pid) = t.spawn_init_with(&[("TEND_KILL_GRACE", "3000")], Stdio::null());
    assert!(wait_for(Duration::from_secs(20), || {
        t.out().join("stubborn.start").exists() && t.out().join("leaver.start").exists()
    }));
    std::thread::sleep(Duration::from_millis(200));
    let (rc, took) = stop_timed(&mut child, pid, "TERM");
    assert_eq!(rc, 0);
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
fn init_refuses_a_misspelled_file_and_a_fifo_at_start_up() {
    let t = Tree::new("strict");
    t.longrun("web", "exec sleep 1000");
    t.file("web", "stopsignal", "QUIT\n", false);
    t.longrun("db", "exec sleep 1000");
    mkfifo(&t.tmp.join("services/db/down-signal"));
    // Before, init blocked forever opening the FIFO: output_within fails the test then.
    Ran::new(t.init(&["true"]), LIMIT).expect(
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
fn every_service_and_cmd_are_captured_in_their_own_log() {
    let t = Tree::new("capture");
    t.longrun(
        "talker",
        "echo out-line; echo err-line >&2; touch $OUT/talked; exec sleep 600",
    );
    t.file("talker", "log-options", "--format plain\n", false);
    let cmd = "while [ ! -e $OUT/talked ]; do sleep 0.02; done; echo from-cmd";
    Ran::new(t.init(&["sh", "-c", cmd]), LIMIT).expect(0, &[]);
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
    let (child, pid) = t.spawn_init_with(&[], Stdio::piped());
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
fn tend_cmd_wait_starts_cmd_even_if_a_service_is_never_ready() {
    let t = Tree::new("cmd-wait");
    t.longrun("mute", "trap 'exit 0' TERM; while :; do sleep 0.05; done");
    t.file("mute", "notification-fd", "3\n", false);
    let mut cmd = t.init(&["sh", "-c", "exit 6"]);
    cmd.env("TEND_CMD_WAIT", "500");
    let took = Ran::new(cmd, LIMIT)
        .expect(6, &["TEND_CMD_WAIT elapsed"])
        .took;
    assert!(
        took >= Duration::from_millis(500),
        "CMD did not wait: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}
