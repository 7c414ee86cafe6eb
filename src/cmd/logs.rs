//! `tend logs [-f] [-n N] [--since T] [--stream S] NAME|DIR`.

use super::EXIT_USAGE;
use super::env::log_root;
use crate::cli::LogsArgs;
use crate::logs::{LogsOptions, parse_since, print_dir, resolve};

/// `tend logs …`: usage errors exit 2, a missing or unreadable directory 1.
pub fn logs(args: LogsArgs) -> i32 {
    let usage = |m: String| {
        eprintln!("tend logs: {m}");
        EXIT_USAGE
    };
    let since = match args.since.as_deref().map(parse_since).transpose() {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let stream = match args.stream.as_deref() {
        None => None,
        Some(s @ ("stdout" | "stderr")) => Some(s.as_bytes().to_vec()),
        Some(s) => {
            return usage(format!(
                "--stream: '{s}' is not a stream (expected stdout or stderr)"
            ));
        }
    };
    let dir = match resolve(&args.name, &log_root(args.log_root.as_deref())) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tend logs: {e}");
            return 1;
        }
    };
    print_dir(LogsOptions {
        dir,
        follow: args.follow,
        lines: args.lines,
        since,
        stream,
    })
}
