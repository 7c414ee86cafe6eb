//! The log engine: pipes in, framed and formatted records out, into rotating directories.
//!
//! Data flows one way: [`pump`] reads every pipe, [`frame`] cuts bytes into records,
//! [`format`] renders them into a [`batch`], [`sink`] writes, rotates and prunes one
//! directory whose path [`layout`] derives from the container's identity.

pub mod archive;
pub mod batch;
mod compress;
mod dirfd;
pub mod format;
pub mod frame;
pub mod gzip;
pub mod hooks;
mod index;
pub mod layout;
pub mod options;
pub mod pump;
mod recover;
pub mod sink;
pub mod stats;
pub mod stdin;
mod tee;

pub use options::LogOptions;

/// Which output of a process a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// File descriptor 1.
    Stdout,
    /// File descriptor 2.
    Stderr,
}

impl Stream {
    /// The tag written in `cri` and `json` records.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}
