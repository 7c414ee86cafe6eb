//! Attacks on the log engine's promises (SPEC §2-4): torn files at every offset, hostile
//! input, planted files. Each output file is checked by a strict parser of its format.

mod common;
use common::*;

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
                assert!(ok, "{what}: bad cri record {:?}", String::from_utf8_lossy(line));
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
                assert!(ok, "{what}: bad ts record {:?}", String::from_utf8_lossy(line));
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
    let ends: Vec<usize> = orig
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
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
        assert_eq!(&got[..kept], &orig[..kept], "{what}: complete records changed");
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
                assert_eq!(marker_n(&rest[0]), Some((k - kept) as u64), "{what}: {rest:?}");
                rest = &rest[1..];
            }
        }
        assert_eq!(rest.len(), 1, "{what}: extra records {rest:?}; stderr {err}");
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
