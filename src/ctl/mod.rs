//! Control and reading: the control socket (server in init, client `tend ctl`) and `tend logs`.
//!
//! The supervisor's poll loop drives [`server::Server`] with a [`proto::Control`]
//! implementation; `init --metrics-file` uses [`metrics`].

pub mod addr;
pub mod client;
pub mod follow;
pub mod http;
pub mod json;
pub mod logs;
pub mod metrics;
pub mod proto;
pub mod read;
pub mod server;
pub mod timestamp;

pub use client::ctl_job;
pub use logs::logs_job;
