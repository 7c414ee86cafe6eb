//! `tend logs -f` follows `current` through rotations done by the test itself, while records
//! keep coming: nothing missed, nothing repeated.

mod support;

use flate2::Compression;
use flate2::write::GzEncoder;
use nix::sys::signal::Signal;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{TempDir, tend, wait_for};

fn record(i: usize) -> String {
    let stream = if i.is_multiple_of(3) {
        "stderr"
    } else {
        "stdout"
    };
    format!(
        "2026-11-22T22:30:{:02}.{:09}Z {stream} F seq {i}\n",
        i / 1_000_000 % 60,
        i
    )
}

fn open_current(dir: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("current"))
        .unwrap()
}

/// A temp log directory whose `current` already holds records `seqs`; returns it with
/// `current` open for appending.
fn log_dir_with(tag: &str, seqs: std::ops::Range<usize>) -> (TempDir, std::fs::File) {
    let tmp = TempDir::new(tag);
    let mut cur = open_current(tmp.path());
    for i in seqs {
        cur.write_all(record(i).as_bytes()).unwrap();
    }
    (tmp, cur)
}

/// Compresses archive `STEM.log` of `dir` to `STEM.log.gz` the way `--compress gzip` does:
/// through a `.gz.tmp` renamed into place, then the plain archive is removed.
fn gzip(dir: &Path, stem: &str) {
    let log = dir.join(format!("{stem}.log"));
    let tmp = dir.join(format!("{stem}.log.gz.tmp"));
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(&std::fs::read(&log).unwrap()).unwrap();
    std::fs::write(&tmp, e.finish().unwrap()).unwrap();
    std::fs::rename(&tmp, dir.join(format!("{stem}.log.gz"))).unwrap();
    std::fs::remove_file(&log).unwrap();
}

/// Sends `sig` to a child.
fn kill(child: &Child, sig: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

/// A running `tend logs -f ARGS DIR` whose stdout lines arrive on a channel.
struct Follower {
    child: Child,
    rx: mpsc::Receiver<String>,
}

impl Follower {
    fn start(args: &[&str], dir: &Path) -> Follower {
        let mut child = Command::new(tend())
            .args(["logs", "-f"])
            .args(args)
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap()).is_err() {
                    return;
                }
            }
        });
        Follower { child, rx }
    }

    /// Adds lines, as `seq` maps them, to `got` until it holds `n` or `limit` passes; then,
    /// after a pause, whatever else came (nothing should: the caller compares).
    fn collect(
        &self,
        got: &mut Vec<usize>,
        n: usize,
        limit: Duration,
        mut seq: impl FnMut(String) -> usize,
    ) {
        let deadline = Instant::now() + limit;
        while got.len() < n && Instant::now() < deadline {
            if let Ok(l) = self.rx.recv_timeout(Duration::from_millis(100)) {
                got.push(seq(l));
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        while let Ok(l) = self.rx.try_recv() {
            got.push(seq(l));
        }
    }

    /// SIGTERM ends the follow quietly with status 0.
    fn stop(mut self) {
        kill(&self.child, Signal::SIGTERM);
        assert_eq!(self.child.wait().unwrap().code(), Some(0));
    }
}

/// The sequence number a [`record`] line ends with.
fn seq_of(l: &str) -> usize {
    l.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn follows_through_fifty_rotations() {
    let (tmp, mut cur) = log_dir_with("logs-follow", 0..10);
    let dir = tmp.path();
    let f = Follower::start(&["-n", "3"], dir);
    // -n applies to what exists when tend starts: wait for those three before writing more.
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(seq_of(&f.rx.recv_timeout(Duration::from_secs(10)).unwrap()));
    }
    assert_eq!(got, [7, 8, 9]);
    let mut next = 10;
    for rot in 0..50 {
        // Some records whole, one split in two writes around a pause (a reader at EOF in
        // between must hold the half line).
        for k in 0..12 {
            let r = record(next);
            next += 1;
            if k == 5 {
                let (a, b) = r.split_at(r.len() / 2);
                cur.write_all(a.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(3));
                cur.write_all(b.as_bytes()).unwrap();
            } else {
                cur.write_all(r.as_bytes()).unwrap();
            }
        }
        if rot % 4 == 0 {
            // Let the reader catch up now and then; otherwise rotate back to back, so
            // several rotations often fall between two of its polls.
            std::thread::sleep(Duration::from_millis(120));
        }
        let stem = format!("@20261122T2230{:02}.{:09}Z", rot % 60, rot);
        let archive = dir.join(format!("{stem}.log"));
        std::fs::rename(dir.join("current"), &archive).unwrap();
        cur = open_current(dir);
        if rot % 7 == 3 {
            // Compress some archives meanwhile, as `--compress gzip` does.
            gzip(dir, &stem);
        }
    }
    for _ in 0..5 {
        cur.write_all(record(next).as_bytes()).unwrap();
        next += 1;
    }
    let want: Vec<usize> = (7..next).collect();
    // Each line whole and unchanged; nothing extra arrives afterwards either.
    f.collect(&mut got, want.len(), Duration::from_secs(30), |l| {
        let i = seq_of(&l);
        assert_eq!(format!("{l}\n"), record(i));
        i
    });
    assert_eq!(got, want, "every record exactly once, in order");
    f.stop();
}

#[test]
fn waits_for_current_to_appear_and_filters_while_following() {
    let tmp = TempDir::new("logs-follow2");
    let dir = tmp.path().to_path_buf();
    let child = Command::new(tend())
        .args(["logs", "-f", "--stream", "stderr"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let mut cur = open_current(&dir);
    for i in 0..9 {
        cur.write_all(record(i).as_bytes()).unwrap();
    }
    std::thread::sleep(Duration::from_millis(400));
    kill(&child, Signal::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let want: String = [0, 3, 6].iter().map(|&i| record(i)).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}

#[test]
fn follows_a_real_writer_that_rotates_and_compresses_fast() {
    // `tend log --compress gzip` rotating every few KiB: the compressor turns archives
    // into `.gz` (new inodes) while the follower catches up, so it must know which
    // archive it held without guessing from a listing.
    let tmp = TempDir::new("logs-follow-gz");
    // `tend log` creates its directory.
    let dir = tmp.join("log");
    let mut writer = Command::new(tend())
        .args(["log", "--compress", "gzip", "--rotate-size", "4KiB"])
        .args(["--keep", "100000", "--format", "plain"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    stdin.write_all(b"line 0\n").unwrap();
    assert!(wait_for(Duration::from_secs(20), || dir
        .join("current")
        .exists()));
    let f = Follower::start(&[], &dir);
    let n = 8000;
    for i in 1..n {
        // ~120 bytes a line: a rotation every ~34 lines, bursts back to back.
        writeln!(stdin, "line {i} {}", "x".repeat(110)).unwrap();
        if i % 400 == 0 {
            std::thread::sleep(Duration::from_millis(30));
        }
    }
    drop(stdin);
    assert!(writer.wait().unwrap().success());
    let mut got = Vec::new();
    f.collect(&mut got, n, Duration::from_secs(60), |l| {
        l.split(' ').nth(1).unwrap().parse().unwrap()
    });
    let rotations = std::fs::read_dir(&dir).unwrap().count();
    assert!(rotations > 100, "only {rotations} files");
    let want: Vec<usize> = (0..n).collect();
    if got != want {
        let dup = got.windows(2).find(|w| w[1] <= w[0]);
        let gap = got.windows(2).find(|w| w[1] > w[0] + 1);
        panic!(
            "{} records, first repeat {dup:?}, first gap {gap:?}",
            got.len()
        );
    }
    f.stop();
}

#[test]
fn follow_knows_its_file_after_it_was_compressed_and_pruned() {
    // Between two polls of the follower: the file it holds (A) is rotated, the next
    // `current` (B) gets records and is rotated too, both are compressed, and retention
    // deletes A. The first new archive in a listing is then B, already a `.gz`: guessing
    // "the first new archive is the one I held" would skip B.
    let (tmp, mut cur) = log_dir_with("logs-follow-prune", 0..1);
    let dir = tmp.path();
    let f = Follower::start(&[], dir);
    assert_eq!(
        f.rx.recv_timeout(Duration::from_secs(10))
            .map(|l| seq_of(&l)),
        Ok(0)
    );
    for round in 0..5 {
        let base = 1 + round * 3;
        let a = format!("@20261122T2230{:02}.000000000Z", 2 * round + 1);
        let b = format!("@20261122T2230{:02}.000000000Z", 2 * round + 2);
        cur.write_all(record(base).as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        std::fs::rename(dir.join("current"), dir.join(format!("{a}.log"))).unwrap();
        cur = open_current(dir);
        cur.write_all(record(base + 1).as_bytes()).unwrap();
        std::fs::rename(dir.join("current"), dir.join(format!("{b}.log"))).unwrap();
        cur = open_current(dir);
        gzip(dir, &a);
        gzip(dir, &b);
        std::fs::remove_file(dir.join(format!("{a}.log.gz"))).unwrap();
        cur.write_all(record(base + 2).as_bytes()).unwrap();
    }
    let mut got = vec![0];
    f.collect(&mut got, 16, Duration::from_secs(30), |l| seq_of(&l));
    assert_eq!(
        got,
        (0..16).collect::<Vec<_>>(),
        "every record exactly once, in order"
    );
    f.stop();
}
