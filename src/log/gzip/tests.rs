//! Round trips, interoperability with gzip(1) and flate2, and corrupt input.

use super::{GzDecoder, GzEncoder, crc32};
use proptest::prelude::*;
use proptest::test_runner::Config;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn gunzip(gz: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    GzDecoder::new(gz).read_to_end(&mut out)?;
    Ok(out)
}

/// Log-like lines: timestamps, a few repeated words, counters, some noise.
fn log_text(n: usize, seed: u64) -> Vec<u8> {
    let words = [
        "GET",
        "POST",
        "/api/v1/items",
        "200",
        "404",
        "user=alice",
        "user=bob",
        "ok",
    ];
    let mut x = seed | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut v = Vec::new();
    for i in 0..n {
        let r = rnd();
        write!(
            v,
            "2026-12-02T06:{:02}:{:02}.{:06}Z stdout F ",
            i / 60 % 60,
            i % 60,
            r % 1_000_000
        )
        .unwrap();
        for k in 0..(r % 6 + 2) {
            v.extend_from_slice(words[((r >> (8 + 3 * k)) % 8) as usize].as_bytes());
            v.push(b' ');
        }
        writeln!(v, "latency_us={} req={i}", rnd() % 5000).unwrap();
    }
    v
}

fn has_gzip() -> bool {
    Command::new("gzip")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok()
}

/// Runs gzip(1) with `args`, `input` on stdin; its stdout. The input goes through a file:
/// no writer thread racing the reader of stdout.
fn system_gzip(args: &[&str], input: &[u8]) -> Vec<u8> {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let f = std::env::temp_dir().join(format!("tend-gz-in-{}-{n}", std::process::id()));
    std::fs::write(&f, input).unwrap();
    let out = Command::new("gzip")
        .args(args)
        .stdin(std::fs::File::open(&f).unwrap())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&f);
    assert!(out.status.success(), "gzip {args:?} failed");
    out.stdout
}

#[test]
fn crc32_check_value() {
    assert_eq!(crc32(0, b"123456789"), 0xcbf4_3926);
    assert_eq!(crc32(crc32(0, b"12345"), b"6789"), 0xcbf4_3926);
}

#[test]
fn empty_and_small_inputs_round_trip() {
    for data in [&b""[..], b"a", b"aaaa", b"abcabcabcabc\n"] {
        assert_eq!(gunzip(&gzip(data)).unwrap(), data);
    }
}

#[test]
fn large_log_text_round_trips_through_gzip_1_both_ways() {
    let text = log_text(100_000, 7);
    let ours = gzip(&text);
    assert!(
        ours.len() * 5 < text.len(),
        "ratio {} / {}",
        ours.len(),
        text.len()
    );
    assert_eq!(gunzip(&ours).unwrap(), text);
    let mut d = Vec::new();
    flate2::read::GzDecoder::new(&ours[..])
        .read_to_end(&mut d)
        .unwrap();
    assert_eq!(d, text, "flate2 decodes ours");
    if has_gzip() {
        assert_eq!(
            system_gzip(&["-d", "-c"], &ours),
            text,
            "gzip -d decodes ours"
        );
        for level in ["-1", "-6", "-9"] {
            let theirs = system_gzip(&[level, "-c"], &text);
            assert_eq!(gunzip(&theirs).unwrap(), text, "ours decodes gzip {level}");
        }
    }
}

#[test]
fn decodes_stored_blocks_named_headers_and_several_members() {
    let text = log_text(2000, 3);
    let mut noise = vec![0u8; 200_000];
    let mut x = 88172645463325252u64;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    // flate2 level 0 writes stored blocks only.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    e.write_all(&text).unwrap();
    let mut all = e.finish().unwrap();
    all.extend(gzip(&noise));
    let mut want = text.clone();
    want.extend(&noise);
    if has_gzip() {
        // gzip stores incompressible input, and sets FNAME when it names a file.
        let dir = std::env::temp_dir().join(format!("tend-gz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("named.log");
        std::fs::write(&f, &noise).unwrap();
        let st = Command::new("gzip")
            .arg("-k")
            .arg("-f")
            .arg(&f)
            .status()
            .unwrap();
        assert!(st.success());
        let named = std::fs::read(dir.join("named.log.gz")).unwrap();
        assert_ne!(named[3] & 8, 0, "gzip set FNAME");
        all.extend(named);
        want.extend(&noise);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert_eq!(gunzip(&all).unwrap(), want);
}

#[test]
fn one_byte_writes_and_reads_give_the_same_bytes() {
    let text = log_text(3000, 11);
    let mut e = GzEncoder::new(Vec::new());
    for b in &text {
        assert_eq!(e.write(std::slice::from_ref(b)).unwrap(), 1);
    }
    let gz = e.finish().unwrap();
    assert_eq!(gz, gzip(&text), "chunking does not change the output");
    let mut d = GzDecoder::new(&gz[..]);
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while d.read(&mut b).unwrap() == 1 {
        out.push(b[0]);
    }
    assert_eq!(out, text);
}

#[test]
fn corrupt_input_is_an_error() {
    let gz = gzip(&log_text(500, 5));
    assert!(gunzip(b"").is_err(), "empty");
    assert!(gunzip(b"not gzip at all").is_err(), "bad magic");
    assert!(gunzip(&gz[..gz.len() - 3]).is_err(), "truncated trailer");
    assert!(gunzip(&gz[..gz.len() / 2]).is_err(), "truncated data");
    let mut bad_crc = gz.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 1;
    assert!(gunzip(&bad_crc).is_err(), "CRC");
    let mut junk = gz.clone();
    junk.extend_from_slice(b"junk");
    assert!(gunzip(&junk).is_err(), "trailing garbage");
    // Block type 3 is reserved.
    assert!(gunzip(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0b111, 0, 0]).is_err());
}

/// Bytes that compress somewhat: runs and repeats mixed with noise.
fn mixed() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        (any::<u8>(), 0usize..2000).prop_map(|(b, n)| vec![b; n]),
        (0u64..1000, 1usize..400).prop_map(|(s, n)| log_text(n, s)),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

fn config() -> Config {
    Config {
        cases: (Config::default().cases / 4).max(16),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn round_trip(data in mixed()) {
        let gz = gzip(&data);
        prop_assert_eq!(&gunzip(&gz).unwrap(), &data);
        let mut d = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut d).unwrap();
        prop_assert_eq!(&d, &data);
    }

    #[test]
    fn decodes_flate2_at_any_level(data in mixed(), level in 0u32..10) {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(&data).unwrap();
        prop_assert_eq!(&gunzip(&e.finish().unwrap()).unwrap(), &data);
    }

    #[test]
    fn damaged_input_never_panics(data in mixed(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        let mut gz = gzip(&data);
        for (at, x) in flips {
            let n = gz.len();
            gz[at % n] ^= x | 1;
        }
        gz.truncate(cut % (gz.len() + 1));
        // Either an error or some bytes; the window bounds the output per step, so a
        // corrupt length can not make it grow without end.
        let mut out = Vec::new();
        let _ = GzDecoder::new(&gz[..]).take(64 << 20).read_to_end(&mut out);
    }
}

/// CPU seconds this thread has used (utime + stime from /proc, in clock ticks of 10 ms).
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) as f64 / 100.0
}

/// Speed (per CPU second) and ratio on a file: `TEND_GZ_BENCH=FILE cargo test --release
/// --bin tend gzip::tests::bench -- --ignored --nocapture` (compare with `gzip -6`).
#[test]
#[ignore]
fn bench() {
    let Ok(path) = std::env::var("TEND_GZ_BENCH") else {
        return;
    };
    let data = std::fs::read(path).unwrap();
    let t = cpu();
    let gz = gzip(&data);
    let c = cpu() - t;
    let t = cpu();
    let back = gunzip(&gz).unwrap();
    let d = cpu() - t;
    assert_eq!(back, data);
    let t = cpu();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&data).unwrap();
    let fgz = e.finish().unwrap();
    let fc = cpu() - t;
    let t = cpu();
    let mut back = Vec::new();
    flate2::read::MultiGzDecoder::new(&fgz[..])
        .read_to_end(&mut back)
        .unwrap();
    let fd = cpu() - t;
    let mb = data.len() as f64 / 1e6;
    println!(
        "flate2 -6: out {} ratio {:.4} compress {:.1} MB/s inflate {:.1} MB/s (per CPU second)",
        fgz.len(),
        fgz.len() as f64 / data.len() as f64,
        mb / fc,
        mb / fd
    );
    println!(
        "in {} out {} ratio {:.4} compress {:.1} MB/s inflate {:.1} MB/s (per CPU second)",
        data.len(),
        gz.len(),
        gz.len() as f64 / data.len() as f64,
        mb / c,
        mb / d
    );
}
