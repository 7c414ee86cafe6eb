//! Attacks on `tend import supervisord` with hostile or careless configuration files.

#![cfg(feature = "import")]

#[path = "support/mod.rs"]
mod support;

use std::fs;
use std::time::Duration;
use support::{TempDir, assert_ok, output_within, plain};

/// Writes `files` (path relative to `t`, content) and runs `tend import supervisord` on the
/// first, into `out`; returns the exit code and stdout followed by stderr.
fn import(t: &TempDir, files: &[(&str, &str)]) -> (i32, String) {
    for (rel, body) in files {
        let p = t.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    }
    let mut c = plain(&["import", "supervisord", files[0].0, "out"]);
    c.current_dir(t.path());
    let o = output_within(c, Duration::from_secs(20));
    // Notes go to stdout, errors to stderr: both are looked at.
    let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&o.stderr));
    (o.status.code().unwrap_or(-1), text)
}

/// `tend import supervisord supervisord.conf OUT`: the parent of a bare file name is "",
/// which could not be listed, so an `[include]` of a file beside it was not followed.
#[test]
fn includes_of_a_bare_relative_file_name_are_followed() {
    let t = TempDir::new("atk-import-incl");
    let (code, err) = import(
        &t,
        &[
            (
                "supervisord.conf",
                "[include]\nfiles = conf.d/*.conf extra.conf\n",
            ),
            ("conf.d/web.conf", "[program:web]\ncommand=/bin/web\n"),
            ("extra.conf", "[program:extra]\ncommand=/bin/extra\n"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(t.join("out/web/run").is_file(), "{err}");
    assert!(t.join("out/extra/run").is_file(), "{err}");
}

/// `startretries` was summed in a loop (a huge value hung the import) and multiplied
/// without a bound (overflow); `stopwaitsecs` likewise.
#[test]
fn huge_numbers_neither_hang_nor_overflow() {
    let t = TempDir::new("atk-import-huge");
    let (code, err) = import(
        &t,
        &[(
            "s.conf",
            "[program:a]\ncommand=/bin/a\nstartretries=999999999999\n\
             [program:b]\ncommand=/bin/b\nstartretries=18446744073709551615\nstartsecs=18446744073709551615\nstopwaitsecs=18446744073709551615\n\
             [program:c]\ncommand=/bin/c\nstartretries=1000\nstartsecs=5\n",
        )],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("[program:a]: startretries: too large"),
        "{err}"
    );
    assert!(
        err.contains("[program:b]: stopwaitsecs: '18446744073709551615'"),
        "{err}"
    );
    assert!(!t.join("out/a/restart-limit").exists());
    assert_eq!(
        fs::read_to_string(t.join("out/c/restart-limit")).unwrap(),
        format!("1001/{}s\n", 1001 * 5 + 31 + 30 * 994 + 1)
    );
    let o = plain(&["check", "out"])
        .current_dir(t.path())
        .output()
        .unwrap();
    assert_ok(&o);
}

/// `[program:a b]` becomes `a-b`, as does `[program:a-b]`: the second write failed on a
/// hidden staging path ("cannot write: File exists") instead of naming the clash.
#[test]
fn two_programs_that_become_one_name_are_a_clear_error() {
    let t = TempDir::new("atk-import-clash");
    let (code, err) = import(
        &t,
        &[(
            "s.conf",
            "[program:a b]\ncommand=/bin/a\n[program:a-b]\ncommand=/bin/b\n",
        )],
    );
    assert_eq!(code, 111, "{err}");
    assert!(
        err.contains("two sources become service 'a-b'") && !err.contains("tend-import-"),
        "{err}"
    );
    assert!(!t.join("out").exists());
}
