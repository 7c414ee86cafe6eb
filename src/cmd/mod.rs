//! One entry point per command. This is the only code that reads the `cli` structs: each
//! command turns its flags and `TEND_*` variables into the plain options of a domain module.

mod check;
mod ctl;
mod env;
#[cfg(feature = "import")]
mod import;
mod log;
mod logs;
mod supervise;

use crate::cli::{Job, Tend};
use argh::FromArgs;
use std::ffi::OsString;

/// Exit code when tend itself could not start (bad flags, bad config).
pub const EXIT_CONFIG: i32 = 111;
/// Exit code of a subcommand that is not built yet, and of usage errors.
pub const EXIT_USAGE: i32 = 2;

/// Parses the process arguments and runs the chosen job; returns the exit code.
pub fn dispatch() -> i32 {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    // The command after `--` of `run` and `init` is passed on as bytes, untouched; everything
    // before it (flags, names, paths on the command line) must be text for argh.
    let takes_cmd = matches!(
        args.first().and_then(|a| a.to_str()),
        Some("run") | Some("init")
    );
    let (flags, cmd) = match args.iter().position(|a| a == "--") {
        Some(i) if takes_cmd => (&args[..i], &args[i + 1..]),
        _ => (&args[..], &args[args.len()..]),
    };
    let mut words: Vec<&str> = Vec::with_capacity(flags.len());
    for a in flags {
        match a.to_str() {
            Some(w) => words.push(w),
            None => {
                let hint = if takes_cmd {
                    "; put the command and its arguments after --"
                } else {
                    ""
                };
                eprintln!(
                    "tend: argument '{}' is not valid UTF-8 (flags, names and paths before -- must be text{hint})",
                    a.to_string_lossy()
                );
                return EXIT_CONFIG;
            }
        }
    }
    match words.first().copied() {
        Some("--version") | Some("-V") | Some("version") => {
            println!("tend {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Some("help") if words.len() == 1 => return usage(&["--help"]),
        None => return usage(&["--help"]),
        _ => {}
    }
    if let Err(e) = env::check_env_text(takes_cmd) {
        eprintln!("tend: {e}");
        return EXIT_CONFIG;
    }
    let tend: Tend = match Tend::from_args(&["tend"], &words) {
        Ok(t) => t,
        Err(early) => return early_exit(early),
    };
    match tend.job {
        Job::Run(mut a) => {
            a.cmd.extend(cmd.iter().cloned());
            supervise::run(a)
        }
        Job::Init(mut a) => {
            a.cmd.extend(cmd.iter().cloned());
            supervise::init(a)
        }
        Job::Log(a) => log::log(a),
        Job::Check(a) => check::check(a),
        Job::Ctl(a) => ctl::ctl(a),
        Job::Logs(a) => logs::logs(a),
        #[cfg(feature = "import")]
        Job::Import(a) => import::import(a),
    }
}

fn usage(words: &[&str]) -> i32 {
    match Tend::from_args(&["tend"], words) {
        Ok(_) => 0,
        Err(early) => early_exit(early),
    }
}

fn early_exit(early: argh::EarlyExit) -> i32 {
    match early.status {
        Ok(()) => {
            println!("{}", early.output);
            0
        }
        // A bad, unknown, repeated or valueless flag means tend could not start (SPEC §6).
        Err(()) => {
            eprintln!("tend: {}", early.output.trim_end());
            EXIT_CONFIG
        }
    }
}
