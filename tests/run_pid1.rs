//! `tend run` as a tini replacement: reaping, exit codes, signal forwarding, stop timing.
//! Every test runs the real binary; most run it as PID 1 in a new PID namespace.

mod support;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn orphans_are_reaped_as_pid1() {
    // 500 double-forked orphans that exit shortly: PID 1 inherits and must reap them all.
    let script = r#"
        i=0; while [ $i -lt 500 ]; do (sleep 0.1 &) ; i=$((i+1)); done
        sleep 0.3
        end=$(( $(date +%s%N) + 1000000000 ))
        while :; do
            z=$(cat /proc/[0-9]*/stat 2>/dev/null | awk '$3=="Z"' | wc -l)
            [ "$z" -eq 0 ] && { echo zombies=0; exit 0; }
            [ $(date +%s%N) -gt $end ] && { echo zombies=$z; exit 1; }
            sleep 0.05
        done
    "#;
    let out = output_within(
        pid1(&["run", "--no-capture", "--", "sh", "-c", script]),
        LIMIT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        "zombies=0",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(code(out.status), 0);
}

#[test]
fn exit_codes_come_through_as_pid1() {
    let dir = TempDir::new("codes");
    let not_exec = dir.join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\nexit 0\n").unwrap();
    let not_exec = not_exec.to_str().unwrap();
    let cases: &[(&[&str], i32)] = &[
        (&["sh", "-c", "exit 0"], 0),
        (&["sh", "-c", "exit 3"], 3),
        (&["sh", "-c", "exit 255"], 255),
        (&["sh", "-c", "kill -9 $$"], 137),
        (&["sh", "-c", "kill -15 $$"], 143),
        (&["/no/such/command"], 127),
        (&[not_exec], 126),
    ];
    for (argv, want) in cases {
        let mut args = vec!["run", "--no-capture", "--"];
        args.extend_from_slice(argv);
        let out = output_within(pid1(&args), LIMIT);
        assert_eq!(
            code(out.status),
            *want,
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn exec_failures_say_why_on_one_line() {
    let out = output_within(
        pid1(&["run", "--no-capture", "--", "/no/such/command"]),
        LIMIT,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        "tend: cannot run '/no/such/command': No such file or directory"
    );
    let out = output_within(pid1(&["run", "--no-capture"]), LIMIT);
    assert_eq!(code(out.status), 111);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no command given"));
}

/// Starts `tend run` as PID 1 with a child that records each trapped signal in a file.
fn forward_case(extra: &[&str], script: &str) -> (std::process::Child, i32) {
    let mut args = vec!["run", "--no-capture"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    spawn_pid1(pid1(&args), Stdio::null())
}

#[test]
fn every_signal_reaches_the_child() {
    let dir = TempDir::new("fwd");
    let log = dir.join("got");
    let ready = dir.join("ready");
    let sigs = ["HUP", "INT", "QUIT", "USR1", "USR2", "TERM", "WINCH"];
    let traps: String = sigs
        .iter()
        .map(|s| format!("trap 'echo {s} >> {}' {s}; ", log.display()))
        .collect();
    let script = format!(
        "{traps} echo > {ready}; while [ $(wc -l < {log} 2>/dev/null || echo 0) -lt 7 ]; do sleep 0.02; done",
        ready = ready.display(),
        log = log.display()
    );
    let (mut child, pid) = forward_case(&[], &script);
    assert!(wait_for(Duration::from_secs(10), || ready.exists()));
    for (i, s) in sigs.iter().enumerate() {
        signal(pid, s);
        let got = wait_for(Duration::from_secs(5), || read(&log).lines().count() > i);
        assert!(got, "{s} did not reach the child; log: {:?}", read(&log));
    }
    assert_eq!(read(&log).lines().collect::<Vec<_>>(), sigs);
    let status = child.wait().unwrap();
    assert_eq!(code(status), 0);
}

/// `tend run` (PID 1, with `extra` flags) over a child whose background job, a grandchild
/// in the same process group, writes USR1 to the returned file on SIGUSR1 (then runs
/// `after`); once that job is up, sends USR1 to tend.
fn usr1_with_a_grandchild(
    dir: &TempDir,
    extra: &[&str],
    after: &str,
) -> (std::process::Child, i32, std::path::PathBuf) {
    let got = dir.join("grandchild");
    let ready = dir.join("ready");
    // The grandchild is a background job of the child: same process group, different pid.
    let script = format!(
        "sh -c 'trap \"echo USR1 > {got}{after}\" USR1; echo > {ready}; while :; do sleep 0.02; done' &
         trap 'echo parent' USR1; wait; wait",
        got = got.display(),
        ready = ready.display()
    );
    let (child, pid) = forward_case(extra, &script);
    assert!(wait_for(Duration::from_secs(10), || ready.exists()));
    signal(pid, "USR1");
    (child, pid, got)
}

#[test]
fn group_forwarding_reaches_a_grandchild() {
    let dir = TempDir::new("grp");
    let (mut child, _, got) = usr1_with_a_grandchild(&dir, &["--group"], "; exit 0");
    assert!(wait_for(Duration::from_secs(5), || read(&got).trim() == "USR1"));
    // The grandchild exits on USR1, so the child's waits return and it exits 0.
    let status = child.wait().unwrap();
    assert_eq!(code(status), 0);
}

#[test]
fn without_group_a_grandchild_is_not_signalled() {
    let dir = TempDir::new("nogrp");
    let (mut child, pid, got) = usr1_with_a_grandchild(&dir, &[], "");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        read(&got),
        "",
        "USR1 reached the grandchild without --group"
    );
    signal(pid, "TERM");
    child.wait().unwrap();
}

#[test]
fn orphans_are_reaped_when_not_pid1() {
    // Without a namespace tend is a child subreaper: the orphan's parent becomes tend, and
    // it is reaped (gone from /proc) soon after it exits.
    let script = r#"
        (sleep 0.2 & echo $! > "$OUT") ; orphan=$(cat "$OUT")
        ppid=$(awk '{print $4}' /proc/$orphan/stat)
        [ "$ppid" = "$PPID" ] || { echo "orphan parent $ppid, tend $PPID"; exit 1; }
        i=0; while [ -e /proc/$orphan ] && [ $i -lt 100 ]; do sleep 0.02; i=$((i+1)); done
        [ -e /proc/$orphan ] && { echo "orphan $orphan not reaped: $(cat /proc/$orphan/stat)"; exit 1; }
        echo reaped
    "#;
    let dir = TempDir::new("subreaper");
    let mut cmd = plain(&["run", "--no-capture", "--", "sh", "-c", script]);
    cmd.env("OUT", dir.join("pid"));
    let out = output_within(cmd, LIMIT);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "reaped");
    assert_eq!(code(out.status), 0);
}

#[test]
fn leftover_descendants_stop_fast_when_they_obey() {
    // The command exits leaving a descendant that exits at once on SIGTERM: no grace wait.
    let start = Instant::now();
    let mut cmd = pid1(&[
        "run",
        "--no-capture",
        "--",
        "sh",
        "-c",
        "sleep 600 & exit 5",
    ]);
    cmd.env("TEND_KILL_GRACE", "5000");
    let out = output_within(cmd, LIMIT);
    let took = start.elapsed();
    assert_eq!(code(out.status), 5);
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[test]
fn leftover_descendant_ignoring_term_is_killed_after_the_grace() {
    let start = Instant::now();
    let script = "sh -c 'trap \"\" TERM; while :; do sleep 0.05; done' & sleep 0.2; exit 4";
    let mut cmd = pid1(&["run", "--no-capture", "--", "sh", "-c", script]);
    cmd.env("TEND_KILL_GRACE", "1500");
    let out = output_within(cmd, LIMIT);
    let took = start.elapsed();
    assert_eq!(code(out.status), 4);
    assert!(
        took >= Duration::from_millis(1500),
        "killed before the grace: {took:?}"
    );
    assert!(took < Duration::from_secs(6), "took {took:?}");
}

#[test]
fn term_to_tend_stops_an_obedient_child_in_well_under_the_grace() {
    let mut cmd = pid1(&["run", "--no-capture", "--", "sleep", "600"]);
    cmd.env("TEND_KILL_GRACE", "5000");
    let (mut child, pid) = spawn_pid1(cmd, Stdio::null());
    std::thread::sleep(Duration::from_millis(200));
    let (rc, took) = stop_timed(&mut child, pid, "TERM");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(rc, 143);
}

#[test]
fn child_ignoring_term_is_killed_after_the_grace() {
    let script = "trap '' TERM; while :; do sleep 0.05; done";
    let mut cmd = pid1(&["run", "--no-capture", "--", "sh", "-c", script]);
    cmd.env("TEND_KILL_GRACE", "1000");
    let (mut child, pid) = spawn_pid1(cmd, Stdio::null());
    std::thread::sleep(Duration::from_millis(300));
    let (rc, took) = stop_timed(&mut child, pid, "TERM");
    assert_eq!(rc, 137);
    assert!(
        took >= Duration::from_millis(1000),
        "killed before the grace: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn version_and_help_work() {
    let out = output_within(plain(&["--version"]), LIMIT);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("tend {}", env!("CARGO_PKG_VERSION"))
    );
    let out = output_within(plain(&["help"]), LIMIT);
    assert_eq!(code(out.status), 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Commands:"));
}

#[test]
fn no_capture_hands_the_terminal_to_the_child() {
    // `script` gives tend a real pseudo-terminal as stdin, like `docker run -it`. The child
    // reports its process group and the terminal's foreground group: they must match, and
    // differ from tend's own group.
    let inner = format!(
        "{} run --no-capture -- sh -c 'echo pgid=$(ps -o pgid= -p $$ | tr -d \" \") tpgid=$(ps -o tpgid= -p $$ | tr -d \" \") parent=$(ps -o pgid= -p $PPID | tr -d \" \")'",
        tend()
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &inner, "/dev/null"]);
    let out = output_within(cmd, LIMIT);
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    let line = text
        .lines()
        .find(|l| l.starts_with("pgid="))
        .unwrap_or_else(|| panic!("{text}"));
    let field = |k: &str| {
        line.split(' ')
            .find_map(|f| f.strip_prefix(k))
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(
        field("pgid="),
        field("tpgid="),
        "child is not the foreground group: {line}"
    );
    assert_ne!(
        field("pgid="),
        field("parent="),
        "child shares tend's group: {line}"
    );
    assert_eq!(code(out.status), 0);
}

#[test]
fn a_hung_pid1_fails_output_within_instead_of_hanging() {
    // tend as PID 1 outlives a killed `unshare` and holds the pipes: the harness must kill
    // the whole namespace so a hung test fails. Also through a wrapper without --kill-child.
    let dir = support::TempDir::new("hung");
    let run_dir = dir.path().to_owned();
    let mut wrapped = std::process::Command::new("sh");
    wrapped.args([
        "-c",
        "unshare --pid --fork --mount-proc \"$0\" run --no-capture -- sleep 600",
        tend(),
    ]);
    for mut cmd in [
        pid1(&["run", "--no-capture", "--", "sleep", "600"]),
        wrapped,
    ] {
        cmd.env("TEND_RUN_DIR", &run_dir);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let run = std::panic::AssertUnwindSafe(|| output_within(cmd, Duration::from_secs(1)));
            let r = std::panic::catch_unwind(run);
            let _ = tx.send(r.is_err());
        });
        let failed = rx.recv_timeout(Duration::from_secs(30));
        assert_eq!(failed, Ok(true), "output_within did not fail within 30 s");
    }
}
