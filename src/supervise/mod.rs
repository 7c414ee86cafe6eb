//! Supervision: the PID-1 event loop, service state machines, restarts, ordered stop.

pub mod backoff;
mod control;
pub mod job;
mod lifecycle;
pub mod readiness;
mod shutdown;
pub mod spawn;
pub mod state;
pub mod supervisor;
pub mod svc;
