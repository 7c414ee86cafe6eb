//! Chaos: `tend init` as PID 1 over a tree of producers while, at random (a seeded RNG),
//! services are SIGKILLed (through `tend ctl kill` and directly), restarted, crash-loop,
//! fork 10,000 orphans, write 1 MiB lines, binary junk and records without a newline, and
//! the log disk (a small tmpfs) fills and frees while rotation runs every 256 KiB.
//!
//! Afterwards: every record is present exactly once, tend's RSS stayed bounded, no zombie
//! outlived a sampling period, the log thread idled while the disk was stuck, and tend
//! exited 0 (signal-initiated shutdown, no CMD).
//!
//! `CHAOS_SECS` (default 30) sets the length of the chaos phase, `CHAOS_SEED` the seed
//! (default: from the clock). The seed and every action taken are printed on failure;
//! re-running with the same seed replays the same actions (timing still varies).
//!
//! # Why nothing may be lost, and how the test keeps it checkable
//!
//! On `ENOSPC` tend first deletes this service's oldest archive (SPEC §4): records lost by
//! design, which would make "exactly once" uncheckable. Moving archives out with an
//! `--on-rotate` hook alone does not close that gap: between a rotation and the hook's
//! move, a full disk makes tend delete the fresh archive. So each service directory also
//! holds a decoy archive, `@20000101T000000.000000000Z.log`, bind-mounted onto itself: it
//! is always the oldest, and unlinking a mount point fails (`EBUSY`), so "delete the
//! oldest" finds nothing it can delete and block mode must wait for space — the case the
//! test is about. The hook copies each archive to the test's disk (tmp name, rename, then
//! removes the original), so the 32 MiB tmpfs never fills by itself; the test fills it
//! with a filler file (topped up while held, since hooks free space) and deletes it later.
//! Records are then read from the moved archives, any archive still in the log directory
//! and `current`, in name order.
//!
//! # The oracle
//!
//! See `chaos/producer.py`: a producer stores seq n (atomic pwrite) before writing record
//! n with one `write`, and a restart resumes at stored+1, logging its start points. So no
//! seq can be written twice; a seq can be missing or torn only at a kill point, i.e. equal
//! to start-1 of a later incarnation; and such gaps are at most the number of SIGKILLs the
//! test sent that service. Every other seq from 1 to the last stored one must be present,
//! whole (length, content and terminator checked; 1 MiB records reassembled from tend's
//! `P`/`F` pieces), on the right stream, exactly once. Final shutdown is SIGTERM, which
//! producers honour after finishing the record in hand, so the last seq is never excused.

mod support;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

const PRODUCER: &str = include_str!("chaos/producer.py");
const DECOY: &str = "@20000101T000000.000000000Z.log";
/// Peak RSS allowed for tend. It holds one 256 KiB read buffer, a batch of formatted
/// records (about one read's worth), at most --max-line (16 KiB) per stream in the
/// framers, and per-service state; a debug build with its threads measures ~3–6 MiB.
/// 1 MiB lines pass through in 16 KiB pieces and must never be held whole, 16 pipes'
/// worth of buffering would still fit: anything above this bound is growth.
const RSS_LIMIT_KB: u64 = 16 * 1024;

/// (name, producer mode, streams written).
const SERVICES: &[(&str, &str, usize)] = &[
    ("steady", "steady", 2),
    ("big", "big", 2),
    ("junk", "junk", 1),
    ("nonl", "nonl", 2),
    ("crash", "crash", 2),
    ("forker", "forker", 1),
];
/// Services the chaos loop kills or restarts (`crash` dies on its own).
const VICTIMS: &[&str] = &["steady", "big", "junk", "nonl", "forker"];

/// splitmix64: small, seedable, good enough to pick actions.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The tmpfs log root and the decoy bind mounts; unmounted on drop, also on failure.
struct Mounts(Vec<PathBuf>);
impl Mounts {
    fn mount(&mut self, args: &[&str], at: &Path) -> bool {
        let ok = Command::new("mount")
            .args(args)
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            self.0.push(at.to_path_buf());
        }
        ok
    }
}
impl Drop for Mounts {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

/// Kills tend (and unshare) if the test fails while it runs.
struct Running(Child, i32);
impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-9", &self.1.to_string()])
                .status();
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// What the sampler saw.
#[derive(Default)]
struct Samples {
    n: u64,
    rss_peak_kb: u64,
    zombies_peak: usize,
    /// (pid, start time) of zombie children of tend → when first seen.
    zombies: HashMap<(i32, u64), Instant>,
    /// Zombies still there a full second after first seen.
    stuck_zombies: BTreeSet<i32>,
}

/// Starts `cmd` (tend as PID 1) with its stderr in `tend.stderr` of the tree, and the
/// sampler on it; returns (that stderr file, tend's pid, its guard, the sampler).
fn launch(t: &Tree, mut cmd: Command) -> (PathBuf, i32, Running, Sampler) {
    let errlog = t.tmp.join("tend.stderr");
    cmd.stdout(Stdio::null())
        .stderr(std::fs::File::create(&errlog).unwrap());
    let child = cmd.spawn().unwrap();
    let pid = tend_pid_under(&child);
    (errlog, pid, Running(child, pid), start_sampler(pid))
}

/// Waits up to `limit` for tend (`what`) to exit after `cause`, and pushes a failure unless
/// it exited `want`; kills it if it is still there.
fn await_exit(
    mut running: Running,
    limit: Duration,
    (what, cause, want): (&str, &str, i32),
    failures: &mut Vec<String>,
) {
    let exited = wait_for(limit, || running.0.try_wait().ok().flatten().is_some());
    if !exited {
        failures.push(format!(
            "{what} did not exit within {} s of {cause}",
            limit.as_secs()
        ));
    } else {
        let rc = code(running.0.wait().unwrap());
        if rc != want {
            failures.push(format!("{what} exited {rc}, expected {want}"));
        }
    }
}

/// Pushes the failures both chaos tests look for in the samples: the log thread busy while
/// the disk was stuck (`ticks` over `time`; `stuck_expected`: the disk did fill, so tend
/// must have reported waiting), RSS above the limit, zombies older than a sampling period.
/// Returns the log thread's CPU share while stuck.
fn check_health(
    s: &Samples,
    (ticks, time): (u64, Duration),
    stuck_expected: bool,
    failures: &mut Vec<String>,
) -> f64 {
    let cpu = if time.is_zero() {
        0.0
    } else {
        ticks as f64 / 100.0 / time.as_secs_f64()
    };
    if stuck_expected && time.is_zero() {
        failures.push("the disk filled but tend never reported waiting for space".into());
    }
    if cpu > 0.10 {
        failures.push(format!(
            "log thread used {:.1}% CPU while the disk was stuck",
            cpu * 100.0
        ));
    }
    if s.rss_peak_kb > RSS_LIMIT_KB {
        failures.push(format!("tend RSS peaked at {} KiB", s.rss_peak_kb));
    }
    if !s.stuck_zombies.is_empty() {
        failures.push(format!(
            "zombies not reaped within 1 s: {:?}",
            s.stuck_zombies
        ));
    }
    cpu
}

fn stat_fields(path: &str) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(path).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Every child of tend (seen from here), over all of its threads.
fn children(tend: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{tend}/task")) {
        for t in tasks.flatten() {
            let s = read(&t.path().join("children"));
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

/// The pid of host process `pid` in the innermost namespace it is in.
fn ns_pid(pid: i32) -> Option<i64> {
    read(Path::new(&format!("/proc/{pid}/status")))
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|l| l.split_whitespace().last()?.parse::<i64>().ok())
}

/// The host pid of a child of tend whose pid in tend's namespace is `nspid`.
fn host_pid(tend: i32, nspid: i64) -> Option<i32> {
    children(tend)
        .into_iter()
        .find(|&c| ns_pid(c) == Some(nspid))
}

/// CPU ticks of tend's log thread.
fn log_thread_ticks(tend: i32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{tend}/task")) else {
        return 0;
    };
    for t in tasks.flatten() {
        if read(&t.path().join("comm")).trim() == "tend-log" {
            let f = stat_fields(&t.path().join("stat").to_string_lossy()).unwrap_or_default();
            return f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    0
}

fn sample(tend: i32, s: &mut Samples) {
    let rss = read(Path::new(&format!("/proc/{tend}/status")))
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
    let Some(rss) = rss else { return };
    s.n += 1;
    s.rss_peak_kb = s.rss_peak_kb.max(rss);
    let now = Instant::now();
    let mut seen = 0;
    for c in children(tend) {
        let Some(f) = stat_fields(&format!("/proc/{c}/stat")) else {
            continue;
        };
        if f[0] != "Z" {
            continue;
        }
        seen += 1;
        let key = (c, f[19].parse().unwrap_or(0));
        let first = *s.zombies.entry(key).or_insert(now);
        if now - first >= Duration::from_secs(1) {
            s.stuck_zombies.insert(c);
        }
    }
    s.zombies_peak = s.zombies_peak.max(seen);
    s.zombies.retain(|_, t| now - *t < Duration::from_secs(30));
}

/// The sampler's stop flag, thread and findings.
type Sampler = (
    Arc<AtomicBool>,
    std::thread::JoinHandle<()>,
    Arc<Mutex<Samples>>,
);

/// Samples tend every 100 ms until the flag is set.
fn start_sampler(pid: i32) -> Sampler {
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Samples::default()));
    let sampler = {
        let (stop, samples) = (stop.clone(), samples.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                sample(pid, &mut samples.lock().unwrap());
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    (stop, sampler, samples)
}

fn ctl(t: &Tree, args: &[&str]) -> Option<String> {
    let out = output_within(
        {
            let mut c = Command::new(tend());
            c.arg("ctl")
                .args(args)
                .env("TEND_RUN_DIR", t.tmp.join("run"));
            c
        },
        Duration::from_secs(20),
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fills the tmpfs with `path` until a write fails.
fn fill(path: &Path) {
    let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    else {
        return;
    };
    let chunk = vec![b'f'; 64 << 10];
    while f.write_all(&chunk).is_ok() {}
    let small = vec![b'f'; 4096];
    while f.write_all(&small).is_ok() {}
}

/// Fills the disk for `hold`, then frees it. Returns the log thread's CPU ticks and the
/// time from when tend reported waiting for space until the disk was freed.
fn disk_full(filler: &Path, errlog: &Path, pid: i32, hold: Duration) -> Option<(u64, Duration)> {
    let waits0 = read(errlog).matches("waiting for space").count();
    fill(filler);
    let t0 = Instant::now();
    let mut stuck_from = None;
    while t0.elapsed() < hold {
        std::thread::sleep(Duration::from_millis(100));
        fill(filler); // hooks moving archives out free space
        if stuck_from.is_none() && read(errlog).matches("waiting for space").count() > waits0 {
            stuck_from = Some((Instant::now(), log_thread_ticks(pid)));
        }
    }
    let r = stuck_from.map(|(at, ticks)| (log_thread_ticks(pid) - ticks, at.elapsed()));
    std::fs::remove_file(filler).unwrap();
    r
}

/// One parsed CRI line: (stream, partial, payload).
fn cri(line: &[u8]) -> Option<(&'static str, bool, &[u8])> {
    // 2026-11-22T22:30:01.123456789Z stdout F payload
    if line.len() < 40 || line[30] != b' ' || line[10] != b'T' || line[29] != b'Z' {
        return None;
    }
    let stream = match &line[31..38] {
        b"stdout " => "out",
        b"stderr " => "err",
        _ => return None,
    };
    let partial = match &line[38..40] {
        b"P " => true,
        b"F " => false,
        _ => return None,
    };
    Some((stream, partial, &line[40..]))
}

/// What was found for one (service, stream).
#[derive(Default, Debug)]
struct Found {
    count: BTreeMap<u64, u32>,
    torn: Vec<Option<u64>>,
    wrong_stream: u64,
    stray_bytes: u64,
}

/// Scans one logical line (pieces joined) for records of `svc`.
fn scan(svc: &str, stream: &str, line: &[u8], found: &mut HashMap<String, Found>) {
    let mut i = 0;
    let mut stray = 0u64;
    while i < line.len() {
        let Some(k) = line[i..].windows(2).position(|w| w == b"R|") else {
            stray += (line.len() - i) as u64;
            break;
        };
        stray += k as u64;
        let p = i + k;
        match parse_record(svc, &line[p..]) {
            Ok((st, seq, len)) => {
                let f = found.entry(st.to_owned()).or_default();
                if st != stream {
                    f.wrong_stream += 1;
                }
                *f.count.entry(seq).or_insert(0) += 1;
                i = p + len;
            }
            Err((st, seq)) => {
                found
                    .entry(st.unwrap_or(stream).to_owned())
                    .or_default()
                    .torn
                    .push(seq);
                // The torn record's bytes run up to the next record (or the line's end).
                i = line[p + 2..]
                    .windows(2)
                    .position(|w| w == b"R|")
                    .map_or(line.len(), |k| p + 2 + k);
            }
        }
    }
    found.entry(stream.to_owned()).or_default().stray_bytes += stray;
}

/// What could be read of a torn record: its stream and seq.
type Torn<'a> = (Option<&'a str>, Option<u64>);

/// A whole record at the start of `b`: (stream, seq, bytes used), or what could be read of
/// a torn one.
fn parse_record<'a>(svc: &str, b: &'a [u8]) -> Result<(&'a str, u64, usize), Torn<'a>> {
    let mut parts = b.splitn(6, |&c| c == b'|');
    let (_r, name, st, seq, len) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    );
    let st = st
        .and_then(|s| std::str::from_utf8(s).ok())
        .filter(|s| *s == "out" || *s == "err");
    let seq_n = seq.and_then(|s| std::str::from_utf8(s).ok()?.parse::<u64>().ok());
    let len_n = len.and_then(|s| std::str::from_utf8(s).ok()?.parse::<usize>().ok());
    let (Some(st), Some(seq_n), Some(len_n), Some(name), Some(seq), Some(len)) =
        (st, seq_n, len_n, name, seq, len)
    else {
        return Err((st, seq_n.filter(|_| len.is_some())));
    };
    if name != svc.as_bytes() {
        return Err((Some(st), None));
    }
    let head = 2 + name.len() + 1 + st.len() + 1 + seq.len() + 1 + len.len() + 1;
    let fill = b'a' + (seq_n % 26) as u8;
    let end = head + len_n;
    let whole =
        b.len() >= end + 2 && b[head..end].iter().all(|&c| c == fill) && &b[end..end + 2] == b"|E";
    if whole {
        Ok((st, seq_n, end + 2))
    } else {
        Err((Some(st), Some(seq_n)))
    }
}

/// Reads every record of `svc`: moved archives, archives left in the log dir, `current`.
fn collect(t: &Tree, safe: &Path, svc: &str) -> (HashMap<String, Found>, usize, u64) {
    let dir = t.log_dir(svc);
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    for d in [safe.join(svc), dir.clone()] {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with('@') && n.ends_with(".log") && n != DECOY {
                // A copy and its original (hook cut short) are identical: read one.
                files.entry(n).or_insert(e.path());
            }
        }
    }
    let archives = files.len();
    let mut paths: Vec<PathBuf> = files.into_values().collect();
    paths.push(dir.join("current"));
    let mut found: HashMap<String, Found> = HashMap::new();
    let mut pending: HashMap<&str, Vec<u8>> = HashMap::new();
    let mut cut: HashMap<&str, Vec<u8>> = HashMap::new();
    let mut bytes = 0;
    for p in paths {
        let data = std::fs::read(&p).unwrap_or_default();
        bytes += data.len() as u64;
        for line in data.split(|&c| c == b'\n') {
            if line.is_empty() {
                continue;
            }
            let Some((stream, partial, payload)) = cri(line) else {
                found.entry("bad-line".into()).or_default().stray_bytes += line.len() as u64;
                continue;
            };
            let buf = pending.entry(stream).or_default();
            buf.extend_from_slice(payload);
            if !partial {
                let whole = std::mem::take(buf);
                // A line that ran on for --rotate-size past the rotation point is ended
                // with F and continues as a new line (SPEC §4): a line that stops inside a
                // record and one that does not start a record are the two halves.
                let held = cut.entry(stream).or_default();
                let whole = if !held.is_empty() && !whole.starts_with(b"R|") {
                    [std::mem::take(held), whole].concat()
                } else {
                    if !held.is_empty() {
                        scan(svc, stream, &std::mem::take(held), &mut found);
                    }
                    whole
                };
                if whole.ends_with(b"|E") {
                    scan(svc, stream, &whole, &mut found);
                } else {
                    *held = whole;
                }
            }
        }
    }
    for (stream, held) in cut {
        if !held.is_empty() {
            scan(svc, stream, &held, &mut found);
        }
    }
    for (stream, rest) in pending {
        if !rest.is_empty() {
            found
                .entry(format!("unfinished-{stream}"))
                .or_default()
                .stray_bytes += rest.len() as u64;
        }
    }
    (found, archives, bytes)
}

fn state(out: &Path, svc: &str, slot: usize) -> u64 {
    let b = std::fs::read(out.join(format!("{svc}.state"))).unwrap_or_default();
    b.get(slot * 32..slot * 32 + 20)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.trim_matches(|c| c == '\0' || c == ' ').parse().ok())
        .unwrap_or(0)
}

/// Checks every record of `svc` against its producer's ledger (see the module doc); pushes
/// what is wrong to `failures`. `killed`: SIGKILLs the test sent it; `final_killed`: its
/// last incarnation was SIGKILLed (so its last stored seq may be missing too). Returns
/// (records checked, archives, bytes read, gaps).
#[allow(clippy::too_many_arguments)]
fn check_service(
    t: &Tree,
    safe: &Path,
    out: &Path,
    svc: &str,
    streams: usize,
    killed: u32,
    final_killed: bool,
    failures: &mut Vec<String>,
) -> (u64, usize, u64, usize) {
    let (found, n_arch, n_bytes) = collect(t, safe, svc);
    let mut checked = 0;
    let starts: Vec<Vec<u64>> = read(&out.join(format!("{svc}.starts")))
        .lines()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .collect();
    if let Ok(e) = std::fs::read_to_string(out.join(format!("{svc}.error"))) {
        failures.push(format!("{svc}: producer error: {e}"));
    }
    for (k, _) in found.iter().filter(|(k, _)| *k != "out" && *k != "err") {
        failures.push(format!("{svc}: unexpected data: {k}: {:?}", found[k]));
    }
    let mut gaps = 0;
    for (slot, stream) in ["out", "err"].iter().enumerate().take(streams) {
        let last = state(out, svc, slot);
        let empty = Found::default();
        let f = found.get(*stream).unwrap_or(&empty);
        let excused: BTreeSet<u64> = starts
            .iter()
            .skip(1)
            .filter_map(|s| s.get(slot).map(|v| v - 1))
            .chain(final_killed.then_some(last))
            .collect();
        let dups: Vec<_> = f.count.iter().filter(|(_, c)| **c > 1).collect();
        if !dups.is_empty() {
            failures.push(format!("{svc}/{stream}: duplicated seqs {dups:?}"));
        }
        let missing: Vec<u64> = (1..=last).filter(|n| !f.count.contains_key(n)).collect();
        let unexcused: Vec<&u64> = missing.iter().filter(|n| !excused.contains(n)).collect();
        if !unexcused.is_empty() {
            failures.push(format!(
                "{svc}/{stream}: {} records lost (first {:?}) of 1..={last}",
                unexcused.len(),
                &unexcused[..unexcused.len().min(10)]
            ));
        }
        if let Some((n, _)) = f.count.range(last + 1..).next() {
            failures.push(format!(
                "{svc}/{stream}: seq {n} beyond the last stored {last}"
            ));
        }
        for torn in &f.torn {
            if torn.is_some_and(|n| !excused.contains(&n) || f.count.contains_key(&n)) {
                failures.push(format!(
                    "{svc}/{stream}: torn record {torn:?} not at a kill point"
                ));
            }
        }
        if f.wrong_stream > 0 {
            failures.push(format!(
                "{svc}/{stream}: {} records on the wrong stream",
                f.wrong_stream
            ));
        }
        if svc != "junk" && f.stray_bytes > 0 {
            failures.push(format!(
                "{svc}/{stream}: {} bytes outside records",
                f.stray_bytes
            ));
        }
        gaps += missing.len() + f.torn.iter().filter(|t| t.is_none()).count();
        checked += f.count.len() as u64;
    }
    let killed = killed as usize;
    if gaps > killed {
        failures.push(format!(
            "{svc}: {gaps} gaps/torn records but only {killed} kills"
        ));
    }
    (checked, n_arch, n_bytes, gaps)
}

/// `CHAOS_SECS` (or `default`) and `CHAOS_SEED` (or one from the clock), printed.
fn params(default: u64) -> (u64, u64) {
    let secs: u64 = std::env::var("CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                % 1_000_000
        });
    eprintln!("chaos: CHAOS_SEED={seed} CHAOS_SECS={secs}");
    (secs, seed)
}

/// The log root on a tmpfs, decoys bind-mounted in each service directory (see the module
/// doc), the archive-moving hook and the `tend log` flags that use it.
struct Setup {
    mounts: Mounts,
    safe: PathBuf,
    logs: PathBuf,
    log_options: Vec<String>,
}

fn setup(t: &Tree, services: &[&str]) -> Option<Setup> {
    let out = t.out();
    let safe = t.tmp.join("safe");
    std::fs::create_dir_all(&safe).unwrap();
    let logs = t.tmp.join("logs");
    let mut mounts = Mounts(Vec::new());
    if !mounts.mount(&["-t", "tmpfs", "-o", "size=32m", "tmpfs"], &logs) {
        println!("skipped: cannot mount a tmpfs (not root?)");
        return None;
    }
    std::fs::write(out.join("producer.py"), PRODUCER).unwrap();
    let hook = t.tmp.join("hook");
    put(
        t.tmp.path(),
        "hook",
        &format!(
            "#!/bin/sh\n# Moves archive $1 off the tmpfs: copy under a tmp name, rename, remove.\n\
             svc=$(basename \"$(dirname \"$1\")\"); name=$(basename \"$1\"); dst={}/$svc\n\
             mkdir -p \"$dst\" && cp \"$1\" \"$dst/.$name.tmp\" && mv \"$dst/.$name.tmp\" \"$dst/$name\" && rm -f \"$1\"\n",
            safe.display()
        ),
        true,
    );
    for name in services {
        let dir = t.log_dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        let decoy = dir.join(DECOY);
        std::fs::write(&decoy, "").unwrap();
        assert!(
            mounts.mount(&["--bind", decoy.to_str().unwrap()], &decoy),
            "cannot bind-mount the decoy archive"
        );
    }
    let log_options = [
        "--rotate-size 256KiB".to_string(),
        "--keep 1000".into(),
        "--on-full block".into(),
        format!("--on-rotate {}", hook.display()),
    ]
    .to_vec();
    Some(Setup {
        mounts,
        safe,
        logs,
        log_options,
    })
}

#[test]
fn chaos_every_record_exactly_once_bounded_rss_no_zombies() {
    let (secs, seed) = params(30);
    let mut rng = Rng(seed);
    let t = Tree::new("chaos");
    let out = t.out();
    let names: Vec<&str> = SERVICES.iter().map(|s| s.0).collect();
    let Some(Setup {
        mounts,
        safe,
        logs,
        log_options,
    }) = setup(&t, &names)
    else {
        return;
    };
    let fork_delay = 1 + rng.below(secs / 4 + 1);
    for (name, mode, _) in SERVICES {
        t.longrun(
            name,
            &format!("exec python3 \"$OUT/producer.py\" {name} {mode}"),
        );
        t.file(name, "log-options", &log_options.join("\n"), false);
        t.file(name, "env/CHAOS_SEED", &format!("{seed}\n"), false);
        t.file(name, "env/FORK_DELAY", &format!("{fork_delay}\n"), false);
        t.file(name, "timeout-kill", "10000\n", false);
    }

    let (errlog, pid, running, (stop, sampler, samples)) = launch(&t, t.init(&[]));

    let started = Instant::now();
    let mut actions: Vec<String> = Vec::new();
    let mut kills: HashMap<&str, u32> = HashMap::new();
    let filler = logs.join("filler");
    let (mut stuck_ticks, mut stuck_time, mut fills) = (0u64, Duration::ZERO, 0);
    let mut last_fill = Instant::now();
    let log = |actions: &mut Vec<String>, s: String| {
        actions.push(format!("{:>7.2}s {s}", started.elapsed().as_secs_f64()));
    };
    assert!(
        wait_for(Duration::from_secs(20), || ctl(&t, &["status"]).is_some()),
        "control socket never came up"
    );
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(200 + rng.below(1000)));
        let victim = VICTIMS[rng.below(VICTIMS.len() as u64) as usize];
        match rng.below(100) {
            // At least one episode, a third of the way in; then at random.
            n if (fills == 0 && started.elapsed() > Duration::from_secs(secs / 3))
                || (70..90).contains(&n)
                    && fills < 4
                    && last_fill.elapsed() > Duration::from_secs(4) =>
            {
                let hold = Duration::from_millis(1500 + rng.below(2000));
                log(&mut actions, format!("disk full, holding {hold:?}"));
                let stuck = disk_full(&filler, &errlog, pid, hold);
                if let Some((ticks, time)) = stuck {
                    stuck_ticks += ticks;
                    stuck_time += time;
                }
                log(
                    &mut actions,
                    format!("disk freed (tend reported stuck: {})", stuck.is_some()),
                );
                fills += 1;
                last_fill = Instant::now();
            }
            0..35 => {
                let ok = ctl(&t, &["kill", "KILL", victim]).is_some();
                if ok {
                    *kills.entry(victim).or_default() += 1;
                }
                log(&mut actions, format!("ctl kill KILL {victim}: ok={ok}"));
            }
            35..60 => {
                let json = ctl(&t, &["status", "--json"]).unwrap_or_default();
                let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
                let nspid = v["services"].as_array().and_then(|a| {
                    a.iter()
                        .find(|s| s["name"] == victim)
                        .and_then(|s| s["pid"].as_i64())
                });
                let host = nspid.and_then(|p| host_pid(pid, p));
                let ok = host.is_some_and(|h| {
                    Command::new("kill")
                        .args(["-9", &h.to_string()])
                        .status()
                        .is_ok_and(|s| s.success())
                });
                if ok {
                    *kills.entry(victim).or_default() += 1;
                }
                log(
                    &mut actions,
                    format!("kill -9 {victim} (ns pid {nspid:?}, host {host:?}): ok={ok}"),
                );
            }
            60..70 => {
                let ok = ctl(&t, &["restart", victim]).is_some();
                log(&mut actions, format!("ctl restart {victim}: ok={ok}"));
            }
            _ => {}
        }
    }
    let _ = std::fs::remove_file(&filler);
    let chaos_took = started.elapsed();
    let mut failures: Vec<String> = Vec::new();
    // The orphan storm must have completed (it resumes after kills) and been reaped.
    if !wait_for(Duration::from_secs(90), || {
        state(&out, "forker", 2) >= 10_000
    }) {
        failures.push(format!(
            "forker made only {} of 10000 orphans",
            state(&out, "forker", 2)
        ));
    }
    std::thread::sleep(Duration::from_secs(1));
    if !wait_for(Duration::from_secs(5), || {
        children(pid)
            .iter()
            .all(|c| stat_fields(&format!("/proc/{c}/stat")).is_none_or(|f| f[0] != "Z"))
    }) {
        failures.push("zombies remained after the chaos".into());
    }
    let settle_took = started.elapsed() - chaos_took;
    let term_at = Instant::now();
    signal(pid, "TERM");
    await_exit(
        running,
        Duration::from_secs(60),
        ("tend", "SIGTERM", 0),
        &mut failures,
    );
    let took = term_at.elapsed();
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    let s = samples.lock().unwrap();

    // Records.
    let (mut checked, mut archives, mut bytes, mut gaps_total) = (0u64, 0, 0u64, 0);
    for (svc, _, streams) in SERVICES {
        let killed = kills.get(svc).copied().unwrap_or(0);
        let (c, a, b, g) =
            check_service(&t, &safe, &out, svc, *streams, killed, false, &mut failures);
        checked += c;
        archives += a;
        bytes += b;
        gaps_total += g;
    }
    let cpu = check_health(&s, (stuck_ticks, stuck_time), fills > 0, &mut failures);
    if s.n < 10 {
        failures.push(format!("only {} samples taken", s.n));
    }
    let summary = format!(
        "chaos: seed {seed}, {secs}s chaos ({chaos_took:.1?}, then {settle_took:.1?} for the orphan storm to end), total {:.1}s; {checked} records checked ({bytes} bytes in {archives} archives + current), {gaps_total} gaps at kill points, kills {kills:?}; \
         {fills} disk-full episodes, log thread CPU while stuck {:.1}% over {stuck_time:.1?}; RSS peak {} KiB over {} samples; zombies peak {} (none older than 1 s: {}); shutdown took {took:.1?}",
        started.elapsed().as_secs_f64(),
        cpu * 100.0,
        s.rss_peak_kb,
        s.n,
        s.zombies_peak,
        s.stuck_zombies.is_empty()
    );
    eprintln!("{summary}");
    if !failures.is_empty() {
        panic!(
            "{summary}\nFAILURES (re-run with CHAOS_SEED={seed}):\n  {}\nactions:\n  {}\ntend stderr (tail):\n{}",
            failures.join("\n  "),
            actions.join("\n  "),
            read(&errlog)
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    drop(mounts);
}

/// `tend run` under chaos (shorter): one command writing 1 MiB lines and stderr records
/// and forking 2,000 orphans, the disk filling and freeing, then the command SIGKILLed:
/// tend must exit 137, with every record the command wrote exactly once (its last stored
/// seq excused: it was killed), no zombie left, RSS bounded.
#[test]
fn chaos_run_wrapper_keeps_records_and_reports_the_kill() {
    let (secs, seed) = params(30);
    let secs = (secs / 3).max(6);
    let mut rng = Rng(seed ^ 0x5eed);
    let t = Tree::new("chaos-run");
    let out = t.out();
    let Some(Setup {
        mounts,
        safe,
        logs,
        log_options,
    }) = setup(&t, &["main"])
    else {
        return;
    };
    let producer = out.join("producer.py");
    let mut args = vec!["run".to_string(), "--log-root".into()];
    args.push(logs.to_str().unwrap().into());
    for o in &log_options {
        let (flag, value) = o.split_once(' ').unwrap();
        args.extend([flag.to_string(), value.to_string()]);
    }
    args.extend(["--".into(), "python3".into()]);
    args.extend([
        producer.to_str().unwrap().into(),
        "main".into(),
        "runmix".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = pid1(&args);
    cmd.env("TEND_NAMESPACE", "ns")
        .env("TEND_APP", "app")
        .env("TEND_POD", "pod")
        .env("OUT", &out)
        .env("CHAOS_SEED", seed.to_string());
    let (errlog, pid, running, (stop, sampler, samples)) = launch(&t, cmd);
    let started = Instant::now();
    let mut actions = Vec::new();
    let (mut stuck_ticks, mut stuck_time) = (0, Duration::ZERO);
    let filler = logs.join("filler");
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(500 + rng.below(1500)));
        let hold = Duration::from_millis(1000 + rng.below(1500));
        actions.push(format!("{:.2?}: disk full for {hold:?}", started.elapsed()));
        if let Some((ticks, time)) = disk_full(&filler, &errlog, pid, hold) {
            stuck_ticks += ticks;
            stuck_time += time;
        }
    }
    let mut failures = Vec::new();
    // The command is tend's oldest child (lowest pid in the namespace: pids only grow
    // here); the others are orphans.
    let command = children(pid)
        .into_iter()
        .filter_map(|c| Some((ns_pid(c)?, c)))
        .min();
    match command {
        Some((_, h)) => signal(h, "KILL"),
        None => failures.push("the command was not found".into()),
    }
    // 137: 128+SIGKILL, the command's fate.
    await_exit(
        running,
        Duration::from_secs(30),
        ("tend run", "its command's death", 137),
        &mut failures,
    );
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    let (checked, archives, bytes, gaps) =
        check_service(&t, &safe, &out, "main", 2, 1, true, &mut failures);
    let s = samples.lock().unwrap();
    // The disk fills at least once in the loop above.
    let cpu = check_health(&s, (stuck_ticks, stuck_time), true, &mut failures);
    let summary = format!(
        "chaos run: seed {seed}, {:.1}s; {checked} records checked ({bytes} bytes, {archives} archives + current), {gaps} gaps; {} orphans; log thread CPU while stuck {:.1}% over {stuck_time:.1?}; RSS peak {} KiB over {} samples; zombies peak {}",
        started.elapsed().as_secs_f64(),
        state(&out, "main", 2),
        cpu * 100.0,
        s.rss_peak_kb,
        s.n,
        s.zombies_peak
    );
    eprintln!("{summary}");
    assert!(
        failures.is_empty(),
        "{summary}\nFAILURES (re-run with CHAOS_SEED={seed}):\n  {}\nactions:\n  {}\ntend stderr:\n{}",
        failures.join("\n  "),
        actions.join("\n  "),
        read(&errlog)
    );
    drop(mounts);
}
