//! The summary `tend check` prints for a valid service tree.

use super::{Kind, Tree};

/// `4 services OK (1 oneshot, 3 longruns)`, plus `, 1 disabled` when any are.
pub fn summary(tree: &Tree) -> String {
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
