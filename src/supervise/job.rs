//! The `run` and `init` jobs: resolve flags and `TEND_*` variables, open the logs, then hand
//! over to the supervisor loop. Any failure here exits 111 with the reason on stderr.

use super::spawn::Ids;
use super::supervisor::{MainCmd, Mode, Supervisor, stop_deadline_from_env};
use super::svc::Svc;
use crate::cli::{self, EXIT_CONFIG, InitArgs, RunArgs, flag_or_env, path_or_env, switch_or_env};
use crate::init::signals::SignalIntake;
use crate::log::layout::{Identity, validate_component};
use crate::log::pump::{Opened, Pump, SinkStats};
use crate::log::sink::Sink;
use crate::log::{LogOptions, Stream};
use crate::service::{Readiness, ServiceDef};
use std::io::IsTerminal;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// `tend run -- CMD …`.
pub fn run(args: RunArgs) -> i32 {
    run_inner(args).unwrap_or_else(|e| {
        eprintln!("tend run: {e}");
        EXIT_CONFIG
    })
}

/// `tend init [-- CMD …]`.
pub fn init(args: InitArgs) -> i32 {
    init_inner(args).unwrap_or_else(|e| {
        eprintln!("tend init: {e}");
        EXIT_CONFIG
    })
}

fn run_inner(args: RunArgs) -> Result<i32, String> {
    if args.cmd.is_empty() {
        return Err("no command given (usage: tend run [OPTIONS] -- CMD ARGS…)".into());
    }
    let no_capture = switch_or_env(args.no_capture, "TEND_NO_CAPTURE")?;
    let group = switch_or_env(args.group, "TEND_GROUP")?;
    let grace = cli::kill_grace()?;
    let expect_exit = cli::expect_exit(&args.expect_exit)?;
    let stop_deadline = stop_deadline_from_env()?;
    let name = flag_or_env(args.name.as_deref(), "TEND_NAME").unwrap_or_else(|| "main".into());
    // Everything that can be refused is checked before the first side effect.
    let capture = if no_capture {
        None
    } else {
        let opts = cli::log_options(&args.log_flag_values(), args.tee, true)?;
        validate_component("--name", &name)?;
        Some((
            Identity::from_env()?,
            cli::log_root(args.log_root.as_deref()),
            opts,
        ))
    };
    let http = crate::ctl::http::Http::configured(
        args.metrics_addr.as_deref(),
        std::env::var("TEND_METRICS_ADDR").ok(),
    )?;
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
    let main = MainCmd {
        argv: args.cmd,
        name,
        stats,
        started: None,
        out,
        pid: None,
        exit: None,
        expect_exit,
    };
    let sup = Supervisor::new(
        Mode::Run { group },
        intake,
        Vec::new(),
        Some(main),
        pump,
        grace,
        None,
    );
    Ok(sup
        .with_control(crate::ctl::server::Server::http_only(http))
        .with_stop_deadline(stop_deadline)
        .run())
}

fn init_inner(args: InitArgs) -> Result<i32, String> {
    let grace = cli::kill_grace()?;
    let stop_deadline = stop_deadline_from_env()?;
    let mut base = cli::log_options(&args.log_flag_values(), args.tee, true)?;
    // Under init several services share tend's stdout: name each line.
    base.tee_format
        .get_or_insert(crate::log::options::TeeFormat::Prefixed);
    let expect_exit = cli::expect_exit(&args.expect_exit)?;
    let explicit = path_or_env(args.services.as_deref(), "TEND_SERVICES");
    let dir = explicit
        .clone()
        .unwrap_or_else(|| "/etc/tend/services".into());
    // The default tree is optional, so `ENTRYPOINT ["tend","init","--"]` works with only a CMD.
    let defs = if explicit.is_none() && !dir.exists() {
        Vec::new()
    } else {
        crate::service::load_tree(&dir, &base)
            .map_err(|errs| format!("{}: {}", dir.display(), errs.join("\n  ")))?
            .services
    };
    let cmd_wait = match std::env::var("TEND_CMD_WAIT") {
        Ok(v) if !v.is_empty() => {
            let d = crate::units::parse_millis(&v).map_err(|e| format!("TEND_CMD_WAIT: {e}"))?;
            (!d.is_zero()).then_some(d)
        }
        _ => None,
    };
    let name = flag_or_env(args.name.as_deref(), "TEND_NAME").unwrap_or_else(|| "main".into());
    validate_component("--name", &name)?;
    if !args.cmd.is_empty() && defs.iter().any(|d| d.name == name) {
        return Err(format!(
            "service '{name}' has the same log name as CMD (rename the service or pass --name)"
        ));
    }
    let ident = Identity::from_env()?;
    let root = cli::log_root(args.log_root.as_deref());
    let metrics_file = path_or_env(args.metrics_file.as_deref(), "TEND_METRICS_FILE");
    let http = crate::ctl::http::Http::configured(
        args.metrics_addr.as_deref(),
        std::env::var("TEND_METRICS_ADDR").ok(),
    )?;
    let mut intake = SignalIntake::install()?;
    become_reaper()?;
    let pump = Pump::start().map_err(|e| format!("cannot start the log thread: {e}"))?;
    let has_cmd = !args.cmd.is_empty();
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
        pending.push(request_capture(&pump, &root, &ident, &name, base));
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
        // Invariant: await_captures answered every request, in order.
        let (out, err, stats) = opened.next().expect("one capture per service");
        svcs.push(new_svc(def, out, err, stats)?);
    }
    let main = if !has_cmd {
        None
    } else {
        let (out, stats) = match opened.next() {
            Some((o, e, stats)) => (Some((o, e)), Some(stats)),
            None => (None, None),
        };
        Some(MainCmd {
            argv: args.cmd,
            name,
            stats,
            started: None,
            out,
            pid: None,
            exit: None,
            expect_exit,
        })
    };
    // Without a writable run directory (read-only root, non-root user) the control socket
    // moves to @tend/control; failing that, tend still runs with one warning.
    let run_dir =
        path_or_env(args.run_dir.as_deref(), "TEND_RUN_DIR").unwrap_or_else(|| "/run/tend".into());
    let server = crate::ctl::server::Server::open(&run_dir, http);
    let metrics = match metrics_file {
        Some(p) => Some(
            crate::ctl::metrics::MetricsWriter::start(p)
                .map_err(|e| format!("--metrics-file: cannot start its writer: {e}"))?,
        ),
        None => None,
    };
    let sup = Supervisor::new(Mode::Init, intake, svcs, main, Some(pump), grace, cmd_wait);
    Ok(sup
        .with_control(server)
        .with_metrics(metrics)
        .with_stop_deadline(stop_deadline)
        .run())
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
        if let Some(v) = v {
            if !env.iter().any(|(n, _)| n == k) {
                env.insert(0, (k.to_owned(), Some(v)));
            }
        }
    }
}
