//! Service definitions: reading and validating a service directory tree (also `tend check`).
//! (Placeholder types until the service-tree branch lands; same API.)
#![allow(dead_code)]

use crate::log::LogOptions;
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A loaded, validated tree in topological order.
pub struct Tree {
    /// Services, dependencies first.
    pub services: Vec<ServiceDef>,
}

/// One service directory.
pub struct ServiceDef {
    pub name: String,
    pub dir: PathBuf,
    pub kind: Kind,
    pub dependencies: Vec<String>,
    pub readiness: Readiness,
    pub restart: Restart,
    pub critical: bool,
    pub down_signal: Signal,
    pub timeout_kill: Option<Duration>,
    pub timeout_up: Option<Duration>,
    pub timeout_finish: Duration,
    pub user: Option<Credentials>,
    pub env: Vec<(String, Option<String>)>,
    pub log: LogOptions,
    pub disabled: bool,
}

/// Longrun or oneshot.
pub enum Kind {
    Longrun {
        run: PathBuf,
        finish: Option<PathBuf>,
    },
    Oneshot {
        up: PathBuf,
        down: Option<PathBuf>,
    },
}

/// Readiness protocol.
pub enum Readiness {
    None,
    Fd(i32),
    Systemd,
    Check(PathBuf),
}

/// Restart policy.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

/// Resolved credentials.
pub struct Credentials {
    pub uid: Uid,
    pub gid: Gid,
    pub groups: Vec<Gid>,
    pub name: String,
    pub home: Option<PathBuf>,
}

/// Loads a tree.
pub fn load_tree(_dir: &Path, _base_log: &LogOptions) -> Result<Tree, Vec<String>> {
    Err(vec!["service tree: not implemented yet".into()])
}

/// Parses a signal name.
pub fn parse_signal(s: &str) -> Result<Signal, String> {
    s.parse::<Signal>()
        .map_err(|_| format!("'{s}' is not a signal"))
}

/// `tend check DIR`.
pub fn check_job(_args: crate::cli::CheckArgs) -> i32 {
    eprintln!("tend check: not implemented yet");
    crate::cli::EXIT_USAGE
}
