//! `tend import`: golden trees for the three formats on inputs shaped like public
//! s6-overlay v3, s6-overlay v2 and supervisord images (tests/data/import/FORMAT/in), the
//! exact list of what was not converted (notes.txt), and `tend check` on every result.
//! `TEND_BLESS=1 cargo test --test import` rewrites the expected files; review the diff.

#![cfg(feature = "import")]

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use support::{TempDir, assert_ok, mkfifo, output_within, plain};

fn data(format: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/import")
        .join(format)
}

/// Every file under `root`: relative path → (content, executable).
fn tree(root: &Path) -> BTreeMap<String, (String, bool)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (String, bool)>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::metadata(&p).unwrap();
            if m.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let exe = m.permissions().mode() & 0o111 != 0;
                out.insert(rel, (fs::read_to_string(&p).unwrap(), exe));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn copy_tree(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    for (rel, (text, exe)) in tree(from) {
        let p = to.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        fs::set_permissions(
            &p,
            fs::Permissions::from_mode(if exe { 0o755 } else { 0o644 }),
        )
        .unwrap();
    }
}

/// `tend import FORMAT SRC OUT`, run to its end (30 s at most: a FIFO must not hang it).
fn import(format: &str, src: &Path, out: &Path) -> Output {
    let mut c = plain(&["import", format]);
    c.arg(src).arg(out);
    output_within(c, Duration::from_secs(30))
}

/// Asserts that the import failed with exit code 111 and stderr `tend import: MSG`.
fn assert_refused(o: &Output, msg: &str) {
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!("tend import: {msg}\n")
    );
    assert_eq!(o.status.code(), Some(111));
}

/// Imports `src` (relative to the format's data directory) and compares with the goldens.
fn golden(format: &str, src: &str) {
    let dir = data(format);
    let t = TempDir::new("import");
    let out = t.join("services");
    let o = import(format, &dir.join(src), &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "");
    let stdout = String::from_utf8(o.stdout).unwrap();
    let shown = out.display().to_string();
    let notes = stdout.replace(&shown, "OUT");
    let bless = std::env::var_os("TEND_BLESS").is_some();
    if bless {
        fs::write(dir.join("notes.txt"), &notes).unwrap();
        copy_tree(&out, &dir.join("expected"));
    }
    assert_eq!(notes, fs::read_to_string(dir.join("notes.txt")).unwrap());
    let got = tree(&out);
    let want = tree(&dir.join("expected"));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "file lists differ"
    );
    for (rel, w) in &want {
        assert_eq!(&got[rel], w, "{rel} differs");
    }
    // The result is a valid tree.
    let c = plain(&["check"])
        .arg(&out)
        .env_remove("TEND_SERVICES")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&c.stderr), "");
    assert_eq!(c.status.code(), Some(0));
    // Nothing is left beside OUT (the staging directory is renamed into place).
    let left: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["services"]);
}

#[test]
fn s6_overlay_v3_s6_rc_tree() {
    golden("s6-rc", "in");
}

#[test]
fn s6_overlay_v2_etc() {
    golden("s6-overlay-v2", "in");
}

#[test]
fn supervisord_conf_with_includes() {
    golden("supervisord", "in/supervisord.conf");
}

#[test]
fn refuses_a_non_empty_output_and_leaves_it_alone() {
    let t = TempDir::new("import-full");
    let out = t.join("out");
    fs::create_dir_all(out.join("mine")).unwrap();
    fs::write(out.join("mine/run"), "keep").unwrap();
    let o = import("s6-rc", &data("s6-rc").join("in"), &out);
    assert_refused(
        &o,
        &format!(
            "{}: not empty (tend import writes only into a new or empty directory)",
            out.display()
        ),
    );
    assert_eq!(fs::read_to_string(out.join("mine/run")).unwrap(), "keep");
    assert_eq!(fs::read_dir(&out).unwrap().count(), 1);
}

#[test]
fn an_empty_output_directory_is_filled() {
    let t = TempDir::new("import-empty");
    let out = t.join("out");
    fs::create_dir_all(&out).unwrap();
    let o = import(
        "supervisord",
        &data("supervisord").join("in/supervisord.conf"),
        &out,
    );
    assert_ok(&o);
    assert!(out.join("nginx/run").is_file());
}

#[test]
fn bad_format_or_source_writes_nothing() {
    let t = TempDir::new("import-bad");
    let out = t.join("out");
    let cases: [(&str, PathBuf, String); 3] = [
        (
            "runit",
            t.join("x"),
            "'runit' is not a format tend imports (expected s6-rc, s6-overlay-v2 or supervisord)"
                .into(),
        ),
        (
            "supervisord",
            t.join("nope.conf"),
            format!(
                "{}: cannot read: no such file or directory",
                t.join("nope.conf").display()
            ),
        ),
        (
            "s6-overlay-v2",
            t.path().to_path_buf(),
            format!(
                "{}: no services.d, cont-init.d, cont-finish.d or fix-attrs.d (expected an s6-overlay v2 /etc directory)",
                t.path().display()
            ),
        ),
    ];
    for (format, src, msg) in cases {
        assert_refused(&import(format, &src, &out), &msg);
        assert!(!out.exists());
    }
}

#[test]
fn a_fifo_as_source_is_an_error_not_a_hang() {
    let t = TempDir::new("import-fifo");
    let fifo = t.join("supervisord.conf");
    mkfifo(&fifo);
    let o = import("supervisord", &fifo, &t.join("out"));
    assert_refused(
        &o,
        &format!("{}: is a FIFO (expected a regular file)", fifo.display()),
    );
}

#[test]
fn bundle_cycles_end_and_services_outside_user_are_disabled() {
    let t = TempDir::new("import-cycle");
    let src = t.join("s6-rc.d");
    let put = |rel: &str, text: &str| {
        let p = src.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
    };
    put("user/type", "bundle\n");
    put("user/contents.d/all", "");
    put("all/type", "bundle\n");
    put("all/contents", "user\nweb\n");
    put("web/type", "longrun\n");
    put("web/run", "#!/bin/sh\nexec sleep 1000\n");
    put("web/dependencies.d/all", "");
    put("extra/type", "longrun\n");
    put("extra/run", "#!/bin/sh\nexec sleep 1000\n");
    let out = t.join("out");
    let o = import("s6-rc", &src, &out);
    assert_ok(&o);
    let got: Vec<String> = tree(&out).into_keys().collect();
    assert_eq!(got, ["extra/disabled", "extra/run", "web/run"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().next().unwrap(),
        "all: type: bundle: not a service in tend; its members are dependencies of whatever named it"
    );
}

#[test]
fn an_unreadable_script_writes_nothing() {
    let t = TempDir::new("import-unreadable");
    let init = t.join("etc/cont-init.d");
    fs::create_dir_all(&init).unwrap();
    fs::write(init.join("10-ok"), "#!/bin/sh\n").unwrap();
    let fifo = init.join("20-fifo");
    mkfifo(&fifo);
    let out = t.join("out");
    let o = import("s6-overlay-v2", &t.join("etc"), &out);
    assert_refused(
        &o,
        &format!("{}: is a FIFO (expected a regular file)", fifo.display()),
    );
    assert!(!out.exists());
}
