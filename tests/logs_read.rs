//! `tend logs` against log directories written by hand in the documented on-disk format.

mod support;

use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use support::{TempDir, mkfifo, tend};

/// Record i's time: 2026-11-22T21:50:00Z plus i minutes (and i microseconds, so the
/// fractional part is exercised).
fn time(i: usize) -> String {
    let m = 50 + i;
    format!(
        "2026-11-22T{:02}:{:02}:00.{:06}123Z",
        21 + m / 60,
        m % 60,
        i
    )
}

fn stream(i: usize) -> &'static str {
    if i.is_multiple_of(2) {
        "stdout"
    } else {
        "stderr"
    }
}

fn cri(range: std::ops::Range<usize>) -> String {
    range
        .map(|i| format!("{} {} F line {i}\n", time(i), stream(i)))
        .collect()
}

fn json(range: std::ops::Range<usize>) -> String {
    range
        .map(|i| {
            format!(
                "{{\"log\":\"line {i} \\\"time\\\":\\\"1999\\\" \\\"stream\\\":\\\"stderr\\\"\\n\",\"stream\":\"{}\",\"time\":\"{}\"}}\n",
                stream(i),
                time(i)
            )
        })
        .collect()
}

fn gz(path: &Path, text: &str) {
    let mut e = GzEncoder::new(std::fs::File::create(path).unwrap(), Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap();
}

/// Archives @22:00 (gz: 0..10), @22:10 (.log and .log.gz: 10..20), @22:20 (.log: 20..30),
/// current 30..40 plus a record still being written (no newline yet).
fn populate(dir: &Path, render: fn(std::ops::Range<usize>) -> String) {
    gz(
        &dir.join("@20261122T220000.000000000Z.log.gz"),
        &render(0..10),
    );
    std::fs::write(dir.join("@20261122T221000.000000000Z.log"), render(10..20)).unwrap();
    gz(
        &dir.join("@20261122T221000.000000000Z.log.gz"),
        &render(10..20),
    );
    std::fs::write(dir.join("@20261122T222000.000000000Z.log"), render(20..30)).unwrap();
    let mut cur = render(30..40);
    cur.push_str(&render(40..41)[..20]);
    std::fs::write(dir.join("current"), cur).unwrap();
    std::fs::write(dir.join("lock"), "").unwrap();
    std::fs::write(dir.join("@20261122T223000.000000000Z.log.gz.tmp"), "junk").unwrap();
}

fn logs(args: &[&str], dir: &Path) -> Output {
    Command::new(tend())
        .arg("logs")
        .args(args)
        .arg(dir)
        .output()
        .unwrap()
}

/// The record numbers printed, checking every line is a whole record of the fixture.
fn seqs(out: &Output) -> Vec<usize> {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| {
            let p = l
                .find("line ")
                .unwrap_or_else(|| panic!("not a record: {l:?}"));
            let n: usize = l[p + 5..]
                .split([' ', '\\'])
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let want = if l.starts_with('{') {
                json(n..n + 1)
            } else {
                cri(n..n + 1)
            };
            assert_eq!(format!("{l}\n"), want, "record printed as stored");
            n
        })
        .collect()
}

fn check_common(dir: &Path) {
    let all: Vec<usize> = (0..40).collect();
    assert_eq!(
        seqs(&logs(&[], dir)),
        all,
        "archives in order, gz read, duplicate .log skipped, partial held"
    );
    assert_eq!(seqs(&logs(&["-n", "5"], dir)), (35..40).collect::<Vec<_>>());
    assert_eq!(
        seqs(&logs(&["-n", "15"], dir)),
        (25..40).collect::<Vec<_>>()
    );
    assert_eq!(seqs(&logs(&["-n", "1000"], dir)), all);
    assert_eq!(seqs(&logs(&["-n", "0"], dir)), Vec::<usize>::new());
    // Exactly at a record's time: that record is included, the one before is not.
    assert_eq!(
        seqs(&logs(&["--since", &time(25)], dir)),
        (25..40).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(&logs(&["--since", "2026-11-22T22:15:00.000025124Z"], dir)),
        (26..40).collect::<Vec<_>>()
    );
    // An offset form of the same instant.
    assert_eq!(
        seqs(&logs(
            &["--since", "2026-11-22T23:15:00.000025123+01:00"],
            dir
        )),
        (25..40).collect::<Vec<_>>()
    );
    assert_eq!(seqs(&logs(&["--since", "2026-11-22T21:00:00Z"], dir)), all);
    assert_eq!(
        seqs(&logs(&["--since", "2027-01-01T00:00:00Z"], dir)),
        Vec::<usize>::new()
    );
    // A duration ago: everything in the fixture is long past.
    assert_eq!(seqs(&logs(&["--since", "10m"], dir)), Vec::<usize>::new());
    let odd: Vec<usize> = (0..40).filter(|i| i % 2 == 1).collect();
    assert_eq!(seqs(&logs(&["--stream", "stderr"], dir)), odd);
    assert_eq!(
        seqs(&logs(
            &["--stream", "stdout", "-n", "3", "--since", &time(30)],
            dir
        )),
        [34, 36, 38]
    );
}

#[test]
fn cri_and_json_directories() {
    for render in [cri, json] {
        let tmp = TempDir::new("logs-read");
        populate(tmp.path(), render);
        check_common(tmp.path());
    }
}

#[test]
fn since_skips_archives_by_name() {
    // A corrupt archive older than --since is never opened.
    let tmp = TempDir::new("logs-skip");
    let dir = tmp.path().to_path_buf();
    populate(&dir, cri);
    std::fs::write(dir.join("@20261122T220000.000000000Z.log.gz"), "not gzip").unwrap();
    assert_eq!(
        seqs(&logs(&["--since", &time(12)], &dir)),
        (12..40).collect::<Vec<_>>()
    );
    let out = logs(&[], &dir);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn plain_and_errors() {
    let tmp = TempDir::new("logs-plain");
    let dir = tmp.path().to_path_buf();
    std::fs::write(dir.join("@20261122T220000.000000000Z.log"), "one\ntwo\n").unwrap();
    std::fs::write(dir.join("current"), "three\n").unwrap();
    let out = logs(&[], &dir);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\nthree\n");
    let out = logs(&["--since", "1h"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("tend logs: --since needs timestamped records") && err.contains("plain"),
        "{err}"
    );
    let out = logs(&["--stream", "stdout"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let out = logs(&["--stream", "stdin"], &dir);
    assert_eq!(out.status.code(), Some(2));
    let out = logs(&["--since", "yesterday"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'yesterday'"));

    let missing = dir.join("nope");
    let out = logs(&[], &missing);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "tend logs: no log directory at {} (No such file or directory)\n",
            missing.display()
        )
    );
    // An empty directory (the writer has not started yet) prints nothing.
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = logs(&["--since", "1h"], &empty);
    assert!(out.status.success() && out.stdout.is_empty());
}

#[test]
fn symlinks_are_not_followed() {
    let tmp = TempDir::new("logs-symlink");
    let dir = tmp.path().to_path_buf();
    std::fs::write(dir.join("secret"), "secret\n").unwrap();
    std::os::unix::fs::symlink(dir.join("secret"), dir.join("current")).unwrap();
    let out = logs(&[], &dir);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("secret"));
}

#[test]
fn service_name_resolves_under_the_log_root() {
    let tmp = TempDir::new("logs-root");
    let root = tmp.path().to_path_buf();
    let dir = root.join("ns1").join("app1").join("pod1").join("web");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("current"), cri(0..2)).unwrap();
    let run = |args: &[&str]| {
        Command::new(tend())
            .arg("logs")
            .args(args)
            .env("TEND_NAMESPACE", "ns1")
            .env("TEND_APP", "app1")
            .env("TEND_POD", "pod1")
            .env("TEND_LOG_ROOT", &root)
            .output()
            .unwrap()
    };
    // Names are path components, never paths in disguise.
    let out = run(&[".."]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a service name"));
    let out = run(&["web"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(seqs(&out), [0, 1], "{err}");
    let out = run(&["--log-root", "/nonexistent", "web"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ns1/app1/pod1/web"));
}

/// Runs `tend logs ARGS DIR`, killing it after `secs`: `None` if it had not finished.
fn logs_within(args: &[&str], dir: &Path, secs: u64) -> Option<Output> {
    let child = Command::new(tend())
        .arg("logs")
        .args(args)
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(out) => Some(out),
        Err(_) => {
            // SAFETY: plain kill(2) of the child we started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            None
        }
    }
}

#[test]
fn a_fifo_named_like_an_archive_is_skipped_not_opened() {
    let tmp = TempDir::new("logs-fifo");
    let dir = tmp.path().to_path_buf();
    std::fs::write(dir.join("@20261122T220000.000000000Z.log"), cri(0..5)).unwrap();
    mkfifo(&dir.join("@20261122T221000.000000000Z.log"));
    mkfifo(&dir.join("@20261122T222000.000000000Z.log.gz"));
    std::fs::write(dir.join("current"), cri(5..8)).unwrap();
    let out = logs_within(&[], &dir, 20).expect("tend logs blocked on a FIFO");
    assert_eq!(seqs(&out), (0..8).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a regular file; skipped"), "{err}");
    // A FIFO as `current` too, while following: SIGTERM still ends it.
    std::fs::remove_file(dir.join("current")).unwrap();
    mkfifo(&dir.join("current"));
    let child = Command::new(tend())
        .args(["logs", "-f"])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: plain kill(2) of the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
    let out = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("tend logs -f ignored SIGTERM");
    assert_eq!(out.status.code(), Some(0));
}

/// Waits for `child`, sampling its peak RSS (`VmHWM`, KiB) until it exits. (wait4's
/// `ru_maxrss` would also count the test process, whose memory the child shares until exec.)
fn wait_peak_kib(mut child: std::process::Child) -> (bool, u64) {
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(l) = text.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib: u64 = l.split_whitespace().nth(1).unwrap().parse().unwrap();
            peak = peak.max(kib);
        }
        if let Some(st) = child.try_wait().unwrap() {
            return (st.success(), peak);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn tail_of_a_huge_line_keeps_memory_bounded() {
    let tmp = TempDir::new("logs-huge");
    let dir = tmp.path().to_path_buf();
    // 192 MiB of 'x' without a newline (192 copies of one gzip member), then a last line.
    let mut member = Vec::new();
    {
        let mut e = GzEncoder::new(&mut member, Compression::best());
        e.write_all(&vec![b'x'; 1 << 20]).unwrap();
        e.finish().unwrap();
    }
    let mut data = member.repeat(192);
    let mut tail = GzEncoder::new(Vec::new(), Compression::fast());
    tail.write_all(b"\nlast\n").unwrap();
    data.extend(tail.finish().unwrap());
    std::fs::write(dir.join("@20261122T220000.000000000Z.log.gz"), &data).unwrap();
    std::fs::write(dir.join("current"), "").unwrap();
    for n in ["1", "3"] {
        let child = Command::new(tend())
            .args(["logs", "-n", n])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let (ok, rss) = wait_peak_kib(child);
        assert!(ok);
        assert!(rss < 32 * 1024, "-n {n}: peak RSS {rss} KiB");
    }
    // The last line is printed whole; the huge one in bounded pieces.
    let out = logs_within(&["-n", "1"], &dir, 120).unwrap();
    assert_eq!(out.stdout, b"last\n");
}

#[test]
fn no_archive_is_lost_while_the_compressor_renames() {
    // A stand-in compressor turns archives into `.log.gz` exactly as tend's does (write
    // `.gz.tmp`, rename it to `.gz`, unlink `.log`) while `tend logs` lists and reads: at
    // every instant each archive exists in at least one form, so every run must print all.
    // With this many entries a listing takes several getdents calls, and a rename between
    // two of them can hide an archive from a single pass.
    let tmp = TempDir::new("logs-churn");
    let dir = tmp.path().to_path_buf();
    let n = 1500;
    let stem = |i: usize| {
        format!(
            "@20261122T{:02}{:02}{:02}.000000000Z",
            10 + i / 3600,
            i / 60 % 60,
            i % 60
        )
    };
    let text: Vec<String> = (0..n)
        .map(|i| format!("{} stdout F line {i}\n", time(i)))
        .collect();
    let packed: Vec<Vec<u8>> = text
        .iter()
        .map(|t| {
            let mut e = GzEncoder::new(Vec::new(), Compression::fast());
            e.write_all(t.as_bytes()).unwrap();
            e.finish().unwrap()
        })
        .collect();
    std::fs::write(dir.join("current"), "").unwrap();
    let (text, packed) = (std::sync::Arc::new(text), std::sync::Arc::new(packed));
    let mut bad = Vec::new();
    // The old single-pass listing lost an archive in about half of these runs.
    for run in 0..15 {
        // Every archive uncompressed again (no reader running now).
        for (i, t) in text.iter().enumerate() {
            let _ = std::fs::remove_file(dir.join(format!("{}.log.gz", stem(i))));
            std::fs::write(dir.join(format!("{}.log", stem(i))), t).unwrap();
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churn = {
            let (dir, stop, packed) = (dir.clone(), stop.clone(), packed.clone());
            std::thread::spawn(move || {
                // Each archive once, in a scattered order, as rotations would hand them over.
                for k in 0..n {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let i = (k * 997 + run) % n;
                    let s = stem(i);
                    let tmp = dir.join(format!("{s}.log.gz.tmp"));
                    std::fs::write(&tmp, &packed[i]).unwrap();
                    std::fs::rename(&tmp, dir.join(format!("{s}.log.gz"))).unwrap();
                    std::fs::remove_file(dir.join(format!("{s}.log"))).unwrap();
                }
            })
        };
        let out = logs_within(&[], &dir, 60).unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        churn.join().unwrap();
        let got: Vec<usize> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        if got != (0..n).collect::<Vec<_>>() {
            bad.push((run, got.len()));
        }
    }
    assert!(bad.is_empty(), "runs with archives missing: {bad:?}");
}
