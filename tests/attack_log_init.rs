//! Attacks on instance boundaries under `tend init` (PID 1): a crash-looping service that
//! ends every instance with an unterminated line on both streams.

mod common;
use common::support;
use std::time::Duration;

/// Each instance prints a line on each stream, then an unterminated line on each stream,
/// and dies at once; the 3rd stays up. In every format that tags records, every record is
/// complete before the other stream's and before the next instance's, and nothing is glued.
fn crash_loop_both_streams(format: &str) {
    let t = support::Tree::new(&format!("atk-loop-{format}"));
    t.longrun(
        "svc",
        r#"n=$(cat "$OUT/n" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$OUT/n"
printf 'out %s\n' $n; printf 'err %s\n' $n >&2
printf 'out tail %s' $n; printf 'err tail %s' $n >&2
[ $n -ge 3 ] && exec sleep 1000
exit 1"#,
    );
    t.file("svc", "log-options", &format!("--format {format}\n"), false);
    let (child, pid) = t.spawn_init();
    let cur = t.log_dir("svc").join("current");
    let done = |s: &str| s.contains("out 3") && s.contains("err 3");
    assert!(
        support::wait_for(Duration::from_secs(30), || std::fs::read_to_string(&cur)
            .is_ok_and(|s| done(&s))),
        "third instance never logged"
    );
    support::signal(pid, "TERM");
    let _ = child.wait_with_output();
    let data = std::fs::read_to_string(&cur).unwrap();
    let mut out = Vec::new();
    let mut err = Vec::new();
    for line in data.lines() {
        let (stream, text, full) = if format == "json" {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let log = v["log"].as_str().unwrap();
            (
                v["stream"].as_str().unwrap().to_owned(),
                log.trim_end_matches('\n').to_owned(),
                log.ends_with('\n'),
            )
        } else {
            (line[31..37].to_owned(), line[40..].to_owned(), &line[38..39] == "F")
        };
        assert!(full, "a piece left open (glue ahead): {line}\n{data}");
        match stream.as_str() {
            "stdout" => out.push(text),
            _ => err.push(text),
        }
    }
    let want = |s: &str| -> Vec<String> {
        (1..=3)
            .flat_map(|n| [format!("{s} {n}"), format!("{s} tail {n}")])
            .collect()
    };
    assert_eq!(out, want("out"), "{data}");
    assert_eq!(err, want("err"), "{data}");
}

#[test]
fn crash_loop_both_streams_cri() {
    crash_loop_both_streams("cri");
}

#[test]
fn crash_loop_both_streams_json() {
    crash_loop_both_streams("json");
}
