//! Attacks on a log directory's names while tend writes or starts: bytes written to a
//! deleted `current` before tend notices are carried into the new one; a FIFO, socket or
//! device planted as `current` or `lock` is removed (never opened), not a reason to refuse.

mod support;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};
use support::*;

/// Lines per write of the writer below.
const CHUNK: u64 = 100;

/// Line numbers in `dir`'s files (archives then `current`), markers skipped.
fn numbers(dir: &Path) -> Vec<u64> {
    String::from_utf8(concat(dir))
        .unwrap()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

/// Writes numbered lines fast to `tend log`, deletes the whole log root mid-stream and
/// writes on for 2.5 s. Before the fix, whatever was written before tend noticed (next
/// rotation or the once-a-second link check) went to the unlinked file and was lost.
///
/// The check: let `c` be the last line of the last chunk whose write to the pipe had
/// finished when the root was deleted; every line after `c + CHUNK` was written after the
/// deletion, so tend read it after, and it must be in the recreated directory. Lines
/// carried over from before may appear too (from the last confirmed offset on), but the
/// recreated directory holds one contiguous run `min..=last`, each line exactly once.
fn carry_over(rotate: &str) {
    let t = TempDir::new("gone-carry");
    let root = t.path().join("root");
    let dir = root.join("svc");
    let mut child = spawn_log(
        &[
            "--format",
            "plain",
            "--rotate-size",
            rotate,
            "--keep",
            "100000",
        ],
        &dir,
    );
    let mut stdin = child.stdin.take().unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (done, stop) = (done.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            let mut buf = Vec::new();
            while !stop.load(SeqCst) {
                buf.clear();
                for _ in 0..CHUNK {
                    n += 1;
                    writeln!(buf, "{n}").unwrap();
                }
                stdin.write_all(&buf).unwrap();
                done.store(n, SeqCst);
                std::thread::sleep(Duration::from_micros(500));
            }
            n
        })
    };
    assert!(wait_for(Duration::from_secs(20), || !archives(&dir)
        .is_empty()
        || std::fs::metadata(dir.join("current"))
            .is_ok_and(|m| m.len() > 100_000)));
    let c = done.load(SeqCst);
    std::fs::remove_dir_all(&root).unwrap();
    let deleted_at = Instant::now();
    std::thread::sleep(Duration::from_millis(2500));
    stop.store(true, SeqCst);
    let last = writer.join().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(deleted_at.elapsed() < Duration::from_secs(60));
    assert_eq!(err.matches("recreated").count(), 1, "{rotate}: {err}");
    let got = numbers(&dir);
    assert!(
        !got.is_empty(),
        "{rotate}: nothing in the new directory; {err}"
    );
    let min = *got.iter().min().unwrap();
    assert!(
        min <= c + CHUNK + 1,
        "{rotate}: lines {}..{min} written after the deletion are lost; {err}",
        c + CHUNK + 1
    );
    let want: Vec<u64> = (min..=last).collect();
    if got != want {
        let mut seen = std::collections::HashSet::new();
        let dup = got.iter().find(|n| !seen.insert(**n));
        let gap = want.iter().find(|n| !seen.contains(n));
        panic!(
            "{rotate}: {} lines, {} expected ({min}..={last}); duplicate {dup:?}, missing \
             {gap:?}; {err}",
            got.len(),
            want.len()
        );
    }
    assert!(err.contains("carried over the "), "{rotate}: {err}");
}

/// Rotation notices the deletion (small `--rotate-size`).
#[test]
fn bytes_written_to_a_deleted_directory_are_carried_over_at_rotation() {
    carry_over("64KiB");
}

/// The once-a-second link check notices it (rotation far away).
#[test]
fn bytes_written_to_a_deleted_directory_are_carried_over_at_the_link_check() {
    carry_over("100MiB");
}

/// Plants `kind` (fifo, socket, device, dir) at `path`.
fn plant(kind: &str, path: &Path) {
    let st = match kind {
        "dir" => return std::fs::create_dir(path).unwrap(),
        "fifo" => Command::new("mkfifo").arg(path).status().unwrap(),
        "device" => Command::new("mknod")
            .arg(path)
            .args(["c", "1", "3"])
            .status()
            .unwrap(),
        _ => {
            // Bound and dropped: the socket file stays, nobody listens.
            drop(std::os::unix::net::UnixListener::bind(path).unwrap());
            return;
        }
    };
    assert!(st.success(), "cannot plant a {kind}");
}

/// A FIFO (or socket, or device) planted as `current` or `lock` made `tend log` refuse to
/// start ("not a regular file", or for a socket `lock` "cannot open"): whoever can write
/// the log directory stopped the container. It is removed (never opened), said once.
#[test]
fn non_regular_files_planted_as_current_or_lock_are_removed_by_tend_log() {
    for (name, kind, said) in [
        ("current", "fifo", "current: is a FIFO"),
        ("current", "socket", "current: is a socket"),
        ("current", "device", "current: is a device"),
        ("lock", "fifo", "lock: is a FIFO"),
        ("lock", "socket", "lock: is a socket"),
        ("lock", "device", "lock: is a device"),
        ("current", "dir", "current: is a directory"),
        ("lock", "dir", "lock: is a directory"),
    ] {
        let t = TempDir::new("atk-planted");
        let dir = t.path().join("d");
        std::fs::create_dir_all(&dir).unwrap();
        plant(kind, &dir.join(name));
        let out = log(&["--format", "plain"], &dir, b"hello\n");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name} {kind}: {err}");
        assert_eq!(err.matches(said).count(), 1, "{name} {kind}: {err}");
        assert_eq!(err.lines().count(), 1, "{name} {kind}: {err}");
        let meta = std::fs::symlink_metadata(dir.join(name)).unwrap();
        assert!(meta.file_type().is_file(), "{name} {kind}");
        assert_eq!(std::fs::read(dir.join("current")).unwrap(), b"hello\n");
    }
}

/// The same under `tend init` as PID 1: a FIFO planted as a service's `current` and a
/// socket as its `lock` made the whole init exit 111 before starting anything.
#[test]
fn non_regular_files_planted_in_a_service_log_dir_do_not_stop_tend_init() {
    let t = support::Tree::new("atk-planted-init");
    t.longrun("svc", "echo hello; exec sleep 1000");
    let dir = t.log_dir("svc");
    std::fs::create_dir_all(&dir).unwrap();
    plant("fifo", &dir.join("current"));
    plant("socket", &dir.join("lock"));
    let wait = format!(
        "for i in $(seq 300); do grep -q hello '{}/current' 2>/dev/null && exit 0; \
         sleep 0.1; done; exit 3",
        dir.display()
    );
    let out = support::output_within(t.init(&["sh", "-c", &wait]), Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("current: is a FIFO").count(), 1, "{err}");
    assert_eq!(err.matches("lock: is a socket").count(), 1, "{err}");
    for name in ["current", "lock"] {
        let meta = std::fs::symlink_metadata(dir.join(name)).unwrap();
        assert!(meta.file_type().is_file(), "{name}");
    }
}
