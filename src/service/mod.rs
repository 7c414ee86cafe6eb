//! Service definitions: reading and validating a service directory tree (also `tend check`).
//!
//! Each subdirectory of the tree is a service (hidden entries and plain files are skipped;
//! symlinks to directories are followed, as s6 does). [`load_tree`] reads every service,
//! reports every error it finds (each one line naming the service, the file and the value),
//! and returns the services in dependency order.

pub mod check;
mod files;
mod graph;
mod user;

#[cfg(feature = "import")]
pub use files::read_bounded;
pub use files::{one_line, parse_restart_limit, parse_signal};

use crate::log::options::LogOptions;
use files::{ServiceDir, describe_io, envdir_value, parse_notification_fd};
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A validated service tree.
#[derive(Debug)]
pub struct Tree {
    /// The services in a topological order: dependencies before dependents, ties by name.
    pub services: Vec<ServiceDef>,
}

/// One validated service directory.
#[derive(Debug)]
pub struct ServiceDef {
    /// The directory's name: the service name and its log directory name.
    pub name: String,
    /// The service directory (absolute).
    pub dir: PathBuf,
    /// Longrun or oneshot, with the programs to run.
    pub kind: Kind,
    /// Who it runs as; `None`: as tend.
    pub user: Option<Credentials>,
    /// From `env/`: `Some(value)` sets the variable, `None` unsets it.
    pub env: Vec<(String, Option<OsString>)>,
    /// Services this one starts after and stops before (sorted, deduplicated).
    pub dependencies: Vec<String>,
    /// How the service tells it is ready.
    pub readiness: Readiness,
    /// How it is restarted and stopped, and its time limits.
    pub policy: Policy,
    /// The base log options with the service's `log-options` applied.
    pub log: LogOptions,
    /// Not started automatically (`tend ctl start` starts it).
    pub disabled: bool,
}

/// How a service is restarted and stopped, and its time limits: the files the supervisor's
/// state machine follows (its `Conf` holds this same value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Restart policy (longruns).
    pub restart: Restart,
    /// `restart-limit`: failed runs allowed (within a window) before it is failed for good.
    pub restart_limit: Option<RestartLimit>,
    /// If it stops for good, the container shuts down.
    pub critical: bool,
    /// Time to become ready before it counts as failed; `None`: no limit.
    pub timeout_up: Option<Duration>,
    /// Time limit of the `finish` script (default 5000 ms, like s6).
    pub timeout_finish: Duration,
    /// Signal that stops it (default SIGTERM).
    pub down_signal: Signal,
    /// Time between the down signal and SIGKILL; `None`: `TEND_KILL_GRACE` applies.
    pub timeout_kill: Option<Duration>,
}

/// `restart-limit`: after `count` failed runs within `within` (ever, if `None`), failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartLimit {
    /// Failed runs allowed.
    pub count: u32,
    /// The window they are counted in.
    pub within: Option<Duration>,
}

/// What a service runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A long-running process, restarted per policy, with an optional `finish` after each exit.
    Longrun {
        run: PathBuf,
        finish: Option<PathBuf>,
    },
    /// `up` run once at start-up (must exit 0), optional `down` at shutdown.
    Oneshot { up: PathBuf, down: Option<PathBuf> },
}

/// How a longrun signals readiness (at most one method).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Ready as soon as it is started.
    None,
    /// s6 protocol: writes a newline to this fd.
    Fd(i32),
    /// sd_notify protocol: sends `READY=1` to `NOTIFY_SOCKET`.
    Systemd,
    /// Ready when this executable exits 0 (polled).
    Check(PathBuf),
}

/// When a longrun is restarted after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// After every exit.
    Always,
    /// After a non-zero exit or death by signal.
    OnFailure,
    /// Never.
    Never,
}

/// Resolved identity to run a service as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User id.
    pub uid: Uid,
    /// Primary group id.
    pub gid: Gid,
    /// All groups to set (primary first, then supplementary ones from the group database).
    pub groups: Vec<Gid>,
    /// User name (the number as text when the uid has no passwd entry).
    pub name: String,
    /// Home directory from the passwd entry.
    pub home: Option<PathBuf>,
}

/// Default `timeout-finish`, as in s6.
const DEFAULT_TIMEOUT_FINISH: Duration = Duration::from_millis(5000);

/// Files only a longrun uses: an error in a oneshot, where they would be silently ignored.
const LONGRUN_ONLY: &[&str] = &[
    "run",
    "finish",
    "timeout-finish",
    "notification-fd",
    "notify",
    "check",
    "restart",
    "restart-limit",
];

/// Reads and validates the tree in `dir`; returns every error found, sorted by service name.
pub fn load_tree(dir: &Path, base_log: &LogOptions) -> Result<Tree, Vec<String>> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let shown = dir.display();
    let rd = match fs::metadata(&dir) {
        Ok(m) if !m.is_dir() => {
            return Err(vec![format!(
                "{shown}: cannot read service tree: not a directory"
            )]);
        }
        Ok(_) => fs::read_dir(&dir),
        Err(e) => Err(e),
    }
    .map_err(|e| {
        vec![format!(
            "{shown}: cannot read service tree: {}",
            describe_io(&e)
        )]
    })?;

    // (sort key, message): sorted stably by service name at the end.
    let mut errors: Vec<(String, String)> = Vec::new();
    // Vecs, not BTreeMaps: each map type's insert code is a KB-sized copy (issue 16).
    let mut dirs: Vec<(String, PathBuf)> = Vec::new();
    for entry in rd {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                errors.push((
                    String::new(),
                    format!("{shown}: cannot read service tree: {}", describe_io(&e)),
                ));
                continue;
            }
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        // Shown escaped: a directory name may hold a newline (found by fuzzing).
        let shown_name = one_line(&name);
        let path = entry.path();
        match fs::metadata(&path) {
            Ok(m) if !m.is_dir() => continue, // a README or other plain file beside the services
            Ok(_) => {}
            Err(e) => {
                errors.push((
                    name.clone(),
                    format!(
                        "{shown_name}: cannot read service directory: {}",
                        describe_io(&e)
                    ),
                ));
                continue;
            }
        }
        if !crate::name::is_valid(&name) {
            errors.push((
                name.clone(),
                format!(
                    "{shown_name}: '{shown_name}' is not a service name (expected letters, digits, '.', '_' and '-', \
                     starting with a letter or digit, at most 253 characters)"
                ),
            ));
            continue;
        }
        dirs.push((name, path));
    }
    sort_by_str(&mut dirs, |d| &d.0);
    let known_dir = |d: &str| dirs.binary_search_by(|e| e.0.as_str().cmp(d)).is_ok();

    // In `dirs` order (sorted by name), each valid service's definition.
    let mut defs: Vec<(&str, Option<ServiceDef>)> = Vec::new();
    let mut graph: graph::Graph = BTreeMap::new();
    for (name, path) in &dirs {
        let mut sd = ServiceDir::new(name, path);
        let deps = dependencies(&mut sd);
        let mut known: Vec<String> = Vec::new();
        for (file, d) in deps {
            if known_dir(&d) {
                known.push(d);
            } else {
                sd.err(&file, format!("no such service '{d}'"));
            }
        }
        let def = load_service(&mut sd, known.clone(), base_log);
        sd.unknown_files();
        errors.extend(sd.errors.into_iter().map(|e| (name.clone(), e)));
        graph.insert(name.clone(), known);
        if def.is_some() {
            defs.push((name, def));
        }
    }

    let order = match graph::order(&graph) {
        Ok(order) => order,
        Err(cycles) => {
            for c in cycles {
                let first = c
                    .trim_start_matches("dependency cycle: ")
                    .split(' ')
                    .next()
                    .unwrap_or("")
                    .to_owned();
                errors.push((first, c));
            }
            Vec::new()
        }
    };
    if !errors.is_empty() {
        sort_by_str(&mut errors, |e| &e.0);
        return Err(errors.into_iter().map(|(_, m)| m).collect());
    }
    let services = order
        .iter()
        .filter_map(|n| {
            let i = defs.binary_search_by(|e| e.0.cmp(n.as_str())).ok()?;
            defs[i].1.take()
        })
        .collect();
    Ok(Tree { services })
}

/// The names in `dependencies.d/` and, for older s6-rc sources, in a `dependencies` file
/// (one per line), each with the file it came from (for error messages), sorted by name.
fn dependencies(sd: &mut ServiceDir) -> Vec<(String, String)> {
    let mut deps: Vec<(String, String)> = sd
        .names("dependencies.d")
        .unwrap_or_default()
        .into_iter()
        .map(|d| (format!("dependencies.d/{d}"), d))
        .collect();
    if let Some(text) = sd.text("dependencies") {
        deps.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|d| ("dependencies".to_owned(), d.to_owned())),
        );
    }
    sort_by_str(&mut deps, |d| &d.1);
    deps.dedup_by(|a, b| a.1 == b.1);
    deps
}

/// Reads one service; `None` when any error was recorded in `sd`.
fn load_service(
    sd: &mut ServiceDir,
    dependencies: Vec<String>,
    base_log: &LogOptions,
) -> Option<ServiceDef> {
    // With an unknown type, the kind's files are not checked: their errors would only mislead.
    let oneshot = match sd.value("type").as_deref() {
        None | Some("longrun") => Some(false),
        Some("oneshot") => Some(true),
        Some("bundle") => {
            sd.err(
                "type",
                "'bundle' is not supported (expected longrun or oneshot; list the bundle's services as dependencies instead)",
            );
            None
        }
        Some(v) => {
            sd.err(
                "type",
                format!("'{v}' is not a service type (expected longrun or oneshot)"),
            );
            None
        }
    };
    let kind = match oneshot {
        Some(true) => oneshot_kind(sd),
        Some(false) => longrun_kind(sd),
        None => None,
    };

    let mut methods: Vec<(&str, Readiness)> = Vec::new();
    if let Some(fd) = sd.parsed("notification-fd", parse_notification_fd) {
        methods.push(("notification-fd", Readiness::Fd(fd)));
    }
    if let Some(v) = sd.value("notify") {
        if v == "systemd" {
            methods.push(("notify", Readiness::Systemd));
        } else {
            sd.err(
                "notify",
                format!("'{v}' is not a notification protocol (expected systemd)"),
            );
        }
    }
    if let Some(check) = sd.executable("check") {
        methods.push(("check", Readiness::Check(check)));
    }
    let readiness = match methods.len() {
        0 => Readiness::None,
        1 => methods.remove(0).1,
        _ => {
            let names: Vec<&str> = methods.iter().map(|m| m.0).collect();
            let last = names.len() - 1;
            sd.err(
                names[last],
                format!(
                    "a second readiness method besides {} (expected at most one of notification-fd, notify or check)",
                    names[..last].join(" and ")
                ),
            );
            Readiness::None
        }
    };

    let critical = sd.flag("critical", "marks the service critical");
    let restart = match sd.value("restart").as_deref() {
        // `critical` alone means "the container dies when this dies": no restart then.
        None if critical => Restart::Never,
        None | Some("always") => Restart::Always,
        Some("on-failure") => Restart::OnFailure,
        Some("never") => Restart::Never,
        Some(v) => {
            sd.err(
                "restart",
                format!("'{v}' is not a restart policy (expected always, on-failure or never)"),
            );
            Restart::Always
        }
    };
    let restart_limit = sd.parsed("restart-limit", parse_restart_limit);
    let disabled = sd.flag("disabled", "keeps the service from starting automatically");
    let down_signal = sd
        .parsed("down-signal", parse_signal)
        .unwrap_or(Signal::SIGTERM);
    let timeout_kill = sd.parsed("timeout-kill", |v| {
        positive_millis(v, "tend always ends a stop with SIGKILL")
    });
    // As in s6-rc, a timeout-up of 0 means no limit.
    let timeout_up = sd
        .parsed("timeout-up", crate::units::parse_millis)
        .filter(|d| !d.is_zero());
    let timeout_finish = sd
        .parsed("timeout-finish", |v| {
            positive_millis(v, "a finish script is always time-limited")
        })
        .unwrap_or(DEFAULT_TIMEOUT_FINISH);
    let user = sd
        .value("user")
        .and_then(|spec| match user::resolve(&spec) {
            Ok(c) => Some(c),
            Err(e) => {
                sd.err("user", e);
                None
            }
        });
    let env = env(sd);
    let mut log = base_log.clone();
    if let Some(text) = sd.text("log-options")
        && let Err(e) = log.apply_lines(&text)
    {
        sd.err("log-options", e);
    }

    if !sd.errors.is_empty() {
        return None;
    }
    Some(ServiceDef {
        name: sd.name.to_owned(),
        dir: sd.path.to_path_buf(),
        kind: kind?,
        user,
        env,
        dependencies,
        readiness,
        policy: Policy {
            restart,
            restart_limit,
            critical,
            timeout_up,
            timeout_finish,
            down_signal,
            timeout_kill,
        },
        log,
        disabled,
    })
}

fn longrun_kind(sd: &mut ServiceDir) -> Option<Kind> {
    if sd.exists("up") {
        sd.err(
            "up",
            "a longrun has no up script (write type with oneshot, or rename up to run)",
        );
    }
    if sd.exists("down") {
        sd.err(
            "down",
            "a longrun has no down script (to keep it from starting, use an empty disabled file)",
        );
    }
    let (run, finish) = scripts(sd, "longrun", "run", "finish")?;
    Some(Kind::Longrun { run, finish })
}

fn oneshot_kind(sd: &mut ServiceDir) -> Option<Kind> {
    for f in LONGRUN_ONLY {
        if sd.exists(f) {
            sd.err(
                f,
                "only a longrun uses this file (this service's type is oneshot)",
            );
        }
    }
    let (up, down) = scripts(sd, "oneshot", "up", "down")?;
    Some(Kind::Oneshot { up, down })
}

/// A kind's required script (`run`, `up`) and optional one (`finish`, `down`); None, with
/// the error recorded, when the required one is missing or unusable.
fn scripts(
    sd: &mut ServiceDir,
    kind: &str,
    required: &str,
    optional: &str,
) -> Option<(PathBuf, Option<PathBuf>)> {
    let opt = sd.executable(optional);
    if !sd.exists(required) {
        sd.err(
            required,
            format!("missing (a {kind} needs an executable {required} file)"),
        );
        return None;
    }
    Some((sd.executable(required)?, opt))
}

/// The `env/` directory as s6-envdir reads it, sorted by name.
fn env(sd: &mut ServiceDir) -> Vec<(String, Option<OsString>)> {
    let mut out = Vec::new();
    for name in sd.names("env").unwrap_or_default() {
        let file = format!("env/{name}");
        if name.contains('=') {
            sd.err(
                &file,
                format!("'{name}' is not a variable name (expected a name without '=')"),
            );
            continue;
        }
        if fs::metadata(sd.path.join(&file)).is_ok_and(|m| m.is_dir()) {
            sd.err(
                &file,
                "is a directory (expected a file whose first line is the value)",
            );
            continue;
        }
        if let Some(bytes) = sd.bytes(&file) {
            out.push((name, envdir_value(&bytes)));
        }
    }
    out
}

/// Sorts `v` stably by `key`. Every caller shares one copy of the sort code (a sort of
/// `(&str, index)` pairs) instead of one per element type: each copy of std's sort is
/// several KB of the static binary (issue 16).
pub fn sort_by_str<T>(v: &mut Vec<T>, key: impl Fn(&T) -> &str) {
    let mut keyed: Vec<(&str, usize)> = v.iter().enumerate().map(|(i, t)| (key(t), i)).collect();
    // The index makes every pair distinct, so the unstable sort keeps equal keys in order.
    keyed.sort_unstable();
    let order: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
    let mut slots: Vec<Option<T>> = v.drain(..).map(Some).collect();
    v.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

fn positive_millis(v: &str, why: &str) -> Result<Duration, String> {
    let d = crate::units::parse_millis(v)?;
    if d.is_zero() {
        return Err(format!("'{v}' must be above zero ({why})"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    fn tmp(tag: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("tend-svc-unit-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
    fn write(root: &Path, rel: &str, text: &str, mode: u32) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn sort_by_str_is_stable() {
        let mut v = vec![("b", 1), ("a", 2), ("b", 0), ("a", 1), ("", 9)];
        sort_by_str(&mut v, |p| p.0);
        assert_eq!(v, [("", 9), ("a", 2), ("a", 1), ("b", 1), ("b", 0)]);
    }

    #[test]
    fn loads_every_field() {
        let t = tmp("fields");
        let r = &t.0;
        write(r, "prep/type", "oneshot\n", 0o644);
        write(r, "prep/up", "#!/bin/sh\n", 0o755);
        write(r, "db/run", "#!/bin/sh\n", 0o755);
        write(r, "db/finish", "#!/bin/sh\n", 0o755);
        write(r, "db/dependencies", "# s6-rc style\nprep\n", 0o644);
        write(r, "db/notification-fd", "3\n", 0o644);
        write(r, "db/restart", "never\n", 0o644);
        write(r, "db/critical", "", 0o644);
        write(r, "db/down-signal", "hup\n", 0o644);
        write(r, "db/timeout-kill", "250\n", 0o644);
        write(r, "db/timeout-up", "1000\n", 0o644);
        write(r, "db/user", "root\n", 0o644);
        write(r, "db/env/B", "", 0o644);
        write(r, "db/env/A", "one \t\nsecond line\n", 0o644);
        write(r, "db/log-options", "--keep 1\n", 0o644);
        write(r, "app/run", "#!/bin/sh\n", 0o755);
        write(r, "app/notify", "systemd\n", 0o644);
        write(r, "app/disabled", "", 0o644);
        write(r, "app/dependencies.d/db", "", 0o644);
        write(r, "app/dependencies.d/prep", "", 0o644);
        let base = LogOptions::default();
        let tree = load_tree(r, &base).unwrap();
        let names: Vec<&str> = tree.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["prep", "db", "app"]);
        let [prep, db, app] = &tree.services[..] else {
            panic!("three services")
        };
        assert_eq!(
            prep.kind,
            Kind::Oneshot {
                up: r.join("prep/up"),
                down: None
            }
        );
        assert_eq!(
            db.kind,
            Kind::Longrun {
                run: r.join("db/run"),
                finish: Some(r.join("db/finish"))
            }
        );
        assert_eq!(db.dir, r.join("db"));
        assert_eq!(db.dependencies, ["prep"]);
        assert_eq!(db.readiness, Readiness::Fd(3));
        assert_eq!(db.policy.restart, Restart::Never);
        assert!(db.policy.critical && !db.disabled);
        assert_eq!(db.policy.down_signal, Signal::SIGHUP);
        assert_eq!(db.policy.timeout_kill, Some(Duration::from_millis(250)));
        assert_eq!(db.policy.timeout_up, Some(Duration::from_millis(1000)));
        assert_eq!(db.policy.timeout_finish, DEFAULT_TIMEOUT_FINISH);
        assert_eq!(db.user.as_ref().map(|u| u.uid.as_raw()), Some(0));
        assert_eq!(
            db.env,
            [("A".to_owned(), Some("one".into())), ("B".to_owned(), None)]
        );
        assert_eq!(db.log.keep, 1);
        assert_eq!(base.keep, 5, "the base options are not changed");
        assert_eq!(app.dependencies, ["db", "prep"]);
        assert_eq!(app.readiness, Readiness::Systemd);
        assert_eq!(app.policy.restart, Restart::Always);
        assert_eq!(app.policy.down_signal, Signal::SIGTERM);
        assert!(app.disabled && !app.policy.critical);
        assert_eq!(
            (app.policy.timeout_kill, app.policy.timeout_up),
            (None, None)
        );
        assert!(app.user.is_none());
        assert_eq!(app.log, base);
    }

    #[test]
    fn bad_directory_name_is_shown_on_one_line() {
        // Found by fuzzing: a service directory named with a newline split the error.
        let t = tmp("nlname");
        write(&t.0, "a\nb/run", "#!/bin/sh\n", 0o755);
        let e = load_tree(&t.0, &LogOptions::default()).unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("a\\nb: 'a\\nb' is not a service name"),
            "{e:?}"
        );
    }

    #[test]
    fn dependency_from_the_s6rc_file_names_that_file() {
        let t = tmp("depfile");
        write(&t.0, "web/run", "#!/bin/sh\n", 0o755);
        write(&t.0, "web/dependencies", "db\n", 0o644);
        assert_eq!(
            load_tree(&t.0, &LogOptions::default()).unwrap_err(),
            ["web: dependencies: no such service 'db'"]
        );
    }
}
