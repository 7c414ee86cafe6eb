//! Planted symlinks in a log directory are never followed.

mod support;
use std::os::unix::fs::symlink;
use support::*;

#[test]
fn symlinked_current_and_archive_leave_the_target_untouched() {
    let t = TempDir::new("symlink");
    let dir = t.path().join("d");
    let outside = t.path().join("outside");
    std::fs::write(&outside, b"precious\n").unwrap();
    log_ok(
        &["--format", "plain", "--rotate-size", "4KiB", "--keep", "2"],
        &dir,
        &seq(3000),
    );
    let a = archives(&dir);
    assert_eq!(a.len(), 2);
    // Replace the oldest archive and current by symlinks to a file outside.
    std::fs::remove_file(dir.join(&a[0])).unwrap();
    symlink(&outside, dir.join(&a[0])).unwrap();
    std::fs::remove_file(dir.join("current")).unwrap();
    symlink(&outside, dir.join("current")).unwrap();
    // Plus a planted old-looking name and a gz temp pointing outside.
    symlink(&outside, dir.join("@20000101T000000.000000000Z.log")).unwrap();
    symlink(&outside, dir.join("@20000101T000000.000000001Z.log.gz.tmp")).unwrap();
    // More writes, rotations, pruning and compression over all of that.
    log_ok(
        &[
            "--format",
            "plain",
            "--rotate-size",
            "4KiB",
            "--keep",
            "1",
            "--compress",
            "gzip",
            "--max-age",
            "1h",
        ],
        &dir,
        &seq(5000),
    );
    assert_eq!(std::fs::read(&outside).unwrap(), b"precious\n");
    // current is a fresh regular file again.
    let md = std::fs::symlink_metadata(dir.join("current")).unwrap();
    assert!(md.file_type().is_file());
    // The planted links are still links (never followed, never counted as archives).
    assert!(
        std::fs::symlink_metadata(dir.join(&a[0]))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}
