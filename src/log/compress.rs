//! `--compress gzip`: a background thread per sink turns `@x.log` into `@x.log.gz`, so
//! capture never waits on deflate. Crash-safe: `.gz.tmp` → fsync → rename → unlink `.log`.

use super::dirfd;
use flate2::Compression;
use flate2::write::GzEncoder;
use nix::fcntl::OFlag;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

/// Handle to one sink's compressor thread.
pub struct Compressor {
    tx: Option<mpsc::Sender<String>>,
    /// `(archive .log name, size of its .gz)` for each archive compressed.
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
        let (tx, rx) = mpsc::channel::<String>();
        let (done_tx, done) = mpsc::channel();
        let (size_tx, sizes) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let shown = path.display().to_string();
        let handle = std::thread::Builder::new()
            .name("tend-gzip".into())
            .spawn(move || {
                for name in rx {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    match compress_one(&dir, &name, &stop2) {
                        Ok(Some(gz)) => {
                            if let Ok(st) = dirfd::stat_in(&dir, &gz) {
                                let _ = size_tx.send((name.clone(), st.st_size as u64));
                            }
                            if let Some(argv) = &on_rotate {
                                super::hooks::spawn_hook(argv, &path.join(gz));
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            eprintln!("tend: {}/{name}: cannot compress: {e}", path.display())
                        }
                    }
                }
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

    /// Queues archive `name` (an `@….log` in the directory).
    pub fn submit(&self, name: String) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(name);
        }
    }

    /// Archives compressed since the last call: `(.log name, .gz size)`.
    pub fn compressed(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        self.sizes.try_iter()
    }

    /// Lets queued work finish until `deadline` (forever if `None`), then abandons the rest:
    /// an unfinished `.log` stays and is compressed again at the next open.
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

/// Compresses one archive; returns the `.gz` name, or `None` when abandoned or when the
/// archive vanished (retention removed it meanwhile).
fn compress_one(dir: &OwnedFd, name: &str, stop: &AtomicBool) -> Result<Option<String>, String> {
    let src = match dirfd::open_in(dir, name, OFlag::O_RDONLY) {
        Ok(fd) => std::fs::File::from(fd),
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
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
    let mut enc = GzEncoder::new(std::fs::File::from(out), Compression::default());
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
