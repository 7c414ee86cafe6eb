//! The final sweep: signal every process still left after the services have stopped.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::HashMap;

/// Sends `sig` to every remaining process: all of them at once when tend is PID 1 (the
/// namespace is ours), else to each descendant found in `/proc`, since `kill(-1)` outside a
/// namespace would hit the whole host. SIGTERM goes with SIGCONT, so a stopped process acts
/// on it now instead of waiting for the SIGKILL after the grace.
pub fn signal_remaining(sig: Signal) {
    let targets = if super::is_pid1() {
        vec![Pid::from_raw(-1)]
    } else {
        descendants(nix::unistd::getpid())
    };
    for pid in targets {
        let _ = kill(pid, sig);
        if sig == Signal::SIGTERM {
            let _ = kill(pid, Signal::SIGCONT);
        }
    }
}

/// Every live descendant of `root`, read from `/proc/*/stat`.
pub fn descendants(root: Pid) -> Vec<Pid> {
    let mut parent_of: HashMap<i32, i32> = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(ppid) = read_ppid(pid) {
            parent_of.insert(pid, ppid);
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root.as_raw()];
    while let Some(p) = frontier.pop() {
        for (&child, &parent) in &parent_of {
            if parent == p {
                out.push(Pid::from_raw(child));
                frontier.push(child);
            }
        }
    }
    out
}

/// The parent pid from `/proc/PID/stat`; the command name may hold spaces and parentheses,
/// so the fields are read after the last `)`.
fn read_ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}
