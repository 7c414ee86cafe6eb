//! `tend run [FLAGS] -- CMD …` and `tend init [FLAGS] [-- CMD …]`.

use super::EXIT_CONFIG;
use super::env::{
    cmd_name, expect_exit, kill_grace, log_options, log_root, path_or_env, run_dir, services_dir,
    switch_or_env,
};
use crate::cli::{InitArgs, RunArgs};
use crate::supervise::job::{self, CmdOptions, InitOptions, RunOptions};
use crate::supervise::supervisor::stop_deadline_from_env;
use std::ffi::OsString;

/// `tend run -- CMD …`.
pub fn run(args: RunArgs) -> i32 {
    run_options(args).and_then(job::run).unwrap_or_else(|e| {
        eprintln!("tend run: {e}");
        EXIT_CONFIG
    })
}

/// `tend init [-- CMD …]`.
pub fn init(args: InitArgs) -> i32 {
    init_options(args).and_then(job::init).unwrap_or_else(|e| {
        eprintln!("tend init: {e}");
        EXIT_CONFIG
    })
}

fn run_options(mut args: RunArgs) -> Result<RunOptions, String> {
    if args.cmd.is_empty() {
        return Err("no command given (usage: tend run [OPTIONS] -- CMD ARGS…)".into());
    }
    let no_capture = switch_or_env(args.no_capture, "TEND_NO_CAPTURE")?;
    let group = switch_or_env(args.group, "TEND_GROUP")?;
    let common = cmd_options(args.take_cmd_flags())?;
    let capture = if no_capture {
        None
    } else {
        let opts = log_options(&args.log_flag_values(), args.tee, true)?;
        Some((opts, log_root(args.log_root.as_deref())))
    };
    Ok(RunOptions {
        common,
        group,
        capture,
    })
}

fn init_options(mut args: InitArgs) -> Result<InitOptions, String> {
    let common = cmd_options(args.take_cmd_flags())?;
    let mut log = log_options(&args.log_flag_values(), args.tee, true)?;
    // Under init several services share tend's stdout: name each line.
    log.tee_format
        .get_or_insert(crate::log::options::TeeFormat::Prefixed);
    let (services, services_explicit) = services_dir(args.services.as_deref());
    let cmd_wait = match std::env::var("TEND_CMD_WAIT") {
        Ok(v) if !v.is_empty() => {
            let d = crate::units::parse_millis(&v).map_err(|e| format!("TEND_CMD_WAIT: {e}"))?;
            (!d.is_zero()).then_some(d)
        }
        _ => None,
    };
    Ok(InitOptions {
        common,
        log,
        services,
        services_explicit,
        cmd_wait,
        log_root: log_root(args.log_root.as_deref()),
        run_dir: run_dir(args.run_dir.as_deref()),
        metrics_file: path_or_env(args.metrics_file.as_deref(), "TEND_METRICS_FILE"),
    })
}

/// What `run` and `init` share, from their flags and `TEND_*` variables.
fn cmd_options(
    (cmd, name, expect_flags, metrics_addr): (
        Vec<OsString>,
        Option<String>,
        Vec<String>,
        Option<String>,
    ),
) -> Result<CmdOptions, String> {
    Ok(CmdOptions {
        grace: kill_grace()?,
        expect_exit: expect_exit(&expect_flags)?,
        stop_deadline: stop_deadline_from_env()?,
        name: cmd_name(name.as_deref()),
        cmd,
        // Checked together by the HTTP server.
        metrics_addr: (metrics_addr, std::env::var("TEND_METRICS_ADDR").ok()),
    })
}
