//! The server driven by a poll loop in a thread, with a fake supervisor behind it.

use super::*;
use crate::ctl::addr::Addr;
use crate::ctl::proto::{ServiceStatus, parse_status_line};
use nix::sys::signal::Signal;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

struct Fake {
    services: Vec<ServiceStatus>,
    calls: Arc<Mutex<Vec<String>>>,
}

impl Control for Fake {
    fn status(&self) -> Vec<ServiceStatus> {
        self.services.clone()
    }
    fn start(&mut self, name: &str) -> Result<(), String> {
        self.act("start", name)
    }
    fn stop(&mut self, name: &str) -> Result<(), String> {
        self.act("stop", name)
    }
    fn restart(&mut self, name: &str) -> Result<(), String> {
        self.act("restart", name)
    }
    fn kill(&mut self, signal: Signal, name: &str) -> Result<(), String> {
        self.act(signal.as_str(), name)
    }
    fn shutdown(&mut self) {
        self.calls.lock().unwrap().push("shutdown".into());
    }
}

impl Fake {
    fn act(&mut self, what: &str, name: &str) -> Result<(), String> {
        if !self.services.iter().any(|s| s.name == name) {
            return Err(format!("no service named '{name}'\nsecond line"));
        }
        self.calls.lock().unwrap().push(format!("{what} {name}"));
        Ok(())
    }
}

struct Harness {
    dir: PathBuf,
    sock: PathBuf,
    stop: Arc<AtomicBool>,
    calls: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Harness {
    fn new(tag: &str, timeout: Duration) -> Harness {
        let dir = std::env::temp_dir().join(format!("tend-srv-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = dir.join("run");
        let mut server = Server::bind(&run).unwrap();
        server.set_client_timeout(timeout);
        let Some(Addr::Path(sock)) = server.addr().cloned() else {
            panic!("bound a path")
        };
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let mut fake = Fake {
            services: crate::ctl::proto::tests::sample(),
            calls: calls.clone(),
        };
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let fds = server.poll_fds();
                let ready = crate::ctl::poll_ready(&fds);
                drop(fds);
                server.handle(&ready, &mut fake);
                server.on_timer(Instant::now());
            }
        });
        Harness {
            dir,
            sock,
            stop,
            calls,
            thread: Some(thread),
        }
    }

    fn ask(&self, req: &[u8]) -> Vec<String> {
        let mut s = UnixStream::connect(&self.sock).unwrap();
        s.write_all(req).unwrap();
        let mut out = Vec::new();
        // A reset after the reply (the server closed with our bytes unread) is tolerated:
        // the reply itself must have arrived in full.
        if let Err(e) = s.read_to_end(&mut out) {
            assert!(out.ends_with(b"\n"), "{e}: {out:?}");
        }
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        assert!(
            !self.sock.exists(),
            "socket removed when the server is dropped"
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads `s` to its end (the server closed it) as text.
fn read_all(s: &mut UnixStream) -> String {
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn status_text_and_json() {
    let h = Harness::new("status", CLIENT_TIMEOUT);
    let mode = std::fs::metadata(&h.sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let lines = h.ask(b"status\n");
    assert_eq!(lines.last().unwrap(), "ok");
    let parsed: Vec<_> = lines[..lines.len() - 1]
        .iter()
        .map(|l| parse_status_line(l).unwrap())
        .collect();
    assert_eq!(parsed[0], crate::ctl::proto::tests::sample()[0]);
    assert_eq!(parsed.len(), 2);

    let lines = h.ask(b"status json\n");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1], "ok");
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["services"][0]["name"], "web");
    assert_eq!(v["services"][1]["name"], "migrate\"db");
    // A request without a newline, then half-close, is still answered.
    let mut s = UnixStream::connect(&h.sock).unwrap();
    s.write_all(b"status json").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let out = read_all(&mut s);
    assert!(out.ends_with("\nok\n"), "{out}");
}

#[test]
fn actions_reach_the_supervisor() {
    let h = Harness::new("actions", CLIENT_TIMEOUT);
    assert_eq!(h.ask(b"start web\n"), ["ok"]);
    assert_eq!(h.ask(b"stop web\r\n"), ["ok"]);
    assert_eq!(h.ask(b"restart web\n"), ["ok"]);
    assert_eq!(h.ask(b"kill hup web\n"), ["ok"]);
    assert_eq!(h.ask(b"kill 9 web\n"), ["ok"]);
    assert_eq!(h.ask(b"shutdown\n"), ["ok"]);
    // The supervisor's multi-line message arrives as one error line.
    assert_eq!(
        h.ask(b"start nope\n"),
        ["error no service named 'nope' second line"]
    );
    assert_eq!(
        *h.calls.lock().unwrap(),
        [
            "start web",
            "stop web",
            "restart web",
            "SIGHUP web",
            "SIGKILL web",
            "shutdown"
        ]
    );
}

#[test]
fn metrics_are_prometheus_text() {
    let h = Harness::new("metrics", CLIENT_TIMEOUT);
    let lines = h.ask(b"metrics\n");
    assert_eq!(lines.last().unwrap(), "ok");
    let text = lines[..lines.len() - 1].join("\n");
    let m = crate::ctl::metrics::tests::parse_prometheus(&text);
    assert_eq!(m[&("tend_service_up".into(), "web".into())], 1.0);
    assert_eq!(m[&("tend_log_rotations_total".into(), "web".into())], 3.0);
}

#[test]
fn garbage_and_endless_lines_get_errors_and_the_server_keeps_serving() {
    let h = Harness::new("garbage", CLIENT_TIMEOUT);
    let e = h.ask(b"\xff\xfe\n");
    assert_eq!(e, ["error request is not UTF-8"]);
    let e = h.ask(b"frobnicate\n");
    assert!(
        e.len() == 1 && e[0].starts_with("error unknown request 'frobnicate'"),
        "{e:?}"
    );
    let e = h.ask(b"\n");
    assert_eq!(e, ["error empty request"]);
    let e = h.ask(b"kill NOPE web\n");
    assert!(e[0].starts_with("error 'NOPE' is not a signal"), "{e:?}");
    // An endless line: cut at 4096 bytes with an error, connection closed.
    let mut s = UnixStream::connect(&h.sock).unwrap();
    let junk = vec![b'x'; 100_000];
    // The server closes after 4097 bytes, so the write may fail part-way: that is fine.
    let _ = s.write_all(&junk);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        String::from_utf8_lossy(&out).starts_with("error request longer than 4096 bytes"),
        "{out:?}"
    );
    // A request of exactly 4096 bytes is still read as a request.
    let mut req = b"status".to_vec();
    req.resize(4096, b' ');
    req.push(b'\n');
    assert_eq!(h.ask(&req).last().unwrap(), "ok");
    assert_eq!(h.ask(b"status\n").last().unwrap(), "ok");
}

#[test]
fn silent_clients_are_dropped_and_do_not_block_others() {
    let h = Harness::new("silent", Duration::from_millis(300));
    let mut silent = UnixStream::connect(&h.sock).unwrap();
    let t0 = Instant::now();
    // Others are served at once while the silent client holds its connection.
    for _ in 0..5 {
        assert_eq!(h.ask(b"status\n").last().unwrap(), "ok");
    }
    assert!(t0.elapsed() < Duration::from_millis(300));
    let out = read_all(&mut silent);
    assert_eq!(out, "error timed out waiting for a request\n");
    assert!(t0.elapsed() >= Duration::from_millis(300));
    // A client that sends part of a line then stalls is dropped the same way.
    let mut half = UnixStream::connect(&h.sock).unwrap();
    half.write_all(b"sta").unwrap();
    let out = read_all(&mut half);
    assert!(out.starts_with("error timed out"), "{out}");
}

#[test]
fn idle_clients_beyond_the_cap_evict_the_oldest_and_others_are_served() {
    // Regression: 40 idle connections used to get every later request refused with "too
    // many connections" until they timed out.
    let h = Harness::new("many", Duration::from_secs(30));
    let mut held: Vec<UnixStream> = (0..MAX_CLIENTS + 8)
        .map(|_| UnixStream::connect(&h.sock).unwrap())
        .collect();
    // Make sure the server has accepted them all before the requests.
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    for _ in 0..5 {
        assert_eq!(h.ask(b"status\n").last().unwrap(), "ok");
    }
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // The oldest idle ones were told why they were closed; the newest are still held.
    held[0]
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let out = read_all(&mut held[0]);
    assert!(out.starts_with("error too many connections"), "{out}");
    let last = held.last_mut().unwrap();
    last.write_all(b"status\n").unwrap();
    let out = read_all(last);
    assert!(out.ends_with("ok\n"), "{out}");
}

#[test]
fn abstract_socket_serves_like_the_path() {
    let name = format!("tend-test/{}/abstract", std::process::id());
    let server = Server::bind_abstract(&name).unwrap();
    assert_eq!(server.addr(), Some(&Addr::Abstract(name.clone())));
    assert!(
        Server::bind_abstract(&name)
            .err()
            .unwrap()
            .contains("in use"),
        "a second listener on the same name is refused"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let t = std::thread::spawn(move || {
        let mut server = server;
        let mut fake = Fake {
            services: crate::ctl::proto::tests::sample(),
            calls: Arc::new(Mutex::new(Vec::new())),
        };
        while !stop2.load(Ordering::Relaxed) {
            let fds: Vec<RawFd> = server
                .poll_fds()
                .iter()
                .map(|(fd, _)| fd.as_raw_fd())
                .collect();
            std::thread::sleep(Duration::from_millis(10));
            server.handle(&fds, &mut fake);
        }
    });
    let mut s = Addr::Abstract(name.clone()).connect().unwrap();
    s.write_all(b"status\n").unwrap();
    let out = read_all(&mut s);
    assert!(
        out.starts_with("name=web ") && out.ends_with("ok\n"),
        "{out}"
    );
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    // The name is gone with the listener.
    assert!(Addr::Abstract(name).connect().is_err());
}

#[test]
fn stale_socket_is_replaced_live_one_is_refused() {
    let dir = std::env::temp_dir().join(format!("tend-srv-stale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A socket left by a dead process: bound, then its listener dropped.
    drop(UnixListener::bind(dir.join("control.sock")).unwrap());
    let live = Server::bind(&dir).unwrap();
    let e = Server::bind(&dir).err().unwrap();
    assert!(e.contains("already listening"), "{e}");
    drop(live);
    std::fs::write(dir.join("control.sock"), "x").unwrap();
    let e = Server::bind(&dir).err().unwrap();
    assert!(e.contains("not a socket"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Helper run as `nobody` by `other_uids_are_refused`: connects and prints the reply.
#[test]
#[ignore = "run by other_uids_are_refused under setpriv"]
fn nobody_client_helper() {
    let Ok(path) = std::env::var("TEND_TEST_CONNECT") else {
        return;
    };
    let mut s = UnixStream::connect(path).unwrap();
    let _ = s.write_all(b"status\n");
    // The server closes right after refusing, so a reset may follow the reply line.
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    println!("REPLY:{}", String::from_utf8_lossy(&out));
}

#[test]
fn other_uids_are_refused() {
    if !nix::unistd::geteuid().is_root() || which("setpriv").is_none() {
        eprintln!("skipped: needs root and setpriv");
        return;
    }
    let h = Harness::new("perm", CLIENT_TIMEOUT);
    // The 0600 mode already keeps nobody out; open it up to reach the SO_PEERCRED check,
    // the second line of defence (e.g. a run dir shared with a too-wide mode).
    std::fs::set_permissions(&h.sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(&h.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args([
            "--exact",
            "ctl::server::tests::nobody_client_helper",
            "--ignored",
            "--nocapture",
        ])
        .env("TEND_TEST_CONNECT", &h.sock)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("REPLY:error permission denied\n"),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Root (our uid) is still served.
    assert_eq!(h.ask(b"status\n").last().unwrap(), "ok");
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.exists())
}

#[test]
fn eof_before_any_byte_gets_an_error_line() {
    // Found by fuzzing: a client that half-closed without sending got no final line.
    let h = Harness::new("eof", CLIENT_TIMEOUT);
    assert_eq!(send_raw(&h.sock, b""), ["error empty request"]);
}

/// Bounded fuzzing (see src/fuzz_tests.rs): arbitrary byte streams from a client, through
/// the real server and poll loop. Every connection ends with a reply whose final line is
/// `ok` or `error …`, whatever was sent; a 1 MiB request gets an error, not a buffer.
#[test]
fn fuzz_arbitrary_client_bytes_get_one_final_answer() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let base = Config::default();
    let mut runner = TestRunner::new(Config {
        cases: (base.cases / 4).max(16),
        failure_persistence: None,
        ..base
    });
    let h = Harness::new("fuzz", Duration::from_millis(500));
    let word = prop_oneof![
        proptest::sample::select(vec![
            &b"status"[..],
            b"status json",
            b"metrics",
            b"start web",
            b"stop nosuch",
            b"kill 9 web",
            b"kill NOPE web",
            b"restart \xff",
            b" ",
            b"\n",
            b"\r\n",
            b"\0",
        ])
        .prop_map(<[u8]>::to_vec),
        proptest::collection::vec(any::<u8>(), 0..32),
        (0usize..3).prop_map(|n| vec![b'x'; [4095, 4097, 1 << 20][n]]),
    ];
    let input = proptest::collection::vec(word, 0..4).prop_map(|w| w.concat());
    runner
        .run(&input, |bytes| {
            let lines = send_raw(&h.sock, &bytes);
            let last = lines.last().map(String::as_str).unwrap_or("");
            prop_assert!(
                last == "ok" || last.starts_with("error "),
                "final line {last:?} for {} bytes",
                bytes.len()
            );
            if bytes.len() > MAX_REQUEST + 1 && !bytes[..=MAX_REQUEST].contains(&b'\n') {
                prop_assert!(last.starts_with("error request longer than"), "{last:?}");
            }
            Ok(())
        })
        .unwrap();
    // `shutdown` is the only request the fake records without a service; none of the
    // inputs above spell it, so the fake saw only starts/stops/kills of real services.
    assert!(!h.calls.lock().unwrap().iter().any(|c| c == "shutdown"));
}

/// Writes `bytes` from a second thread (the server may close before taking them all) and
/// reads the whole reply: its lines, lossily decoded.
fn send_raw(sock: &Path, bytes: &[u8]) -> Vec<String> {
    let mut s = UnixStream::connect(sock).unwrap();
    let mut w = s.try_clone().unwrap();
    let bytes = bytes.to_vec();
    let writer = std::thread::spawn(move || {
        // EPIPE/ECONNRESET once the server answered and closed are expected.
        if w.write_all(&bytes).is_ok() {
            let _ = w.shutdown(std::net::Shutdown::Write);
        }
    });
    let mut out = Vec::new();
    // A reset after the reply is tolerated, as in `ask`.
    let _ = s.read_to_end(&mut out);
    let _ = s.shutdown(std::net::Shutdown::Both);
    writer.join().unwrap();
    String::from_utf8_lossy(&out)
        .lines()
        .map(str::to_owned)
        .collect()
}
