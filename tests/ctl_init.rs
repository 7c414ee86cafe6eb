//! `tend ctl` against a real `tend init` (PID 1 in a namespace) running three services.

mod support;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use support::*;

struct Running {
    t: Tree,
    child: Child,
    pid: i32,
}

impl Running {
    fn start(tag: &str, extra: &[&str]) -> Running {
        let t = Tree::new(tag);
        for n in ["alpha", "beta", "gamma"] {
            t.longrun(n, &format!("trap 'echo USR1 >> $OUT/{n}.sig' USR1\ntrap 'exit 0' TERM\necho {n} up\nwhile :; do sleep 0.05; done"));
        }
        t.dep("gamma", "beta");
        let mut args: Vec<String> = vec![];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut cmd = t.init(&[]);
        cmd.args(&args).stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().unwrap();
        let pid = tend_pid_under(&child);
        let r = Running { t, child, pid };
        assert!(
            wait_for(Duration::from_secs(20), || r
                .ctl(&["status"])
                .stdout
                .split(|&b| b == b'\n')
                .filter(|l| l.windows(4).any(|w| w == b" up "))
                .count()
                == 3),
            "services did not come up: {}",
            String::from_utf8_lossy(&r.ctl(&["status"]).stdout)
        );
        r
    }
    fn run_dir(&self) -> std::path::PathBuf {
        self.t.tmp.join("run")
    }
    fn ctl(&self, args: &[&str]) -> Output {
        let mut c = plain(&["ctl"]);
        c.args(args).env("TEND_RUN_DIR", self.run_dir());
        output_within(c, Duration::from_secs(30))
    }
    fn json(&self) -> serde_json::Value {
        let out = self.ctl(&["status", "--json"]);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
    fn svc(&self, name: &str) -> serde_json::Value {
        self.json()["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        term_and_reap(&mut self.child, self.pid);
    }
}

#[test]
fn status_text_and_json_show_every_service() {
    let r = Running::start("ctl-status", &[]);
    let out = r.ctl(&["status"]);
    assert_eq!(code(out.status), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("STATE") && lines[0].contains("RESTARTS"),
        "{text}"
    );
    let names: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta", "gamma"]);
    let v = r.json();
    let svcs = v["services"].as_array().unwrap();
    assert_eq!(svcs.len(), 3);
    for s in svcs {
        assert_eq!(s["state"], "up");
        assert_eq!(s["kind"], "longrun");
        assert!(s["pid"].as_i64().unwrap() > 1);
        assert_eq!(s["restarts"], 0);
        assert!(
            s["log_bytes"].as_u64().unwrap() > 0,
            "each wrote one line: {s}"
        );
    }
}

#[test]
fn restart_stop_start_and_kill() {
    let r = Running::start("ctl-actions", &[]);
    let before = r.svc("beta");
    let out = r.ctl(&["restart", "beta"]);
    assert_eq!(
        code(out.status),
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = r.svc("beta");
    assert_eq!(after["restarts"], 1);
    assert_ne!(after["pid"], before["pid"]);
    assert_eq!(after["state"], "up");

    assert_eq!(code(r.ctl(&["stop", "alpha"]).status), 0);
    assert_eq!(r.svc("alpha")["state"], "down");
    assert_eq!(r.svc("alpha")["pid"], serde_json::Value::Null);
    assert_eq!(code(r.ctl(&["start", "alpha"]).status), 0);
    assert_eq!(r.svc("alpha")["state"], "up");

    assert_eq!(code(r.ctl(&["kill", "USR1", "gamma"]).status), 0);
    let sig = r.t.out().join("gamma.sig");
    assert!(
        wait_for(Duration::from_secs(5), || read(&sig) == "USR1\n"),
        "USR1 did not arrive"
    );

    let out = r.ctl(&["restart", "nosuch"]);
    assert_ne!(code(out.status), 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service named 'nosuch'"));
}

#[test]
fn other_uids_are_refused() {
    let r = Running::start("ctl-uid", &[]);
    // The socket is 0600 and its directory is ours; let nobody reach the socket itself so
    // the SO_PEERCRED check, not the file mode, is what refuses.
    let sock = r.run_dir().join("control.sock");
    for p in [r.t.tmp.path().to_path_buf(), r.run_dir(), sock.clone()] {
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    }
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        tend(),
        "ctl",
        "status",
    ]);
    c.env("TEND_RUN_DIR", r.run_dir());
    let out = output_within(c, Duration::from_secs(30));
    assert_ne!(code(out.status), 0);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(code(r.ctl(&["status"]).status), 0, "root is still served");
}

#[test]
fn hostile_clients_do_not_disturb_pid1() {
    let r = Running::start("ctl-hostile", &[]);
    let sock = r.run_dir().join("control.sock");
    // A client that connects and never speaks, one that sends garbage, one an endless line.
    let _silent = UnixStream::connect(&sock).unwrap();
    let mut garbage = UnixStream::connect(&sock).unwrap();
    garbage.write_all(b"\xff\xfe please\n").unwrap();
    let mut reply = String::new();
    garbage.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("error "), "{reply}");
    let mut endless = UnixStream::connect(&sock).unwrap();
    let _ = endless.write_all(&vec![b'x'; 64 * 1024]);
    let mut reply = String::new();
    let _ = endless.read_to_string(&mut reply);
    assert!(reply.starts_with("error "), "{reply}");
    // PID 1 still serves others and still reaps: make an orphan that exits at once.
    assert_eq!(code(r.ctl(&["kill", "USR1", "alpha"]).status), 0);
    let out = r.ctl(&["status"]);
    assert_eq!(code(out.status), 0);
    let zombies = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|s| s.contains(") Z ") && s.split_whitespace().nth(3) == Some(&r.pid.to_string()))
        .count();
    assert_eq!(zombies, 0, "tend left zombies while clients misbehaved");
}

#[test]
fn metrics_file_is_prometheus_text_and_updates() {
    let t_dir = TempDir::new("metrics-path");
    let path = t_dir.join("tend.prom");
    let r = Running::start("ctl-metrics", &["--metrics-file", path.to_str().unwrap()]);
    assert!(wait_for(Duration::from_secs(5), || path.exists()));
    assert_eq!(code(r.ctl(&["restart", "alpha"]).status), 0);
    // The file is rewritten every 10 s; the restart shows up in the next rewrite.
    let restarted = |text: &str| text.contains("tend_service_restarts_total{service=\"alpha\"} 1");
    assert!(
        wait_for(Duration::from_secs(15), || restarted(&read(&path))),
        "{}",
        read(&path)
    );
    let text = read(&path);
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split(' ');
            typed.insert(w.next().unwrap().to_owned());
            assert!(matches!(w.next(), Some("gauge" | "counter")), "{line}");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        // name{service="x"} value
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(typed.contains(name), "sample before its TYPE: {line}");
        assert!(
            series.ends_with("\"}") && series.contains("{service=\""),
            "{line}"
        );
    }
    for m in [
        "tend_service_up",
        "tend_service_restarts_total",
        "tend_log_bytes_total",
        "tend_log_dropped_bytes_total",
        "tend_log_rotations_total",
    ] {
        assert!(typed.contains(m), "{m} missing");
    }
}

#[test]
fn a_disabled_service_waits_for_ctl_start() {
    let t = Tree::new("ctl-disabled");
    t.longrun(
        "later",
        "touch $OUT/later.ran; trap 'exit 0' TERM; while :; do sleep 0.05; done",
    );
    t.file("later", "disabled", "", false);
    t.longrun("now", "trap 'exit 0' TERM; while :; do sleep 0.05; done");
    let (child, pid) = t.spawn_init();
    let r = Running { t, child, pid };
    // Until the socket is bound, `status --json` prints nothing; ask only once it answers.
    assert!(wait_for(Duration::from_secs(20), || code(
        r.ctl(&["status"]).status
    ) == 0));
    assert!(wait_for(Duration::from_secs(20), || r.svc("now")["state"] == "up"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(r.svc("later")["state"], "down");
    assert!(
        !r.t.out().join("later.ran").exists(),
        "a disabled service ran"
    );
    let out = r.ctl(&["start", "later"]);
    assert_eq!(
        code(out.status),
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r.svc("later")["state"], "up");
    assert!(wait_for(Duration::from_secs(5), || r
        .t
        .out()
        .join("later.ran")
        .exists()));
}

#[test]
fn rotate_one_service_or_all() {
    let r = Running::start("ctl-rotate", &[]);
    let archives = |n: &str| {
        std::fs::read_dir(r.t.log_dir(n))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('@')
            })
            .count()
    };
    // Each service wrote "NAME up" into its `current`.
    let out = r.ctl(&["rotate", "alpha"]);
    assert_eq!(
        code(out.status),
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(wait_for(Duration::from_secs(10), || archives("alpha") == 1));
    assert_eq!((archives("beta"), archives("gamma")), (0, 0));
    assert_eq!(r.svc("alpha")["rotations"], 1);
    let out = r.ctl(&["rotate", "all"]);
    assert_eq!(code(out.status), 0);
    assert!(wait_for(Duration::from_secs(10), || archives("beta") == 1
        && archives("gamma") == 1));
    // alpha's `current` is empty since its rotation: nothing to rotate.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(archives("alpha"), 1);
    let out = r.ctl(&["rotate", "nosuch"]);
    assert_ne!(code(out.status), 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service named 'nosuch'"));
}
