//! Attacks on the log engine's promises (SPEC §2-4): torn files at every offset, hostile
//! input, planted files. Each output file is checked by a strict parser of its format.

mod support;
use std::time::Duration;
use support::*;

/// One parsed record: stream, complete (`F` / json `log` ending in `\n`), content.
#[derive(Debug, Clone, PartialEq)]
struct Rec {
    stream: String,
    full: bool,
    text: Vec<u8>,
}

/// Parses `data` strictly in `format`, panicking (naming `what`) on anything a collector
/// would reject: a missing final `\n`, a bad time, an unknown stream or tag, a `P` piece
/// followed by a record of the other stream or by nothing.
fn strict(format: &str, data: &[u8], what: &str) -> Vec<Rec> {
    let out = parse(format, data, what);
    if let Some(last) = out.last() {
        assert!(last.full, "{what}: ends with a dangling piece {last:?}");
    }
    out
}

/// [`strict`] except that the last record may be a piece.
fn parse(format: &str, data: &[u8], what: &str) -> Vec<Rec> {
    let show = || String::from_utf8_lossy(data).into_owned();
    assert!(
        data.is_empty() || data.ends_with(b"\n"),
        "{what}: does not end with \\n: {}",
        show()
    );
    let mut out: Vec<Rec> = Vec::new();
    let Some(body) = data.strip_suffix(b"\n") else {
        return out;
    };
    for line in body.split(|&b| b == b'\n') {
        let rec = match format {
            "cri" => {
                let ok = line.len() >= 40
                    && std::str::from_utf8(&line[..30]).is_ok_and(|s| is_stamp(s, 9))
                    && matches!(
                        &line[30..40],
                        b" stdout F " | b" stdout P " | b" stderr F " | b" stderr P "
                    );
                assert!(
                    ok,
                    "{what}: bad cri record {:?}",
                    String::from_utf8_lossy(line)
                );
                Rec {
                    stream: String::from_utf8(line[31..37].to_vec()).unwrap(),
                    full: line[38] == b'F',
                    text: line[40..].to_vec(),
                }
            }
            "json" => {
                let v: serde_json::Value = serde_json::from_slice(line).unwrap_or_else(|e| {
                    panic!("{what}: bad json {e}: {:?}", String::from_utf8_lossy(line))
                });
                let o = v.as_object().unwrap();
                let keys: Vec<&str> = o.keys().map(|k| k.as_str()).collect();
                assert_eq!(keys.len(), 3, "{what}: keys {keys:?}");
                let log = o["log"].as_str().unwrap().as_bytes().to_vec();
                let stream = o["stream"].as_str().unwrap().to_owned();
                assert!(stream == "stdout" || stream == "stderr", "{what}: {stream}");
                assert!(is_stamp(o["time"].as_str().unwrap(), 9), "{what}: {v}");
                let full = log.ends_with(b"\n");
                let text = log.strip_suffix(b"\n").unwrap_or(&log).to_vec();
                Rec { stream, full, text }
            }
            "ts" => {
                let ok = line.len() >= 28
                    && std::str::from_utf8(&line[..27]).is_ok_and(|s| is_stamp(s, 6))
                    && line[27] == b' ';
                assert!(
                    ok,
                    "{what}: bad ts record {:?}",
                    String::from_utf8_lossy(line)
                );
                Rec {
                    stream: "stdout".into(),
                    full: true,
                    text: line[28..].to_vec(),
                }
            }
            _ => Rec {
                stream: "stdout".into(),
                full: true,
                text: line.to_vec(),
            },
        };
        if let Some(prev) = out.last() {
            assert!(
                prev.full || prev.stream == rec.stream,
                "{what}: piece {prev:?} followed by the other stream's {rec:?}"
            );
        }
        out.push(rec);
    }
    out
}

fn marker_n(r: &Rec) -> Option<u64> {
    let t = std::str::from_utf8(&r.text).ok()?;
    t.strip_prefix("tend: cut ")?
        .strip_suffix(" bytes of a record torn by a crash (tend restarted)")?
        .parse()
        .ok()
}

/// Truncates `current` at every offset of its last 3 records, restarts `tend log`, and
/// checks: strict format, the complete records before the cut kept byte for byte, then
/// exactly the closing `F` (when a piece dangles), the marker (when torn), the new record.
fn truncate_every_offset(format: &str) {
    let t = TempDir::new(&format!("atk-trunc-{format}"));
    let src = t.path().join("src");
    let args = ["--format", format, "--max-line", "16"];
    let input = format!("first\n{}\nxy", "é".repeat(20));
    log_ok(&args, &src, input.as_bytes());
    let orig = std::fs::read(src.join("current")).unwrap();
    strict(format, &orig, "original");
    let ends = line_ends(&orig);
    let from = ends[ends.len().saturating_sub(4)];
    let dir = t.path().join("d");
    for k in from..=orig.len() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("current"), &orig[..k]).unwrap();
        let err = log_ok(&args, &dir, b"after\n");
        let what = format!("{format} cut at {k}/{}", orig.len());
        let got = std::fs::read(dir.join("current")).unwrap();
        let recs = strict(format, &got, &what);
        let kept = ends.iter().copied().filter(|&e| e <= k).max().unwrap_or(0);
        assert_eq!(
            &got[..kept],
            &orig[..kept],
            "{what}: complete records changed"
        );
        let prior = parse(format, &orig[..kept], &what);
        let before = prior.len();
        let mut rest = &recs[before..];
        if format == "plain" {
            if kept < k {
                assert_eq!(rest[0].text, &orig[kept..k], "{what}");
                assert!(
                    String::from_utf8_lossy(&rest[1].text).starts_with("tend: "),
                    "{what}"
                );
                rest = &rest[2..];
            }
        } else {
            // The dangling piece is closed first: a marker (stderr) right after a stdout
            // `P` would be the other stream's record between a `P` and its `F`.
            if prior.last().is_some_and(|r| !r.full) {
                assert!(rest[0].full && rest[0].text.is_empty(), "{what}: {rest:?}");
                rest = &rest[1..];
            }
            if kept < k {
                assert_eq!(
                    marker_n(&rest[0]),
                    Some((k - kept) as u64),
                    "{what}: {rest:?}"
                );
                rest = &rest[1..];
            }
        }
        assert_eq!(
            rest.len(),
            1,
            "{what}: extra records {rest:?}; stderr {err}"
        );
        assert_eq!(rest[0].text, b"after", "{what}");
    }
}

#[test]
fn truncate_cri_at_every_offset() {
    truncate_every_offset("cri");
}

#[test]
fn truncate_json_at_every_offset() {
    truncate_every_offset("json");
}

#[test]
fn truncate_ts_at_every_offset() {
    truncate_every_offset("ts");
}

#[test]
fn truncate_plain_at_every_offset() {
    truncate_every_offset("plain");
}

/// The `i`-th line of run `r` in the kill test: long enough, now and then, to be split,
/// with multi-byte characters that a json cut must not break.
fn kill_line(r: usize, i: u64) -> String {
    let len = match i % 7 {
        0 => 20_000 + (i as usize * 131) % 30_000,
        _ => (i as usize * 37) % 300,
    };
    let mut s = format!("r{r}-{i}-");
    let chars = ['a', 'é', '€', '😀'];
    let mut k = i as usize;
    while s.len() < len {
        s.push(chars[k % 4]);
        k += 1;
    }
    s
}

/// `kill -9` of `tend log` at random moments during long (split) lines and rotations, in
/// each format that tags records: every file parses strictly on its own (no piece left
/// dangling at a file's end), every line is whole or a prefix of what was written (only the
/// line being written at the kill), none twice, each run's lines a gapless prefix.
fn kill_9_split_lines(format: &str) {
    use std::io::Write;
    let t = TempDir::new(&format!("atk-kill-{format}"));
    let dir = t.path().join("d");
    let args = [
        "--format",
        format,
        "--rotate-size",
        "64KiB",
        "--keep",
        "100000",
    ];
    let mut rng = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    let runs = 5;
    for run in 0..runs {
        let mut child = spawn_log(&args, &dir);
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            for i in 0u64.. {
                let mut l = kill_line(run, i).into_bytes();
                l.push(b'\n');
                // Several writes per line: a kill can fall between the pieces.
                for part in l.chunks(7000) {
                    if stdin.write_all(part).is_err() {
                        return;
                    }
                }
            }
        });
        let before = if dir.exists() { concat(&dir).len() } else { 0 };
        assert!(wait_for(Duration::from_secs(30), || concat(&dir).len()
            > before + 100_000));
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(std::time::Duration::from_millis(rng % 100));
        child.kill().unwrap();
        child.wait().unwrap();
        writer.join().unwrap();
    }
    log_ok(&args, &dir, b"final\n");

    let mut files = archives(&dir);
    files.push("current".into());
    let mut lines: Vec<(String, Vec<u8>, bool)> = Vec::new(); // (file, text, complete)
    for f in &files {
        let data = std::fs::read(dir.join(f)).unwrap();
        let recs = strict(format, &data, f);
        // Join pieces into lines; a line never spans two files.
        let mut cur: Option<Vec<u8>> = None;
        for r in recs {
            let mut text = cur.take().unwrap_or_default();
            text.extend_from_slice(&r.text);
            if r.full {
                lines.push((f.clone(), text, true));
            } else {
                cur = Some(text);
            }
        }
        assert!(cur.is_none(), "{f}: ends inside a line");
    }
    let mut next = vec![0u64; runs];
    let mut cut_short = vec![false; runs];
    let mut seen = std::collections::HashSet::new();
    for (f, text, _) in &lines {
        // A cri piece may end inside a character: compare bytes, read the header lossily.
        let s = String::from_utf8_lossy(text).into_owned();
        if s.starts_with("tend: ") || s == "final" || s.is_empty() {
            continue;
        }
        let (r, rest) = s[1..]
            .split_once('-')
            .unwrap_or_else(|| panic!("{f}: {s:.80}"));
        let r: usize = r.parse().unwrap();
        let i: u64 = rest.split_once('-').unwrap().0.parse().unwrap();
        assert!(seen.insert((r, i)), "{f}: line r{r}-{i} twice");
        let want = kill_line(r, i);
        assert!(
            !cut_short[r],
            "{f}: r{r}-{i} after a line of its run cut short"
        );
        assert_eq!(i, next[r], "{f}: gap or reorder at r{r}-{i}");
        next[r] += 1;
        if text.as_slice() != want.as_bytes() {
            // Only the line being written at the kill may be a prefix.
            assert!(want.as_bytes().starts_with(text), "{f}: r{r}-{i} corrupted");
            cut_short[r] = true;
        }
    }
    assert!(next.iter().all(|&n| n > 0), "{next:?}");
    assert!(archives(&dir).len() > runs, "rotations happened");
}

#[test]
fn kill_9_split_lines_cri() {
    kill_9_split_lines("cri");
}

#[test]
fn kill_9_split_lines_json() {
    kill_9_split_lines("json");
}

/// Feeds `n` lines one at a time (each its own batch) to `tend log --tee DIR` whose stdout
/// is `out`; returns tend's stderr.
fn tee_slowly(dir: &std::path::Path, out: std::process::Stdio, n: usize, pad: usize) -> String {
    use std::io::{Read, Write};
    let mut child = std::process::Command::new(tend())
        .args(["log", "--tee"])
        .arg(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..n {
        writeln!(stdin, "line {i}{}", "x".repeat(pad)).unwrap();
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
    drop(stdin);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{err}");
    assert_eq!(
        uncri(&std::fs::read(dir.join("current")).unwrap()).len(),
        (0..n)
            .map(|i| format!("line {i}\n").len() + pad)
            .sum::<usize>(),
        "the file is complete"
    );
    err
}

/// A `--tee` stdout whose reader is gone (EPIPE) or that fails every write (`/dev/full`)
/// is reported once, not once per record: 1,999 notes in a row broke it.
#[test]
fn tee_to_a_broken_stdout_is_reported_once() {
    let t = TempDir::new("atk-tee-broken");
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    let err = tee_slowly(&t.path().join("pipe"), w.into(), 600, 0);
    let notes = err.lines().filter(|l| l.contains("--tee")).count();
    assert!(notes == 1 && err.contains("stopped taking copies"), "{err}");

    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let err = tee_slowly(&t.path().join("full"), full.into(), 600, 0);
    let notes = err.lines().filter(|l| l.contains("--tee")).count();
    assert!(notes == 1 && err.contains("stopped taking copies"), "{err}");
}

/// A `--tee` stdout nobody reads: once its queue is full every record is dropped, and the
/// note saying so comes at most once a second (it came once per record).
#[test]
fn tee_drop_notes_are_rate_limited() {
    let t = TempDir::new("atk-tee-unread");
    let (r, w) = nix::unistd::pipe().unwrap();
    // 1,000 records of 1 KiB over about a second: the 64 KiB pipe and 256 KiB queue take
    // about 320 of them.
    let start = std::time::Instant::now();
    let err = tee_slowly(&t.path().join("d"), w.into(), 1000, 1024);
    let secs = start.elapsed().as_secs();
    drop(r);
    let notes = err.lines().filter(|l| l.contains("--tee dropped")).count();
    assert!(
        notes >= 1 && notes as u64 <= secs + 2,
        "{notes} notes in {secs} s: {err}"
    );
}

/// An archive replaced by a FIFO between the compressor's listing and its open (while it
/// compresses an older, larger archive): `tend log` must still exit on SIGTERM. The
/// compressor's blocking open of the FIFO made the shutdown wait forever.
#[test]
fn a_fifo_swapped_in_for_an_archive_does_not_hang_shutdown() {
    let t = TempDir::new("atk-gz-fifo");
    let dir = t.path().join("d");
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("@20200101T000000.000000000Z.log");
    let small = dir.join("@20200102T000000.000000000Z.log");
    let tmp = dir.join("@20200101T000000.000000000Z.log.gz.tmp");
    // Enough to keep the compressor busy for a while in a debug build.
    std::fs::write(&big, seq(600_000)).unwrap();
    std::fs::write(&small, b"small\n").unwrap();
    for _ in 0..5 {
        let mut child = spawn_log(&["--compress", "gzip"], &dir);
        let won = wait_for(Duration::from_secs(30), || tmp.exists()) && {
            std::fs::remove_file(&small).unwrap();
            nix::unistd::mkfifo(&small, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
            // Still compressing the big one: the FIFO is opened after the swap.
            tmp.exists()
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        if !won {
            // The big archive was done first: put things back and try again.
            assert!(wait_for(Duration::from_secs(30), || !tmp.exists()));
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
            child.wait().unwrap();
            let _ = std::fs::remove_file(&small);
            let _ = std::fs::remove_file(dir.join("@20200101T000000.000000000Z.log.gz"));
            std::fs::write(&big, seq(600_000)).unwrap();
            std::fs::write(&small, b"small\n").unwrap();
            continue;
        }
        assert!(
            wait_for(Duration::from_secs(60), || !tmp.exists()),
            "the big archive is compressed"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let exited = wait_for(Duration::from_secs(10), || {
            child.try_wait().unwrap().is_some()
        });
        if !exited {
            let _ = child.kill();
        }
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        child.wait().unwrap();
        assert!(exited, "tend log hung at SIGTERM; stderr: {err}");
        assert!(err.contains("not a regular file"), "{err}");
        return;
    }
    panic!("never swapped the FIFO in while the compressor was busy");
}

/// `current` deleted and replaced by a symlink while `tend log` writes: the next rotation
/// renamed the symlink into an archive (`@….log -> /anywhere`) without a word. Rotation
/// must check that the name `current` still is the file being written, and recreate it.
#[test]
fn a_symlink_planted_as_current_is_never_rotated_into_an_archive() {
    use std::io::Write;
    let t = TempDir::new("atk-cur-link");
    let dir = t.path().join("d");
    let secret = t.path().join("secret");
    std::fs::write(&secret, "SECRET\n").unwrap();
    let mut child = spawn_log(&["--rotate-size", "4KiB", "--keep", "1000"], &dir);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"before\n").unwrap();
    assert!(wait_for(Duration::from_secs(30), || std::fs::read(
        dir.join("current")
    )
    .is_ok_and(|d| !d.is_empty())));
    std::fs::remove_file(dir.join("current")).unwrap();
    std::os::unix::fs::symlink(&secret, dir.join("current")).unwrap();
    // Well past --rotate-size at once: rotation comes long before the periodic check.
    for i in 0..2000 {
        writeln!(stdin, "after {i}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "SECRET\n");
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        assert!(
            !e.file_type().unwrap().is_symlink(),
            "{:?} is a symlink; stderr: {err}",
            e.file_name()
        );
    }
    assert!(err.contains("current"), "said nothing: {err}");
    let text = String::from_utf8(concat(&dir)).unwrap();
    assert!(
        text.ends_with(" stdout F after 1999\n"),
        "{}",
        &text[text.len() - 200..]
    );
}

/// A symlink planted as `lock` made `tend log` (and a whole `tend init`) refuse to start,
/// while one planted as `current` is removed: remove it likewise, never touching its target.
#[test]
fn a_symlink_planted_as_lock_is_removed_not_followed() {
    let t = TempDir::new("atk-lock-link");
    let dir = t.path().join("d");
    std::fs::create_dir_all(&dir).unwrap();
    let secret = t.path().join("secret");
    std::fs::write(&secret, "SECRET\n").unwrap();
    std::os::unix::fs::symlink(&secret, dir.join("lock")).unwrap();
    let err = log_ok(&[], &dir, b"hello\n");
    assert!(err.contains("lock: is a symlink"), "{err}");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "SECRET\n");
    let lock = std::fs::symlink_metadata(dir.join("lock")).unwrap();
    assert!(lock.file_type().is_file());
    assert!(
        String::from_utf8(concat(&dir))
            .unwrap()
            .ends_with(" stdout F hello\n")
    );
}
