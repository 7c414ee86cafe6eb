//! `tend log`: exact file contents for every format, splitting, EOF, binary input, errors.

mod support;
use std::io::Write;
use std::time::Duration;
use support::*;

fn current(dir: &TempDir) -> Vec<u8> {
    std::fs::read(dir.path().join("d/current")).unwrap()
}

/// Runs `tend log ARGS` over `input` in a fresh directory and asserts its `current` is
/// `want` once each timestamp (`frac` fractional digits, checked) is masked as `TS`.
fn assert_masked(tag: &str, args: &[&str], input: &[u8], frac: usize, want: &str) {
    let t = TempDir::new(tag);
    log_ok(args, &t.path().join("d"), input);
    let text = String::from_utf8(current(&t)).unwrap();
    assert_eq!(mask_stamps(&text, frac), want);
}

#[test]
fn cri_exact_with_split_and_missing_final_newline() {
    assert_masked(
        "cri",
        &["--max-line", "16"],
        b"hello\n\n0123456789abcdefXY\nend",
        9,
        "TS stdout F hello\nTS stdout F \nTS stdout P 0123456789abcdef\nTS stdout F XY\nTS stdout F end\n",
    );
}

#[test]
fn ts_and_plain_exact() {
    assert_masked(
        "ts",
        &["--format", "ts", "--max-line", "16"],
        b"a b\n0123456789abcdefXY\nlast",
        6,
        "TS a b\nTS 0123456789abcdef\nTS XY\nTS last\n",
    );

    let t = TempDir::new("plain");
    let input = b"bin\x00\xff\xfe\x01\n\nlong-0123456789abcdef-line\nno newline";
    log_ok(
        &["--format", "plain", "--max-line", "16"],
        &t.path().join("d"),
        input,
    );
    let mut want = input.to_vec();
    want.push(b'\n');
    assert_eq!(current(&t), want);
}

#[test]
fn json_is_valid_and_exact() {
    let t = TempDir::new("json");
    // "€" is 3 bytes: 14 ASCII + 2 bytes of it would fill the first 16-byte piece, so the
    // piece ends before it (valid text is never altered); invalid bytes become U+FFFD; an
    // unterminated last line is a complete record (`\n`).
    let input = "q\"b\\s\tc\u{1}\n"
        .as_bytes()
        .iter()
        .chain(b"\xff\xc3(\n")
        .chain("abcdefghijklmn€xyz\n".as_bytes())
        .chain(b"tail")
        .copied()
        .collect::<Vec<u8>>();
    log_ok(
        &["--format", "json", "--max-line", "16"],
        &t.path().join("d"),
        &input,
    );
    let text = String::from_utf8(current(&t)).unwrap();
    let recs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let logs: Vec<&str> = recs.iter().map(|r| r["log"].as_str().unwrap()).collect();
    assert_eq!(
        logs,
        [
            "q\"b\\s\tc\u{1}\n",
            "\u{FFFD}\u{FFFD}(\n",
            "abcdefghijklmn",
            "€xyz\n",
            "tail\n"
        ]
    );
    for r in &recs {
        assert_eq!(r["stream"], "stdout");
        assert!(is_stamp(r["time"].as_str().unwrap(), 9));
        assert_eq!(r.as_object().unwrap().len(), 3);
    }
    // Raw bytes: control characters escaped, exact field order.
    assert!(
        text.starts_with(
            "{\"log\":\"q\\\"b\\\\s\\tc\\u0001\\n\",\"stream\":\"stdout\",\"time\":\""
        ),
        "{text}"
    );
}

#[test]
fn bad_option_and_unwritable_dir_exit_111() {
    let t = TempDir::new("bad");
    let out = log(&["--format", "xml"], &t.path().join("d"), b"");
    assert_eq!(out.status.code(), Some(111));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("tend log: --format: 'xml'"), "{err}");
    std::fs::write(t.path().join("file"), b"").unwrap();
    let out = log(&[], &t.path().join("file/sub"), b"");
    assert_eq!(out.status.code(), Some(111));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("tend log: "));
}

#[test]
fn second_writer_is_refused_and_sigterm_keeps_what_was_read() {
    let t = TempDir::new("lock");
    let dir = t.path().join("d");
    let mut first = spawn_log(&["--format", "plain"], &dir);
    let mut stdin = first.stdin.take().unwrap();
    stdin.write_all(b"one\ntwo\npart").unwrap();
    assert!(wait_for(Duration::from_secs(20), || std::fs::read(
        dir.join("current")
    )
    .is_ok_and(|c| c == b"one\ntwo\n")));
    let out = log(&[], &dir, b"x\n");
    assert_eq!(out.status.code(), Some(111));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        format!(
            "tend log: {}: another tend is writing this log directory (lock held)",
            dir.display()
        )
    );
    // SIGTERM with stdin still open: the held partial line is written, exit 0.
    nix_kill(first.id(), libc_sigterm());
    let status = first.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        std::fs::read(dir.join("current")).unwrap(),
        b"one\ntwo\npart\n"
    );
    drop(stdin);
}

fn libc_sigterm() -> i32 {
    15
}

fn nix_kill(pid: u32, sig: i32) {
    let st = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn restart_appends_to_current() {
    let t = TempDir::new("append");
    let dir = t.path().join("d");
    log_ok(&["--format", "plain"], &dir, b"a\n");
    log_ok(&["--format", "plain"], &dir, b"b\n");
    assert_eq!(std::fs::read(dir.join("current")).unwrap(), b"a\nb\n");
    // A torn record (no final newline) is closed and marked at the next open.
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("current"))
        .unwrap()
        .write_all(b"tor")
        .unwrap();
    log_ok(&["--format", "plain"], &dir, b"c\n");
    assert_eq!(
        std::fs::read(dir.join("current")).unwrap(),
        b"a\nb\ntor\ntend: previous record was cut short (tend restarted)\nc\n"
    );
}

#[test]
fn stdin_is_left_blocking_as_it_was_found() {
    // stdin's O_NONBLOCK lives on a file description shared with the caller (a shell or a
    // terminal): tend log must hand it back the way it found it.
    use std::os::fd::AsRawFd;
    let dir = std::env::temp_dir().join(format!("tend-nb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (r, w) = nix::unistd::pipe().unwrap();
    nix::unistd::write(&w, b"a\n").unwrap();
    drop(w);
    let reader = std::fs::File::from(r);
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tend"))
        .args(["log", "--format", "plain"])
        .arg(&dir)
        .stdin(reader.try_clone().unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    // SAFETY: F_GETFL on an fd this test owns.
    let flags = unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_GETFL) };
    assert_eq!(
        flags & libc::O_NONBLOCK,
        0,
        "tend log left stdin non-blocking"
    );
    assert_eq!(std::fs::read_to_string(dir.join("current")).unwrap(), "a\n");
    let _ = std::fs::remove_dir_all(&dir);
}
