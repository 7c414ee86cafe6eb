//! Attacks on instance boundaries under `tend init` (PID 1): a crash-looping service that
//! ends every instance with an unterminated line on both streams.

mod support;
use std::time::Duration;

/// Each instance prints a line on each stream, then an unterminated line on each stream,
/// and dies at once; the 3rd stays up. In every format that tags records, every record is
/// complete before the other stream's and before the next instance's, and nothing is glued.
fn crash_loop_both_streams(format: &str, tail: usize) {
    let t = support::Tree::new(&format!("atk-loop-{format}"));
    t.longrun(
        "svc",
        r#"n=$(cat "$OUT/n" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$OUT/n"
printf 'out %s\n' $n; printf 'err %s\n' $n >&2
pad=$(head -c TAIL /dev/zero | tr '\0' y)
printf 'out tail %s%s' $n "$pad"; printf 'err tail %s%s' $n "$pad" >&2
: > "$OUT/printed$n"
[ $n -ge 3 ] && exec sleep 1000
exit 1"#,
    );
    let script = std::fs::read_to_string(t.tmp.join("services/svc/run")).unwrap();
    t.longrun(
        "svc",
        &script
            .replace("TAIL", &tail.to_string())
            .replace("#!/bin/sh\n", ""),
    );
    t.file("svc", "log-options", &format!("--format {format}\n"), false);
    let (child, pid) = t.spawn_init();
    let cur = t.log_dir("svc").join("current");
    // The tails are in the pipe once the third instance says so (a TERM before that would
    // stop the shell before it prints them).
    let printed = t.out().join("printed3");
    assert!(
        support::wait_for(Duration::from_secs(30), || printed.exists()),
        "third instance never printed"
    );
    support::signal(pid, "TERM");
    let _ = child.wait_with_output();
    let data = std::fs::read_to_string(&cur).unwrap();
    let mut out: Vec<String> = Vec::new();
    let mut err: Vec<String> = Vec::new();
    let mut open = [false; 2]; // a split line is being joined, per stream
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
            (
                line[31..37].to_owned(),
                line[40..].to_owned(),
                &line[38..39] == "F",
            )
        };
        let (i, lines) = match stream.as_str() {
            "stdout" => (0, &mut out),
            _ => (1, &mut err),
        };
        if open[i] {
            lines.last_mut().unwrap().push_str(&text);
        } else {
            lines.push(text);
        }
        open[i] = !full;
        assert!(
            !open[1 - i],
            "a piece followed by the other stream's record: {line:.80}"
        );
    }
    assert_eq!(open, [false; 2], "ends inside a line");
    let want = |s: &str| -> Vec<String> {
        (1..=3)
            .flat_map(|n| {
                [
                    format!("{s} {n}"),
                    format!("{s} tail {n}{}", "y".repeat(tail)),
                ]
            })
            .collect()
    };
    assert_eq!(out, want("out"), "{data}");
    assert_eq!(err, want("err"), "{data}");
}

#[test]
fn crash_loop_both_streams_cri() {
    crash_loop_both_streams("cri", 0);
}

/// The same with unterminated lines longer than `--max-line` (16 KiB), left mid-split.
#[test]
fn crash_loop_both_streams_split_cri() {
    crash_loop_both_streams("cri", 40_000);
}

#[test]
fn crash_loop_both_streams_split_json() {
    crash_loop_both_streams("json", 40_000);
}

#[test]
fn crash_loop_both_streams_json() {
    crash_loop_both_streams("json", 0);
}

/// `tend ctl rotate all` over and over while a service writes long lines in slow pieces
/// and the other stream keeps writing: no file ends inside a split line, no piece is
/// followed by the other stream's record, and every line is whole once its pieces join.
#[test]
fn ctl_rotate_storm_during_split_lines() {
    let t = support::Tree::new("atk-rotate-split");
    t.longrun(
        "svc",
        r#"pad=$(head -c 20000 /dev/zero | tr '\0' a)
for i in 1 2 3 4 5 6; do
  printf 'L%s-%s' $i "$pad"; sleep 0.05; printf '%s\n' "$pad"; echo "e$i" >&2; sleep 0.05
done
: > "$OUT/done"
exec sleep 1000"#,
    );
    t.file(
        "svc",
        "log-options",
        "--format json\n--keep 100000\n",
        false,
    );
    let (child, pid) = t.spawn_init();
    let done = t.out().join("done");
    let mut rotations = 0;
    while !done.exists() && rotations < 2000 {
        let mut c = support::plain(&["ctl", "rotate", "all"]);
        c.env("TEND_RUN_DIR", t.tmp.join("run"));
        if support::output_within(c, Duration::from_secs(10))
            .status
            .success()
        {
            rotations += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(done.exists(), "the service never finished");
    support::signal(pid, "TERM");
    let _ = child.wait_with_output();
    let dir = t.log_dir("svc");
    let mut names = support::archives(&dir);
    names.push("current".into());
    assert!(names.len() > 2, "rotations happened: {names:?}");
    let (mut out, mut err) = (Vec::<String>::new(), Vec::<String>::new());
    for n in &names {
        let data = std::fs::read_to_string(dir.join(n)).unwrap();
        let mut open = [false; 2];
        for line in data.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let log = v["log"].as_str().unwrap();
            let (i, lines) = match v["stream"].as_str().unwrap() {
                "stdout" => (0, &mut out),
                _ => (1, &mut err),
            };
            assert!(
                !open[1 - i],
                "{n}: a piece followed by the other stream's record"
            );
            if open[i] {
                lines
                    .last_mut()
                    .unwrap()
                    .push_str(log.trim_end_matches('\n'));
            } else {
                lines.push(log.trim_end_matches('\n').to_owned());
            }
            open[i] = !log.ends_with('\n');
        }
        assert_eq!(open, [false; 2], "{n} ends inside a split line");
    }
    let pad = "a".repeat(20_000);
    let want: Vec<String> = (1..=6).map(|i| format!("L{i}-{pad}{pad}")).collect();
    assert!(
        out == want,
        "stdout lines differ: {:?}",
        out.iter().map(|l| l.len()).collect::<Vec<_>>()
    );
    assert_eq!(err, (1..=6).map(|i| format!("e{i}")).collect::<Vec<_>>());
}
