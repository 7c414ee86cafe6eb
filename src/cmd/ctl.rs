//! `tend ctl [--run-dir DIR] [--timeout T] [--json] COMMAND…`.

use super::EXIT_USAGE;
use super::env::run_dir;
use crate::cli::CtlArgs;
use crate::ctl::client::{CtlOptions, Fail, parse_timeout, run};
use std::time::Duration;

/// `tend ctl …`: 0 on success, 1 on failure, 2 on a usage error.
pub fn ctl(args: CtlArgs) -> i32 {
    let run_dir = run_dir(args.run_dir.as_deref());
    let timeout = match args.timeout.as_deref() {
        None => Ok(Duration::from_secs(10)),
        Some(t) => parse_timeout(t).map_err(|e| Fail::Usage(format!("--timeout: {e}"))),
    };
    let result = timeout.and_then(|timeout| {
        run(CtlOptions {
            run_dir,
            timeout,
            json: args.json,
            words: args.words,
        })
    });
    match result {
        Ok(()) => 0,
        Err(Fail::Usage(msg)) => {
            eprintln!("tend ctl: {msg}");
            EXIT_USAGE
        }
        Err(Fail::Failed(msg)) => {
            eprintln!("tend ctl: {msg}");
            1
        }
    }
}
