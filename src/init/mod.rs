//! PID-1 duties: reaping, signal intake, child subreaper, the final kill sweep.
//!
//! These are the jobs tini does in one C file; here each has its own small module.

pub mod reap;
pub mod signals;
pub mod sweep;

pub use reap::Exit;

/// True when tend runs as PID 1 of its PID namespace (a container's init).
pub fn is_pid1() -> bool {
    nix::unistd::getpid().as_raw() == 1
}

/// Makes orphaned descendants re-parent to tend instead of the real init, so tend reaps them
/// even when it is not PID 1 (`tend run` inside another init, or in tests).
pub fn become_subreaper() -> Result<(), String> {
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| {
        format!(
            "cannot become a child subreaper: {}",
            std::io::Error::from(e)
        )
    })
}
