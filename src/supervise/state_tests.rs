//! Tests of the service state machine. Every (state, event) pair, without a process: the
//! table lists the pairs that do something; every other pair must leave the state alone
//! and ask for nothing.

use super::*;
use crate::service::{Restart, RestartLimit};
use Action::{ExitContainer as Exit_, Log, Signal as Sig, Spawn};
use Signal::{SIGCONT, SIGKILL, SIGTERM};

const RUN: Pid = Pid::from_raw(100);
const CHECK: Pid = Pid::from_raw(200);
const AUX: Pid = Pid::from_raw(300);
const STRANGER: Pid = Pid::from_raw(999);
const EVERY: Duration = Duration::from_millis(100);

/// Fixed instants: fixtures' timers are due (`due`) or not (`later`) at `now`.
struct T {
    now: Instant,
    due: Instant,
    later: Instant,
    kill: Instant,
}

fn t() -> T {
    // A fixed base far enough from boot that subtracting never underflows.
    let base = Instant::now() + Duration::from_secs(1000);
    T {
        now: base,
        due: base - Duration::from_secs(5),
        later: base + Duration::from_secs(50),
        kill: base + Duration::from_secs(3),
    }
}

fn cx(t: &T) -> Ctx {
    Ctx {
        now: t.now,
        kill_at: t.kill,
        cut: None,
        shutting_down: false,
        startup: false,
        want_up: true,
        cmd_waiting: false,
    }
}

fn longrun() -> Conf {
    Conf {
        name: "svc".into(),
        oneshot: false,
        ready_by: ReadyBy::Check,
        has_finish: true,
        has_down: false,
        policy: Policy {
            restart: Restart::Always,
            restart_limit: None,
            critical: false,
            timeout_up: Some(Duration::from_secs(1)),
            timeout_finish: Duration::from_secs(2),
            down_signal: SIGTERM,
            timeout_kill: None,
        },
    }
}

fn oneshot() -> Conf {
    Conf {
        oneshot: true,
        ready_by: ReadyBy::Start,
        has_finish: false,
        has_down: true,
        ..longrun()
    }
}

fn starting(give_up_at: Option<Instant>, remind_at: Option<Instant>, probe: Probe) -> State {
    State::Starting {
        pid: RUN,
        give_up_at,
        remind_at,
        probe,
    }
}

/// `Starting` with its first check due at `t.due`.
fn starting_check_due(t: &T) -> State {
    let probe = Probe::CheckAt {
        at: t.due,
        every: EVERY,
    };
    starting(None, None, probe)
}

/// `Starting` while the check `CHECK` runs.
fn starting_checking() -> State {
    let probe = Probe::Checking {
        pid: CHECK,
        every: EVERY,
    };
    starting(None, None, probe)
}

/// Every state shape a longrun (`L`) or a oneshot (`O`) can be in.
fn states(t: &T) -> Vec<(&'static str, &'static str, State)> {
    let fin = |pid, kill_at| State::Finishing {
        pid,
        kill_at,
        ended: Ended::settle(Exit::Code(1)),
    };
    vec![
        ("LO", "down", State::Down),
        ("LO", "starting", starting(None, None, Probe::Wait)),
        ("L", "starting-check-due", starting_check_due(t)),
        ("L", "starting-checking", starting_checking()),
        (
            "LO",
            "starting-late",
            starting(Some(t.due), None, Probe::Wait),
        ),
        (
            "LO",
            "starting-remind",
            starting(None, Some(t.due), Probe::Wait),
        ),
        ("L", "up", State::Up { pid: RUN }),
        (
            "LO",
            "stopping",
            State::Stopping {
                pid: RUN,
                kill_at: Some(t.due),
                then: Then::Settle,
            },
        ),
        (
            "LO",
            "stopping-killed",
            State::Stopping {
                pid: RUN,
                kill_at: None,
                then: Then::Settle,
            },
        ),
        ("L", "finishing-spawn", fin(None, Some(t.later))),
        ("L", "finishing", fin(Some(AUX), Some(t.due))),
        ("L", "backoff-due", State::Backoff { until: t.due }),
        ("L", "backoff-later", State::Backoff { until: t.later }),
        (
            "O",
            "downing-spawn",
            State::Downing {
                pid: None,
                kill_at: Some(t.later),
            },
        ),
        (
            "O",
            "downing",
            State::Downing {
                pid: Some(AUX),
                kill_at: Some(t.due),
            },
        ),
        ("LO", "failed", State::Failed),
        ("LO", "done", State::Done),
    ]
}

fn err(permanent: bool) -> SpawnError {
    SpawnError {
        exit: Exit::Code(if permanent { 126 } else { 127 }),
        permanent,
        why: "nope".into(),
    }
}

fn events() -> Vec<(&'static str, Event)> {
    let fin = Prog::Finish { code: 1, sig: 0 };
    vec![
        ("start", Event::Start),
        ("enable", Event::Enable),
        ("spawned-run", Event::Spawned(Prog::Run, RUN)),
        ("spawned-up", Event::Spawned(Prog::Up, RUN)),
        ("spawned-check", Event::Spawned(Prog::Check, CHECK)),
        ("spawned-finish", Event::Spawned(fin, AUX)),
        ("spawned-down", Event::Spawned(Prog::Down, AUX)),
        ("spawnfail-run", Event::SpawnFailed(Prog::Run, err(false))),
        (
            "spawnfail-run-perm",
            Event::SpawnFailed(Prog::Run, err(true)),
        ),
        ("spawnfail-up", Event::SpawnFailed(Prog::Up, err(false))),
        ("spawnfail-up-perm", Event::SpawnFailed(Prog::Up, err(true))),
        (
            "spawnfail-check",
            Event::SpawnFailed(Prog::Check, err(false)),
        ),
        ("spawnfail-finish", Event::SpawnFailed(fin, err(false))),
        ("spawnfail-down", Event::SpawnFailed(Prog::Down, err(false))),
        ("exited-run-0", Event::Exited(RUN, Exit::Code(0))),
        ("exited-run-1", Event::Exited(RUN, Exit::Code(1))),
        ("exited-check-0", Event::Exited(CHECK, Exit::Code(0))),
        ("exited-check-1", Event::Exited(CHECK, Exit::Code(1))),
        ("exited-aux", Event::Exited(AUX, Exit::Code(0))),
        ("exited-stranger", Event::Exited(STRANGER, Exit::Code(0))),
        ("ready", Event::Ready),
        ("timer", Event::Timer),
        ("stop", Event::Stop),
        ("restart", Event::Restart),
        ("rundown", Event::RunDown),
    ]
}

type Row = (&'static str, &'static str, &'static str, State, Vec<Action>);

fn log(s: &str) -> Action {
    Log(s.into())
}

/// The pairs that do something. `Log` texts are matched as substrings.
fn table(t: &T) -> Vec<Row> {
    let now = t.now;
    let fin = |code, then| State::Finishing {
        pid: None,
        kill_at: Some(now + Duration::from_secs(2)),
        ended: Ended {
            exit: Exit::Code(code),
            then,
        },
    };
    let spawn_fin = |code| Spawn(Prog::Finish { code, sig: 0 });
    // A longrun's run exiting 0 or 1 goes to finishing; `pre` comes before the finish spawn.
    let run_exits = |st: &'static str, pre: &[Action]| -> Vec<Row> {
        [(0, "exited-run-0"), (1, "exited-run-1")]
            .into_iter()
            .map(|(code, ev)| {
                let mut acts = pre.to_vec();
                acts.push(spawn_fin(code));
                ("L", st, ev, fin(code, Then::Settle), acts)
            })
            .collect()
    };
    let stopping = |then| State::Stopping {
        pid: RUN,
        kill_at: Some(t.kill),
        then,
    };
    let term = || vec![Sig(RUN, SIGTERM), Sig(RUN, SIGCONT)];
    let kill_check_then_term = || vec![Sig(CHECK, SIGKILL), Sig(RUN, SIGTERM), Sig(RUN, SIGCONT)];
    let backoff_now = State::Backoff { until: now };
    let l_started = starting(
        Some(now + Duration::from_secs(1)),
        None,
        Probe::CheckAt {
            at: now,
            every: CHECK_FIRST,
        },
    );
    let mut rows: Vec<Row> = Vec::new();
    // Longrun: what Down and Backoff share.
    for st in ["down", "backoff-due", "backoff-later"] {
        rows.push(("L", st, "spawned-run", l_started.clone(), vec![]));
        rows.push((
            "L",
            st,
            "spawnfail-run",
            backoff_now.clone(),
            vec![log("svc: cannot run run: nope")],
        ));
        rows.push((
            "L",
            st,
            "spawnfail-run-perm",
            State::Failed,
            vec![
                log("svc: cannot run run: nope"),
                log("permanent start error; failed for good"),
            ],
        ));
        rows.push(("L", st, "restart", State::Down, vec![]));
    }
    rows.push(("L", "down", "start", State::Down, vec![Spawn(Prog::Run)]));
    rows.push((
        "L",
        "backoff-due",
        "timer",
        State::Backoff { until: t.due },
        vec![Spawn(Prog::Run)],
    ));
    for st in ["backoff-due", "backoff-later"] {
        rows.push(("L", st, "stop", State::Down, vec![]));
        rows.push(("L", st, "enable", backoff_now.clone(), vec![]));
    }
    // Longrun: starting, in each of its shapes.
    let shapes: [(&str, State, bool); 4] = [
        ("starting", starting(None, None, Probe::Wait), false),
        ("starting-check-due", starting_check_due(t), false),
        ("starting-checking", starting_checking(), true),
        (
            "starting-late",
            starting(Some(t.due), None, Probe::Wait),
            false,
        ),
    ];
    for (st, _, checking) in &shapes {
        let pre = if *checking {
            vec![Sig(CHECK, SIGKILL)]
        } else {
            vec![]
        };
        rows.push(("L", st, "ready", State::Up { pid: RUN }, vec![]));
        rows.extend(run_exits(st, &pre));
        let stop_acts = if *checking {
            kill_check_then_term()
        } else {
            term()
        };
        rows.push(("L", st, "stop", stopping(Then::Settle), stop_acts.clone()));
        rows.push(("L", st, "restart", stopping(Then::Restart), stop_acts));
    }
    // `starting-remind` shares the plain `starting` rows.
    let remind = starting(None, Some(t.due), Probe::Wait);
    rows.push((
        "L",
        "starting-remind",
        "ready",
        State::Up { pid: RUN },
        vec![],
    ));
    rows.extend(run_exits("starting-remind", &[]));
    rows.push((
        "L",
        "starting-remind",
        "stop",
        stopping(Then::Settle),
        term(),
    ));
    rows.push((
        "L",
        "starting-remind",
        "restart",
        stopping(Then::Restart),
        term(),
    ));
    // Not ready and no `timeout-up`: a reminder, for either kind in its own words.
    for (k, says) in [
        ("L", "svc: still not ready after"),
        ("O", "waiting for its up to exit"),
    ] {
        rows.push((
            k,
            "starting-remind",
            "timer",
            starting(None, Some(now + REMIND_EVERY), Probe::Wait),
            vec![log(says)],
        ));
    }
    let _ = remind;
    rows.push((
        "L",
        "starting-check-due",
        "timer",
        shapes[1].1.clone(),
        vec![Spawn(Prog::Check)],
    ));
    rows.push((
        "L",
        "starting-check-due",
        "spawned-check",
        shapes[2].1.clone(),
        vec![],
    ));
    rows.push((
        "L",
        "starting-check-due",
        "spawnfail-check",
        starting(
            None,
            None,
            Probe::CheckAt {
                at: now + CHECK_MAX,
                every: EVERY,
            },
        ),
        vec![log("svc: cannot run check: nope")],
    ));
    rows.push((
        "L",
        "starting-checking",
        "exited-check-0",
        State::Up { pid: RUN },
        vec![],
    ));
    rows.push((
        "L",
        "starting-checking",
        "exited-check-1",
        starting(
            None,
            None,
            Probe::CheckAt {
                at: now + EVERY,
                every: EVERY * 2,
            },
        ),
        vec![],
    ));
    let mut late = vec![log(
        "svc: not ready after 1000 ms (timeout-up); stopping it",
    )];
    late.extend(term());
    rows.push((
        "L",
        "starting-late",
        "timer",
        stopping(Then::TimedOut),
        late,
    ));
    // Longrun: up.
    rows.extend(run_exits("up", &[]));
    rows.push(("L", "up", "stop", stopping(Then::Settle), term()));
    rows.push(("L", "up", "restart", stopping(Then::Restart), term()));
    // Longrun and oneshot: stopping.
    for k in ["L", "O"] {
        rows.push((
            k,
            "stopping",
            "timer",
            State::Stopping {
                pid: RUN,
                kill_at: None,
                then: Then::Settle,
            },
            vec![
                log("svc: did not stop in time; sending SIGKILL"),
                Sig(RUN, SIGKILL),
            ],
        ));
    }
    for st in ["stopping", "stopping-killed"] {
        let kill_at = if st == "stopping" { Some(t.due) } else { None };
        rows.push((
            "L",
            st,
            "restart",
            State::Stopping {
                pid: RUN,
                kill_at,
                then: Then::Restart,
            },
            vec![],
        ));
        rows.extend(run_exits(st, &[]));
    }
    // Longrun: finishing.
    rows.push((
        "L",
        "finishing-spawn",
        "spawned-finish",
        State::Finishing {
            pid: Some(AUX),
            kill_at: Some(t.later),
            ended: Ended::settle(Exit::Code(1)),
        },
        vec![],
    ));
    rows.push((
        "L",
        "finishing-spawn",
        "spawnfail-finish",
        backoff_now.clone(),
        vec![log("svc: cannot run finish: nope")],
    ));
    rows.push(("L", "finishing", "exited-aux", backoff_now.clone(), vec![]));
    rows.push((
        "L",
        "finishing",
        "timer",
        State::Finishing {
            pid: Some(AUX),
            kill_at: None,
            ended: Ended::settle(Exit::Code(1)),
        },
        vec![
            log("svc: finish did not exit within 2000 ms; killed"),
            Sig(AUX, SIGKILL),
        ],
    ));
    for (st, pid, kill_at) in [
        ("finishing-spawn", None, Some(t.later)),
        ("finishing", Some(AUX), Some(t.due)),
    ] {
        rows.push((
            "L",
            st,
            "restart",
            State::Finishing {
                pid,
                kill_at,
                ended: Ended {
                    exit: Exit::Code(1),
                    then: Then::Restart,
                },
            },
            vec![],
        ));
    }
    // Longrun: final states come back on `tend ctl start` / `restart`.
    for st in ["failed", "done"] {
        rows.push(("L", st, "enable", State::Down, vec![]));
        rows.push(("L", st, "restart", State::Down, vec![]));
    }

    // Oneshot.
    let o_started = starting(Some(now + Duration::from_secs(1)), None, Probe::Wait);
    rows.push(("O", "down", "start", State::Down, vec![Spawn(Prog::Up)]));
    rows.push(("O", "down", "spawned-up", o_started, vec![]));
    rows.push((
        "O",
        "down",
        "spawnfail-up",
        State::Failed,
        vec![
            log("svc: cannot run up: nope"),
            log("svc: up failed (exit code 127); start-up stopped"),
            Exit_(127),
        ],
    ));
    rows.push((
        "O",
        "down",
        "spawnfail-up-perm",
        State::Failed,
        vec![
            log("svc: cannot run up: nope"),
            log("permanent start error; failed for good"),
        ],
    ));
    rows.push(("O", "down", "restart", State::Down, vec![]));
    for st in [
        "starting",
        "starting-late",
        "starting-remind",
        "stopping",
        "stopping-killed",
    ] {
        rows.push(("O", st, "exited-run-0", State::Done, vec![]));
        rows.push((
            "O",
            st,
            "exited-run-1",
            State::Failed,
            vec![
                log("svc: up failed (exit code 1); start-up stopped"),
                Exit_(1),
            ],
        ));
        if st.starts_with("starting") {
            rows.push(("O", st, "stop", stopping(Then::Settle), term()));
        }
    }
    rows.push((
        "O",
        "starting-late",
        "timer",
        State::Stopping {
            pid: RUN,
            kill_at: None,
            then: Then::TimedOut,
        },
        vec![
            log("svc: up not done after 1000 ms (timeout-up); killing it"),
            Sig(RUN, SIGKILL),
        ],
    ));
    rows.push((
        "O",
        "done",
        "rundown",
        State::Downing {
            pid: None,
            kill_at: Some(t.kill),
        },
        vec![Spawn(Prog::Down)],
    ));
    rows.push((
        "O",
        "downing-spawn",
        "spawned-down",
        State::Downing {
            pid: Some(AUX),
            kill_at: Some(t.later),
        },
        vec![],
    ));
    rows.push((
        "O",
        "downing-spawn",
        "spawnfail-down",
        State::Down,
        vec![log("svc: cannot run down: nope")],
    ));
    rows.push(("O", "downing", "exited-aux", State::Down, vec![]));
    rows.push((
        "O",
        "downing",
        "timer",
        State::Downing {
            pid: Some(AUX),
            kill_at: None,
        },
        vec![
            log("svc: down did not exit in time; sending SIGKILL"),
            Sig(AUX, SIGKILL),
        ],
    ));
    rows
}

fn same_actions(got: &[Action], want: &[Action]) -> bool {
    got.len() == want.len()
        && got.iter().zip(want).all(|(g, w)| match (g, w) {
            (Log(g), Log(w)) => g.contains(w.as_str()),
            _ => g == w,
        })
}

#[test]
fn every_state_event_pair() {
    let t = t();
    let table = table(&t);
    let mut used = vec![false; table.len()];
    let mut pairs = 0;
    for (kinds, sname, state) in states(&t) {
        for kind in kinds.chars() {
            let conf = if kind == 'L' { longrun() } else { oneshot() };
            let k = if kind == 'L' { "L" } else { "O" };
            for (ename, ev) in events() {
                pairs += 1;
                let mut m = Machine::new();
                m.state = state.clone();
                let got = m.on(&conf, ev, &cx(&t));
                let row = table
                    .iter()
                    .position(|r| r.0 == k && r.1 == sname && r.2 == ename);
                let (want_state, want_actions) = match row {
                    Some(i) => {
                        assert!(!used[i], "duplicate row {k} {sname} {ename}");
                        used[i] = true;
                        (table[i].3.clone(), table[i].4.clone())
                    }
                    None => (state.clone(), vec![]),
                };
                assert_eq!(m.state, want_state, "{k} {sname} + {ename}: state");
                assert!(
                    same_actions(&got, &want_actions),
                    "{k} {sname} + {ename}: actions {got:?}, expected {want_actions:?}"
                );
            }
        }
    }
    let unused: Vec<_> = table
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(r, _)| (r.0, r.1, r.2))
        .collect();
    assert!(unused.is_empty(), "rows matching no pair: {unused:?}");
    assert!(pairs > 500, "{pairs}");
}

/// Runs a longrun's first run to its exit with `code`; returns the actions of the exit.
fn run_and_exit(m: &mut Machine, conf: &Conf, cx: &Ctx, code: i32) -> Vec<Action> {
    m.on(conf, Event::Spawned(Prog::Run, RUN), cx);
    m.on(conf, Event::Exited(RUN, Exit::Code(code)), cx)
}

fn plain() -> Conf {
    let mut c = Conf {
        ready_by: ReadyBy::Start,
        has_finish: false,
        ..longrun()
    };
    c.policy.timeout_up = None;
    c
}

#[test]
fn restart_policies_and_critical() {
    let t = t();
    let c = cx(&t);
    for (restart, code, want) in [
        (Restart::Always, 0, "backoff"),
        (Restart::Always, 3, "backoff"),
        (Restart::OnFailure, 0, "done"),
        (Restart::OnFailure, 3, "backoff"),
        (Restart::Never, 0, "done"),
        (Restart::Never, 3, "failed"),
    ] {
        for critical in [false, true] {
            let mut conf = plain();
            conf.policy.restart = restart;
            conf.policy.critical = critical;
            let mut m = Machine::new();
            let acts = run_and_exit(&mut m, &conf, &c, code);
            assert_eq!(m.name(&conf), want, "{restart:?} {code}");
            let exits = acts.contains(&Exit_(code));
            assert_eq!(
                exits,
                critical && want != "backoff",
                "{restart:?} {code} {acts:?}"
            );
        }
    }
}

#[test]
fn restart_limit_counts_failures_within_the_window() {
    let t = t();
    let mut conf = plain();
    conf.policy.critical = true;
    conf.policy.restart_limit = Some(RestartLimit {
        count: 3,
        within: Some(Duration::from_secs(60)),
    });
    let mut m = Machine::new();
    let at = |s: u64| Ctx {
        now: t.now + Duration::from_secs(s),
        ..cx(&t)
    };
    // Two failures, then one that is old by the time of the next: the window slides.
    assert!(run_and_exit(&mut m, &conf, &at(0), 1).is_empty());
    assert!(run_and_exit(&mut m, &conf, &at(10), 1).is_empty());
    assert!(run_and_exit(&mut m, &conf, &at(100), 1).is_empty());
    // A success does not count.
    assert!(run_and_exit(&mut m, &conf, &at(101), 0).is_empty());
    assert!(run_and_exit(&mut m, &conf, &at(102), 1).is_empty());
    assert_eq!(m.name(&conf), "backoff");
    let acts = run_and_exit(&mut m, &conf, &at(103), 7);
    assert_eq!(m.state, State::Failed);
    assert!(same_actions(
        &acts,
        &[
            log("svc: failed 3 times within 60000 ms; failed for good (restart-limit)"),
            log("critical service svc stopped for good (exit code 7)"),
            Exit_(7)
        ]
    ));
    // Without a window every failure counts; a timed-out start is a failure.
    let mut conf = Conf {
        ready_by: ReadyBy::Systemd,
        ..plain()
    };
    conf.policy.restart_limit = Some(RestartLimit {
        count: 2,
        within: None,
    });
    conf.policy.timeout_up = Some(Duration::from_secs(1));
    let mut m = Machine::new();
    run_and_exit(&mut m, &conf, &at(0), 1);
    m.on(&conf, Event::Spawned(Prog::Run, RUN), &at(1000));
    m.on(&conf, Event::Timer, &at(1002));
    m.on(&conf, Event::Exited(RUN, Exit::Code(0)), &at(1002));
    assert_eq!(m.state, State::Failed);
}

#[test]
fn permanent_start_error_at_startup_exits_111() {
    let t = t();
    let c = Ctx {
        startup: true,
        ..cx(&t)
    };
    for conf in [plain(), oneshot()] {
        let mut m = Machine::new();
        let prog = first_prog(&conf);
        let acts = m.on(&conf, Event::SpawnFailed(prog, err(true)), &c);
        assert_eq!(m.state, State::Failed);
        assert_eq!(acts.last(), Some(&Exit_(START_ERROR)), "{acts:?}");
        assert!(
            matches!(&acts[1], Log(l) if l.contains("svc: a permanent start error; start-up stopped"))
        );
    }
    // Later, a critical service takes the container down with its code.
    let mut conf = plain();
    conf.policy.critical = true;
    let mut m = Machine::new();
    let acts = m.on(&conf, Event::SpawnFailed(Prog::Run, err(true)), &cx(&t));
    assert_eq!(acts.last(), Some(&Exit_(126)));
}

#[test]
fn shutdown_and_ctl_stop_settle_down() {
    let t = t();
    for c in [
        Ctx {
            shutting_down: true,
            ..cx(&t)
        },
        Ctx {
            want_up: false,
            ..cx(&t)
        },
    ] {
        let mut m = Machine::new();
        assert!(run_and_exit(&mut m, &plain(), &c, 1).is_empty());
        assert_eq!(m.state, State::Down);
        // A oneshot `up` failing during shutdown does not stop anything again.
        let mut m = Machine::new();
        m.on(&oneshot(), Event::Spawned(Prog::Up, RUN), &c);
        let acts = m.on(&oneshot(), Event::Exited(RUN, Exit::Code(1)), &c);
        assert!(!c.want_up || acts.is_empty(), "{acts:?}");
    }
    // A backoff timer during shutdown ends the service instead of starting it.
    let mut m = Machine::new();
    m.state = State::Backoff { until: t.due };
    let c = Ctx {
        shutting_down: true,
        ..cx(&t)
    };
    assert!(m.on(&plain(), Event::Timer, &c).is_empty());
    assert_eq!(m.state, State::Down);
}

#[test]
fn ctl_restart_starts_again_and_counts() {
    let t = t();
    let conf = plain();
    let c = cx(&t);
    let mut m = Machine::new();
    m.on(&conf, Event::Spawned(Prog::Run, RUN), &c);
    assert_eq!(m.name(&conf), "up");
    m.on(&conf, Event::Restart, &c);
    m.on(&conf, Event::Exited(RUN, Exit::Signal(15)), &c);
    assert_eq!((m.state.clone(), m.runs.restarts), (State::Down, 1));
    // Backoff timers count restarts too.
    m.state = State::Backoff { until: t.due };
    m.on(&conf, Event::Timer, &c);
    assert_eq!(m.runs.restarts, 2);
}

#[test]
fn timers_live_in_their_states() {
    let t = t();
    let mut m = Machine::new();
    assert_eq!(m.next_timer(), None);
    m.state = starting(
        Some(t.later),
        None,
        Probe::CheckAt {
            at: t.due,
            every: EVERY,
        },
    );
    assert_eq!(m.next_timer(), Some(t.due));
    m.state = State::Up { pid: RUN };
    assert_eq!(m.next_timer(), None);
    assert!(m.owns(RUN) && !m.owns(CHECK));
    m.state = starting_checking();
    assert!(m.owns(RUN) && m.owns(CHECK) && m.active());
    // A service with no timeout-up is reminded of every 30 s.
    let mut m = Machine::new();
    m.on(&longrun(), Event::Spawned(Prog::Run, RUN), &cx(&t));
    let mut c = longrun();
    c.policy.timeout_up = None;
    let mut m2 = Machine::new();
    m2.on(&c, Event::Spawned(Prog::Run, RUN), &cx(&t));
    assert!(
        matches!(m2.state, State::Starting { remind_at: Some(r), .. } if r == t.now + REMIND_EVERY)
    );
    assert!(matches!(
        m.state,
        State::Starting {
            remind_at: None,
            ..
        }
    ));
}

#[test]
fn a_finish_during_shutdown_is_cut_to_the_stop_deadline() {
    let t = t();
    let cut = t.now + Duration::from_millis(300);
    let c = Ctx {
        shutting_down: true,
        cut: Some(cut),
        ..cx(&t)
    };
    let mut m = Machine::new();
    m.state = State::Stopping {
        pid: RUN,
        kill_at: Some(t.later),
        then: Then::Settle,
    };
    m.on(&longrun(), Event::Exited(RUN, Exit::Signal(15)), &c);
    assert!(matches!(m.state, State::Finishing { kill_at: Some(k), .. } if k == cut));
    // Outside shutdown, `timeout-finish` alone counts.
    let mut m = Machine::new();
    m.state = State::Up { pid: RUN };
    m.on(&longrun(), Event::Exited(RUN, Exit::Code(1)), &cx(&t));
    let limit = t.now + Duration::from_secs(2);
    assert!(matches!(m.state, State::Finishing { kill_at: Some(k), .. } if k == limit));
}

#[test]
fn a_finish_cut_by_the_stop_deadline_does_not_claim_its_own_timeout() {
    // It said "did not exit within 5000 ms" of a finish killed 1 s into a 1.5 s stop.
    let t = t();
    let mut m = Machine::new();
    m.state = State::Finishing {
        pid: Some(AUX),
        kill_at: Some(t.due),
        ended: Ended::settle(Exit::Code(1)),
    };
    let c = Ctx {
        shutting_down: true,
        ..cx(&t)
    };
    let acts = m.on(&plain(), Event::Timer, &c);
    assert_eq!(
        acts,
        [
            log("svc: finish did not exit within 2000 ms or by the stop deadline; killed"),
            Sig(AUX, SIGKILL)
        ]
    );
}
