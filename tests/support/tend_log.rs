//! Helpers of the `tend log` tests: running the job, reading a log directory back.

use super::tend;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// Gives `c` a stdin to write to and a stdout and stderr to read back.
pub fn piped(c: &mut Command) -> &mut Command {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
}

/// `tend log ARGS DIR`, [`piped`].
fn log_command(args: &[&str], dir: &Path) -> Command {
    let mut c = Command::new(tend());
    piped(c.arg("log").args(args).arg(dir));
    c
}

/// Runs `tend log ARGS DIR` with `input` on stdin.
pub fn log(args: &[&str], dir: &Path, input: &[u8]) -> Output {
    let mut child = log_command(args, dir).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    w.join().unwrap();
    out
}

/// Like [`log`], asserting exit 0 and returning stderr.
pub fn log_ok(args: &[&str], dir: &Path, input: &[u8]) -> String {
    let out = log(args, dir, input);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    err
}

/// Archive names (`@…`) in name order.
pub fn archives(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('@'))
        .collect();
    v.sort();
    v
}

/// Archives in name order then `current`, concatenated (gz archives decompressed).
pub fn concat(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for a in archives(dir) {
        let bytes = std::fs::read(dir.join(&a)).unwrap();
        if a.ends_with(".gz") {
            let mut d = flate2::read::GzDecoder::new(&bytes[..]);
            std::io::Read::read_to_end(&mut d, &mut all).unwrap();
        } else {
            all.extend_from_slice(&bytes);
        }
    }
    all.extend_from_slice(&std::fs::read(dir.join("current")).unwrap_or_default());
    all
}

/// `true` if `s` is exactly `YYYY-MM-DDTHH:MM:SS.<frac digits>Z`.
pub fn is_stamp(s: &str, frac: usize) -> bool {
    let b = s.as_bytes();
    if b.len() != 20 + frac + 1 {
        return false;
    }
    b.iter().enumerate().all(|(i, &c)| match i {
        4 | 7 => c == b'-',
        10 => c == b'T',
        13 | 16 => c == b':',
        19 => c == b'.',
        _ if i == b.len() - 1 => c == b'Z',
        _ => c.is_ascii_digit(),
    })
}

/// Replaces the leading cri/ts timestamp of every line by `TS`, asserting its shape.
pub fn mask_stamps(text: &str, frac: usize) -> String {
    let n = 21 + frac;
    text.lines()
        .map(|l| {
            assert!(is_stamp(&l[..n], frac), "bad timestamp in {l:?}");
            format!("TS{}\n", &l[n..])
        })
        .collect()
}

/// Strips cri prefixes and rebuilds the original bytes (joining P pieces).
pub fn uncri(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in data.split_inclusive(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\n").unwrap();
        let s = std::str::from_utf8(&line[..30]).unwrap();
        assert!(is_stamp(s, 9), "{s}");
        let tag = &line[30..40];
        assert!(
            tag == b" stdout F " || tag == b" stdout P ",
            "{:?}",
            String::from_utf8_lossy(line)
        );
        out.extend_from_slice(&line[40..]);
        if tag[8] == b'F' {
            out.push(b'\n');
        }
    }
    out
}

/// Spawns `tend log ARGS DIR` with a piped stdin left open.
pub fn spawn_log(args: &[&str], dir: &Path) -> Child {
    log_command(args, dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// `seq 1 n` output.
pub fn seq(n: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 1..=n {
        writeln!(v, "{i}").unwrap();
    }
    v
}
