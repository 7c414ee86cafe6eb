//! The `run` and `init` jobs: resolve flags and `TEND_*` variables, open the logs, then hand
//! over to the supervisor loop. Any failure here exits 111 with the reason on stderr.

use super::spawn::Ids;
use super::supervisor::{MainCmd, Mode, Supervisor};
use super::svc::{State, Svc};
use crate::cli::{self, EXIT_CONFIG, InitArgs, RunArgs, flag_or_env, switch_or_env};
use crate::init::signals::SignalIntake;
use crate::log::layout::{Identity, validate_component};
use crate::log::pump::{Pump, SinkStats};
use crate::log::sink::Sink;
use crate::log::{LogOptions, Stream};
use crate::service::{Readiness, ServiceDef};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
    let intake = SignalIntake::install()?;
    become_reaper()?;
    let (pump, out) = match capture {
        None => (None, None),
        Some((ident, root, opts)) => {
            let pump = Pump::start().map_err(|e| format!("cannot start the log thread: {e}"))?;
            let (o, e, stats) = open_capture(&pump, &root, &ident, &name, opts)?;
            (Some(pump), Some((o, e, stats)))
        }
    };
    let (out, stats) = match out {
        Some((o, e, stats)) => (Some((o, e)), Some(stats)),
        None => (None, None),
    };
    let main = MainCmd {
        argv: args.cmd,
        name,
        stats,
        started: None,
        out,
        pid: None,
        exit: None,
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
    Ok(sup.run())
}

fn init_inner(args: InitArgs) -> Result<i32, String> {
    let grace = cli::kill_grace()?;
    let mut base = cli::log_options(&args.log_flag_values(), args.tee, true)?;
    // Under init several services share tend's stdout: name each line.
    base.tee_format
        .get_or_insert(crate::log::options::TeeFormat::Prefixed);
    let explicit = flag_or_env(args.services.as_deref(), "TEND_SERVICES");
    let dir = PathBuf::from(
        explicit
            .clone()
            .unwrap_or_else(|| "/etc/tend/services".into()),
    );
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
    let metrics_file =
        flag_or_env(args.metrics_file.as_deref(), "TEND_METRICS_FILE").map(PathBuf::from);
    let intake = SignalIntake::install()?;
    become_reaper()?;
    let pump = Pump::start().map_err(|e| format!("cannot start the log thread: {e}"))?;
    let mut svcs = Vec::with_capacity(defs.len());
    for def in defs {
        let (out, err, stats) = open_capture(&pump, &root, &ident, &def.name, def.log.clone())?;
        svcs.push(new_svc(def, out, err, stats)?);
    }
    let main = if args.cmd.is_empty() {
        None
    } else {
        let (o, e, stats) = open_capture(&pump, &root, &ident, &name, base)?;
        let stats = Some(stats);
        Some(MainCmd {
            argv: args.cmd,
            name,
            stats,
            started: None,
            out: Some((o, e)),
            pid: None,
            exit: None,
        })
    };
    // Without a writable run directory (read-only root, non-root user) tend still runs:
    // only `tend ctl` is unavailable, which is worth one warning, not a failed start.
    let run_dir = PathBuf::from(
        flag_or_env(args.run_dir.as_deref(), "TEND_RUN_DIR").unwrap_or_else(|| "/run/tend".into()),
    );
    let server = match crate::ctl::server::Server::bind(&run_dir) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("tend: control socket disabled: {e}");
            None
        }
    };
    let metrics = match metrics_file {
        Some(p) => Some(
            crate::ctl::metrics::MetricsWriter::start(p)
                .map_err(|e| format!("--metrics-file: cannot start its writer: {e}"))?,
        ),
        None => None,
    };
    let sup = Supervisor::new(Mode::Init, intake, svcs, main, Some(pump), grace, cmd_wait);
    Ok(sup.with_control(server).with_metrics(metrics).run())
}

/// PID 1 reaps by nature; anywhere else tend asks to inherit orphans.
fn become_reaper() -> Result<(), String> {
    if crate::init::is_pid1() {
        Ok(())
    } else {
        crate::init::become_subreaper()
    }
}

/// Opens a service's log directory and its two capture pipes; returns the write ends.
fn open_capture(
    pump: &Pump,
    root: &Path,
    ident: &Identity,
    name: &str,
    opts: LogOptions,
) -> Result<(OwnedFd, OwnedFd, Arc<SinkStats>), String> {
    let sink = Sink::open_service(root, ident, name, opts)?;
    let pipe = |what: &str| {
        crate::sys::capture_pipe()
            .map_err(|e| format!("{name}: cannot create the {what} pipe: {e}"))
    };
    let (out_r, out_w) = pipe("stdout")?;
    let (err_r, err_w) = pipe("stderr")?;
    let stats = pump.add(sink, vec![(Stream::Stdout, out_r), (Stream::Stderr, err_r)]);
    Ok((out_w, err_w, stats))
}

fn new_svc(
    def: ServiceDef,
    out: OwnedFd,
    err: OwnedFd,
    stats: Arc<SinkStats>,
) -> Result<Svc, String> {
    // `disabled` services wait for `tend ctl start`.
    let disabled = def.disabled;
    let mut env = def.env.clone();
    let mut notify = None;
    if matches!(def.readiness, Readiness::Systemd) {
        let (sock, addr) = super::readiness::notify_socket(&def.name)?;
        env.push(("NOTIFY_SOCKET".into(), Some(addr)));
        notify = Some(sock);
    }
    let ids = def.user.as_ref().map(|c| Ids {
        uid: c.uid,
        gid: c.gid,
        groups: c.groups.clone(),
    });
    Ok(Svc {
        def,
        state: State::Down,
        pid: None,
        aux: None,
        started: None,
        restarts: 0,
        last_exit: None,
        backoff: Default::default(),
        deadline: None,
        check_at: None,
        check_every: Duration::from_millis(50),
        out,
        err,
        stats,
        ready_pipe: None,
        notify,
        want_up: !disabled,
        up_timed_out: false,
        restart_requested: false,
        down_done: false,
        ids,
        env,
    })
}
