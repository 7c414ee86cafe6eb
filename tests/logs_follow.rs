//! `tend logs -f` follows `current` through rotations done by the test itself, while records
//! keep coming: nothing missed, nothing repeated.

mod support;

use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{TempDir, tend};

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

#[test]
fn follows_through_fifty_rotations() {
    let tmp = TempDir::new("logs-follow");
    let dir = tmp.path().to_path_buf();
    let mut cur = open_current(&dir);
    for i in 0..10 {
        cur.write_all(record(i).as_bytes()).unwrap();
    }
    let mut child = Command::new(tend())
        .args(["logs", "-f", "-n", "3"])
        .arg(&dir)
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
    // -n applies to what exists when tend starts: wait for those three before writing more.
    let mut got = Vec::new();
    for _ in 0..3 {
        let l = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        got.push(l.rsplit(' ').next().unwrap().parse::<usize>().unwrap());
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
        cur = open_current(&dir);
        if rot % 7 == 3 {
            // Compress some archives meanwhile, as `--compress gzip` does.
            let text = std::fs::read(&archive).unwrap();
            let tmp = dir.join(format!("{stem}.log.gz.tmp"));
            let mut e = GzEncoder::new(std::fs::File::create(&tmp).unwrap(), Compression::fast());
            e.write_all(&text).unwrap();
            e.finish().unwrap();
            std::fs::rename(&tmp, dir.join(format!("{stem}.log.gz"))).unwrap();
            std::fs::remove_file(&archive).unwrap();
        }
    }
    for _ in 0..5 {
        cur.write_all(record(next).as_bytes()).unwrap();
        next += 1;
    }
    let want: Vec<usize> = (7..next).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < want.len() && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            let i: usize = l.rsplit(' ').next().unwrap().parse().unwrap();
            assert_eq!(format!("{l}\n"), record(i));
            got.push(i);
        }
    }
    // Nothing extra arrives afterwards either.
    std::thread::sleep(Duration::from_millis(300));
    while let Ok(l) = rx.try_recv() {
        got.push(l.rsplit(' ').next().unwrap().parse().unwrap());
    }
    assert_eq!(got, want, "every record exactly once, in order");
    // SIGTERM ends the follow quietly with status 0.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    std::fs::remove_dir_all(&dir).unwrap();
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
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let want: String = [0, 3, 6].iter().map(|&i| record(i)).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    std::fs::remove_dir_all(&dir).unwrap();
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
    assert!(wait_until(|| dir.join("current").exists()));
    let mut child = Command::new(tend())
        .args(["logs", "-f"])
        .arg(&dir)
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
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < n && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            got.push(l.split(' ').nth(1).unwrap().parse::<usize>().unwrap());
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    while let Ok(l) = rx.try_recv() {
        got.push(l.split(' ').nth(1).unwrap().parse().unwrap());
    }
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
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn follow_knows_its_file_after_it_was_compressed_and_pruned() {
    // Between two polls of the follower: the file it holds (A) is rotated, the next
    // `current` (B) gets records and is rotated too, both are compressed, and retention
    // deletes A. The first new archive in a listing is then B, already a `.gz`: guessing
    // "the first new archive is the one I held" would skip B.
    let tmp = TempDir::new("logs-follow-prune");
    let dir = tmp.path().to_path_buf();
    let mut cur = open_current(&dir);
    cur.write_all(record(0).as_bytes()).unwrap();
    let mut child = Command::new(tend())
        .args(["logs", "-f"])
        .arg(&dir)
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
    let seq = |l: String| l.rsplit(' ').next().unwrap().parse::<usize>().unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).map(seq), Ok(0));
    let gzip = |stem: &str| {
        let log = dir.join(format!("{stem}.log"));
        let tmp = dir.join(format!("{stem}.log.gz.tmp"));
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(&std::fs::read(&log).unwrap()).unwrap();
        std::fs::write(&tmp, e.finish().unwrap()).unwrap();
        std::fs::rename(&tmp, dir.join(format!("{stem}.log.gz"))).unwrap();
        std::fs::remove_file(&log).unwrap();
    };
    for round in 0..5 {
        let base = 1 + round * 3;
        let a = format!("@20261122T2230{:02}.000000000Z", 2 * round + 1);
        let b = format!("@20261122T2230{:02}.000000000Z", 2 * round + 2);
        cur.write_all(record(base).as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        std::fs::rename(dir.join("current"), dir.join(format!("{a}.log"))).unwrap();
        cur = open_current(&dir);
        cur.write_all(record(base + 1).as_bytes()).unwrap();
        std::fs::rename(dir.join("current"), dir.join(format!("{b}.log"))).unwrap();
        cur = open_current(&dir);
        gzip(&a);
        gzip(&b);
        std::fs::remove_file(dir.join(format!("{a}.log.gz"))).unwrap();
        cur.write_all(record(base + 2).as_bytes()).unwrap();
    }
    let mut got = vec![0];
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < 16 && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            got.push(seq(l));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    while let Ok(l) = rx.try_recv() {
        got.push(seq(l));
    }
    assert_eq!(
        got,
        (0..16).collect::<Vec<_>>(),
        "every record exactly once, in order"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    std::fs::remove_dir_all(&dir).unwrap();
}
