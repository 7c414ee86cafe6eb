//! `tend check [DIR]`: validate a service tree without starting anything.

use super::EXIT_CONFIG;
use super::env::{flag_or_env, log_options};
use crate::cli::CheckArgs;
use crate::log::options::FLAGS;
use crate::service::{check::summary, load_tree};
use std::path::Path;

/// Prints every error (exit 111) or a one-line summary (exit 0). DIR defaults to
/// `TEND_SERVICES`, then `/etc/tend/services`. The `TEND_*` log variables are checked too,
/// since `tend init` would refuse them the same way.
pub fn check(args: CheckArgs) -> i32 {
    let dir = flag_or_env(args.dir.as_deref(), "TEND_SERVICES")
        .unwrap_or_else(|| "/etc/tend/services".into());
    let unset: Vec<(&'static str, Option<&str>)> = FLAGS
        .iter()
        .filter(|f| **f != "tee")
        .map(|f| (*f, None))
        .collect();
    let base = match log_options(&unset, false, true) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("tend check: {e}");
            return EXIT_CONFIG;
        }
    };
    match load_tree(Path::new(&dir), &base) {
        Ok(tree) => {
            println!("tend check: {}", summary(&tree));
            0
        }
        Err(errors) => {
            for e in errors {
                eprintln!("tend check: {e}");
            }
            EXIT_CONFIG
        }
    }
}
