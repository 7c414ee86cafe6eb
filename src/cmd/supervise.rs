//! `tend run [FLAGS] -- CMD …` and `tend init [FLAGS] [-- CMD …]`.

use super::EXIT_CONFIG;
use super::env::{
    cmd_name, expect_exit, kill_grace, log_options, log_root, path_or_env, run_dir, services_dir,
    switch_or_env,
};
use crate::cli::{InitArgs, RunArgs};
use crate::supervise::job::{self, InitOptions, RunOptions};
use crate::supervise::supervisor::stop_deadline_from_env;

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

fn run_options(args: RunArgs) -> Result<RunOptions, String> {
    if args.cmd.is_empty() {
        return Err("no command given (usage: tend run [OPTIONS] -- CMD ARGS…)".into());
    }
    let no_capture = switch_or_env(args.no_capture, "TEND_NO_CAPTURE")?;
    let group = switch_or_env(args.group, "TEND_GROUP")?;
    let grace = kill_grace()?;
    let expect_exit = expect_exit(&args.expect_exit)?;
    let stop_deadline = stop_deadline_from_env()?;
    let name = cmd_name(args.name.as_deref());
    let capture = if no_capture {
        None
    } else {
        let opts = log_options(&args.log_flag_values(), args.tee, true)?;
        Some((opts, log_root(args.log_root.as_deref())))
    };
    Ok(RunOptions {
        cmd: args.cmd,
        group,
        grace,
        stop_deadline,
        expect_exit,
        name,
        capture,
        metrics_addr: (args.metrics_addr, std::env::var("TEND_METRICS_ADDR").ok()),
    })
}

fn init_options(args: InitArgs) -> Result<InitOptions, String> {
    let grace = kill_grace()?;
    let stop_deadline = stop_deadline_from_env()?;
    let mut log = log_options(&args.log_flag_values(), args.tee, true)?;
    // Under init several services share tend's stdout: name each line.
    log.tee_format
        .get_or_insert(crate::log::options::TeeFormat::Prefixed);
    let expect_exit = expect_exit(&args.expect_exit)?;
    let (services, services_explicit) = services_dir(args.services.as_deref());
    let cmd_wait = match std::env::var("TEND_CMD_WAIT") {
        Ok(v) if !v.is_empty() => {
            let d = crate::units::parse_millis(&v).map_err(|e| format!("TEND_CMD_WAIT: {e}"))?;
            (!d.is_zero()).then_some(d)
        }
        _ => None,
    };
    Ok(InitOptions {
        cmd: args.cmd,
        grace,
        stop_deadline,
        log,
        expect_exit,
        services,
        services_explicit,
        cmd_wait,
        name: cmd_name(args.name.as_deref()),
        log_root: log_root(args.log_root.as_deref()),
        run_dir: run_dir(args.run_dir.as_deref()),
        metrics_file: path_or_env(args.metrics_file.as_deref(), "TEND_METRICS_FILE"),
        metrics_addr: (args.metrics_addr, std::env::var("TEND_METRICS_ADDR").ok()),
    })
}
