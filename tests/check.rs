//! `tend check DIR` on broken and valid service trees: exact messages and exit codes.

mod support;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{TempDir, mkfifo, tend};

/// A service tree in a unique temporary directory, removed on drop.
struct TempTree {
    root: PathBuf,
    _tmp: TempDir,
}

impl TempTree {
    fn new() -> Self {
        let tmp = TempDir::new("check");
        TempTree {
            root: tmp.path().to_path_buf(),
            _tmp: tmp,
        }
    }

    /// Writes `content` to `rel` (creating directories); mode 0644.
    fn file(&self, rel: &str, content: &str) -> &Self {
        let p = self.root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        self
    }

    /// Writes an executable script to `rel`.
    fn exe(&self, rel: &str) -> &Self {
        self.file(rel, EXE);
        fs::set_permissions(self.root.join(rel), fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    /// A minimal valid longrun.
    fn longrun(&self, name: &str) -> &Self {
        self.exe(&format!("{name}/run"))
    }

    /// Writes `content` to `rel`, as an executable script if it is [`EXE`].
    fn put(&self, rel: &str, content: &str) -> &Self {
        if content == EXE {
            self.exe(rel)
        } else {
            self.file(rel, content)
        }
    }

    /// `name` depends on `dep`.
    fn dep(&self, name: &str, dep: &str) -> &Self {
        self.file(&format!("{name}/dependencies.d/{dep}"), "")
    }

    fn check(&self) -> (i32, String, String) {
        run_check(&self.root)
    }
}

fn run_check(dir: &Path) -> (i32, String, String) {
    let out = command().arg("check").arg(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The binary with no `TEND_*` variables inherited from the test's environment.
fn command() -> Command {
    let mut c = Command::new(tend());
    for (k, _) in std::env::vars() {
        if k.starts_with("TEND_") {
            c.env_remove(k);
        }
    }
    c
}

/// Asserts exit 111, nothing on stdout, and exactly these error lines on stderr.
fn assert_errors(t: &TempTree, expected: &[&str]) {
    let (code, stdout, stderr) = t.check();
    let want: Vec<String> = expected
        .iter()
        .map(|e| format!("tend check: {e}"))
        .collect();
    let got: Vec<&str> = stderr.lines().collect();
    assert_eq!(got, want, "stderr was:\n{stderr}");
    assert_eq!(code, 111);
    assert_eq!(stdout, "");
}

/// A file that `TempTree::put` makes an executable script.
const EXE: &str = "#!/bin/sh\nexec sleep 1000\n";

/// A tree's files: (path, content), [`EXE`] for an executable script.
type Files = &'static [(&'static str, &'static str)];

/// Broken trees and the exact errors `tend check` reports, in order.
const BROKEN: &[(&str, Files, &[&str])] = &[
    (
        "cycle shows its path",
        &[
            ("a/run", EXE),
            ("b/run", EXE),
            ("c/run", EXE),
            ("d/run", EXE),
            ("a/dependencies.d/b", ""),
            ("b/dependencies.d/c", ""),
            ("c/dependencies.d/a", ""),
            ("d/dependencies.d/a", ""),
        ],
        &["dependency cycle: a -> b -> c -> a"],
    ),
    (
        "self dependency is a cycle",
        &[("web/run", EXE), ("web/dependencies.d/web", "")],
        &["dependency cycle: web -> web"],
    ),
    (
        "missing dependency",
        &[("web/run", EXE), ("web/dependencies.d/db", "")],
        &["web: dependencies.d/db: no such service 'db'"],
    ),
    (
        "run not executable",
        &[("web/run", "#!/bin/sh\n")],
        &["web: run: not executable (expected a file with the x bit set)"],
    ),
    (
        "run missing",
        &[("web/restart", "never\n")],
        &["web: run: missing (a longrun needs an executable run file)"],
    ),
    (
        "bad numbers",
        &[
            ("db/run", EXE),
            ("db/notification-fd", "x\n"),
            ("db/timeout-kill", "5s\n"),
            ("db/timeout-finish", "0\n"),
        ],
        &[
            "db: notification-fd: 'x' is not a number (expected a file descriptor number from 3 to 1023)",
            "db: timeout-kill: '5s' is not a whole number of milliseconds",
            "db: timeout-finish: '0' must be above zero (a finish script is always time-limited)",
        ],
    ),
    (
        "notification fd out of range",
        &[("db/run", EXE), ("db/notification-fd", "1\n")],
        &[
            "db: notification-fd: '1' is out of range (expected a file descriptor number from 3 to 1023)",
        ],
    ),
    (
        "unknown signal",
        &[("db/run", EXE), ("db/down-signal", "FOO\n")],
        &[
            "db: down-signal: 'FOO' is not a signal (expected a name such as TERM, HUP, INT or a number)",
        ],
    ),
    (
        "unknown user and group",
        &[
            ("web/run", EXE),
            ("web/user", "tend-ghost-user\n"),
            ("worker/run", EXE),
            ("worker/user", "root:tend-ghost-group\n"),
        ],
        &[
            "web: user: no such user 'tend-ghost-user'",
            "worker: user: no such group 'tend-ghost-group'",
        ],
    ),
    (
        "bad restart value",
        &[("web/run", EXE), ("web/restart", "sometimes\n")],
        &[
            "web: restart: 'sometimes' is not a restart policy (expected always, on-failure or never)",
        ],
    ),
    (
        "bad type value",
        &[
            ("web/run", EXE),
            ("web/type", "daemon\n"),
            ("all/up", EXE),
            ("all/type", "bundle\n"),
        ],
        &[
            "all: type: 'bundle' is not supported (expected longrun or oneshot; list the bundle's services as dependencies instead)",
            "web: type: 'daemon' is not a service type (expected longrun or oneshot)",
        ],
    ),
    (
        "bad log options",
        &[
            ("web/run", EXE),
            ("web/log-options", "# rotation\n--keep x\n"),
            ("worker/run", EXE),
            (
                "worker/log-options",
                "--rotate-size 1MiB\n--colour always\n",
            ),
        ],
        &[
            "web: log-options: line 2: --keep: 'x' is not a whole number of archives",
            "worker: log-options: line 2: --colour is not a log option (expected one of --format, --max-line, \
             --rotate-size, --rotate-every, --keep, --max-total, --max-age, --compress, --on-rotate, --on-full, --tee-format, --tee)",
        ],
    ),
    (
        "bad env name",
        &[
            ("web/run", EXE),
            ("web/env/A=B", "1\n"),
            ("web/env/GOOD", "1\n"),
        ],
        &["web: env/A=B: 'A=B' is not a variable name (expected a name without '=')"],
    ),
    (
        "two readiness methods",
        &[
            ("web/run", EXE),
            ("web/notification-fd", "3\n"),
            ("web/check", EXE),
            ("db/run", EXE),
            ("db/notify", "systemd\n"),
            ("db/notification-fd", "4"),
        ],
        &[
            "db: notify: a second readiness method besides notification-fd (expected at most one of notification-fd, notify or check)",
            "web: check: a second readiness method besides notification-fd (expected at most one of notification-fd, notify or check)",
        ],
    ),
    (
        "files of the other kind",
        &[
            ("setup/type", "oneshot\n"),
            ("setup/up", EXE),
            ("setup/run", EXE),
            ("web/run", EXE),
            ("web/down", ""),
            ("empty/type", "oneshot\n"),
        ],
        &[
            "empty: up: missing (a oneshot needs an executable up file)",
            "setup: run: only a longrun uses this file (this service's type is oneshot)",
            "web: down: a longrun has no down script (to keep it from starting, use an empty disabled file)",
        ],
    ),
    (
        "invalid service name and flag content",
        &[
            ("my web/run", EXE),
            ("web/run", EXE),
            ("web/critical", "false\n"),
        ],
        &[
            "my web: 'my web' is not a service name (expected letters, digits, '.', '_' and '-', \
             starting with a letter or digit, at most 253 characters)",
            "web: critical: 'false' is not expected (an empty file marks the service critical; \
             remove the file to turn it off)",
        ],
    ),
    (
        "every error sorted by service",
        &[
            ("zeta/run", ""),
            ("alpha/run", EXE),
            ("alpha/restart", "maybe"),
            ("alpha/down-signal", "NOPE"),
            ("alpha/dependencies.d/nothing", ""),
            ("mid/run", EXE),
            ("mid/dependencies.d/mid", ""),
        ],
        &[
            "alpha: dependencies.d/nothing: no such service 'nothing'",
            "alpha: restart: 'maybe' is not a restart policy (expected always, on-failure or never)",
            "alpha: down-signal: 'NOPE' is not a signal (expected a name such as TERM, HUP, INT or a number)",
            "dependency cycle: mid -> mid",
            "zeta: run: not executable (expected a file with the x bit set)",
        ],
    ),
    (
        "misspelled files get a suggestion",
        &[
            ("web/run", EXE),
            ("web/timeout_kill", "2000\n"),
            ("web/stopsignal", "QUIT\n"),
            ("web/notes.txt", "mine\n"),
            ("web/.gitkeep", ""),
            ("db/run", EXE),
            ("db/consumer-for", "web\n"),
        ],
        &[
            "db: consumer-for: an s6 file tend has no use for (tend logs every service itself; \
             `tend import s6-rc` converts an s6-rc tree and lists what it drops)",
            "web: notes.txt: not a service file (expected one of run, finish, type, up, down, \
             dependencies.d, dependencies, notification-fd, notify, check, restart, restart-limit, \
             critical, down-signal, timeout-kill, timeout-up, timeout-finish, user, env, log-options, disabled)",
            "web: stopsignal: not a service file (did you mean down-signal?)",
            "web: timeout_kill: not a service file (did you mean timeout-kill?)",
        ],
    ),
    (
        "longrun files in a oneshot",
        &[
            ("setup/type", "oneshot\n"),
            ("setup/up", EXE),
            ("setup/timeout-finish", "100\n"),
            ("setup/restart-limit", "3\n"),
            ("web/run", EXE),
            ("web/up", EXE),
        ],
        &[
            "setup: timeout-finish: only a longrun uses this file (this service's type is oneshot)",
            "setup: restart-limit: only a longrun uses this file (this service's type is oneshot)",
            "web: up: a longrun has no up script (write type with oneshot, or rename up to run)",
        ],
    ),
];

#[test]
fn broken_trees_give_exactly_their_errors() {
    for (what, files, errors) in BROKEN {
        eprintln!("case: {what}");
        let t = TempTree::new();
        for (rel, content) in *files {
            t.put(rel, content);
        }
        assert_errors(&t, errors);
    }
}

#[test]
fn run_is_a_directory() {
    let t = TempTree::new();
    fs::create_dir_all(t.root.join("web/run")).unwrap();
    assert_errors(
        &t,
        &["web: run: is a directory (expected an executable file)"],
    );
}

#[test]
fn symlink_loop_and_dangling_link() {
    let t = TempTree::new();
    t.longrun("real");
    symlink(t.root.join("loop"), t.root.join("loop")).unwrap();
    symlink(t.root.join("nowhere"), t.root.join("gone")).unwrap();
    symlink(t.root.join("real"), t.root.join("alias")).unwrap();
    assert_errors(
        &t,
        &[
            "gone: cannot read service directory: no such file or directory",
            "loop: cannot read service directory: symlink loop",
        ],
    );
}

#[test]
fn missing_tree_names_it() {
    let t = TempTree::new();
    let missing = t.root.join("nope");
    let (code, stdout, stderr) = run_check(&missing);
    assert_eq!(
        stderr,
        format!(
            "tend check: {}: cannot read service tree: no such file or directory\n",
            missing.display()
        )
    );
    assert_eq!((code, stdout.as_str()), (111, ""));
}

#[test]
fn valid_tree_summary() {
    let t = TempTree::new();
    t.file("prep/type", "oneshot\n")
        .exe("prep/up")
        .exe("prep/down");
    t.longrun("db")
        .dep("db", "prep")
        .file("db/notification-fd", "3\n")
        .file("db/down-signal", "SIGINT\n")
        .file("db/timeout-kill", "2000\n")
        .file("db/timeout-up", "0\n")
        .file("db/restart", "on-failure\n")
        .file("db/critical", "")
        .file("db/user", "root:0\n")
        .file("db/env/GREETING", "hello  \nignored\n")
        .file("db/env/UNSET_ME", "")
        .file("db/log-options", "--keep 2\n--compress gzip\n");
    t.longrun("web")
        .dep("web", "db")
        .exe("web/check")
        .exe("web/finish")
        .file("web/disabled", "\n")
        .file("web/timeout-finish", "100\n");
    t.file("README", "plain files beside the services are skipped\n");
    t.file(".hidden/run", "");
    // A symlinked service directory is followed, as s6 does: a second (disabled) longrun.
    symlink(t.root.join("web"), t.root.join("web-alias")).unwrap();
    let (code, stdout, stderr) = t.check();
    assert_eq!(stderr, "");
    assert_eq!(
        stdout,
        "tend check: 4 services OK (1 oneshot, 3 longruns, 2 disabled)\n"
    );
    assert_eq!(code, 0);
}

#[test]
fn services_dir_from_env() {
    let t = TempTree::new();
    t.longrun("only");
    let out = command()
        .arg("check")
        .env("TEND_SERVICES", &t.root)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "tend check: 1 service OK (0 oneshots, 1 longrun)\n"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn empty_tree_is_valid() {
    let t = TempTree::new();
    let (code, stdout, _) = t.check();
    assert_eq!(
        (code, stdout.as_str()),
        (0, "tend check: 0 services OK (0 oneshots, 0 longruns)\n")
    );
}

#[test]
fn example_tree_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/services");
    let (code, stdout, stderr) = run_check(&dir);
    assert_eq!(stderr, "");
    assert_eq!(
        stdout,
        "tend check: 4 services OK (1 oneshot, 3 longruns)\n"
    );
    assert_eq!(code, 0);
}

/// `tend check` on `t`, killed and failed after 30 s (a hang is the defect tested for).
fn check_within(t: &TempTree) -> (i32, String) {
    let mut child = command()
        .arg("check")
        .arg(&t.root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if start.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tend check did not finish within 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn fifo_and_device_files_are_errors_not_hangs() {
    let t = TempTree::new();
    t.longrun("web")
        .longrun("db")
        .longrun("big")
        .longrun("linked");
    mkfifo(&t.root.join("web/down-signal"));
    symlink("/dev/zero", t.root.join("db/user")).unwrap();
    t.file("big/log-options", &"#".repeat(70 * 1024));
    // A symlinked value file is followed when its target is a regular file.
    t.file("shared-signal", "HUP\n");
    symlink(
        t.root.join("shared-signal"),
        t.root.join("linked/down-signal"),
    )
    .unwrap();
    let (code, stderr) = check_within(&t);
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            "tend check: big: log-options: larger than 64 KiB (a service file holds a short value)",
            "tend check: db: user: is a device (expected a regular file)",
            "tend check: web: down-signal: is a FIFO (expected a regular file)",
        ]
    );
    assert_eq!(code, 111);
}
