//! Attacks with bytes that are not UTF-8 where tend promises bytes (SPEC §6).

mod support;
use std::time::Duration;
use support::*;

/// An `env/` value is an environment value: bytes, as s6-envdir passes them. It was read
/// as text, so `tend init` refused to start ("env/X: not UTF-8 text").
#[test]
fn a_non_utf8_env_value_reaches_the_service() {
    let t = Tree::new("atk-env");
    t.file("a", "type", "oneshot\n", false);
    t.file(
        "a",
        "up",
        "#!/bin/sh\nprintf %s \"$X\" > \"$OUT/x\"\n",
        true,
    );
    t.file("a", "env/X", "", false);
    std::fs::write(t.tmp.join("services/a/env/X"), b"a\xffb \n").unwrap();
    let services = t.tmp.join("services");
    let check = output_within(
        plain(&["check", services.to_str().unwrap()]),
        Duration::from_secs(20),
    );
    assert_eq!(
        code(check.status),
        0,
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut c = t.init(&["true"]);
    c.env("TEND_RUN_DIR", t.tmp.join("run"));
    let out = output_within(c, Duration::from_secs(30));
    assert_eq!(
        code(out.status),
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(t.out().join("x")).unwrap(), b"a\xffb");
}
