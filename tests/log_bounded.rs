//! Log directories that stay bounded under faults: no `.gz.tmp` left by a failed gzip, a
//! persistent write error reported once, a long unterminated line does not stop rotation,
//! a deleted directory is recreated.

mod support;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

/// `n` pseudo-random bytes (incompressible), with a `\n` now and then.
fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn enospc_during_gzip_leaves_no_temporary_file() {
    let t = TempDir::new("gzfull");
    let mnt = t.path().join("m");
    std::fs::create_dir(&mnt).unwrap();
    let input = t.path().join("in");
    std::fs::write(&input, noise(100_000)).unwrap();
    // 160 KiB of disk: an archive left by an earlier run (old enough to be compressed at
    // once: archives are compressed only once 5 minutes old), a 64 KiB one rotated now and
    // the rest of the input fit; the old archive's gzip (incompressible, ~40 KiB) does not.
    let script = r#"mount -t tmpfs -o size=160k tmpfs "$1" || exit 99
mkdir "$1/d" && head -c 40000 "$3" > "$1/d/@20200101T000000.000000000Z.log"
"$2" log --format plain --rotate-size 64KiB --compress gzip "$1/d" < "$3"
rc=$?
ls -a "$1/d"
exit $rc"#;
    let out = Command::new("unshare")
        .args(["--mount", "sh", "-c", script, "sh"])
        .arg(&mnt)
        .arg(env!("CARGO_BIN_EXE_tend"))
        .arg(&input)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("cannot compress"),
        "gzip did not hit ENOSPC: {err}"
    );
    assert!(!listing.contains(".tmp"), "temporary file left: {listing}");
}

#[test]
fn persistent_write_error_is_reported_once_when_it_starts_and_once_when_it_ends() {
    let t = TempDir::new("efbig");
    let dir = t.path().join("d");
    // Writes past 32 KiB fail with EFBIG (SIGXFSZ ignored) until rotation by age gives a
    // fresh `current`.
    let mut child = piped(Command::new("sh").arg("-c").args([
        r#"trap '' XFSZ; ulimit -f 32; exec "$0" log --format plain --rotate-every 5s "$1""#,
        env!("CARGO_BIN_EXE_tend"),
    ]))
    .arg(&dir)
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let line = format!("{}\n", "x".repeat(99));
    let mut sent = 0usize;
    // ~100 KiB in 1 s, in many small writes: many failing batches.
    for _ in 0..100 {
        for _ in 0..10 {
            stdin.write_all(line.as_bytes()).unwrap();
            sent += line.len();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let the rotation by age come, then write again.
    assert!(wait_for(Duration::from_secs(30), || archives(&dir).len() == 1));
    stdin.write_all(b"after\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].contains("write: EFBIG"), "{err}");
    let lost: usize = lines[1]
        .strip_suffix(" bytes lost")
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {:?}", lines[1]));
    assert!(lines[1].contains("writing again after EFBIG"), "{err}");
    // Every byte sent is on disk or counted as lost.
    let kept = std::fs::read(dir.join(&archives(&dir)[0])).unwrap().len();
    assert_eq!(kept + lost, sent, "{err}");
    let cur = std::fs::read_to_string(dir.join("current")).unwrap();
    assert_eq!(cur, format!("tend: dropped {lost} bytes\nafter\n"));
}

#[test]
fn rotation_cost_does_not_grow_with_the_archive_count() {
    // tmpfs when there is one: fsync is free there, so the time is the CPU of rotation.
    let base = if Path::new("/dev/shm").is_dir() {
        let p = Path::new("/dev/shm").join(format!("tend-test-rotcost-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).unwrap();
        TempDir(p)
    } else {
        TempDir::new("rotcost")
    };
    let input: Vec<u8> = (0..500 * 29)
        .flat_map(|i| format!("{i:010} {}\n", "x".repeat(88)).into_bytes())
        .collect();
    let full = base.path().join("full");
    std::fs::create_dir(&full).unwrap();
    for i in 0..6000u32 {
        // 2020-01-01 plus i seconds, in the archive name form.
        let (h, m, s) = (i / 3600, i / 60 % 60, i % 60);
        let name = format!("@20200101T{h:02}{m:02}{s:02}.000000000Z.log");
        std::fs::write(full.join(name), b"x\n").unwrap();
    }
    let time = |dir: &Path| {
        let t0 = std::time::Instant::now();
        log_ok(&["--rotate-size", "4KiB", "--keep", "100000"], dir, &input);
        t0.elapsed()
    };
    let empty = time(&base.path().join("empty"));
    let with = time(&full);
    assert!(archives(&full).len() >= 6000 + 499);
    // Before the index every rotation listed and stat'ed 6,000 files: ~10x slower here.
    assert!(
        with < empty * 3 + Duration::from_secs(3),
        "500 rotations: {empty:?} in an empty directory, {with:?} with 6,000 archives"
    );
}

#[test]
fn output_without_newlines_still_rotates() {
    let t = TempDir::new("nonl");
    let data = vec![b'z'; 1 << 20];
    for format in ["cri", "json", "ts", "plain"] {
        let dir = t.path().join(format);
        let args = ["--format", format, "--rotate-size", "64KiB", "--keep", "2"];
        log_ok(&args, &dir, &data);
        let mut files = archives(&dir);
        assert_eq!(files.len(), 2, "{format}: {files:?}");
        files.push("current".into());
        for f in &files {
            let bytes = std::fs::read(dir.join(f)).unwrap();
            // At most --rotate-size past the rotation point, plus the piece that crossed.
            assert!(
                bytes.len() <= 2 * 65536 + 16384 + 100,
                "{format}/{f}: {} bytes",
                bytes.len()
            );
            let text = String::from_utf8(bytes).unwrap();
            let last = text.lines().last().unwrap_or("");
            match format {
                // Each file ends its line: F, or json `\n` (collectors do not merge
                // partials across files).
                "cri" => assert_eq!(&last[30..40], " stdout F ", "{format}/{f}"),
                "json" => {
                    let v: serde_json::Value = serde_json::from_str(last).unwrap();
                    assert!(v["log"].as_str().unwrap().ends_with('\n'), "{format}/{f}");
                }
                _ => {}
            }
        }
    }
}

#[test]
fn a_deleted_log_directory_is_recreated_and_said_once() {
    let t = TempDir::new("deleted");
    let root = t.path().join("root");
    let dir = root.join("svc");
    for rotate in ["64KiB", "10MiB"] {
        // Small: rotation notices; large: the periodic link-count check does.
        let _ = std::fs::remove_dir_all(&root);
        let mut child = spawn_log(&["--format", "plain", "--rotate-size", rotate], &dir);
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"before\n").unwrap();
        assert!(wait_for(Duration::from_secs(20), || std::fs::read(
            dir.join("current")
        )
        .is_ok_and(|d| d == b"before\n")));
        std::fs::remove_dir_all(&root).unwrap();
        // Write for ~3 s: the directory must come back with the later lines.
        let line = format!("{}\n", "y".repeat(199));
        for _ in 0..300 {
            for _ in 0..10 {
                stdin.write_all(line.as_bytes()).unwrap();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        stdin.write_all(b"last\n").unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.matches("recreated").count(), 1, "{rotate}: {err}");
        assert_eq!(err.lines().count(), 1, "{rotate}: {err}");
        let all = concat(&dir);
        assert!(all.ends_with(b"last\n"), "{rotate}");
        // Bounded: --rotate-size still holds in the new directory.
        if rotate == "64KiB" {
            assert!(!archives(&dir).is_empty(), "rotation resumed");
            let cur = std::fs::metadata(dir.join("current")).unwrap().len();
            assert!(cur <= 65536, "{cur}");
        }
    }
}
