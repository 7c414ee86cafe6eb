//! What the log thread shares with the others: a sink's counters and instance marks
//! ([`SinkStats`]) and the shutdown deadline ([`GiveUp`]). Their own module, so the pump,
//! the sink and the tee that all use them do not import each other for it.

use super::Stream;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Counters of one sink, shared with the PID-1 thread for `tend ctl status`.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Bytes written to the directory (records as formatted).
    pub bytes: AtomicU64,
    /// Bytes dropped under `--on-full drop`.
    pub dropped: AtomicU64,
    /// Rotations done.
    pub rotations: AtomicU64,
    /// Bytes of `--tee` copies dropped because tend's stdout/stderr did not keep up.
    pub tee_dropped: AtomicU64,
    /// Per stream (stdout, stderr): where the log thread's reads stand and where the
    /// current instance's bytes end, shared with the PID-1 thread ([`Pump::instance_ended`]).
    marks: [Mutex<Mark>; 2],
}

/// One stream's read position, and the position where the exited instance's bytes end.
#[derive(Debug, Default)]
pub(super) struct Mark {
    /// Bytes read from the pipe so far.
    pub(super) read: u64,
    /// Where exited instances' bytes end, oldest first (several when the log thread lags
    /// behind quick restarts): the pending line is complete once `read` reaches the front.
    pub(super) end_at: VecDeque<u64>,
}

impl SinkStats {
    /// One stream's mark, locked.
    pub(super) fn mark(&self, stream: Stream) -> std::sync::MutexGuard<'_, Mark> {
        let i = match stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        };
        // A poisoned lock still holds valid counters (no invariant spans the panic).
        self.marks[i].lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The shutdown deadline, visible to a sink blocked on a full disk inside a write (it
/// cannot read messages then): past it, a full disk drops instead of blocking.
#[derive(Debug)]
pub struct GiveUp {
    base: Instant,
    /// Nanoseconds after `base`, plus one; 0 = no deadline.
    at: AtomicU64,
}

impl GiveUp {
    /// No deadline yet.
    pub(super) fn new() -> GiveUp {
        GiveUp {
            base: Instant::now(),
            at: AtomicU64::new(0),
        }
    }

    /// Sets the deadline.
    pub(super) fn set(&self, deadline: Instant) {
        let ns = deadline.saturating_duration_since(self.base).as_nanos() as u64;
        self.at.store(ns.saturating_add(1), Ordering::SeqCst);
    }

    /// `true` once the deadline has passed.
    pub fn passed(&self) -> bool {
        match self.at.load(Ordering::SeqCst) {
            0 => false,
            at => self.base.elapsed().as_nanos() as u64 + 1 >= at,
        }
    }
}

std::thread_local! {
    /// The pump's give-up deadline, on the log thread only: a sink opened there (and so
    /// repairing its `current` on a full disk) sees a shutdown at once.
    static ENGINE_GIVE_UP: std::cell::RefCell<Option<Arc<GiveUp>>> =
        const { std::cell::RefCell::new(None) };
}

/// The give-up deadline of the pump whose thread calls this (None off the log thread).
pub fn engine_give_up() -> Option<Arc<GiveUp>> {
    ENGINE_GIVE_UP.with(|g| g.borrow().clone())
}

/// Makes `g` the give-up deadline of the calling (log) thread.
pub(super) fn set_engine_give_up(g: Arc<GiveUp>) {
    ENGINE_GIVE_UP.with(|e| *e.borrow_mut() = Some(g));
}
