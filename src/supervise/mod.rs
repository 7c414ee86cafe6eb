//! Supervision: the PID-1 event loop, service state machines, restarts, ordered stop.

pub mod job;
