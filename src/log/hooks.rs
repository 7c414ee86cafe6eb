//! `--on-rotate` hooks: asked for by the log side, run and reaped by the process owner.
//!
//! The log thread (and a compressor thread) must never wait on a process, and tend has one
//! reaper (the PID-1 loop's `waitpid(-1)`; `tend log`'s main loop). So a rotation only
//! *requests* its hook ([`request_hook`]: a message and an eventfd wake-up); the owner's
//! [`Hooks`] starts it, learns of its end from the reaper, and starts the next. Per log
//! directory at most one hook runs; later requests wait in a bounded queue, and past that
//! they are skipped and counted. Hooks start in their own session with an empty signal mask
//! and default dispositions, so a stop signal stops them; at shutdown the queue is dropped
//! and running hooks are signalled with everything else.

use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

/// Requests waiting per log directory while its hook runs.
const QUEUE: usize = 8;

/// One hook to run: the command and the archive path appended to it.
struct Request {
    dir: PathBuf,
    argv: Vec<String>,
    archive: PathBuf,
}

/// Where requests go: the owner installed by [`Hooks::install`].
struct Desk {
    tx: mpsc::Sender<Request>,
    wake: Arc<EventFd>,
}

static DESK: Mutex<Option<Desk>> = Mutex::new(None);

/// Asks the process owner to run `argv ARCHIVE` for `archive`'s log directory. Never
/// blocks on a process; without an owner (unit tests) the hook is not run.
pub fn request_hook(argv: &[String], archive: &Path) {
    let dir = archive.parent().unwrap_or(Path::new("")).to_path_buf();
    let r = Request {
        dir,
        argv: argv.to_vec(),
        archive: archive.to_path_buf(),
    };
    // A poisoned lock only means another thread panicked mid-send; the Option is intact.
    let desk = DESK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(d) = desk.as_ref()
        && d.tx.send(r).is_ok()
    {
        let _ = d.wake.write(1);
    }
}

#[derive(Default)]
struct Slot {
    running: Option<Pid>,
    queue: VecDeque<Request>,
    skipped: u64,
}

/// The owner's side: starts requested hooks, one at a time per log directory.
pub struct Hooks {
    rx: mpsc::Receiver<Request>,
    wake: Arc<EventFd>,
    slots: HashMap<PathBuf, Slot>,
    pids: HashMap<Pid, PathBuf>,
    stopped: bool,
}

impl Hooks {
    /// Becomes the one owner that hook requests go to.
    pub fn install() -> std::io::Result<Hooks> {
        let wake = Arc::new(EventFd::from_flags(
            EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK,
        )?);
        let (tx, rx) = mpsc::channel();
        let mut desk = DESK.lock().unwrap_or_else(|p| p.into_inner());
        *desk = Some(Desk {
            tx,
            wake: wake.clone(),
        });
        Ok(Hooks {
            rx,
            wake,
            slots: HashMap::new(),
            pids: HashMap::new(),
            stopped: false,
        })
    }

    /// Readable when requests are waiting: poll it, then call [`Hooks::on_wake`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// Takes the waiting requests: starts each directory's hook if none runs, else queues.
    pub fn on_wake(&mut self) {
        let _ = self.wake.read();
        while let Ok(r) = self.rx.try_recv() {
            if self.stopped {
                continue;
            }
            let slot = self.slots.entry(r.dir.clone()).or_default();
            if slot.running.is_none() {
                self.start(r);
            } else if slot.queue.len() < QUEUE {
                slot.queue.push_back(r);
            } else {
                slot.skipped += 1;
                if slot.skipped.is_power_of_two() {
                    eprintln!(
                        "tend: {}: --on-rotate is still busy with earlier archives; not run for {} ({} skipped so far)",
                        r.dir.display(),
                        r.archive.display(),
                        slot.skipped
                    );
                }
            }
        }
    }

    /// The reaper saw `pid` end: true if it was a hook (the next one of its directory then
    /// starts).
    pub fn on_exit(&mut self, pid: Pid) -> bool {
        let Some(dir) = self.pids.remove(&pid) else {
            return false;
        };
        let next = self.slots.get_mut(&dir).and_then(|s| {
            s.running = None;
            s.queue.pop_front()
        });
        if let Some(r) = next.filter(|_| !self.stopped) {
            self.start(r);
        }
        true
    }

    /// Hooks still running.
    pub fn running(&self) -> usize {
        self.pids.len()
    }

    /// Shutdown: no more hooks start; queued ones are dropped and running ones get SIGTERM
    /// (their whole session, with SIGCONT). Idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.on_wake();
        for (dir, slot) in &mut self.slots {
            if !slot.queue.is_empty() {
                eprintln!(
                    "tend: {}: shutting down; {} queued --on-rotate hook(s) not run",
                    dir.display(),
                    slot.queue.len()
                );
                slot.queue.clear();
            }
        }
        for pid in self.pids.keys() {
            let group = Pid::from_raw(-pid.as_raw());
            let _ = kill(group, Signal::SIGTERM);
            let _ = kill(group, Signal::SIGCONT);
        }
    }

    fn start(&mut self, r: Request) {
        match spawn(&r.argv, &r.archive) {
            Ok(pid) => {
                self.pids.insert(pid, r.dir.clone());
                self.slots.entry(r.dir).or_default().running = Some(pid);
            }
            Err(e) => eprintln!(
                "tend: --on-rotate {}: cannot start: {e}",
                r.argv.first().map_or("", String::as_str)
            ),
        }
    }
}

/// Starts `argv ARCHIVE` in a new session, stdin from /dev/null, with an empty signal mask
/// and every signal at its default disposition (tend blocks all of them for its signalfd and
/// ignores some; a hook must be stoppable like any process).
fn spawn(argv: &[String], archive: &Path) -> std::io::Result<Pid> {
    let mut args: Vec<&std::ffi::OsStr> = argv.iter().map(|a| a.as_ref()).collect();
    args.push(archive.as_os_str());
    let null = std::os::fd::OwnedFd::from(std::fs::File::open("/dev/null")?);
    // Reaped by the owner's waitpid(-1).
    crate::supervise::spawn::fork_exec(&args, &[], &[Some(null), None, None], None, &|| {
        // SAFETY: runs in the child between fork and exec and makes only async-signal-safe
        // system calls (setsid, rt_sigaction) on integers and a local array; fork_exec
        // has already emptied the signal mask.
        unsafe {
            libc::setsid();
            // The raw call also reaches the signals libc reserves for itself (32, 33), which
            // an ignoring parent may have passed on. A zeroed kernel sigaction is SIG_DFL
            // with no flags and an empty mask; 8 is the kernel's sigset size.
            let dfl = [0u64; 4];
            for sig in 1..=64 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        sig,
                        dfl.as_ptr(),
                        std::ptr::null_mut::<u64>(),
                        8usize,
                    );
                }
            }
        }
        Ok(())
    })
}
