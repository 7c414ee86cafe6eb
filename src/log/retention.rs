//! Pruning archives by count, size, age (names and listing: [`super::archive`]).

pub use super::archive::{Archive, list, stem};
use super::dirfd;
use std::os::fd::OwnedFd;
use std::time::Duration;

/// What to keep: `--keep`, `--max-total`, `--max-age`.
pub struct Policy {
    /// At most this many archives.
    pub keep: usize,
    /// Archives together at most this many bytes.
    pub max_total: Option<u64>,
    /// Archives named at most this long ago.
    pub max_age: Option<Duration>,
}

/// Deletes the oldest archives until `policy` holds; returns how many were deleted.
pub fn prune(dir: &OwnedFd, policy: &Policy, now_ns: i128) -> nix::Result<usize> {
    let archives = list(dir)?;
    let mut total: u64 = archives.iter().map(|a| a.size).sum();
    let mut left = archives.len();
    let mut deleted = 0;
    for a in &archives {
        let too_many = left > policy.keep;
        let too_big = policy.max_total.is_some_and(|m| total > m);
        let too_old = policy
            .max_age
            .is_some_and(|age| now_ns - a.ns > age.as_nanos() as i128);
        if !(too_many || too_big || too_old) {
            break;
        }
        remove(dir, a)?;
        total -= a.size;
        left -= 1;
        deleted += 1;
    }
    Ok(deleted)
}

/// Deletes the oldest archive, if any (disk full); returns whether one was deleted.
pub fn remove_oldest(dir: &OwnedFd) -> bool {
    match list(dir) {
        Ok(a) => a.first().is_some_and(|a| remove(dir, a).is_ok()),
        Err(_) => false,
    }
}

fn remove(dir: &OwnedFd, a: &Archive) -> nix::Result<()> {
    for f in &a.files {
        dirfd::unlink_in(dir, f)?;
    }
    Ok(())
}
