//! `tend log`: rotation keeps every byte in order; retention keeps what it promises.

mod support;
use std::io::Write;
use std::time::Duration;
use support::*;

#[test]
fn plain_rotation_concatenates_to_the_input() {
    let t = TempDir::new("rot-plain");
    let dir = t.path().join("d");
    let input = seq(3_000_000);
    log_ok(
        &[
            "--format",
            "plain",
            "--rotate-size",
            "1MiB",
            "--keep",
            "1000",
        ],
        &dir,
        &input,
    );
    let a = archives(&dir);
    assert!(a.len() >= 19, "{} archives", a.len());
    for name in &a {
        let len = std::fs::metadata(dir.join(name)).unwrap().len();
        assert!(len <= 1 << 20, "{name} has {len} bytes");
        assert!(name.ends_with("Z.log") && name.len() == 31, "{name}");
    }
    assert!(
        concat(&dir) == input,
        "archives + current differ from the input"
    );
}

#[test]
fn cri_rotation_concatenates_to_the_input() {
    let t = TempDir::new("rot-cri");
    let dir = t.path().join("d");
    let input = seq(1_000_000);
    log_ok(&["--rotate-size", "1MiB", "--keep", "1000"], &dir, &input);
    assert!(archives(&dir).len() >= 30);
    for name in archives(&dir) {
        let data = std::fs::read(dir.join(&name)).unwrap();
        assert!(data.len() <= 1 << 20 && data.ends_with(b"\n"), "{name}");
    }
    assert!(uncri(&concat(&dir)) == input);
}

#[test]
fn keep_three() {
    let t = TempDir::new("keep");
    let dir = t.path().join("d");
    let input = seq(100_000);
    log_ok(
        &["--format", "plain", "--rotate-size", "16KiB", "--keep", "3"],
        &dir,
        &input,
    );
    assert_eq!(archives(&dir).len(), 3);
    let kept = concat(&dir);
    assert!(input.ends_with(&kept) && kept.len() > 3 * 15_000);
    // Existing archives count at the next open.
    log_ok(
        &["--format", "plain", "--rotate-size", "16KiB", "--keep", "2"],
        &dir,
        b"x\n",
    );
    assert_eq!(archives(&dir).len(), 2);
}

#[test]
fn max_total() {
    let t = TempDir::new("total");
    let dir = t.path().join("d");
    let input = seq(100_000);
    let max = 50_000u64;
    log_ok(
        &[
            "--format",
            "plain",
            "--rotate-size",
            "8KiB",
            "--keep",
            "1000",
            "--max-total",
            "50000B",
        ],
        &dir,
        &input,
    );
    let total: u64 = archives(&dir)
        .iter()
        .map(|a| std::fs::metadata(dir.join(a)).unwrap().len())
        .sum();
    // At most SIZE, and deleting one archive fewer (each at most 8 KiB) would have exceeded it.
    assert!(total <= max && total > max - 8192, "total {total}");
    assert!(input.ends_with(&concat(&dir)));
}

#[test]
fn max_age_by_name_time() {
    let t = TempDir::new("age");
    let dir = t.path().join("d");
    std::fs::create_dir_all(&dir).unwrap();
    let old = "@20200101T000000.000000000Z.log";
    let old_gz = "@20200102T000000.000000000Z.log.gz";
    let now = time_stem(std::time::SystemTime::now() - std::time::Duration::from_secs(60));
    for n in [old, old_gz, now.as_str()] {
        std::fs::write(dir.join(n), b"x\n").unwrap();
    }
    log_ok(&["--format", "plain", "--max-age", "1h"], &dir, b"y\n");
    assert_eq!(archives(&dir), vec![now]);
}

fn time_stem(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap();
    let o = time::OffsetDateTime::from_unix_timestamp(d.as_secs() as i64).unwrap();
    format!(
        "@{:04}{:02}{:02}T{:02}{:02}{:02}.{:09}Z.log",
        o.year(),
        u8::from(o.month()),
        o.day(),
        o.hour(),
        o.minute(),
        o.second(),
        d.subsec_nanos()
    )
}

#[test]
fn gzip_waits_until_an_archive_is_old_then_compresses_and_recovers() {
    let t = TempDir::new("gzip");
    let dir = t.path().join("d");
    std::fs::create_dir_all(&dir).unwrap();
    // Leftovers of a crash: a stale .tmp, and a .log whose .gz was already renamed in.
    std::fs::write(dir.join("@20200101T000000.000000000Z.log.gz.tmp"), b"junk").unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"0\n").unwrap();
    std::fs::write(
        dir.join("@20200101T000000.000000001Z.log.gz"),
        gz.finish().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("@20200101T000000.000000001Z.log"), b"0\n").unwrap();
    // An old archive a previous run left uncompressed: due at once.
    std::fs::write(dir.join("@20200101T000000.000000002Z.log"), b"1\n").unwrap();
    let flags = [
        "--format",
        "plain",
        "--rotate-size",
        "64KiB",
        "--keep",
        "1000",
        "--compress",
        "gzip",
    ];
    let input = seq(200_000);
    log_ok(&flags, &dir, &input);
    let a = archives(&dir);
    assert!(a.len() > 10);
    assert!(
        a[0].ends_with("01Z.log.gz") && a[1].ends_with("02Z.log.gz"),
        "{a:?}"
    );
    // This run's archives are minutes younger than the delay: still `.log`, so a collector
    // that has not opened them yet still finds them by name.
    assert!(a[2..].iter().all(|n| n.ends_with("Z.log")), "{a:?}");
    let mut want = b"0\n1\n".to_vec();
    want.extend_from_slice(&input);
    assert!(concat(&dir) == want);
    // Ten minutes later (the names say so), the next run compresses them.
    age_archives(&dir, &a[2..]);
    log_ok(&flags, &dir, b"");
    let b = archives(&dir);
    assert_eq!(b.len(), a.len());
    assert!(b.iter().all(|n| n.ends_with(".log.gz")), "{b:?}");
    assert!(concat(&dir) == want);
}

/// Renames the archives `names` (made in the last seconds) to the same time in 2020, a leap
/// year (every date exists), keeping their order after the planted 2020-01-01 ones.
fn age_archives(dir: &std::path::Path, names: &[String]) {
    for n in names {
        // "@YYYYMMDDT…": only the year changes.
        let to = format!("@2020{}", &n[5..]);
        std::fs::rename(dir.join(n), dir.join(to)).unwrap();
    }
}

#[test]
fn on_rotate_runs_with_the_archive_path() {
    let t = TempDir::new("hook");
    let dir = t.path().join("d");
    let list = t.path().join("list");
    let script = t.path().join("hook.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$1\" >> {}\n", list.display()),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let hook = script.display().to_string();
    log_ok(
        &[
            "--format",
            "plain",
            "--rotate-size",
            "4KiB",
            "--on-rotate",
            &hook,
        ],
        &dir,
        &seq(3000),
    );
    let n = archives(&dir).len();
    assert!(n >= 3, "{n} archives");
    assert!(wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(&list).is_ok_and(|s| s.lines().count() == n)
    }));
    let s = std::fs::read_to_string(&list).unwrap();
    let mut got: Vec<&str> = s.lines().collect();
    got.sort();
    let want: Vec<String> = archives(&dir)
        .iter()
        .map(|a| dir.join(a).display().to_string())
        .collect();
    assert_eq!(got, want);
    assert!(
        s.lines()
            .all(|l| l.starts_with(&dir.display().to_string()) && l.ends_with("Z.log")),
        "{s}"
    );
}

#[test]
fn rotate_every_rotates_an_idle_current() {
    let t = TempDir::new("every");
    let dir = t.path().join("d");
    let mut child = spawn_log(&["--format", "plain", "--rotate-every", "200ms"], &dir);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first\n").unwrap();
    assert!(wait_for(Duration::from_secs(20), || archives(&dir).len() == 1));
    assert_eq!(
        std::fs::read(dir.join(&archives(&dir)[0])).unwrap(),
        b"first\n"
    );
    stdin.write_all(b"second\n").unwrap();
    assert!(wait_for(Duration::from_secs(20), || archives(&dir).len() == 2));
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert_eq!(concat(&dir), b"first\nsecond\n");
    assert_eq!(std::fs::read(dir.join("current")).unwrap(), b"");
}

fn send(child: &std::process::Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

#[test]
fn sigalrm_rotates_and_sighup_or_sigterm_end_cleanly() {
    use nix::sys::signal::Signal;
    for end in [Signal::SIGHUP, Signal::SIGTERM] {
        let t = support::TempDir::new("log-signals");
        let dir = t.join("d");
        let mut child = support::spawn_log(&["--format", "plain"], &dir);
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"one\n").unwrap();
        stdin.flush().unwrap();
        assert!(support::wait_for(Duration::from_secs(20), || {
            std::fs::read(dir.join("current")).is_ok_and(|b| b == b"one\n")
        }));
        send(&child, Signal::SIGALRM);
        assert!(
            support::wait_for(Duration::from_secs(20), || support::archives(&dir).len()
                == 1),
            "SIGALRM did not rotate"
        );
        // An empty `current` is not rotated again.
        send(&child, Signal::SIGALRM);
        std::thread::sleep(std::time::Duration::from_millis(500));
        stdin.write_all(b"two\n").unwrap();
        stdin.flush().unwrap();
        assert!(support::wait_for(Duration::from_secs(20), || {
            std::fs::read(dir.join("current")).is_ok_and(|b| b == b"two\n")
        }));
        assert_eq!(support::archives(&dir).len(), 1);
        send(&child, end);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{end:?}");
        assert_eq!(support::concat(&dir), b"one\ntwo\n");
    }
}
