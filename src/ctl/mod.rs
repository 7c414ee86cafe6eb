//! Control and reading: the control socket (server in init, client `tend ctl`) and `tend logs`.
//!
//! The supervisor's poll loop drives [`server::Server`] with a [`proto::Control`]
//! implementation; `init --metrics-file` uses [`metrics`].

pub mod client;
pub mod follow;
// The server side (and what only it uses) waits for the supervisor's poll loop to call it;
// until that lands nothing in the binary reaches it, so dead-code warnings are expected.
#[allow(dead_code)]
pub mod json;
pub mod logs;
#[allow(dead_code)]
pub mod metrics;
#[allow(dead_code)]
pub mod proto;
#[allow(dead_code)]
pub mod server;
pub mod timestamp;

pub use client::ctl_job;
pub use logs::logs_job;
