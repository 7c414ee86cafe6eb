//! Flag values and their `TEND_*` environment fallbacks.

use crate::log::options::LogOptions;
use std::path::PathBuf;
use std::time::Duration;

/// `TEND_*` variables that hold a path, read as bytes by `run` and `init`; every other `TEND_*`
/// variable must be text.
const PATH_VARS: &[&str] = &[
    "TEND_LOG_ROOT",
    "TEND_SERVICES",
    "TEND_RUN_DIR",
    "TEND_METRICS_FILE",
];

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

/// Where logs go when neither `--log-root` nor `TEND_LOG_ROOT` says.
const DEFAULT_LOG_ROOT: &str = "/data/logs";
/// The service tree when neither a flag nor `TEND_SERVICES` names one.
const DEFAULT_SERVICES: &str = "/etc/tend/services";
/// The control socket's directory when neither `--run-dir` nor `TEND_RUN_DIR` says.
const DEFAULT_RUN_DIR: &str = "/run/tend";
/// The name CMD logs as when neither `--name` nor `TEND_NAME` says.
const DEFAULT_NAME: &str = "main";

/// The log root from a flag, `TEND_LOG_ROOT`, or `/data/logs`.
pub fn log_root(flag: Option<&str>) -> PathBuf {
    path_or_env(flag, "TEND_LOG_ROOT").unwrap_or_else(|| DEFAULT_LOG_ROOT.into())
}

/// The service tree from a flag, `TEND_SERVICES`, or `/etc/tend/services`; true when named
/// by the flag or variable (then it must exist).
pub fn services_dir(flag: Option<&str>) -> (PathBuf, bool) {
    match path_or_env(flag, "TEND_SERVICES") {
        Some(p) => (p, true),
        None => (DEFAULT_SERVICES.into(), false),
    }
}

/// The control socket's directory from a flag, `TEND_RUN_DIR`, or `/run/tend`.
pub fn run_dir(flag: Option<&str>) -> PathBuf {
    path_or_env(flag, "TEND_RUN_DIR").unwrap_or_else(|| DEFAULT_RUN_DIR.into())
}

/// The name CMD logs as from a flag, `TEND_NAME`, or `main`.
pub fn cmd_name(flag: Option<&str>) -> String {
    flag_or_env(flag, "TEND_NAME").unwrap_or_else(|| DEFAULT_NAME.into())
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
pub fn check_env_text(paths_as_bytes: bool) -> Result<(), String> {
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
