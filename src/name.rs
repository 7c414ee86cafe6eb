//! The one rule for a name that becomes a directory: a service name, a namespace, app or pod
//! component of a log path, a name asked for over the control socket.

/// The rule, as written in error messages.
pub const RULE: &str = "[A-Za-z0-9][A-Za-z0-9._-]{0,252}";

/// Whether `c` may appear in a name (after its first character).
pub fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')
}

/// Whether `name` matches [`RULE`]: it is safe as one path component (no `/`, not `.`/`..`,
/// no leading `-` that a tool would take for a flag).
pub fn is_valid(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 253
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|&c| is_name_char(c))
}

#[cfg(test)]
mod tests {
    use super::is_valid as valid_name;

    #[test]
    fn names() {
        assert!(valid_name("web"));
        assert!(valid_name("db-1.primary_x"));
        assert!(valid_name("0"));
        assert!(valid_name(&"a".repeat(253)));
        assert!(!valid_name(&"a".repeat(254)));
        assert!(!valid_name(""));
        assert!(!valid_name("-web"));
        assert!(!valid_name("_web"));
        assert!(!valid_name("my web"));
        assert!(!valid_name("wéb"));
    }
}
