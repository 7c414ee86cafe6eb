//! The command line: argh structs for every job, `TEND_*` environment fallbacks, dispatch.

use crate::log::options::{FLAGS as LOG_FLAGS, LogOptions};
use argh::FromArgs;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Exit code when tend itself could not start (bad flags, bad config).
pub const EXIT_CONFIG: i32 = 111;
/// Exit code of a subcommand that is not built yet, and of usage errors.
pub const EXIT_USAGE: i32 = 2;

/// `TEND_*` variables that hold a path, read as bytes by `run` and `init`; every other `TEND_*`
/// variable must be text.
const PATH_VARS: &[&str] = &[
    "TEND_LOG_ROOT",
    "TEND_SERVICES",
    "TEND_RUN_DIR",
    "TEND_METRICS_FILE",
];

/// argh has no flattening, so the log flags shared by `log`, `run` and `init` are spliced
/// into each struct by this macro, together with an accessor listing them by long name.
macro_rules! with_log_flags {
    ($(#[$m:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$m])*
        pub struct $name {
            $($body)*
            /// record format: cri (default), json, ts or plain
            #[argh(option)]
            pub format: Option<String>,
            /// longest record; longer lines are split (default 16KiB)
            #[argh(option)]
            pub max_line: Option<String>,
            /// rotate current before it passes SIZE (default 10MiB)
            #[argh(option)]
            pub rotate_size: Option<String>,
            /// also rotate current when it is this old (1h, 1d)
            #[argh(option)]
            pub rotate_every: Option<String>,
            /// keep at most N archives (default 5)
            #[argh(option)]
            pub keep: Option<String>,
            /// delete oldest archives while all archives exceed SIZE
            #[argh(option)]
            pub max_total: Option<String>,
            /// delete archives older than DURATION
            #[argh(option)]
            pub max_age: Option<String>,
            /// gzip archives in the background: gzip or none (default)
            #[argh(option)]
            pub compress: Option<String>,
            /// run CMD with the archive path after each rotation
            #[argh(option)]
            pub on_rotate: Option<String>,
            /// block (default, nothing lost) or drop when the disk is full
            #[argh(option)]
            pub on_full: Option<String>,
            /// also copy records to tend's stdout/stderr, never blocking capture
            #[argh(switch)]
            pub tee: bool,
            /// the copy's form: same (the file's records), plain (the raw line) or prefixed (NAME | line); default prefixed for init, same otherwise
            #[argh(option)]
            pub tee_format: Option<String>,
        }

        impl $name {
            /// The log flags given on the command line, by long name.
            pub fn log_flag_values(&self) -> [(&'static str, Option<&str>); 11] {
                [
                    ("format", self.format.as_deref()),
                    ("max-line", self.max_line.as_deref()),
                    ("rotate-size", self.rotate_size.as_deref()),
                    ("rotate-every", self.rotate_every.as_deref()),
                    ("keep", self.keep.as_deref()),
                    ("max-total", self.max_total.as_deref()),
                    ("max-age", self.max_age.as_deref()),
                    ("compress", self.compress.as_deref()),
                    ("on-rotate", self.on_rotate.as_deref()),
                    ("on-full", self.on_full.as_deref()),
                    ("tee-format", self.tee_format.as_deref()),
                ]
            }
        }
    };
}

#[derive(FromArgs, Debug)]
/// tend: a tiny PID 1 for containers that supervises services and writes their logs to rotating files.
pub struct Tend {
    #[argh(subcommand)]
    pub job: Job,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
/// One of tend's jobs.
pub enum Job {
    Init(InitArgs),
    Run(RunArgs),
    Log(LogArgs),
    Ctl(CtlArgs),
    Logs(LogsArgs),
    Check(CheckArgs),
    #[cfg(feature = "import")]
    Import(ImportArgs),
}

with_log_flags! {
    #[derive(FromArgs, Debug)]
    #[argh(subcommand, name = "run")]
    /// Wrap one command: reap zombies, forward signals, capture and rotate its output, exit with its code.
    pub struct RunArgs {
        /// do not capture output: the child keeps stdin/stdout/stderr (pure tini)
        #[argh(switch)]
        pub no_capture: bool,
        /// forward signals to the child's whole process group
        #[argh(switch)]
        pub group: bool,
        /// service name the command logs as (default main)
        #[argh(option)]
        pub name: Option<String>,
        /// log root directory (default /data/logs)
        #[argh(option)]
        pub log_root: Option<String>,
        /// do not count CODE as a failure: CMD exiting with CODE makes tend exit 0 (repeatable)
        #[argh(option)]
        pub expect_exit: Vec<String>,
        /// serve HTTP GET /metrics, /readyz, /livez on HOST:PORT (off by default)
        #[argh(option)]
        pub metrics_addr: Option<String>,
        /// the command and its arguments
        #[argh(positional, greedy)]
        pub cmd: Vec<OsString>,
    }
}

with_log_flags! {
    #[derive(FromArgs, Debug)]
    #[argh(subcommand, name = "init")]
    /// Container init: start the service tree, then CMD; reap, forward signals, shut down in order.
    pub struct InitArgs {
        /// service tree directory (default /etc/tend/services)
        #[argh(option)]
        pub services: Option<String>,
        /// log root directory (default /data/logs)
        #[argh(option)]
        pub log_root: Option<String>,
        /// directory of the control socket (default /run/tend)
        #[argh(option)]
        pub run_dir: Option<String>,
        /// service name CMD logs as (default main)
        #[argh(option)]
        pub name: Option<String>,
        /// rewrite Prometheus metrics to PATH every 10 s
        #[argh(option)]
        pub metrics_file: Option<String>,
        /// do not count CODE as a failure: CMD exiting with CODE makes tend exit 0 (repeatable)
        #[argh(option)]
        pub expect_exit: Vec<String>,
        /// serve HTTP GET /metrics, /readyz, /livez on HOST:PORT (off by default)
        #[argh(option)]
        pub metrics_addr: Option<String>,
        /// CMD and its arguments (optional)
        #[argh(positional, greedy)]
        pub cmd: Vec<OsString>,
    }
}

with_log_flags! {
    #[derive(FromArgs, Debug)]
    #[argh(subcommand, name = "log")]
    /// Read stdin and write a rotating log directory (like s6-log, svlogd, multilog).
    pub struct LogArgs {
        /// the log directory
        #[argh(positional)]
        pub dir: String,
    }
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "ctl")]
/// Control a running tend init through its control socket.
pub struct CtlArgs {
    /// directory of the control socket (default /run/tend or TEND_RUN_DIR)
    #[argh(option)]
    pub run_dir: Option<String>,
    /// seconds to wait for the requested state change (default 10)
    #[argh(option)]
    pub timeout: Option<String>,
    /// print JSON (status)
    #[argh(switch)]
    pub json: bool,
    /// status [NAME] | ready [NAME…] | start NAME | stop NAME | restart NAME | kill SIGNAL NAME | shutdown | metrics | rotate NAME|all
    #[argh(positional, greedy)]
    pub words: Vec<String>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "logs")]
/// Print a service's records across archives and current.
pub struct LogsArgs {
    /// follow current across rotations
    #[argh(switch, short = 'f')]
    pub follow: bool,
    /// print only the last N records
    #[argh(option, short = 'n')]
    pub lines: Option<usize>,
    /// only records at or after TIME (RFC 3339, or a duration ago such as 10m)
    #[argh(option)]
    pub since: Option<String>,
    /// only records of this stream: stdout or stderr
    #[argh(option)]
    pub stream: Option<String>,
    /// log root (default /data/logs or TEND_LOG_ROOT)
    #[argh(option)]
    pub log_root: Option<String>,
    /// service name, or a path to a log directory
    #[argh(positional)]
    pub name: String,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check")]
/// Validate a service tree without starting anything.
pub struct CheckArgs {
    /// the service tree (default /etc/tend/services)
    #[argh(positional)]
    pub dir: Option<String>,
}

#[cfg(feature = "import")]
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import")]
/// Convert an s6-rc, s6-overlay v2 or supervisord configuration into a service tree.
pub struct ImportArgs {
    /// s6-rc (an s6-rc.d directory), s6-overlay-v2 (an /etc with services.d) or supervisord (a file)
    #[argh(positional)]
    pub format: String,
    /// the configuration to convert
    #[argh(positional)]
    pub src: String,
    /// the new service tree (must not exist or be empty)
    #[argh(positional)]
    pub out: String,
}

/// A flag's value, else its `TEND_*` variable, else nothing (the caller's default applies).
pub fn flag_or_env(flag: Option<&str>, var: &str) -> Option<String> {
    match flag {
        Some(v) => Some(v.to_owned()),
        None => std::env::var(var).ok().filter(|v| !v.is_empty()),
    }
}

/// A switch, else its `TEND_*` variable read as a boolean.
pub fn switch_or_env(flag: bool, var: &str) -> Result<bool, String> {
    if flag {
        return Ok(true);
    }
    match std::env::var(var).ok().as_deref() {
        None | Some("") | Some("0") | Some("false") | Some("no") => Ok(false),
        Some("1") | Some("true") | Some("yes") => Ok(true),
        Some(v) => Err(format!(
            "{var}: '{v}' is not a boolean (expected 1, true, 0 or false)"
        )),
    }
}

/// The `TEND_*` variable of a long flag name: `rotate-size` → `TEND_ROTATE_SIZE`.
pub fn env_name(flag: &str) -> String {
    format!("TEND_{}", flag.to_ascii_uppercase().replace('-', "_"))
}

/// Builds log options from flags and, for `run`/`init`, their `TEND_*` variables.
pub fn log_options(
    values: &[(&'static str, Option<&str>)],
    tee: bool,
    use_env: bool,
) -> Result<LogOptions, String> {
    debug_assert_eq!(values.len() + 1, LOG_FLAGS.len());
    let mut opts = LogOptions::default();
    for &(flag, v) in values {
        let value = if use_env {
            flag_or_env(v, &env_name(flag))
        } else {
            v.map(str::to_owned)
        };
        if let Some(value) = value {
            opts.set(flag, Some(&value)).map_err(|e| {
                if v.is_none() {
                    format!("{} (from {})", e, env_name(flag))
                } else {
                    e
                }
            })?;
        }
    }
    opts.tee = if use_env {
        switch_or_env(tee, "TEND_TEE")?
    } else {
        tee
    };
    Ok(opts)
}

/// `TEND_KILL_GRACE`: ms between a stop signal and SIGKILL (default 5000).
pub fn kill_grace() -> Result<Duration, String> {
    match std::env::var("TEND_KILL_GRACE") {
        Ok(v) if !v.is_empty() => {
            crate::units::parse_millis(&v).map_err(|e| format!("TEND_KILL_GRACE: {e}"))
        }
        _ => Ok(Duration::from_millis(5000)),
    }
}

/// The log root from a flag, `TEND_LOG_ROOT`, or `/data/logs`.
pub fn log_root(flag: Option<&str>) -> PathBuf {
    path_or_env(flag, "TEND_LOG_ROOT").unwrap_or_else(|| "/data/logs".into())
}

/// A path flag's value, else its `TEND_*` variable read as bytes (paths need not be UTF-8).
pub fn path_or_env(flag: Option<&str>, var: &str) -> Option<PathBuf> {
    match flag {
        Some(v) => Some(PathBuf::from(v)),
        None => std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    }
}

/// `--expect-exit CODE` (repeatable) and `TEND_EXPECT_EXIT` (comma-separated): the exit codes
/// of CMD that count as success. The flags, when given, replace the variable.
pub fn expect_exit(flags: &[String]) -> Result<Vec<i32>, String> {
    let (values, from): (Vec<String>, &str) = if flags.is_empty() {
        let env = flag_or_env(None, "TEND_EXPECT_EXIT").unwrap_or_default();
        let list = env
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        (list.collect(), "TEND_EXPECT_EXIT")
    } else {
        (flags.to_vec(), "--expect-exit")
    };
    values
        .iter()
        .map(|v| match v.parse::<u8>() {
            Ok(n) => Ok(i32::from(n)),
            Err(_) => Err(format!(
                "{from}: '{v}' is not an exit code (expected a number from 0 to 255)"
            )),
        })
        .collect()
}

/// Checks that every `TEND_*` variable that must be text is valid UTF-8, so a bad one is an
/// error naming it instead of being silently ignored. `paths_as_bytes` exempts the path
/// variables, for the jobs that read them as bytes.
fn check_env_text(paths_as_bytes: bool) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    for (k, v) in std::env::vars_os() {
        let key = k.as_bytes();
        if !key.starts_with(b"TEND_") || v.to_str().is_some() {
            continue;
        }
        let name = k.to_string_lossy();
        if paths_as_bytes && PATH_VARS.contains(&name.as_ref()) {
            continue;
        }
        return Err(format!(
            "{name}: '{}' is not valid UTF-8 (expected text)",
            v.to_string_lossy()
        ));
    }
    Ok(())
}

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
    if let Err(e) = check_env_text(takes_cmd) {
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
            crate::supervise::job::run(a)
        }
        Job::Init(mut a) => {
            a.cmd.extend(cmd.iter().cloned());
            crate::supervise::job::init(a)
        }
        Job::Log(a) => crate::log::job(a),
        Job::Check(a) => crate::service::check_job(a),
        Job::Ctl(a) => crate::ctl::ctl_job(a),
        Job::Logs(a) => crate::ctl::logs_job(a),
        #[cfg(feature = "import")]
        Job::Import(a) => crate::import::import_job(a),
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
