//! `kill -9` of `tend log` during heavy writing and rotation: every record on disk is in
//! exactly one file, once; a torn record is cut at restart and replaced by the marker.

mod support;
use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;
use support::*;

const MARKER: &str = " bytes of a record torn by a crash (tend restarted)";

#[test]
fn kill_9_during_writes_and_rotations() {
    let t = TempDir::new("crash");
    let dir = t.path().join("d");
    let mut rng = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let runs = 8;
    for run in 0..runs {
        let mut child = spawn_log(&["--rotate-size", "64KiB", "--keep", "100000"], &dir);
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            for i in 0u64.. {
                let line = format!("run{run}-rec{i}-{}\n", "x".repeat((i % 200) as usize));
                if stdin.write_all(line.as_bytes()).is_err() {
                    break;
                }
            }
        });
        // Wait until this run has put something on disk (earlier runs' bytes do not count:
        // a run killed before its first write has no records, which proves nothing), then
        // kill at a random moment.
        let before = if dir.exists() { concat(&dir).len() } else { 0 };
        assert!(wait_for(Duration::from_secs(30), || concat(&dir).len()
            > before + 10_000));
        std::thread::sleep(Duration::from_millis(next() % 150));
        child.kill().unwrap();
        child.wait().unwrap();
        writer.join().unwrap();
    }

    // A last clean run closes any torn record.
    log_ok(&["--keep", "100000"], &dir, b"final\n");

    let mut seen = HashSet::new();
    let mut last_per_run: Vec<Option<u64>> = vec![None; runs];
    let mut torn_total = 0;
    let mut files = archives(&dir);
    files.push("current".into());
    for f in &files {
        let data = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(data.ends_with('\n'), "{f} does not end with a newline");
        let lines: Vec<&str> = data.lines().collect();
        for (k, l) in lines.iter().enumerate() {
            let body = l.get(31..).unwrap_or("");
            let valid = l.len() > 40
                && is_stamp(&l[..30], 9)
                && (body.starts_with("stdout F run")
                    || body.starts_with("stderr F tend: ")
                    || body == "stdout F final");
            assert!(valid, "{f}: torn record {l:?} left in place (line {k})");
            if body.starts_with("stderr F tend: ") {
                let n = body["stderr F tend: cut ".len()..].strip_suffix(MARKER);
                assert!(n.is_some_and(|n| n.parse::<u64>().is_ok()), "{body}");
                torn_total += 1;
                continue;
            }
            assert!(seen.insert(body.to_owned()), "{f}: duplicate record {body}");
            if let Some(rest) = body.strip_prefix("stdout F run") {
                let (r, rest) = rest.split_once("-rec").unwrap();
                let (i, pad) = rest.split_once('-').unwrap();
                let (r, i): (usize, u64) = (r.parse().unwrap(), i.parse().unwrap());
                assert_eq!(pad.len() as u64, i % 200, "{f}: corrupted record {body}");
                // Records of one run are on disk as a gapless prefix, in order.
                assert_eq!(
                    last_per_run[r].map_or(0, |x| x + 1),
                    i,
                    "{f}: gap or reorder at {body}"
                );
                last_per_run[r] = Some(i);
            }
        }
    }
    assert!(torn_total <= runs);
    assert!(last_per_run.iter().all(Option::is_some));
    assert!(archives(&dir).len() > runs, "rotations happened");
}
