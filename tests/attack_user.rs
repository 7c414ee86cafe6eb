//! Attacks on the `user` file.

mod support;
use std::time::Duration;
use support::*;

/// 4294967295 is (uid_t)-1: `tend check` took it as a uid, and setuid's EINVAL at start
/// was retried forever with CMD waiting. Now it is no id at all: an error at load time.
#[test]
fn uid_minus_one_is_refused_before_anything_starts() {
    let t = Tree::new("atk-user");
    t.longrun("a", "exec sleep 100");
    t.file("a", "user", "4294967295:4294967295\n", false);
    let services = t.tmp.join("services");
    let check = output_within(
        plain(&["check", services.to_str().unwrap()]),
        Duration::from_secs(20),
    );
    assert_eq!(code(check.status), 111);
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(err.contains("a: user: no such user '4294967295'"), "{err}");
    let mut c = t.init(&["true"]);
    c.env("TEND_RUN_DIR", t.tmp.join("run"));
    let out = output_within(c, Duration::from_secs(15));
    assert_eq!(
        code(out.status),
        111,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
