//! `tend ctl` (the real binary) against a fake tend speaking the control protocol.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use support::tend;

/// name → (state, pid, polls left before a requested change shows)
type State = Arc<Mutex<HashMap<String, (String, Option<i32>)>>>;

/// Serves the protocol like tend would; state changes appear only on the second status
/// poll after a request, so the client must really wait.
fn fake_tend(run: &Path, state: State) -> PathBuf {
    std::fs::create_dir_all(run).unwrap();
    let sock = run.join("control.sock");
    let _ = std::fs::remove_file(&sock);
    let l = UnixListener::bind(&sock).unwrap();
    let sock2 = sock.clone();
    std::thread::spawn(move || {
        let mut pending: Option<(String, String, Option<i32>, u32)> = None;
        for s in l.incoming() {
            let mut s = s.unwrap();
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line).unwrap();
            let words: Vec<&str> = line.split_whitespace().collect();
            let mut st = state.lock().unwrap();
            let reply = match words.as_slice() {
                ["status"] => {
                    if let Some((n, new, pid, polls)) = pending.take() {
                        if polls == 0 {
                            st.insert(n, (new, pid));
                        } else {
                            pending = Some((n, new, pid, polls - 1));
                        }
                    }
                    let mut names: Vec<_> = st.keys().cloned().collect();
                    names.sort();
                    let mut r = String::new();
                    for n in names {
                        let (state, pid) = &st[&n];
                        let pid = pid.map_or("-".into(), |p| p.to_string());
                        r += &format!(
                            "name={n} state={state} pid={pid} uptime_ms=3723000 restarts=2 last_exit=signal:9 log_bytes=1234567 dropped_bytes=0 rotations=1 kind=longrun\n"
                        );
                    }
                    r + "ok\n"
                }
                ["status", "json"] => {
                    "{\"services\":[{\"name\":\"web\",\"state\":\"up\"}]}\nok\n".into()
                }
                ["metrics"] => {
                    "# TYPE tend_service_up gauge\ntend_service_up{service=\"web\"} 1\nok\n".into()
                }
                [verb @ ("start" | "stop" | "restart"), n] if st.contains_key(*n) => {
                    let (new, pid) = match *verb {
                        "start" => ("up", Some(43)),
                        "restart" => ("up", Some(44)),
                        _ => ("down", None),
                    };
                    if n.starts_with("stuck") {
                        pending = None;
                    } else {
                        pending = Some((n.to_string(), new.into(), pid, 1));
                    }
                    "ok\n".into()
                }
                ["kill", "SIGHUP", "web"] => "ok\n".into(),
                ["shutdown"] => {
                    s.write_all(b"ok\n").unwrap();
                    std::fs::remove_file(&sock2).unwrap();
                    return;
                }
                [_, n] | [_, _, n] => format!("error no service named '{n}'\n"),
                _ => "error unknown request\n".into(),
            };
            s.write_all(reply.as_bytes()).unwrap();
        }
    });
    sock
}

fn ctl(run: &Path, args: &[&str]) -> Output {
    Command::new(tend())
        .arg("ctl")
        .arg("--run-dir")
        .arg(run)
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn setup(tag: &str) -> (PathBuf, State) {
    let run = std::env::temp_dir().join(format!("tend-ctl-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run);
    let state: State = Arc::new(Mutex::new(HashMap::new()));
    {
        let mut s = state.lock().unwrap();
        s.insert("web".into(), ("up".into(), Some(42)));
        s.insert("worker".into(), ("down".into(), None));
        s.insert("stuck".into(), ("down".into(), None));
    }
    fake_tend(&run, state.clone());
    (run, state)
}

#[test]
fn status_table_json_and_metrics() {
    let (run, _) = setup("status");
    let out = ctl(&run, &["status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    let lines: Vec<&str> = t.lines().collect();
    let head: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        head.join(" "),
        "NAME STATE PID UPTIME RESTARTS LAST-EXIT LOG DROPPED"
    );
    let web: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        web,
        [
            "web", "up", "42", "1h2m", "2", "SIGKILL", "1.2", "MiB", "0", "B"
        ]
    );
    for args in [&["status", "--json"][..], &["--json", "status"]] {
        let out = ctl(&run, args);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["services"][0]["name"], "web");
    }
    let out = ctl(&run, &["metrics"]);
    assert_eq!(
        text(&out.stdout),
        "# TYPE tend_service_up gauge\ntend_service_up{service=\"web\"} 1\n"
    );
}

#[test]
fn actions_wait_for_the_state_change() {
    let (run, state) = setup("actions");
    let out = ctl(&run, &["start", "worker"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "worker: up (pid 43)\n");
    let out = ctl(&run, &["restart", "web"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "web: up (pid 44)\n");
    let out = ctl(&run, &["stop", "web"]);
    assert_eq!(text(&out.stdout), "web: down\n");
    assert_eq!(state.lock().unwrap()["web"].0, "down");
    let out = ctl(&run, &["kill", "SIGHUP", "web"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A change that never happens: exit 1 after --timeout.
    let t0 = std::time::Instant::now();
    let out = ctl(&run, &["--timeout", "0.3", "start", "stuck"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "tend ctl: stuck did not come up within 0.3s (state: down)\n"
    );
    assert!(t0.elapsed() < std::time::Duration::from_secs(3));
    // The server's error is passed on.
    let out = ctl(&run, &["start", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "tend ctl: no service named 'nope'\n");
    // Usage errors never reach the server.
    assert_eq!(ctl(&run, &["frobnicate"]).status.code(), Some(2));
    assert_eq!(ctl(&run, &["kill", "NOPE", "web"]).status.code(), Some(2));
    assert_eq!(ctl(&run, &[]).status.code(), Some(2));
    // shutdown waits for the socket to go away.
    let out = ctl(&run, &["shutdown"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!run.join("control.sock").exists());
    let out = ctl(&run, &["status"]);
    assert_eq!(out.status.code(), Some(1));
    // Then the abstract name was tried too (nothing listens there in this test's world).
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "tend ctl: cannot reach tend at {}: No such file or directory, nor at @tend/control: ",
            run.join("control.sock").display()
        )),
        "{err}"
    );
    std::fs::remove_dir_all(&run).unwrap();
}

#[test]
fn run_dir_from_env() {
    let (run, _) = setup("env");
    let out = Command::new(tend())
        .args(["ctl", "status"])
        .env("TEND_RUN_DIR", &run)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}
