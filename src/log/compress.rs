//! `--compress gzip`: a background thread per sink turns `@x.log` into `@x.log.gz`, so
//! capture never waits on deflate. Crash-safe: `.gz.tmp` → fsync → rename → unlink `.log`.
//!
//! An archive is compressed only once it is [`DELAY`] old (by the time in its name), like
//! logrotate's `delaycompress`: a node agent finds a rotated file by its `@….log` name at
//! its next directory scan, and a file renamed to `.gz` before that scan is never read.

use super::gzip::GzEncoder;
use super::{archive, dirfd};
use nix::fcntl::OFlag;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How old an archive must be before it is compressed: longer than the scan interval of
/// the agents in examples/ (Fluent Bit's default `Refresh_Interval` is 60 s) plus an agent
/// restart, so a collector that has not opened an archive yet still finds it.
pub const DELAY: Duration = Duration::from_secs(300);

/// Shortest time between two passes over the directory, in nanoseconds.
const PASS_EVERY: i128 = 1_000_000_000;

/// Handle to one sink's compressor thread.
pub struct Compressor {
    tx: Option<mpsc::Sender<String>>,
    /// `(archive .log name, size of its .gz)` for each archive compressed (the sink's index).
    sizes: mpsc::Receiver<(String, u64)>,
    done: mpsc::Receiver<()>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Compressor {
    /// Starts the thread; it owns `dir` (a duplicate of the sink's fd).
    pub fn start(
        dir: OwnedFd,
        path: PathBuf,
        on_rotate: Option<Vec<String>>,
    ) -> Result<Compressor, String> {
        Compressor::start_with_delay(dir, path, on_rotate, DELAY)
    }

    fn start_with_delay(
        dir: OwnedFd,
        path: PathBuf,
        on_rotate: Option<Vec<String>>,
        delay: Duration,
    ) -> Result<Compressor, String> {
        let (tx, rx) = mpsc::channel::<String>();
        let (done_tx, done) = mpsc::channel();
        let (size_tx, sizes) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let shown = path.display().to_string();
        let handle = std::thread::Builder::new()
            .name("tend-gzip".into())
            .spawn(move || {
                let mut w = Worker {
                    dir,
                    path,
                    on_rotate,
                    delay: delay.as_nanos() as i128,
                    stop: stop2,
                    failed: Vec::new(),
                    sizes: size_tx,
                };
                w.run(rx);
                let _ = done_tx.send(());
            })
            .map_err(|e| format!("{shown}: cannot start compressor thread: {e}"))?;
        Ok(Compressor {
            tx: Some(tx),
            sizes,
            done,
            stop,
            handle: Some(handle),
        })
    }

    /// Tells the thread about archive `name` (an `@….log` in the directory); it is
    /// compressed once [`DELAY`] old.
    pub fn submit(&self, name: String) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(name);
        }
    }

    /// Archives compressed since the last call: `(.log name, .gz size)`.
    pub fn compressed(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        self.sizes.try_iter()
    }

    /// Compresses what is already due until `deadline` (forever if `None`), then abandons
    /// the rest: an archive not yet due, or unfinished, stays `.log` and is compressed by
    /// the next run once due.
    pub fn stop(mut self, deadline: Option<Instant>) {
        self.tx = None;
        let finished = match deadline {
            None => self.done.recv().is_ok(),
            Some(d) => self
                .done
                .recv_timeout(d.saturating_duration_since(Instant::now()))
                .is_ok(),
        };
        if !finished {
            self.stop.store(true, Ordering::Relaxed);
        }
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The compressor thread's state.
struct Worker {
    dir: OwnedFd,
    path: PathBuf,
    on_rotate: Option<Vec<String>>,
    /// [`DELAY`] in nanoseconds.
    delay: i128,
    stop: Arc<AtomicBool>,
    /// Archives that failed this run: reported once, not retried until the next run.
    failed: Vec<String>,
    /// Reports each `.gz` size back to the sink's archive index.
    sizes: mpsc::Sender<(String, u64)>,
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i128
}

impl Worker {
    /// Sleeps until the oldest uncompressed archive is due (a submitted name can only
    /// bring that time forward: O(1) per rotation), then compresses everything due.
    /// Memory stays bounded: names are not queued, the directory is the queue.
    fn run(&mut self, rx: mpsc::Receiver<String>) {
        // First pass at once: archives a previous run left uncompressed.
        let mut next_due = Some(i128::MIN);
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let now = now_ns();
            let msg = match next_due {
                Some(d) if d <= now => {
                    // At most one pass (one directory listing) per second, however fast
                    // tend rotates; an archive is compressed at most 1 s after it is due.
                    next_due = self.pass(now).map(|n| n.max(now + PASS_EVERY));
                    continue;
                }
                // Capped, so a clock set back far does not park the thread for long.
                Some(d) => {
                    rx.recv_timeout(Duration::from_nanos((d - now).min(self.delay).max(0) as u64))
                }
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match msg {
                Ok(name) => {
                    let due = name
                        .strip_suffix(".log")
                        .and_then(archive::parse_stem)
                        .map_or(now, |ns| ns.saturating_add(self.delay));
                    next_due = Some(next_due.map_or(due, |d| d.min(due)));
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // Closing: compress what is due now, leave the rest for the next run.
                    self.pass(now_ns());
                    return;
                }
            }
        }
    }

    /// Compresses every `.log`-only archive whose time is `delay` before `now`; returns
    /// when the next one is due.
    fn pass(&mut self, now: i128) -> Option<i128> {
        let archives = match archive::list(&self.dir) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("tend: {}: cannot list archives: {e}", self.path.display());
                // Try again later rather than spin.
                return Some(now.saturating_add(self.delay));
            }
        };
        let mut next = None;
        // Forget failures whose archive is gone (bounded by the archives on disk).
        self.failed
            .retain(|f| archives.iter().any(|a| a.files.contains(f)));
        for a in archives {
            let [name] = a.files.as_slice() else { continue };
            if !name.ends_with(".log") || self.failed.contains(name) {
                continue;
            }
            let due = a.ns.saturating_add(self.delay);
            if due > now {
                next = Some(next.map_or(due, |n: i128| n.min(due)));
                continue;
            }
            if self.stop.load(Ordering::Relaxed) {
                return None;
            }
            match compress_one(&self.dir, name, &self.stop) {
                Ok(Some(gz)) => {
                    if let Ok(st) = dirfd::stat_in(&self.dir, &gz) {
                        let _ = self.sizes.send((name.clone(), st.st_size as u64));
                    }
                    if let Some(argv) = &self.on_rotate {
                        super::hooks::request_hook(argv, &self.path.join(gz));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    eprintln!("tend: {}/{name}: cannot compress: {e}", self.path.display());
                    self.failed.push(name.clone());
                }
            }
        }
        next
    }
}

/// Compresses one archive; returns the `.gz` name, or `None` when abandoned or when the
/// archive vanished (retention removed it meanwhile).
fn compress_one(dir: &OwnedFd, name: &str, stop: &AtomicBool) -> Result<Option<String>, String> {
    // The listing saw a regular file, but a FIFO can have taken its name since: a blocking
    // open would park this thread for good, and `stop` (joining it) every shutdown.
    let src = match dirfd::open_in(dir, name, OFlag::O_RDONLY | OFlag::O_NONBLOCK) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    match nix::sys::stat::fstat(&src) {
        Ok(st) if dirfd::is_regular(&st) => {}
        Ok(_) => return Err("not a regular file".into()),
        Err(e) => return Err(e.to_string()),
    }
    let src = std::fs::File::from(src);
    let gz = format!("{name}.gz");
    let tmp = format!("{gz}.tmp");
    dirfd::unlink_in(dir, &tmp).map_err(|e| format!("{tmp}: {e}"))?;
    let out = dirfd::open_in(dir, &tmp, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL)
        .map_err(|e| format!("{tmp}: {e}"))?;
    // Every way out but the rename removes the temporary file: a `.gz.tmp` left behind
    // (ENOSPC mid-write) is invisible to retention, which would delete real archives.
    match deflate_into(src, out, &tmp, stop) {
        Ok(true) => {}
        Ok(false) => {
            let _ = dirfd::unlink_in(dir, &tmp);
            return Ok(None);
        }
        Err(e) => {
            let _ = dirfd::unlink_in(dir, &tmp);
            return Err(e);
        }
    }
    if let Err(e) = dirfd::rename_in(dir, &tmp, &gz) {
        let _ = dirfd::unlink_in(dir, &tmp);
        return Err(format!("{tmp} → {gz}: {e}"));
    }
    // If retention deleted the .log while we read it, the archive is gone: drop the .gz too.
    match nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) => {}
        Err(nix::errno::Errno::ENOENT) => {
            let _ = dirfd::unlink_in(dir, &gz);
            return Ok(None);
        }
        Err(e) => return Err(format!("{name}: {e}")),
    }
    let _ = nix::unistd::fsync(dir);
    Ok(Some(gz))
}

/// Gzips `src` into `out` and fsyncs it; `false` when abandoned (`stop`).
fn deflate_into(
    mut src: std::fs::File,
    out: OwnedFd,
    tmp: &str,
    stop: &AtomicBool,
) -> Result<bool, String> {
    let mut enc = GzEncoder::new(std::fs::File::from(out));
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let n = std::io::Read::read(&mut src, &mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        enc.write_all(&buf[..n])
            .map_err(|e| format!("{tmp}: {e}"))?;
    }
    let file = enc.finish().map_err(|e| format!("{tmp}: {e}"))?;
    file.sync_all().map_err(|e| format!("{tmp}: fsync: {e}"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory with one archive made long ago and one made now.
    fn setup(name: &str) -> (PathBuf, String, String, i128) {
        let dir = std::env::temp_dir().join(format!("tend-gz-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let old = "@20200101T000000.000000000Z.log".to_owned();
        let fresh_ns = now_ns();
        let fresh = format!("{}.log", archive::stem(fresh_ns));
        std::fs::write(dir.join(&old), b"old\n").unwrap();
        std::fs::write(dir.join(&fresh), b"fresh\n").unwrap();
        (dir, old, fresh, fresh_ns)
    }

    fn start(dir: &std::path::Path, delay: Duration) -> Compressor {
        let fd = dirfd::open_root(dir).unwrap();
        Compressor::start_with_delay(fd, dir.to_path_buf(), None, delay).unwrap()
    }

    /// A FIFO that took an archive's name after the listing: refused at once (a blocking
    /// open parked the compressor, and `stop` joining it hung every shutdown).
    #[test]
    fn a_fifo_in_place_of_an_archive_never_blocks() {
        let (dir, old, _, _) = setup("fifo");
        std::fs::remove_file(dir.join(&old)).unwrap();
        nix::unistd::mkfifo(
            &dir.join(&old),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let fd = dirfd::open_root(&dir).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(compress_one(&fd, &old, &AtomicBool::new(false)));
        });
        let r = rx.recv_timeout(Duration::from_secs(10));
        let _ = std::fs::remove_dir_all(&dir);
        let e = r.expect("compress_one blocked on a FIFO").unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn an_archive_is_compressed_only_once_it_is_old_enough() {
        let (dir, old, fresh, fresh_ns) = setup("delay");
        let delay = Duration::from_secs(3);
        let c = start(&dir, delay);
        c.submit(fresh.clone());
        let gz = |n: &str| dir.join(format!("{n}.gz")).exists();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !gz(&old) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            gz(&old),
            "an archive older than the delay is compressed at once"
        );
        if now_ns() - fresh_ns < delay.as_nanos() as i128 {
            assert!(
                dir.join(&fresh).exists() && !gz(&fresh),
                "compressed too early"
            );
        }
        while !gz(&fresh) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Seen compressed only after its due time, however loaded the machine.
        let age = now_ns() - fresh_ns;
        assert!(gz(&fresh) && !dir.join(&fresh).exists(), "never compressed");
        assert!(age >= delay.as_nanos() as i128, "compressed after {age} ns");
        c.stop(None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn closing_leaves_archives_not_yet_due_for_the_next_run() {
        let (dir, old, fresh, _) = setup("close");
        let c = start(&dir, DELAY);
        c.submit(fresh.clone());
        let t = Instant::now();
        c.stop(None);
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "close waited for the delay"
        );
        assert!(dir.join(format!("{old}.gz")).exists() && !dir.join(&old).exists());
        assert!(
            dir.join(&fresh).exists(),
            "a fresh archive was compressed at close"
        );
        assert!(!dir.join(format!("{fresh}.gz")).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
