//! `tend check [DIR]`: validate a service tree without starting anything.

use super::EXIT_CONFIG;
use super::env::{log_options, services_dir};
use crate::cli::CheckArgs;
use crate::log::options::FLAGS;
use crate::service::{check::summary, load_tree};

/// Prints every error (exit 111) or a one-line summary (exit 0). DIR defaults to
/// `TEND_SERVICES`, then `/etc/tend/services`. The `TEND_*` log variables are checked too,
/// since `tend init` would refuse them the same way.
pub fn check(args: CheckArgs) -> i32 {
    let (dir, _) = services_dir(args.dir.as_deref());
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
    match load_tree(&dir, &base) {
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
