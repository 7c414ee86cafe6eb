//! The HTTP listener driven by a poll loop in a thread, with a fake supervisor behind it.

use super::*;
use crate::ctl::proto::ServiceStatus;
use nix::sys::signal::Signal;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

struct Fake(Arc<Mutex<Vec<ServiceStatus>>>);

impl Control for Fake {
    fn status(&self) -> Vec<ServiceStatus> {
        self.0.lock().unwrap().clone()
    }
    fn start(&mut self, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn stop(&mut self, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn restart(&mut self, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn kill(&mut self, _: Signal, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn shutdown(&mut self) {}
}

struct Harness {
    addr: SocketAddr,
    services: Arc<Mutex<Vec<ServiceStatus>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Harness {
    fn new(timeout: Duration) -> Harness {
        let mut http = Http::bind("127.0.0.1:0").unwrap();
        http.set_timeout(timeout);
        let addr = http.local_addr().unwrap();
        let services = Arc::new(Mutex::new(crate::ctl::proto::tests::sample()));
        let fake = Fake(services.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let mut fds = Vec::new();
                http.poll_fds(&mut fds);
                let ready = crate::ctl::poll_ready(&fds);
                drop(fds);
                http.handle(&ready, &fake);
                http.on_timer(Instant::now());
            }
        });
        Harness {
            addr,
            services,
            stop,
            thread: Some(thread),
        }
    }

    /// Sends `req` and reads the whole response: (status code, body).
    fn get(&self, req: &[u8]) -> (u16, String) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(req).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let code = out
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {out:?}"));
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        if !req.starts_with(b"HEAD") {
            assert_eq!(len, body.len(), "{out}");
        }
        (code, body.to_owned())
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

#[test]
fn probes_and_metrics() {
    let h = Harness::new(TIMEOUT);
    let get = |p: &str| {
        h.get(
            format!("GET {p} HTTP/1.1\r\nHost: x\r\nUser-Agent: kube-probe/1.31\r\n\r\n")
                .as_bytes(),
        )
    };
    assert_eq!(get("/livez"), (200, "ok\n".into()));
    assert_eq!(get("/readyz"), (200, "ready\n".into()));
    assert_eq!(get("/readyz?verbose"), (200, "ready\n".into()));
    let (code, body) = get("/metrics");
    assert_eq!(code, 200);
    assert!(
        body.contains("tend_service_up{service=\"web\"} 1"),
        "{body}"
    );
    h.services.lock().unwrap()[0].state = "backoff".into();
    assert_eq!(get("/readyz"), (503, "not ready: web (backoff)\n".into()));
    assert_eq!(get("/nope").0, 404);
    assert_eq!(h.get(b"POST /livez HTTP/1.1\r\n\r\n").0, 405);
    assert_eq!(h.get(b"GET /livez\r\n\r\n").0, 400);
    assert_eq!(h.get(b"HEAD /livez HTTP/1.0\n\n"), (200, String::new()));
    assert_eq!(h.get(&[b'x'; 4096]).0, 431);
}

#[test]
fn slowloris_and_floods_do_not_stop_livez() {
    let h = Harness::new(Duration::from_millis(500));
    // A slowloris: a byte every 50 ms, never finishing its head (connected first, so it
    // holds a slot).
    let mut slow = TcpStream::connect(h.addr).unwrap();
    // A flood: far more idle connections than slots, all held open.
    let flood: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(h.addr).unwrap())
        .collect();
    // For 2 s, well past the deadline: /livez answers promptly between the slowloris'
    // bytes, and the slowloris is cut off (writes fail once the peer reset).
    let mut cut_off = false;
    for _ in 0..40 {
        cut_off = cut_off || slow.write_all(b"G").is_err();
        let asked = Instant::now();
        assert_eq!(h.get(b"GET /livez HTTP/1.1\r\n\r\n"), (200, "ok\n".into()));
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(cut_off, "slowloris never closed");
    drop(flood);
    assert_eq!(h.get(b"GET /livez HTTP/1.1\r\n\r\n").0, 200);
}

#[test]
fn a_slow_request_is_cut_off_at_its_deadline() {
    let h = Harness::new(Duration::from_millis(500));
    let mut s = TcpStream::connect(h.addr).unwrap();
    let t0 = Instant::now();
    s.write_all(b"GET /livez HTTP/1.1\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    // No response: just the close, once the deadline has passed.
    let _ = s.read_to_end(&mut out);
    assert!(out.is_empty(), "{out:?}");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn addresses() {
    assert_eq!(parse_addr(":9090").unwrap().to_string(), "0.0.0.0:9090");
    assert_eq!(
        parse_addr("localhost:1").unwrap().to_string(),
        "127.0.0.1:1"
    );
    assert_eq!(parse_addr("[::]:9090").unwrap().to_string(), "[::]:9090");
    let e = parse_addr("example.com:80").unwrap_err();
    assert!(
        e.contains("'example.com:80'") && e.contains("HOST:PORT"),
        "{e}"
    );
}

proptest::proptest! {
    /// Whatever head arrives, the answer is one well-formed response, never a panic.
    #[test]
    fn any_request_head_gets_one_response(head in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..MAX_REQUEST)) {
        let fake = Fake(Arc::new(Mutex::new(crate::ctl::proto::tests::sample())));
        let out = answer(&head, &fake);
        proptest::prop_assert!(out.starts_with(b"HTTP/1.1 "));
        proptest::prop_assert!(memchr::memmem::find(&out, b"\r\n\r\n").is_some());
    }
}
