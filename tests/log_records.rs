//! Records a collector can always parse: after a crash `current` ends with complete
//! records; json never leaves a record open before the other stream; json pieces keep
//! UTF-8 characters whole.

mod support;
use std::path::Path;
use std::time::Duration;
use support::*;

/// Checks that every line of `data` is one valid record in `format`; returns the payloads
/// (`log` for json, the text after the prefix otherwise) with their P/F flag.
fn records(format: &str, data: &[u8]) -> Vec<(String, String, bool)> {
    assert!(data.is_empty() || data.ends_with(b"\n"), "{data:?}");
    let text = String::from_utf8(data.to_vec()).unwrap();
    let mut out = Vec::new();
    for l in text.lines() {
        match format {
            "cri" => {
                assert!(
                    l.len() >= 40 && is_stamp(&l[..30], 9),
                    "bad cri record {l:?}"
                );
                let tag = &l[30..40];
                let (stream, partial) = match tag {
                    " stdout F " => ("stdout", false),
                    " stdout P " => ("stdout", true),
                    " stderr F " => ("stderr", false),
                    " stderr P " => ("stderr", true),
                    _ => panic!("bad cri tag in {l:?}"),
                };
                out.push((stream.into(), l[40..].to_string(), partial));
            }
            "json" => {
                let v: serde_json::Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("bad json record {l:?}: {e}"));
                let log = v["log"].as_str().unwrap().to_string();
                assert!(is_stamp(v["time"].as_str().unwrap(), 9), "{l}");
                let partial = !log.ends_with('\n');
                let stream = v["stream"].as_str().unwrap().to_string();
                out.push((stream, log, partial));
            }
            "ts" => {
                assert!(
                    l.len() >= 28 && is_stamp(&l[..27], 6),
                    "bad ts record {l:?}"
                );
                assert_eq!(&l[27..28], " ");
                out.push((String::new(), l[28..].to_string(), false));
            }
            _ => out.push((String::new(), l.to_string(), false)),
        }
    }
    out
}

fn current(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("current")).unwrap()
}

#[test]
fn torn_tail_is_cut_and_replaced_by_one_marker_in_every_format() {
    let t = TempDir::new("torn");
    for format in ["cri", "json", "ts", "plain"] {
        let dir = t.path().join(format);
        let args = ["--format", format];
        log_ok(&args, &dir, &seq(10));
        let len = current(&dir).len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("current"))
            .unwrap();
        f.set_len(len as u64 - 20).unwrap();
        drop(f);
        let torn = current(&dir);
        let keep = torn.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let cut = torn.len() - keep;
        assert!(cut > 0, "{format}: the truncation must tear a record");
        log_ok(&args, &dir, b"after\n");
        let data = current(&dir);
        let recs = records(format, &data);
        let texts: Vec<&str> = recs.iter().map(|r| r.1.trim_end_matches('\n')).collect();
        if format == "plain" {
            // The app's bytes stay (any prefix of a line is valid plain): the line is ended
            // and marked.
            let m = b"\ntend: previous record was cut short (tend restarted)\nafter\n";
            assert_eq!(data, [&torn[..], m].concat(), "plain");
            continue;
        }
        // Complete records only: what was kept, one marker, then the new record.
        assert_eq!(
            &data[..keep],
            &torn[..keep],
            "{format}: kept records changed"
        );
        let marker = format!("tend: cut {cut} bytes of a record torn by a crash (tend restarted)");
        let n = texts.len();
        assert_eq!(texts[n - 2], marker, "{format}: {texts:?}");
        assert_eq!(texts[n - 1], "after", "{format}");
        assert_eq!(
            texts.iter().filter(|t| t.starts_with("tend:")).count(),
            1,
            "{format}: {texts:?}"
        );
        if format != "ts" {
            assert_eq!(
                recs[n - 2].0,
                "stderr",
                "{format}: the marker is a stderr record"
            );
        }
    }
}

#[test]
fn dangling_p_is_closed_with_an_empty_f_before_anything_else() {
    let t = TempDir::new("dangling");
    for format in ["cri", "json"] {
        let dir = t.path().join(format);
        let args = ["--format", format, "--max-line", "16"];
        // One line of 40 bytes: P, P, F. A crash right after the second P is a file that
        // ends with two complete P records.
        log_ok(&args, &dir, format!("{}\n", "H".repeat(40)).as_bytes());
        let data = current(&dir);
        let lines = line_ends(&data);
        assert_eq!(lines.len(), 3, "{format}");
        std::fs::write(dir.join("current"), &data[..lines[1]]).unwrap();
        log_ok(&args, &dir, b"second run line\n");
        let recs = records(format, &current(&dir));
        let got: Vec<(String, String, bool)> = recs.into_iter().collect();
        let nl = if format == "json" { "\n" } else { "" };
        let want = vec![
            ("stdout".to_string(), "H".repeat(16), true),
            ("stdout".to_string(), "H".repeat(16), true),
            ("stdout".to_string(), nl.to_string(), false),
            ("stdout".to_string(), format!("second run line{nl}"), false),
        ];
        assert_eq!(got, want, "{format}");
    }
}

#[test]
fn a_restarted_service_never_glues_its_first_line_to_the_last_one() {
    let t = support::Tree::new("glue");
    // Each instance ends with a line without newline, then exits; restarts are immediate
    // then 1 s apart. The third stays up.
    t.longrun(
        "svc",
        r#"n=$(cat "$OUT/n" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$OUT/n"
printf 'start %s\n' $n
printf 'dying without newline %s' $n
[ $n -ge 3 ] && exec sleep 1000
exit 1"#,
    );
    let (child, pid) = t.spawn_init();
    let cur = t.log_dir("svc").join("current");
    assert!(
        support::wait_for(Duration::from_secs(30), || std::fs::read_to_string(&cur)
            .is_ok_and(|s| s.contains("start 3"))),
        "third instance never logged"
    );
    support::signal(pid, "TERM");
    let _ = child.wait_with_output();
    let recs = records("cri", &std::fs::read(&cur).unwrap());
    let texts: Vec<&str> = recs.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(
        texts,
        [
            "start 1",
            "dying without newline 1",
            "start 2",
            "dying without newline 2",
            "start 3",
            "dying without newline 3"
        ]
    );
}
