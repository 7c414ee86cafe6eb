//! Bounded fuzzing of the parsers and encoders, as property tests (proptest) that run in CI.
//!
//! The toolchain is stable-only, so libFuzzer is out; these run as ordinary tests. The case
//! count comes from `PROPTEST_CASES` (proptest's default, 256, under plain `cargo test`;
//! `scripts/fuzz.sh` raises it). Failures are not persisted to files: each defect found is
//! pinned by a plain `#[test]` with its minimal input, next to the code it concerns or at
//! the end of each module here. Every oracle below is written from SPEC.md, not from the
//! code under test; the engine's own functions produce the output being checked.

use proptest::prelude::*;
use proptest::test_runner::Config;

/// proptest's configuration (cases from `PROPTEST_CASES`) with `1/scale` of the cases, for
/// targets that touch the file system, and no regression files written into `src/`.
fn config(scale: u32) -> Config {
    let base = Config::default();
    Config {
        cases: (base.cases / scale).max(16),
        failure_persistence: None,
        ..base
    }
}

/// Bytes that stress parsers: controls, separators, invalid and multi-byte UTF-8.
fn nasty_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => any::<u8>(),
        2 => Just(b'a'),
        2 => Just(b'\n'),
        1 => Just(b'\r'),
        1 => Just(0u8),
        1 => Just(b' '),
        1 => Just(0xff),
        1 => Just(0xe2),
        1 => Just(0x82),
        1 => Just(0xac),
    ]
}

/// Text that stresses parsers: controls, quotes, separators, non-ASCII.
fn nasty_string(max: usize) -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        4 => any::<char>(),
        4 => proptest::char::range('a', 'z'),
        2 => proptest::char::range('0', '9'),
        1 => Just('\n'),
        1 => Just('\r'),
        1 => Just('\0'),
        1 => Just(' '),
        1 => Just('\t'),
        1 => Just('='),
        1 => Just('/'),
        1 => Just('.'),
        1 => Just('-'),
        1 => Just(':'),
        1 => Just('"'),
        1 => Just('\u{2028}'),
    ];
    proptest::collection::vec(ch, 0..max).prop_map(|v| v.into_iter().collect())
}

/// Independent check of `[A-Za-z0-9][A-Za-z0-9._-]{0,252}` (SPEC §2), character by character.
fn spec_component(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_uppercase() || c.is_ascii_digit();
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if alnum(c) => {}
        _ => return false,
    }
    let rest: Vec<char> = chars.collect();
    rest.len() <= 252 && rest.iter().all(|&c| alnum(c) || ".-_".contains(c))
}

/// Framer and encoders (`log/frame.rs`, `log/format.rs`).
mod log_records {
    use super::*;
    use crate::log::Stream;
    use crate::log::batch::Batch;
    use crate::log::format::{Stamp, render};
    use crate::log::frame::{Framer, Record};
    use crate::log::options::Format;
    use std::time::{Duration, UNIX_EPOCH};

    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Rec {
        line: Vec<u8>,
        partial: bool,
        newline: bool,
    }

    /// The records SPEC §3 asks for, derived from whole lines: each line cut into pieces of
    /// `max` bytes, all but the last partial; a final line without `\n` has no newline.
    fn expected(input: &[u8], max: usize) -> Vec<Rec> {
        let mut lines: Vec<(&[u8], bool)> =
            input.split(|&b| b == b'\n').map(|l| (l, true)).collect();
        // What follows the last `\n` is a line only if it is not empty (EOF mid-line).
        match lines.pop() {
            Some((last, _)) if !last.is_empty() => lines.push((last, false)),
            _ => {}
        }
        let mut out = Vec::new();
        for (line, newline) in lines {
            let mut pieces: Vec<&[u8]> = line.chunks(max).collect();
            if pieces.is_empty() {
                pieces.push(&[]);
            }
            let n = pieces.len();
            for (i, p) in pieces.into_iter().enumerate() {
                let last = i + 1 == n;
                out.push(Rec {
                    line: p.to_vec(),
                    partial: !last,
                    newline: last && newline,
                });
            }
        }
        out
    }

    /// `input` cut at `cuts` (positions, any order, modulo its length).
    fn chunks<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut at: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        at.push(0);
        at.push(input.len());
        at.sort_unstable();
        at.windows(2).map(|w| &input[w[0]..w[1]]).collect()
    }

    /// Runs the real framer over `chunks`, checking `in_split` after every call: true exactly
    /// while the last record emitted is a `P` piece.
    fn frame(chunks: &[&[u8]], max: usize) -> Vec<Rec> {
        frame_with(Framer::new(max), chunks)
    }

    fn frame_with(mut f: Framer, chunks: &[&[u8]]) -> Vec<Rec> {
        let mut out: Vec<Rec> = Vec::new();
        let push = |out: &mut Vec<Rec>, r: Record<'_>| {
            out.push(Rec {
                line: r.line.to_vec(),
                partial: r.partial,
                newline: r.newline,
            })
        };
        for c in chunks {
            f.feed(c, &mut |r| push(&mut out, r));
            let open = out.last().is_some_and(|r| r.partial);
            assert_eq!(f.in_split(), open, "in_split after feeding {c:?}");
        }
        f.finish(&mut |r| push(&mut out, r));
        assert!(!f.in_split(), "in_split after finish");
        out
    }

    fn render_all(format: Format, stamp: &Stamp, stream: Stream, recs: &[Rec]) -> Vec<u8> {
        let mut out = Batch::with_capacity(0);
        for r in recs {
            let rec = Record {
                line: &r.line,
                partial: r.partial,
                newline: r.newline,
            };
            render(format, stamp, stream, rec, &mut out);
        }
        out.as_slice().to_vec()
    }

    /// Input: bytes with newlines, runs of about `max_line` bytes, multi-byte characters.
    fn input() -> impl Strategy<Value = Vec<u8>> {
        let segment = prop_oneof![
            4 => proptest::collection::vec(nasty_byte(), 0..24),
            2 => (0usize..140).prop_map(|n| vec![b'x'; n]),
            1 => Just(b"\n".to_vec()),
            1 => Just("é€😀".as_bytes().to_vec()),
            1 => Just(vec![0xf0, 0x9f, 0x98]),
        ];
        proptest::collection::vec(segment, 0..12).prop_map(|v| v.concat())
    }

    fn max_line() -> impl Strategy<Value = usize> {
        prop_oneof![8 => 16usize..=64, 1 => Just(16 * 1024)]
    }

    /// A timestamp anywhere in years 1970..=9999, nanosecond resolution.
    fn time() -> impl Strategy<Value = Duration> {
        (0u64..253_402_300_800, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n))
    }

    /// `t` as RFC 3339 UTC with nanoseconds, computed with the `time` crate's calendar.
    fn rfc3339(t: Duration) -> String {
        let dt = time::OffsetDateTime::from_unix_timestamp(t.as_secs() as i64)
            .expect("in range by construction");
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            t.subsec_nanos()
        )
    }

    fn stamp_at(t: Duration) -> Stamp {
        let mut s = Stamp::default();
        s.set(UNIX_EPOCH + t);
        s
    }

    /// Splits rendered output into its records; every record ends with exactly one `\n`.
    fn out_lines(out: &[u8]) -> Vec<&[u8]> {
        if out.is_empty() {
            return Vec::new();
        }
        assert_eq!(out.last(), Some(&b'\n'), "output ends mid-record");
        out[..out.len() - 1].split(|&b| b == b'\n').collect()
    }

    /// Parses one `cri` record: (stream, partial, payload).
    fn cri(line: &[u8], stamp: &str) -> (&'static str, bool, Vec<u8>) {
        assert!(line.len() >= 40, "short cri record {line:?}");
        assert_eq!(&line[..30], stamp.as_bytes());
        let (stream, partial) = match &line[30..40] {
            b" stdout P " => ("stdout", true),
            b" stdout F " => ("stdout", false),
            b" stderr P " => ("stderr", true),
            b" stderr F " => ("stderr", false),
            other => panic!("bad cri tag {other:?}"),
        };
        (stream, partial, line[40..].to_vec())
    }

    proptest! {
        #![proptest_config(config(1))]

        /// The framer against the SPEC's records, in any chunking; plain, cri, json and ts
        /// rendered from them.
        #[test]
        fn fuzz_frame_and_formats(
            data in input(),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
            max in max_line(),
            t in time(),
            err in any::<bool>(),
        ) {
            let stream = if err { Stream::Stderr } else { Stream::Stdout };
            let recs = frame(&chunks(&data, &cuts), max);
            prop_assert_eq!(&recs, &expected(&data, max));
            let stamp = stamp_at(t);
            let when = rfc3339(t);
            prop_assert_eq!(stamp.nanos(), when.as_bytes());

            // plain: the bytes as written, plus one `\n` if the input did not end with one.
            let mut want = data.clone();
            if !data.is_empty() && !data.ends_with(b"\n") {
                want.push(b'\n');
            }
            prop_assert_eq!(&render_all(Format::Plain, &stamp, stream, &recs), &want);

            // cri: shape, no payload over max, P pieces joined up to their F give the lines.
            let out = render_all(Format::Cri, &stamp, stream, &recs);
            let mut joined = Vec::new();
            let mut prev_partial = false;
            for (i, line) in out_lines(&out).into_iter().enumerate() {
                let (s, partial, payload) = cri(line, &when);
                prop_assert_eq!(s, stream.as_str());
                prop_assert!(payload.len() <= max);
                prop_assert_eq!(partial, recs[i].partial);
                if partial {
                    prop_assert_eq!(payload.len(), max, "a P piece carries exactly max_line");
                }
                joined.extend_from_slice(&payload);
                if !partial {
                    joined.push(b'\n');
                }
                prev_partial = partial;
            }
            prop_assert!(!prev_partial, "output ends with a P record");
            prop_assert_eq!(&joined, &want);

            // json: pieces cut at a character boundary at or before max; valid JSON, three
            // fields, `log` is each piece decoded on its own with invalid UTF-8 replaced by
            // U+FFFD, `\n` on every record but a `P` piece; valid text comes out unaltered.
            let jrecs = frame_with(Framer::new(max).utf8_cuts(true), &chunks(&data, &cuts));
            let mut raw = Vec::new();
            for r in &jrecs {
                prop_assert!(r.line.len() <= max && r.line.len() + 3 >= max || !r.partial);
                raw.extend_from_slice(&r.line);
                if !r.partial {
                    raw.push(b'\n');
                }
            }
            prop_assert_eq!(&raw, &want, "json pieces joined give the lines");
            let out = render_all(Format::Json, &stamp, stream, &jrecs);
            let lines = out_lines(&out);
            prop_assert_eq!(lines.len(), jrecs.len());
            let mut all_logs = String::new();
            for (line, r) in lines.into_iter().zip(&jrecs) {
                let v: serde_json::Value = serde_json::from_slice(line)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {line:?}")))?;
                let o = v.as_object().ok_or_else(|| TestCaseError::fail("not an object"))?;
                prop_assert_eq!(o.len(), 3);
                prop_assert_eq!(o["stream"].as_str(), Some(stream.as_str()));
                prop_assert_eq!(o["time"].as_str(), Some(when.as_str()));
                let mut log = String::from_utf8_lossy(&r.line).into_owned();
                if !r.partial {
                    log.push('\n');
                }
                prop_assert_eq!(o["log"].as_str(), Some(log.as_str()));
                all_logs.push_str(&log);
            }
            if let Ok(text) = std::str::from_utf8(&want) {
                prop_assert_eq!(all_logs.as_str(), text, "valid text altered");
            }

            // ts: microsecond stamp, one space, the payload untouched.
            let out = render_all(Format::Ts, &stamp, stream, &recs);
            let lines = out_lines(&out);
            prop_assert_eq!(lines.len(), recs.len());
            let ts = format!("{}Z ", &when[..26]);
            for (line, r) in lines.into_iter().zip(&recs) {
                prop_assert!(line.starts_with(ts.as_bytes()), "{:?}", line);
                prop_assert_eq!(&line[ts.len()..], &r.line[..]);
            }
        }

        /// The stamp's per-second cache: any sequence of times formats like a fresh stamp.
        #[test]
        fn fuzz_stamp_sequence(times in proptest::collection::vec(time(), 1..16), same in any::<bool>()) {
            let mut s = Stamp::default();
            let mut prev = None;
            for mut t in times {
                // Often stay within the same second, to exercise the cached date.
                if let (true, Some(p)) = (same, prev) {
                    t = Duration::new(Duration::as_secs(&p), t.subsec_nanos());
                }
                s.set(UNIX_EPOCH + t);
                let want = rfc3339(t);
                prop_assert_eq!(s.nanos(), want.as_bytes());
                prev = Some(t);
            }
        }

        /// Two streams into one `cri` file, scheduled the way the pump does (the stream in a
        /// split goes on alone): a P is followed only by its own stream's next piece, and each
        /// stream's records are still its lines.
        #[test]
        fn fuzz_two_streams_never_interleave_a_split(
            a in input(),
            b in input(),
            cuts_a in proptest::collection::vec(any::<usize>(), 0..6),
            cuts_b in proptest::collection::vec(any::<usize>(), 0..6),
            schedule in proptest::collection::vec(any::<bool>(), 0..24),
            max in 16usize..=32,
        ) {
            let stamp = stamp_at(Duration::new(1_795_386_601, 123_456_789));
            let mut inputs = [chunks(&a, &cuts_a).into_iter(), chunks(&b, &cuts_b).into_iter()];
            let mut framers = [Framer::new(max), Framer::new(max)];
            let mut open = [true, true];
            let streams = [Stream::Stdout, Stream::Stderr];
            let mut out = Batch::with_capacity(0);
            let mut pick = schedule.into_iter().chain(std::iter::repeat(false));
            while open[0] || open[1] {
                let mut i = usize::from(pick.next().unwrap_or(false));
                if !open[i] || framers[1 - i].in_split() {
                    i = 1 - i;
                }
                prop_assert!(open[i]);
                let (framer, stream) = (&mut framers[i], streams[i]);
                let mut emit = |r: Record<'_>| render(Format::Cri, &stamp, stream, r, &mut out);
                match inputs[i].next() {
                    Some(c) => framer.feed(c, &mut emit),
                    None => {
                        framer.finish(&mut emit);
                        open[i] = false;
                    }
                }
            }
            let when = "2026-11-22T22:30:01.123456789Z";
            let mut per_stream: [Vec<Rec>; 2] = [Vec::new(), Vec::new()];
            let mut split_of: Option<&str> = None;
            for line in out_lines(out.as_slice()) {
                let (s, partial, payload) = cri(line, when);
                if let Some(prev) = split_of {
                    prop_assert_eq!(prev, s, "a record of the other stream inside a split");
                }
                split_of = partial.then_some(s);
                per_stream[usize::from(s == "stderr")].push(Rec { line: payload, partial, newline: false });
            }
            for (recs, data) in per_stream.iter().zip([&a, &b]) {
                let want: Vec<(Vec<u8>, bool)> =
                    expected(data, max).into_iter().map(|r| (r.line, r.partial)).collect();
                let got: Vec<(Vec<u8>, bool)> =
                    recs.iter().map(|r| (r.line.clone(), r.partial)).collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}

/// Sizes, durations (`units.rs`) and the log flags (`LogOptions::set`, `apply_lines`).
mod units_and_options {
    use super::*;
    use crate::log::options::{FLAGS, LogOptions};
    use crate::units::{parse_duration, parse_millis, parse_size};
    use std::time::Duration;

    const SIZE_UNITS: &[(&str, u64)] = &[
        ("", 1),
        ("B", 1),
        ("K", 1 << 10),
        ("KiB", 1 << 10),
        ("M", 1 << 20),
        ("MiB", 1 << 20),
        ("G", 1 << 30),
        ("GiB", 1 << 30),
        ("KB", 1_000),
        ("MB", 1_000_000),
        ("GB", 1_000_000_000),
    ];
    const DURATION_UNITS: &[(&str, u64)] = &[
        ("ms", 1),
        ("s", 1_000),
        ("m", 60_000),
        ("h", 3_600_000),
        ("d", 86_400_000),
    ];

    /// A number near the overflow edges as often as a small one.
    fn number() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..100_000,
            any::<u64>(),
            (0u64..4096).prop_map(|d| (u64::MAX >> 30) - 2048 + d),
            (0u64..4096).prop_map(|d| (u64::MAX / 86_400_000) - 2048 + d),
        ]
    }

    /// A value for `flag`: usually well-formed, often not.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            nasty_string(24),
            (
                number(),
                proptest::sample::select(vec![
                    "", "B", "K", "KiB", "MiB", "GB", "ms", "s", "h", "d", "x", " K",
                ])
            )
                .prop_map(|(n, u)| format!("{n}{u}")),
            proptest::sample::select(vec![
                "cri",
                "json",
                "ts",
                "plain",
                "gzip",
                "none",
                "block",
                "drop",
                "true",
                "no",
                "sh -c true",
                " ",
                "\t",
                "",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn flag() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => proptest::sample::select(FLAGS).prop_map(str::to_owned),
            1 => nasty_string(12),
        ]
    }

    proptest! {
        #![proptest_config(config(1))]

        #[test]
        fn fuzz_units_never_panic_and_quote_the_value(s in prop_oneof![nasty_string(32), value()]) {
            for r in [
                parse_size(&s).map(|_| ()),
                parse_duration(&s).map(|_| ()),
                parse_millis(&s).map(|_| ()),
            ] {
                if let Err(e) = r {
                    prop_assert!(e.contains(&format!("'{s}'")), "{e:?} does not quote {s:?}");
                }
            }
        }

        /// `N<unit>` is N times the unit, or an error when that overflows: never a wrap.
        #[test]
        fn fuzz_units_round_trip(n in number(), i in 0..SIZE_UNITS.len(), j in 0..DURATION_UNITS.len(), pad in any::<bool>()) {
            let (unit, mult) = SIZE_UNITS[i];
            let text = if pad { format!(" {n}{unit}\n") } else { format!("{n}{unit}") };
            match n.checked_mul(mult) {
                Some(v) => prop_assert_eq!(parse_size(&text), Ok(v)),
                None => prop_assert!(parse_size(&text).is_err()),
            }
            let (unit, ms) = DURATION_UNITS[j];
            let text = format!("{n}{unit}");
            match n.checked_mul(ms) {
                Some(v) => prop_assert_eq!(parse_duration(&text), Ok(Duration::from_millis(v))),
                None => prop_assert!(parse_duration(&text).is_err()),
            }
            prop_assert_eq!(parse_millis(&n.to_string()), Ok(Duration::from_millis(n)));
            prop_assert!(parse_duration(&n.to_string()).is_err(), "a bare number is no duration");
        }

        /// Errors name the flag and quote the value; a refused value changes nothing.
        #[test]
        fn fuzz_log_option_set(flag in flag(), value in proptest::option::weighted(0.95, value())) {
            let mut o = LogOptions::default();
            match o.set(&flag, value.as_deref()) {
                Ok(()) => {
                    prop_assert!(FLAGS.contains(&flag.as_str()));
                    prop_assert!(o.max_line >= 16 && o.max_line <= 1 << 20);
                    prop_assert!(o.rotate_size >= 4096);
                }
                Err(e) => {
                    prop_assert!(e.contains(&format!("--{flag}")), "{e:?} does not name --{flag}");
                    if let (true, Some(v)) = (FLAGS.contains(&flag.as_str()), &value) {
                        prop_assert!(e.contains(&format!("'{v}'")), "{e:?} does not quote {v:?}");
                    }
                    prop_assert_eq!(o, LogOptions::default());
                }
            }
        }

        /// A `log-options` file: never a panic; `--flag value` on a line does what `set` does;
        /// an error names its line.
        #[test]
        fn fuzz_log_options_lines(
            lines in proptest::collection::vec((flag(), value(), 0u8..4), 0..6),
            junk in nasty_string(64),
        ) {
            let mut text = String::new();
            let mut want = LogOptions::default();
            let mut want_err: Option<usize> = None;
            for (i, (flag, value, sep)) in lines.iter().enumerate() {
                let value = value.replace(['\n', '\r'], "");
                let sep = [" ", "=", "\t", "  "][usize::from(*sep)];
                text.push_str(&format!("--{flag}{sep}{value}\n"));
                if want_err.is_none() && !flag.contains(['\n', '\r', '=', ' ', '\t', '#']) && !flag.is_empty() {
                    let r = if flag.trim() != flag.as_str() { Err(String::new()) } else { want.set(flag, Some(value.trim())) };
                    if r.is_err() {
                        want_err = Some(i + 1);
                    }
                } else if want_err.is_none() {
                    want_err = Some(0); // an odd flag: only "no panic" is checked
                }
            }
            let mut o = LogOptions::default();
            let r = o.apply_lines(&text);
            match want_err {
                None => {
                    prop_assert_eq!(r, Ok(()));
                    prop_assert_eq!(o, want);
                }
                Some(0) => {}
                Some(n) => {
                    let e = r.expect_err("an error");
                    prop_assert!(e.starts_with(&format!("line {n}: ")), "{e:?}");
                }
            }
            let mut o = LogOptions::default();
            if let Err(e) = o.apply_lines(&junk) {
                prop_assert!(e.starts_with("line "), "{e:?}");
            }
        }
    }
}

/// Identity components (`log/layout.rs`).
mod identity {
    use super::*;
    use crate::log::layout::validate_component;

    fn hostile() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => nasty_string(40),
            2 => "[A-Za-z0-9][A-Za-z0-9._-]{0,260}",
            1 => Just("..".to_owned()),
            1 => Just("a/../b".to_owned()),
            1 => (0usize..4).prop_map(|n| "a".repeat([252, 253, 254, 65536][n])),
        ]
    }

    proptest! {
        #![proptest_config(config(1))]

        #[test]
        fn fuzz_validate_component(source in "[A-Z_]{1,16}", value in hostile()) {
            match validate_component(&source, &value) {
                Ok(()) => prop_assert!(spec_component(&value), "accepted {value:?}"),
                Err(e) => {
                    prop_assert!(!spec_component(&value), "refused {value:?}: {e}");
                    prop_assert!(e.starts_with(&format!("{source}: '")), "{e:?}");
                    prop_assert!(!e.contains(['\n', '\r', '\0']), "not one line: {e:?}");
                    let shown: String = value.escape_debug().collect();
                    prop_assert!(e.contains(&shown), "{e:?} does not show {value:?}");
                }
            }
        }
    }
}

/// The service directory reader (`service/`): arbitrary trees on disk through `load_tree`.
mod service_tree {
    use super::*;
    use crate::log::options::LogOptions;
    use crate::service::load_tree;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Every single-value file and flag file of SPEC §5, with good and bad values.
    const FILES: &[(&str, &[&str])] = &[
        ("type", &["longrun\n", "oneshot\n", "bundle", "Longrun"]),
        (
            "restart",
            &["always\n", "on-failure", "never\n", "sometimes"],
        ),
        (
            "notification-fd",
            &["3\n", "1023", "2", "1024", "-4", "99999999999"],
        ),
        ("down-signal", &["TERM\n", "sighup", "9", "0", "SIG", "999"]),
        (
            "timeout-kill",
            &["250\n", "0", "5s", "18446744073709551616"],
        ),
        ("timeout-up", &["0\n", "1000", "x"]),
        ("timeout-finish", &["1\n", "0", "-1"]),
        (
            "user",
            &[
                "root\n",
                "0:0",
                "0",
                ":",
                "root:",
                "nosuchuser",
                "65534:65534",
            ],
        ),
        ("notify", &["systemd\n", "s6"]),
        ("critical", &["", "yes"]),
        ("disabled", &["", "\n", "1"]),
        (
            "log-options",
            &[
                "--keep 3\n",
                "--format=json\n--tee\n",
                "keep 3",
                "--max-line 1",
            ],
        ),
        ("dependencies", &["# deps\n", "a\n", "b\nc\n"]),
    ];

    #[derive(Clone, Debug)]
    struct Svc {
        name: String,
        /// (file, content): content as bytes so invalid UTF-8 appears too.
        files: Vec<(String, Vec<u8>)>,
        /// (script, mode) for run/up/down/finish/check.
        scripts: Vec<(&'static str, u32)>,
        env: Vec<(String, Vec<u8>)>,
        deps: Vec<String>,
    }

    fn service_name() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "[a-c]",
            2 => "[A-Za-z0-9][A-Za-z0-9._-]{0,8}",
            1 => nasty_string(12).prop_map(|s| s.replace(['/', '\0'], "")),
            1 => Just("..".to_owned()),
            1 => Just("-x".to_owned()),
            1 => (250usize..260).prop_map(|n| "n".repeat(n)),
        ]
    }

    fn content() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            2 => proptest::sample::select(FILES).prop_flat_map(|(_, good)| {
                proptest::sample::select(good).prop_map(|s| s.as_bytes().to_vec())
            }),
            1 => nasty_string(40).prop_map(String::into_bytes),
            1 => proptest::collection::vec(nasty_byte(), 0..40),
        ]
    }

    fn service() -> impl Strategy<Value = Svc> {
        let file = (
            proptest::sample::select(FILES).prop_map(|f| f.0.to_owned()),
            content(),
        );
        let script = (
            proptest::sample::select(vec!["run", "up", "down", "finish", "check"]),
            proptest::sample::select(vec![0o755u32, 0o644, 0o100]),
        );
        let env_name = prop_oneof![
            "[A-Z_]{1,6}",
            nasty_string(10).prop_map(|s| s.replace(['/', '\0'], "")),
        ];
        (
            service_name(),
            proptest::collection::vec(file, 0..5),
            proptest::collection::vec(script, 0..3),
            proptest::collection::vec((env_name, content()), 0..3),
            proptest::collection::vec(service_name(), 0..3),
        )
            .prop_map(|(name, files, scripts, env, deps)| Svc {
                name,
                files,
                scripts,
                env,
                deps,
            })
    }

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn tmp() -> Tmp {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("tend-fuzz-svc-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("temp dir");
        Tmp(p)
    }

    /// Writes what the file system accepts (a name may be too long or clash); returns the
    /// names of the service directories created.
    fn write_tree(root: &Path, svcs: &[Svc]) -> Vec<String> {
        let mut made = Vec::new();
        for s in svcs {
            let dir = root.join(&s.name);
            if s.name.is_empty() || s.name == "." || fs::create_dir(&dir).is_err() {
                continue;
            }
            made.push(s.name.clone());
            for (f, c) in &s.files {
                let _ = fs::write(dir.join(f), c);
            }
            for (f, mode) in &s.scripts {
                let p = dir.join(f);
                if fs::write(&p, "#!/bin/sh\n").is_ok() {
                    let _ = fs::set_permissions(&p, fs::Permissions::from_mode(*mode));
                }
            }
            for (n, c) in &s.env {
                let _ = fs::create_dir_all(dir.join("env"));
                let _ = fs::write(dir.join("env").join(n), c);
            }
            for d in &s.deps {
                let _ = fs::create_dir_all(dir.join("dependencies.d"));
                let _ = fs::write(dir.join("dependencies.d").join(d), "");
            }
        }
        made
    }

    proptest! {
        #![proptest_config(config(8))]

        /// Never a panic; every error is one line that starts with the service's name (as
        /// shown: escaped) or `dependency cycle:`.
        #[test]
        fn fuzz_load_tree_errors_are_one_line_and_named(svcs in proptest::collection::vec(service(), 1..5)) {
            let t = tmp();
            let made = write_tree(&t.0, &svcs);
            if let Err(errors) = load_tree(&t.0, &LogOptions::default()) {
                prop_assert!(!errors.is_empty());
                for e in &errors {
                    prop_assert!(!e.contains(['\n', '\r']), "not one line: {e:?}");
                    let named = e.starts_with("dependency cycle: ")
                        || made.iter().any(|n| {
                            // Control characters escaped, everything else as is.
                            let shown: String = n
                                .chars()
                                .map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() })
                                .collect();
                            e.starts_with(&format!("{shown}: "))
                        });
                    prop_assert!(named, "names no service: {e:?} (services {made:?})");
                }
            }
        }

        /// A tree of valid services whose dependencies only point backwards loads, in an order
        /// that puts dependencies first, with the values written.
        #[test]
        fn fuzz_valid_trees_load(
            n in 1usize..6,
            picks in proptest::collection::vec((any::<bool>(), 0u8..3, 1u64..100_000, any::<proptest::sample::Index>()), 6),
        ) {
            let t = tmp();
            let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
            for (i, name) in names.iter().enumerate() {
                let (oneshot, restart, ms, dep) = &picks[i];
                let dir = t.0.join(name);
                fs::create_dir_all(dir.join("dependencies.d")).expect("mkdir");
                let script = if *oneshot { "up" } else { "run" };
                fs::write(dir.join(script), "#!/bin/sh\n").expect("write");
                fs::set_permissions(dir.join(script), fs::Permissions::from_mode(0o755)).expect("chmod");
                if *oneshot {
                    fs::write(dir.join("type"), "oneshot\n").expect("write");
                } else {
                    fs::write(dir.join("restart"), ["always", "on-failure", "never"][usize::from(*restart)]).expect("write");
                }
                fs::write(dir.join("timeout-kill"), format!("{ms}\n")).expect("write");
                fs::write(dir.join("down-signal"), "hup\n").expect("write");
                if i > 0 {
                    fs::write(dir.join("dependencies.d").join(&names[dep.index(i)]), "").expect("write");
                }
            }
            let tree = load_tree(&t.0, &LogOptions::default())
                .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(tree.services.len(), n);
            let pos = |name: &str| tree.services.iter().position(|s| s.name == name);
            for s in &tree.services {
                for d in &s.dependencies {
                    prop_assert!(pos(d) < pos(&s.name), "{} before its dependency {}", s.name, d);
                }
                let i: usize = s.name[1..].parse().expect("s<i>");
                prop_assert_eq!(s.policy.timeout_kill, Some(std::time::Duration::from_millis(picks[i].2)));
                prop_assert_eq!(s.policy.down_signal, nix::sys::signal::Signal::SIGHUP);
            }
        }
    }
}

/// The control protocol's parsers and encoders (`ctl/proto.rs`, `ctl/json.rs`).
mod control_protocol {
    use super::*;
    use crate::ctl::proto::{
        Exit, Request, Runs, ServiceStatus, parse_status_line, status_json, status_line,
    };
    use std::time::Duration;

    fn request_text() -> impl Strategy<Value = String> {
        let word = prop_oneof![
            proptest::sample::select(vec![
                "status", "json", "start", "stop", "restart", "kill", "shutdown", "metrics",
                "TERM", "sighup", "9", "web",
            ])
            .prop_map(str::to_owned),
            nasty_string(12),
        ];
        prop_oneof![
            3 => proptest::collection::vec(word, 0..4).prop_map(|w| w.join(" ")),
            1 => nasty_string(80),
            1 => (0usize..3).prop_map(|n| "x".repeat([4096, 70_000, 1 << 20][n])),
        ]
    }

    fn status() -> impl Strategy<Value = ServiceStatus> {
        let exit = proptest::option::of(prop_oneof![
            any::<i32>().prop_map(Exit::Code),
            any::<i32>().prop_map(Exit::Signal),
        ]);
        (
            (nasty_string(16), nasty_string(8), nasty_string(8)),
            proptest::option::of(any::<i32>()),
            proptest::option::of(any::<u64>()),
            exit,
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()),
        )
            .prop_map(|((name, state, kind), pid, ms, last_exit, (r, l, d, o))| {
                ServiceStatus {
                    name,
                    state,
                    pid,
                    since: ms.map(Duration::from_millis),
                    runs: Runs {
                        restarts: r,
                        last_exit,
                    },
                    log_bytes: l,
                    dropped_bytes: d,
                    rotations: o,
                    kind,
                    wanted: r % 2 == 0,
                }
            })
    }

    proptest! {
        #![proptest_config(config(1))]

        /// Never a panic; a parsed request prints back to itself; an error is short and one
        /// line, whatever was sent.
        #[test]
        fn fuzz_request_parse(line in request_text()) {
            match Request::parse(&line) {
                Ok(r) => prop_assert_eq!(Request::parse(&r.to_line()), Ok(r)),
                Err(e) => {
                    prop_assert!(e.len() < 600, "{} bytes of error", e.len());
                    prop_assert!(!e.contains(['\n', '\r', '\0']), "{e:?}");
                }
            }
        }

        #[test]
        fn fuzz_status_line_round_trip(s in status()) {
            let line = status_line(&s);
            prop_assert!(!line.contains('\n'));
            let parsed = parse_status_line(&line);
            if s.name.is_empty() || s.state.is_empty() {
                prop_assert!(parsed.is_err());
            } else {
                let want = ServiceStatus {
                    name: crate::ctl::proto::word(&s.name),
                    state: crate::ctl::proto::word(&s.state),
                    kind: crate::ctl::proto::word(&s.kind),
                    ..s
                };
                prop_assert_eq!(parsed, Ok(want));
            }
        }

        #[test]
        fn fuzz_status_line_parse_never_panics(line in prop_oneof![nasty_string(120), status().prop_map(|s| {
            let l = status_line(&s);
            let cut = (0..=l.len() / 2).rev().find(|&i| l.is_char_boundary(i)).unwrap_or(0);
            format!("{}{}", &l[..cut], "=- x")
        })]) {
            if let Err(e) = parse_status_line(&line) {
                prop_assert!(e.starts_with("bad status line from tend: "));
            }
        }

        /// `status json`: one line of valid JSON whose values are the ones given.
        #[test]
        fn fuzz_status_json(list in proptest::collection::vec(status(), 0..4)) {
            let doc = status_json(&list);
            prop_assert!(!doc.contains('\n'));
            let v: serde_json::Value = serde_json::from_str(&doc)
                .map_err(|e| TestCaseError::fail(format!("{e}: {doc}")))?;
            let a = v["services"].as_array().ok_or_else(|| TestCaseError::fail("no services"))?;
            prop_assert_eq!(a.len(), list.len());
            for (o, s) in a.iter().zip(&list) {
                prop_assert_eq!(o["name"].as_str(), Some(s.name.as_str()));
                prop_assert_eq!(o["state"].as_str(), Some(s.state.as_str()));
                prop_assert_eq!(o["kind"].as_str(), Some(s.kind.as_str()));
                prop_assert_eq!(o["pid"].as_i64(), s.pid.map(i64::from));
                prop_assert_eq!(o["restarts"].as_u64(), Some(s.runs.restarts));
                prop_assert_eq!(o["log_bytes"].as_u64(), Some(s.log_bytes));
                prop_assert_eq!(o["dropped_bytes"].as_u64(), Some(s.dropped_bytes));
                prop_assert_eq!(o["rotations"].as_u64(), Some(s.rotations));
                match s.runs.last_exit {
                    None => prop_assert!(o["last_exit"].is_null()),
                    Some(Exit::Code(c)) => prop_assert_eq!(o["last_exit"]["code"].as_i64(), Some(i64::from(c))),
                    Some(Exit::Signal(n)) => prop_assert_eq!(o["last_exit"]["signal"].as_i64(), Some(i64::from(n))),
                }
                match s.since {
                    None => prop_assert!(o["uptime_seconds"].is_null()),
                    Some(d) => {
                        let got = o["uptime_seconds"].as_f64().ok_or_else(|| TestCaseError::fail("uptime"))?;
                        prop_assert!((got - d.as_secs_f64()).abs() <= 1e-3 * d.as_secs_f64().max(1.0), "{got} vs {d:?}");
                    }
                }
            }
        }
    }
}
