//! `tend check DIR`: validate a service tree without starting anything.

use super::{Kind, Tree, load_tree};
use crate::cli::{CheckArgs, EXIT_CONFIG, flag_or_env, log_options};
use crate::log::options::FLAGS;
use std::path::Path;

/// `tend check [DIR]`: prints every error (exit 111) or a one-line summary (exit 0).
/// DIR defaults to `TEND_SERVICES`, then `/etc/tend/services`. The `TEND_*` log variables are
/// checked too, since `tend init` would refuse them the same way.
pub fn check_job(args: CheckArgs) -> i32 {
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

/// `4 services OK (1 oneshot, 3 longruns)`, plus `, 1 disabled` when any are.
fn summary(tree: &Tree) -> String {
    let n = tree.services.len();
    let oneshots = tree
        .services
        .iter()
        .filter(|s| matches!(s.kind, Kind::Oneshot { .. }))
        .count();
    let disabled = tree.services.iter().filter(|s| s.disabled).count();
    let mut s = format!(
        "{} OK ({}, {}",
        plural(n, "service"),
        plural(oneshots, "oneshot"),
        plural(n - oneshots, "longrun")
    );
    if disabled > 0 {
        s.push_str(&format!(", {disabled} disabled"));
    }
    s.push(')');
    s
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
