//! `tend log [LOG FLAGS] DIR`.

use super::EXIT_CONFIG;
use super::env::log_options;
use crate::cli::LogArgs;
use std::path::Path;

/// Copies stdin into the log directory; exit 111 with the reason when it cannot.
pub fn log(args: LogArgs) -> i32 {
    let run = log_options(&args.log_flag_values(), args.tee, false)
        .and_then(|opts| crate::log::stdin::run(Path::new(&args.dir), opts));
    match run {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("tend log: {e}");
            EXIT_CONFIG
        }
    }
}
