//! The log engine: pipes in, framed and formatted records out, into rotating directories.
//!
//! Data flows one way: [`pump`] reads every pipe, [`frame`] cuts bytes into records,
//! [`format`] renders them, [`sink`] writes, rotates and prunes one directory whose path
//! [`layout`] derives from the container's identity.

pub mod format;
pub mod frame;
pub mod layout;
pub mod options;
pub mod pump;
pub mod sink;

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

/// `tend log DIR`: stdin to a rotating log directory.
pub fn job(_args: crate::cli::LogArgs) -> i32 {
    eprintln!("tend log: not implemented yet");
    crate::cli::EXIT_USAGE
}
