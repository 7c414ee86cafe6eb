//! Issue 15: control that always works and probes without a shell, against a real
//! `tend init` as PID 1: the abstract socket fallback, idle clients, `tend ctl ready` and
//! `status NAME`, and the `--metrics-addr` HTTP listener.

mod support;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// `tend init` as PID 1 of new PID (and, with `net`, network) namespaces.
struct Init {
    t: Tree,
    child: Child,
    pid: i32,
    net: bool,
    /// `tend ctl` enters tend's PID namespace too.
    ctl_pidns: bool,
    run_dir: PathBuf,
}

impl Init {
    fn start(t: Tree, net: bool, run_dir: PathBuf, extra: &[&str]) -> Init {
        Init::start_in(t, None, net, run_dir, extra)
    }

    /// With `join`, tend enters the network namespace of that pid instead of a new one.
    fn start_in(t: Tree, join: Option<i32>, net: bool, run_dir: PathBuf, extra: &[&str]) -> Init {
        let mut c = match join {
            Some(pid) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/proc/{pid}/ns/net")).arg("unshare");
                c
            }
            None => Command::new("unshare"),
        };
        if net && join.is_none() {
            c.arg("--net");
        }
        let services = t.tmp.join("services");
        let logs = t.tmp.join("logs");
        c.args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            tend(),
            "init",
            "--services",
        ])
        .arg(&services)
        .arg("--log-root")
        .arg(&logs)
        .args(extra)
        .env("TEND_NAMESPACE", "ns")
        .env("TEND_APP", "app")
        .env("TEND_POD", "pod")
        .env("OUT", t.out())
        .env("TEND_RUN_DIR", &run_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(t.tmp.join("stderr")).unwrap());
        let child = c.spawn().unwrap();
        let pid = tend_pid_under(&child);
        Init {
            t,
            child,
            pid,
            net,
            ctl_pidns: false,
            run_dir,
        }
    }

    /// `tend ctl ARGS` from inside tend's network namespace when it has its own.
    fn ctl(&self, args: &[&str]) -> Output {
        let mut c = if self.net {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/proc/{}/ns/net", self.pid));
            if self.ctl_pidns {
                c.arg(format!("--pid=/proc/{}/ns/pid", self.pid));
            }
            c.arg(tend()).arg("ctl");
            c
        } else {
            plain(&["ctl"])
        };
        c.args(args).env("TEND_RUN_DIR", &self.run_dir);
        c.stdin(Stdio::null());
        output_within(c, Duration::from_secs(30))
    }

    fn stderr(&self) -> String {
        read(&self.t.tmp.join("stderr"))
    }

    /// Asserts that `tend ctl status SVC` answers (exit 0) within 20 s.
    fn wait_answers(&self, svc: &str) {
        assert!(
            wait_for(Duration::from_secs(20), || code(
                self.ctl(&["status", svc]).status
            ) == 0),
            "ctl status {svc}: {}\ntend: {}",
            text(&self.ctl(&["status", svc]).stderr),
            self.stderr()
        );
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        term_and_reap(&mut self.child, self.pid);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A run directory of `t` that cannot be created: its parent is a regular file.
fn uncreatable_run_dir(t: &Tree) -> std::path::PathBuf {
    std::fs::write(t.tmp.join("file"), "").unwrap();
    t.tmp.join("file/run")
}

/// alpha: up at once; beta: disabled; gamma: ready once `$OUT/gamma.ok` exists.
fn tree(tag: &str) -> Tree {
    let t = Tree::new(tag);
    let idle = "trap 'exit 0' TERM; while :; do sleep 0.05; done";
    t.longrun("alpha", idle);
    t.longrun("beta", idle);
    t.file("beta", "disabled", "", false);
    t.longrun("gamma", idle);
    t.file(
        "gamma",
        "check",
        "#!/bin/sh\ntest -e \"$OUT/gamma.ok\"\n",
        true,
    );
    t
}

#[test]
fn unwritable_run_dir_falls_back_to_the_abstract_socket_and_ready_reports() {
    let t = tree("abstract");
    let run_dir = uncreatable_run_dir(&t);
    // Its own network namespace: abstract names are per network namespace, so this tend
    // cannot meet another test's.
    let r = Init::start(t, true, run_dir, &[]);
    r.wait_answers("alpha");
    assert!(
        r.stderr().contains("listening on @tend/control instead"),
        "{}",
        r.stderr()
    );
    let out = r.ctl(&["status", "alpha"]);
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[1].starts_with("alpha ") && lines[1].contains(" up "),
        "{lines:?}"
    );

    // gamma is not ready yet; beta is disabled so only counts when named.
    let out = r.ctl(&["ready"]);
    assert_eq!(code(out.status), 1);
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not ready: gamma (starting)"), "{err}");
    assert_eq!(code(r.ctl(&["status", "gamma"]).status), 1);
    assert_eq!(code(r.ctl(&["ready", "alpha"]).status), 0);
    let out = r.ctl(&["ready", "alpha", "beta"]);
    assert_eq!(code(out.status), 1);
    assert!(
        text(&out.stderr).contains("not ready: beta (down)"),
        "{}",
        text(&out.stderr)
    );
    let out = r.ctl(&["ready", "nosuch"]);
    assert_eq!(code(out.status), 1);
    assert!(text(&out.stderr).contains("no service named 'nosuch'"));

    std::fs::write(r.t.out().join("gamma.ok"), "").unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || code(r.ctl(&["ready"]).status)
            == 0),
        "{}",
        text(&r.ctl(&["ready"]).stderr)
    );
    assert_eq!(code(r.ctl(&["status", "gamma"]).status), 0);
    let out = r.ctl(&["status", "gamma", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["services"][0]["state"], "ready");
    // Actions work over the abstract socket too.
    assert_eq!(code(r.ctl(&["stop", "alpha"]).status), 0);
    assert_eq!(
        code(r.ctl(&["ready"]).status),
        0,
        "a stopped service is not wanted"
    );
    assert_eq!(code(r.ctl(&["ready", "alpha"]).status), 1);
}

#[test]
fn forty_idle_connections_do_not_lock_out_ctl_status() {
    let t = tree("idle");
    let run_dir = t.tmp.join("run");
    let r = Init::start(t, false, run_dir.clone(), &[]);
    assert!(wait_for(Duration::from_secs(20), || code(
        r.ctl(&["status"]).status
    ) == 0));
    let sock = run_dir.join("control.sock");
    let _idle: Vec<UnixStream> = (0..40)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        let t0 = Instant::now();
        let out = r.ctl(&["status"]);
        assert_eq!(code(out.status), 0, "{}", text(&out.stderr));
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    }
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP request: (status code, body); panics on anything but a full response.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: probe\r\nUser-Agent: kube-probe/1.31\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out[9..12].parse().unwrap_or_else(|_| panic!("{out:?}"));
    let body = out.split_once("\r\n\r\n").unwrap().1.to_owned();
    (code, body)
}

#[test]
fn metrics_addr_serves_probes_and_survives_hostile_clients() {
    let t = tree("http");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let run_dir = t.tmp.join("run");
    let r = Init::start(t, false, run_dir, &["--metrics-addr", &addr.to_string()]);
    assert!(
        wait_for(Duration::from_secs(20), || TcpStream::connect(addr).is_ok()),
        "{}",
        r.stderr()
    );
    assert_eq!(get(addr, "/livez"), (200, "ok\n".into()));
    assert!(wait_for(Duration::from_secs(20), || get(addr, "/metrics")
        .1
        .contains("tend_service_up{service=\"alpha\"} 1")));
    assert_eq!(
        get(addr, "/readyz"),
        (503, "not ready: gamma (starting)\n".into())
    );
    std::fs::write(r.t.out().join("gamma.ok"), "").unwrap();
    assert!(wait_for(Duration::from_secs(20), || get(addr, "/readyz").0 == 200));

    // A slowloris and a flood of silent connections: /livez and tend ctl still answer.
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(6) {
            if s.write_all(b"G").is_err() {
                return Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    });
    let _flood: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    for _ in 0..10 {
        let t0 = Instant::now();
        assert_eq!(get(addr, "/livez"), (200, "ok\n".into()));
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    }
    assert_eq!(code(r.ctl(&["status"]).status), 0);
    let cut = slow.join().unwrap();
    assert!(cut.is_some(), "the slowloris was never cut off");
}

#[test]
fn run_serves_metrics_addr_and_bad_addresses_exit_111() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let tmp = TempDir::new("run-http");
    let mut c = pid1(&[
        "run",
        "--log-root",
        tmp.path().to_str().unwrap(),
        "--",
        "sleep",
        "30",
    ]);
    c.env("TEND_METRICS_ADDR", addr.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let pid = tend_pid_under(&child);
    assert!(wait_for(Duration::from_secs(20), || TcpStream::connect(
        addr
    )
    .is_ok()));
    assert_eq!(get(addr, "/readyz"), (200, "ready\n".into()));
    assert!(
        get(addr, "/metrics")
            .1
            .contains("tend_service_up{service=\"main\"} 1")
    );
    signal(pid, "TERM");
    let _ = child.wait();

    let out = output_within(
        plain(&["init", "--metrics-addr", "nowhere", "--", "true"]),
        Duration::from_secs(30),
    );
    assert_eq!(code(out.status), 111);
    let err = text(&out.stderr);
    assert!(
        err.contains("--metrics-addr") && err.contains("'nowhere'"),
        "{err}"
    );
}

#[test]
fn two_tends_in_one_network_namespace_each_answer_their_own_ctl() {
    // Like two containers of a pod: one network namespace, two PID namespaces, both roots
    // read-only. The first takes @tend/control, the second its PID namespace's name, and
    // `tend ctl` in each PID namespace reaches its own tend.
    let ta = tree("pod-a");
    let run_a = uncreatable_run_dir(&ta);
    let a = Init::start(ta, true, run_a, &[]);
    a.wait_answers("alpha");
    let tb = Tree::new("pod-b");
    tb.longrun("bravo", "trap 'exit 0' TERM; while :; do sleep 0.05; done");
    let run_b = uncreatable_run_dir(&tb);
    let mut b = Init::start_in(tb, Some(a.pid), true, run_b, &[]);
    b.ctl_pidns = true;
    b.wait_answers("bravo");
    assert!(
        b.stderr().contains("listening on @tend/control/"),
        "{}",
        b.stderr()
    );
    let only = |r: &Init| -> Vec<String> {
        text(&r.ctl(&["status"]).stdout)
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(only(&b), ["bravo"]);
    assert_eq!(only(&a), ["alpha", "beta", "gamma"]);
}
