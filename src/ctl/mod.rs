//! Control: the control socket (server in init, client `tend ctl`) and the HTTP probes.
//!
//! The supervisor's poll loop drives [`server::Server`] with a [`proto::Control`]
//! implementation; `init --metrics-file` uses [`metrics`].

pub mod addr;
pub mod client;
pub mod http;
pub mod json;
pub mod metrics;
pub mod proto;
pub mod server;
