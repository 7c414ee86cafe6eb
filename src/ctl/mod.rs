//! Control and reading: the control socket (server in init, client `tend ctl`) and `tend logs`.

pub mod client;
pub mod json;
pub mod logs;
pub mod metrics;
pub mod proto;
pub mod server;

pub use client::ctl_job;
pub use logs::logs_job;
