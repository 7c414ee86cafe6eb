//! The `run` and `init` jobs: open the logs, then hand over to the supervisor loop. The
//! options come resolved from flags and `TEND_*` variables (`cmd`); an Err here is reported
//! by the caller, which exits 111.

use super::spawn::Ids;
use super::supervisor::{MainCmd, Mode, Supervisor};
use super::svc::Svc;
use crate::init::signals::SignalIntake;
use crate::log::layout::{Identity, validate_component};
use crate::log::pump::{Opened, Pump};
use crate::log::sink::Sink;
use crate::log::stats::SinkStats;
use crate::log::{LogOptions, Stream};
use crate::service::{Readiness, ServiceDef};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `run` and `init` share: CMD, how it is stopped, how its exit is counted.
pub struct CmdOptions {
    /// The command and its arguments (never empty for `run`, may be for `init`).
    pub cmd: Vec<OsString>,
    /// The name CMD logs as.
    pub name: String,
    /// Exit codes of CMD that count as success.
    pub expect_exit: Vec<i32>,
    /// Between a stop signal and SIGKILL.
    pub grace: Duration,
    /// How long the whole stop may take.
    pub stop_deadline: Duration,
    /// `--metrics-addr`, and `TEND_METRICS_ADDR`.
    pub metrics_addr: (Option<String>, Option<String>),
}

/// What `tend run` does, resolved from its flags and `TEND_*` variables.
pub struct RunOptions {
    /// CMD and what `init` shares.
    pub common: CmdOptions,
    /// Forward signals to the child's whole process group.
    pub group: bool,
    /// The log options and log root; None: no capture (pure tini).
    pub capture: Option<(LogOptions, PathBuf)>,
}

/// What `tend init` does, resolved from its flags and `TEND_*` variables.
pub struct InitOptions {
    /// CMD and what `run` shares.
    pub common: CmdOptions,
    /// Log options of CMD, and the base of every service's.
    pub log: LogOptions,
    /// The service tree.
    pub services: PathBuf,
    /// The service tree was named by a flag or variable, so it must exist.
    pub services_explicit: bool,
    /// `TEND_CMD_WAIT`: how long CMD waits for the services to be ready.
    pub cmd_wait: Option<Duration>,
    /// The log root.
    pub log_root: PathBuf,
    /// Directory of the control socket.
    pub run_dir: PathBuf,
    /// `--metrics-file`.
    pub metrics_file: Option<PathBuf>,
}

/// `tend run -- CMD …`: the exit code to leave with.
pub fn run(opts: RunOptions) -> Result<i32, String> {
    let o = opts.common;
    // Everything that can be refused is checked before the first side effect.
    let capture = match opts.capture {
        None => None,
        Some((opts, root)) => {
            validate_component("--name", &o.name)?;
            Some((Identity::from_env()?, root, opts))
        }
    };
    let name = o.name;
    let http = crate::ctl::http::Http::configured(o.metrics_addr.0.as_deref(), o.metrics_addr.1)?;
    let mut intake = SignalIntake::install()?;
    become_reaper()?;
    let (pump, out, stats) = match capture {
        None => (None, None, None),
        Some((ident, root, opts)) => {
            let pump = Pump::start().map_err(|e| format!("cannot start the log thread: {e}"))?;
            let pending = vec![request_capture(&pump, &root, &ident, &name, opts)];
            let (o, e, stats) = match await_captures(&pump, pending, &mut intake) {
                Ok(Some(mut v)) => v.remove(0),
                Ok(None) => return Ok(abort_start(pump, &mut intake, true)),
                Err(e) => {
                    abort_start(pump, &mut intake, true);
                    return Err(e);
                }
            };
            (Some(pump), Some((o, e)), Some(stats))
        }
    };
    let main = main_cmd(o.cmd, name, o.expect_exit, out, stats);
    let sup = Supervisor::new(
        Mode::Run { group: opts.group },
        intake,
        Vec::new(),
        Some(main),
        pump,
        o.grace,
        None,
    );
    Ok(sup
        .with_control(crate::ctl::server::Server::http_only(http))
        .with_stop_deadline(o.stop_deadline)
        .run())
}

/// `tend init [-- CMD …]`: the exit code to leave with.
pub fn init(opts: InitOptions) -> Result<i32, String> {
    let o = opts.common;
    let dir = opts.services;
    // The default tree is optional, so `ENTRYPOINT ["tend","init","--"]` works with only a CMD.
    let defs = if !opts.services_explicit && !dir.exists() {
        Vec::new()
    } else {
        crate::service::load_tree(&dir, &opts.log)
            .map_err(|errs| format!("{}: {}", dir.display(), errs.join("\n  ")))?
            .services
    };
    let name = o.name;
    validate_component("--name", &name)?;
    if !o.cmd.is_empty() && defs.iter().any(|d| d.name == name) {
        return Err(format!(
            "service '{name}' has the same log name as CMD (rename the service or pass --name)"
        ));
    }
    let ident = Identity::from_env()?;
    let root = opts.log_root;
    let http = crate::ctl::http::Http::configured(o.metrics_addr.0.as_deref(), o.metrics_addr.1)?;
    let mut intake = SignalIntake::install()?;
    become_reaper()?;
    let pump = Pump::start().map_err(|e| format!("cannot start the log thread: {e}"))?;
    let has_cmd = !o.cmd.is_empty();
    // An interactive CMD (`docker run -it IMAGE bash`) keeps the terminal: its output goes
    // straight to it, uncaptured, and spawn makes it the terminal's foreground group so
    // ^C and window-size changes reach it.
    let capture_cmd = has_cmd && !std::io::stdin().is_terminal();
    // The log thread opens every log directory; this thread only waits, watching signals.
    let mut pending: Vec<Pending> = defs
        .iter()
        .map(|d| request_capture(&pump, &root, &ident, &d.name, d.log.clone()))
        .collect();
    if capture_cmd {
        pending.push(request_capture(&pump, &root, &ident, &name, opts.log));
    }
    let mut opened = match await_captures(&pump, pending, &mut intake) {
        Ok(Some(v)) => v.into_iter(),
        Ok(None) => return Ok(abort_start(pump, &mut intake, has_cmd)),
        Err(e) => {
            abort_start(pump, &mut intake, has_cmd);
            return Err(e);
        }
    };
    let mut svcs = Vec::with_capacity(defs.len());
    for def in defs {
        // await_captures answers every request, in order; a short answer is a bug, said
        // as a start-up error rather than a panic in PID 1.
        let (out, err, stats) = opened
            .next()
            .ok_or("internal error: a log directory was not opened")?;
        svcs.push(new_svc(def, out, err, stats)?);
    }
    let main = if !has_cmd {
        None
    } else {
        let (out, stats) = match opened.next() {
            Some((o, e, stats)) => (Some((o, e)), Some(stats)),
            None => (None, None),
        };
        Some(main_cmd(o.cmd, name, o.expect_exit, out, stats))
    };
    // Without a writable run directory (read-only root, non-root user) the control socket
    // moves to @tend/control; failing that, tend still runs with one warning.
    let server = crate::ctl::server::Server::open(&opts.run_dir, http);
    let metrics = match opts.metrics_file {
        Some(p) => Some(
            crate::ctl::metrics::MetricsWriter::start(p)
                .map_err(|e| format!("--metrics-file: cannot start its writer: {e}"))?,
        ),
        None => None,
    };
    let sup = Supervisor::new(
        Mode::Init,
        intake,
        svcs,
        main,
        Some(pump),
        o.grace,
        opts.cmd_wait,
    );
    Ok(sup
        .with_control(server)
        .with_metrics(metrics)
        .with_stop_deadline(o.stop_deadline)
        .run())
}

/// CMD before it is spawned.
fn main_cmd(
    argv: Vec<OsString>,
    name: String,
    expect_exit: Vec<i32>,
    out: Option<(OwnedFd, OwnedFd)>,
    stats: Option<Arc<SinkStats>>,
) -> MainCmd {
    MainCmd {
        argv,
        name,
        stats,
        started: None,
        out,
        pid: None,
        exit: None,
        expect_exit,
    }
}

/// PID 1 reaps by nature; anywhere else tend asks to inherit orphans.
fn become_reaper() -> Result<(), String> {
    if crate::init::is_pid1() {
        Ok(())
    } else {
        crate::init::become_subreaper()
    }
}

/// A log directory being opened by the log thread: the capture pipes' write ends and the
/// answer to wait for, or why the pipes could not be made.
type Pending = Result<(OwnedFd, OwnedFd, Opened), String>;

/// Creates a service's two capture pipes and asks the log thread to open its directory.
fn request_capture(
    pump: &Pump,
    root: &Path,
    ident: &Identity,
    name: &str,
    opts: LogOptions,
) -> Pending {
    let pipe = |what: &str| {
        crate::sys::capture_pipe()
            .map_err(|e| format!("{name}: cannot create the {what} pipe: {e}"))
    };
    let (out_r, out_w) = pipe("stdout")?;
    let (err_r, err_w) = pipe("stderr")?;
    let (root, ident, service) = (root.to_path_buf(), ident.clone(), name.to_owned());
    let open = Box::new(move || Sink::open_service(&root, &ident, &service, opts));
    let opened = pump.open(open, vec![(Stream::Stdout, out_r), (Stream::Stderr, err_r)]);
    Ok((out_w, err_w, opened))
}

/// Waits for every requested log directory, in order, while watching for a stop signal:
/// `Ok(None)` when one came first (a full disk must not make PID 1 deaf to SIGTERM).
#[allow(clippy::type_complexity)]
fn await_captures(
    pump: &Pump,
    pending: Vec<Pending>,
    intake: &mut SignalIntake,
) -> Result<Option<Vec<(OwnedFd, OwnedFd, Arc<SinkStats>)>>, String> {
    let mut out = Vec::with_capacity(pending.len());
    for p in pending {
        let (o, e, opened) = p?;
        match pump.await_open(&opened, &mut |d, fd| intake.wait_for_stop(d, fd))? {
            Some(stats) => out.push((o, e, stats)),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// Ends a start-up cut short (a stop signal, or a log directory that cannot be opened): the
/// log thread gives up at once. The exit code is that of a signal-initiated stop.
fn abort_start(pump: Pump, intake: &mut SignalIntake, has_cmd: bool) -> i32 {
    pump.finish_at_exit(Instant::now(), true, &mut |d, fd| {
        intake.wait_for_stop(d, fd)
    });
    match intake.stop_signal() {
        Some(sig) if has_cmd => 128 + sig as i32,
        _ => 0,
    }
}

fn new_svc(
    def: ServiceDef,
    out: OwnedFd,
    err: OwnedFd,
    stats: Arc<SinkStats>,
) -> Result<Svc, String> {
    let mut env = def.env.clone();
    let mut notify = None;
    if matches!(def.readiness, Readiness::Systemd) {
        let (sock, addr) = super::readiness::notify_socket(&def.name)?;
        env.push(("NOTIFY_SOCKET".into(), Some(addr.into())));
        notify = Some(sock);
    }
    if let Some(c) = &def.user {
        user_env(&mut env, c);
    }
    let ids = def.user.as_ref().map(|c| Ids {
        uid: c.uid,
        gid: c.gid,
        groups: c.groups.clone(),
    });
    Ok(Svc::new(def, out, err, stats, notify, ids, env))
}

/// `HOME`, `USER` and `LOGNAME` of a service's `user`, as login(1) and s6-setuidgid's callers
/// expect; a value the service sets in `env/` wins.
fn user_env(env: &mut Vec<(String, Option<std::ffi::OsString>)>, c: &crate::service::Credentials) {
    let home = c.home.as_ref().map(|h| h.as_os_str().to_owned());
    let defaults = [
        ("HOME", home),
        ("USER", Some(c.name.clone().into())),
        ("LOGNAME", Some(c.name.clone().into())),
    ];
    for (k, v) in defaults {
        if let Some(v) = v
            && !env.iter().any(|(n, _)| n == k)
        {
            env.insert(0, (k.to_owned(), Some(v)));
        }
    }
}
