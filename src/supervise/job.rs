//! The `run` and `init` jobs: resolve configuration, then hand over to the supervisor loop.

use crate::cli::{InitArgs, RunArgs};

/// `tend run -- CMD …`.
pub fn run(_args: RunArgs) -> i32 {
    eprintln!("tend run: not implemented yet");
    crate::cli::EXIT_USAGE
}

/// `tend init [-- CMD …]`.
pub fn init(_args: InitArgs) -> i32 {
    eprintln!("tend init: not implemented yet");
    crate::cli::EXIT_USAGE
}
