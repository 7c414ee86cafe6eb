//! The control protocol spoken on `<run_dir>/control.sock` (or the abstract socket
//! `@tend/control` when the run directory is not writable; see [`super::addr`]).
//!
//! A unix stream socket, mode 0600; the server also checks the peer with `SO_PEERCRED` and
//! serves only root and tend's own uid (anyone else gets `error permission denied`).
//!
//! One request per connection: the client writes one line (UTF-8, at most 4096 bytes,
//! ending in `\n`; a missing final `\n` is accepted when the client half-closes). The server
//! answers with zero or more lines and a final line that is either `ok` or
//! `error <message>`, then closes the connection. A request must arrive within 2 s; at
//! most 32 connections are held, and a new one beyond that closes the oldest.
//!
//! | request | reply lines before `ok` |
//! |---|---|
//! | `status` | one line per service: `name=N state=S pid=P uptime_ms=U restarts=R last_exit=E log_bytes=B dropped_bytes=D rotations=O kind=K wanted=W` (`W` is `1` or `0`; `pid`, `uptime_ms`, `last_exit` are `-` when unknown; `last_exit` is `code:N` or `signal:N`) |
//! | `status json` | one line: `{"services":[{"name":…,"state":…,"kind":…,"pid":…,"uptime_seconds":…,"restarts":…,"last_exit":{"code":N}\|{"signal":N}\|null,"log_bytes":…,"dropped_bytes":…,"rotations":…}]}` |
//! | `start NAME`, `stop NAME`, `restart NAME` | none; the change is requested, not awaited (`tend ctl` polls `status`) |
//! | `kill SIGNAL NAME` | none; SIGNAL is `TERM`, `SIGTERM` or `15` |
//! | `shutdown` | none; tend starts its shutdown sequence |
//! | `rotate NAME`, `rotate all` | none; the log thread rotates that service's (every) non-empty `current` |
//! | `metrics` | Prometheus text exposition (the same text as `--metrics-file`) |
//!
//! States: `starting`, `ready`, `up`, `down`, `failed`, `backoff`, `stopping`, `done`.
//! Kinds: `longrun`, `oneshot`, `cmd`. Words are separated by single spaces; a request
//! that is not one of the above, not UTF-8, or too long gets `error …` and is closed.
//! By hand: `echo status | socat - UNIX-CONNECT:/run/tend/control.sock`.

use nix::sys::signal::Signal;
use std::fmt::Write;
use std::time::Duration;

/// Longest request line, newline excluded.
pub const MAX_REQUEST: usize = 4096;

/// How a service's last run ended: the reaper's own type.
pub use crate::init::Exit;

/// A service's state as `status` shows it: the one spelling of each, for the supervisor
/// that reports it and the clients (`tend ctl`, metrics, probes) that read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// Not running and not scheduled.
    Down,
    /// Running, not ready yet.
    Starting,
    /// Running (no readiness method), or a oneshot whose `up` succeeded.
    Up,
    /// Running and ready.
    Ready,
    /// Being stopped.
    Stopping,
    /// `finish` runs.
    Finishing,
    /// Waiting to restart.
    Backoff,
    /// Stopped for good after a failure.
    Failed,
    /// Stopped for good after success.
    Done,
}

impl Shown {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Shown::Down => "down",
            Shown::Starting => "starting",
            Shown::Up => "up",
            Shown::Ready => "ready",
            Shown::Stopping => "stopping",
            Shown::Finishing => "finishing",
            Shown::Backoff => "backoff",
            Shown::Failed => "failed",
            Shown::Done => "done",
        }
    }

    /// The state a word names; None for a word this tend does not know.
    pub fn parse(word: &str) -> Option<Shown> {
        [
            Shown::Down,
            Shown::Starting,
            Shown::Up,
            Shown::Ready,
            Shown::Stopping,
            Shown::Finishing,
            Shown::Backoff,
            Shown::Failed,
            Shown::Done,
        ]
        .into_iter()
        .find(|s| s.as_str() == word)
    }
}

/// What a service is, as `status` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A supervised, restarted process.
    Longrun,
    /// `up` once, `down` at shutdown.
    Oneshot,
    /// The CMD of `tend init -- CMD` / `tend run`.
    Cmd,
}

impl Kind {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Longrun => "longrun",
            Kind::Oneshot => "oneshot",
            Kind::Cmd => "cmd",
        }
    }
}

/// One service as `status` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceStatus {
    /// Service name (the directory name; `main` for CMD).
    pub name: String,
    /// A [`Shown`] word (kept as text: a newer tend may show a state this one does not know).
    pub state: String,
    /// Pid of the running process, if any.
    pub pid: Option<i32>,
    /// Time since the current process started (uptime), if running.
    pub since: Option<Duration>,
    /// Restarts so far, and how the last run ended.
    pub runs: Runs,
    /// Bytes written to the service's log.
    pub log_bytes: u64,
    /// Bytes dropped by `--on-full drop`.
    pub dropped_bytes: u64,
    /// Rotations of the service's log.
    pub rotations: u64,
    /// A [`Kind`] word.
    pub kind: String,
    /// Whether it should be running: false for a `disabled` service until `tend ctl start`,
    /// and after `tend ctl stop`. Readiness (`tend ctl ready`, `/readyz`) counts only these.
    pub wanted: bool,
}

/// What a service's runs add up to so far: the state machine keeps it, `status` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Runs {
    /// Restarts so far.
    pub restarts: u64,
    /// How the last run ended, if it ended.
    pub last_exit: Option<Exit>,
}

/// What the server asks of the supervisor; implemented by the PID-1 loop.
pub trait Control {
    /// Every service, in a stable order.
    fn status(&self) -> Vec<ServiceStatus>;
    /// Starts a stopped (or disabled) service.
    fn start(&mut self, name: &str) -> Result<(), String>;
    /// Stops a service for good (until `start`).
    fn stop(&mut self, name: &str) -> Result<(), String>;
    /// Stops then starts a service.
    fn restart(&mut self, name: &str) -> Result<(), String>;
    /// Sends a signal to a service's process group.
    fn kill(&mut self, signal: Signal, name: &str) -> Result<(), String>;
    /// Starts the shutdown sequence.
    fn shutdown(&mut self);
    /// Rotates the log of service `name`, or every log when `None`.
    fn rotate(&mut self, name: Option<&str>) -> Result<(), String> {
        let _ = name;
        Err("rotation is not supported here".into())
    }
}

/// A parsed request line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `status`.
    Status,
    /// `status json`.
    StatusJson,
    /// `start NAME`.
    Start(String),
    /// `stop NAME`.
    Stop(String),
    /// `restart NAME`.
    Restart(String),
    /// `kill SIGNAL NAME`.
    Kill(Signal, String),
    /// `shutdown`.
    Shutdown,
    /// `metrics`.
    Metrics,
    /// `rotate NAME` (`None`: `rotate all`).
    Rotate(Option<String>),
}

impl Request {
    /// Parses one request line (without its newline).
    pub fn parse(line: &str) -> Result<Request, String> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let words: Vec<&str> = line.split_whitespace().collect();
        let r = match words.as_slice() {
            ["status"] => Request::Status,
            ["status", "json"] => Request::StatusJson,
            ["start", n] => Request::Start(name(n)?),
            ["stop", n] => Request::Stop(name(n)?),
            ["restart", n] => Request::Restart(name(n)?),
            ["kill", s, n] => Request::Kill(parse_signal_name(s)?, name(n)?),
            ["shutdown"] => Request::Shutdown,
            ["metrics"] => Request::Metrics,
            ["rotate", "all"] => Request::Rotate(None),
            ["rotate", n] => Request::Rotate(Some(name(n)?)),
            [] => return Err("empty request".into()),
            [w, ..] => {
                return Err(format!(
                    "unknown request '{}' (expected status, status json, start NAME, stop NAME, restart NAME, kill SIGNAL NAME, shutdown, metrics or rotate NAME|all)",
                    printable(w)
                ));
            }
        };
        Ok(r)
    }

    /// The request line as sent (without newline).
    pub fn to_line(&self) -> String {
        match self {
            Request::Status => "status".into(),
            Request::StatusJson => "status json".into(),
            Request::Start(n) => format!("start {n}"),
            Request::Stop(n) => format!("stop {n}"),
            Request::Restart(n) => format!("restart {n}"),
            Request::Kill(s, n) => format!("kill {} {n}", s.as_str()),
            Request::Shutdown => "shutdown".into(),
            Request::Metrics => "metrics".into(),
            Request::Rotate(None) => "rotate all".into(),
            Request::Rotate(Some(n)) => format!("rotate {n}"),
        }
    }
}

/// A service name from a request: by the one rule, since no other name can exist.
fn name(n: &str) -> Result<String, String> {
    if !crate::name::is_valid(n) {
        return Err(format!("'{}' is not a service name", printable(n)));
    }
    Ok(n.to_owned())
}

/// A word for an error message: control characters replaced, length bounded.
fn printable(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Parses `TERM`, `SIGTERM`, `term` or `15` with the service tree's parser; the value is
/// made printable first, since it comes off a socket.
pub fn parse_signal_name(s: &str) -> Result<Signal, String> {
    crate::service::parse_signal(s).map_err(|_| {
        format!(
            "'{}' is not a signal (expected e.g. TERM, SIGHUP or 9)",
            printable(s)
        )
    })
}

/// One `status` reply line.
pub fn status_line(s: &ServiceStatus) -> String {
    let mut o = String::with_capacity(160);
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let _ = write!(
        o,
        "name={} state={} pid={} uptime_ms={} restarts={} last_exit={} log_bytes={} dropped_bytes={} rotations={} kind={} wanted={}",
        word(&s.name),
        word(&s.state),
        dash(s.pid.map(|p| p.to_string())),
        dash(s.since.map(|d| d.as_millis().to_string())),
        s.runs.restarts,
        dash(s.runs.last_exit.map(|e| match e {
            Exit::Code(c) => format!("code:{c}"),
            Exit::Signal(n) => format!("signal:{n}"),
        })),
        s.log_bytes,
        s.dropped_bytes,
        s.rotations,
        word(&s.kind),
        u8::from(s.wanted),
    );
    o
}

/// A value that must stay one space-free word: whitespace, `=` and controls become `_`.
/// Service names are validated at start-up, so this only guards the line format.
pub(crate) fn word(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() || c == '=' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Parses a `status` reply line back (the client side).
pub fn parse_status_line(line: &str) -> Result<ServiceStatus, String> {
    let bad = || format!("bad status line from tend: '{}'", printable(line));
    let mut s = ServiceStatus {
        name: String::new(),
        state: String::new(),
        pid: None,
        since: None,
        runs: Runs::default(),
        log_bytes: 0,
        dropped_bytes: 0,
        rotations: 0,
        kind: String::new(),
        // An older server does not say: then every service counts.
        wanted: true,
    };
    for kv in line.split(' ') {
        let (k, v) = kv.split_once('=').ok_or_else(bad)?;
        let opt = |v: &str| (v != "-").then(|| v.to_owned());
        match k {
            "name" => s.name = v.into(),
            "state" => s.state = v.into(),
            "pid" => s.pid = opt(v).map(|p| p.parse()).transpose().map_err(|_| bad())?,
            "uptime_ms" => {
                s.since = opt(v)
                    .map(|p| p.parse().map(Duration::from_millis))
                    .transpose()
                    .map_err(|_| bad())?
            }
            "restarts" => s.runs.restarts = v.parse().map_err(|_| bad())?,
            "last_exit" => {
                s.runs.last_exit = match v.split_once(':') {
                    None if v == "-" => None,
                    Some(("code", n)) => Some(Exit::Code(n.parse().map_err(|_| bad())?)),
                    Some(("signal", n)) => Some(Exit::Signal(n.parse().map_err(|_| bad())?)),
                    _ => return Err(bad()),
                }
            }
            "log_bytes" => s.log_bytes = v.parse().map_err(|_| bad())?,
            "dropped_bytes" => s.dropped_bytes = v.parse().map_err(|_| bad())?,
            "rotations" => s.rotations = v.parse().map_err(|_| bad())?,
            "kind" => s.kind = v.into(),
            "wanted" => {
                s.wanted = match v {
                    "1" => true,
                    "0" => false,
                    _ => return Err(bad()),
                }
            }
            // Unknown keys are skipped so a newer server can add fields.
            _ => {}
        }
    }
    if s.name.is_empty() || s.state.is_empty() {
        return Err(bad());
    }
    Ok(s)
}

/// Whether a service counts as ready for `tend ctl ready` and `/readyz`.
pub fn is_ready(s: &ServiceStatus) -> bool {
    matches!(s.shown(), Some(Shown::Ready | Shown::Up))
}

impl ServiceStatus {
    /// The state, if this tend knows its word.
    pub fn shown(&self) -> Option<Shown> {
        Shown::parse(&self.state)
    }
}

/// The services among `names` (every wanted one when empty) that are not ready, each as
/// `NAME (STATE)`; Err names a service that does not exist.
pub fn not_ready(list: &[ServiceStatus], names: &[&str]) -> Result<Vec<String>, String> {
    let show = |s: &ServiceStatus| format!("{} ({})", word(&s.name), word(&s.state));
    if names.is_empty() {
        return Ok(list
            .iter()
            .filter(|s| s.wanted && !is_ready(s))
            .map(show)
            .collect());
    }
    let mut out = Vec::new();
    for n in names {
        let s = list
            .iter()
            .find(|s| s.name == *n)
            .ok_or_else(|| format!("no service named '{}'", printable(n)))?;
        if !is_ready(s) {
            out.push(show(s));
        }
    }
    Ok(out)
}

/// The `status json` document (one line).
pub fn status_json(list: &[ServiceStatus]) -> String {
    use super::json::Object;
    let mut out = String::with_capacity(64 + 256 * list.len());
    out.push_str("{\"services\":[");
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let last_exit = match s.runs.last_exit {
            None => "null".to_owned(),
            Some(Exit::Code(c)) => format!("{{\"code\":{c}}}"),
            Some(Exit::Signal(n)) => format!("{{\"signal\":{n}}}"),
        };
        let mut o = Object::new(&mut out);
        o.str("name", &s.name)
            .str("state", &s.state)
            .str("kind", &s.kind)
            .opt_i64("pid", s.pid.map(i64::from))
            .opt_secs("uptime_seconds", s.since)
            .u64("restarts", s.runs.restarts)
            .raw("last_exit", &last_exit)
            .u64("log_bytes", s.log_bytes)
            .u64("dropped_bytes", s.dropped_bytes)
            .u64("rotations", s.rotations)
            .raw("wanted", if s.wanted { "true" } else { "false" });
        o.end();
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> Vec<ServiceStatus> {
        vec![
            ServiceStatus {
                name: "web".into(),
                state: "up".into(),
                pid: Some(42),
                since: Some(Duration::from_millis(3_723_456)),
                runs: Runs {
                    restarts: 2,
                    last_exit: Some(Exit::Signal(9)),
                },
                log_bytes: 1_234_567,
                dropped_bytes: 0,
                rotations: 3,
                kind: "longrun".into(),
                wanted: true,
            },
            ServiceStatus {
                name: "migrate\"db".into(),
                state: "done".into(),
                pid: None,
                since: None,
                runs: Runs {
                    restarts: 0,
                    last_exit: Some(Exit::Code(0)),
                },
                log_bytes: 0,
                dropped_bytes: 17,
                rotations: 0,
                kind: "oneshot".into(),
                wanted: false,
            },
        ]
    }

    #[test]
    fn requests() {
        assert_eq!(Request::parse("status"), Ok(Request::Status));
        assert_eq!(Request::parse("status json\r"), Ok(Request::StatusJson));
        assert_eq!(
            Request::parse("kill hup web"),
            Ok(Request::Kill(Signal::SIGHUP, "web".into()))
        );
        assert_eq!(
            Request::parse("kill 9 web"),
            Ok(Request::Kill(Signal::SIGKILL, "web".into()))
        );
        assert!(Request::parse("kill SIGNOPE web").is_err());
        assert!(Request::parse("start").is_err());
        assert!(Request::parse("").is_err());
        assert!(
            Request::parse("frobnicate x")
                .unwrap_err()
                .contains("frobnicate")
        );
        for r in [
            Request::Restart("a".into()),
            Request::Kill(Signal::SIGTERM, "b".into()),
            Request::Metrics,
        ] {
            assert_eq!(Request::parse(&r.to_line()), Ok(r));
        }
    }

    #[test]
    fn readiness_counts_wanted_services_unless_named() {
        let mut list = sample();
        // web is up; migrate"db is done (not ready) but not wanted.
        assert_eq!(not_ready(&list, &[]), Ok(vec![]));
        assert_eq!(
            not_ready(&list, &["web", "migrate\"db"]),
            Ok(vec!["migrate\"db (done)".to_owned()])
        );
        assert!(not_ready(&list, &["nope"]).unwrap_err().contains("'nope'"));
        list[0].state = "starting".into();
        assert_eq!(not_ready(&list, &[]), Ok(vec!["web (starting)".to_owned()]));
        list[0].state = "ready".into();
        assert_eq!(not_ready(&list, &["web"]), Ok(vec![]));
    }

    #[test]
    fn status_lines_round_trip() {
        for s in sample() {
            let mut want = s.clone();
            want.name = want.name.replace(' ', "_");
            assert_eq!(parse_status_line(&status_line(&s)), Ok(want));
        }
    }

    #[test]
    fn status_json_parses() {
        let v: serde_json::Value = serde_json::from_str(&status_json(&sample())).unwrap();
        let a = &v["services"];
        assert_eq!(a[0]["pid"], 42);
        assert_eq!(a[0]["uptime_seconds"], 3723.456);
        assert_eq!(a[0]["last_exit"]["signal"], 9);
        assert_eq!(a[1]["name"], "migrate\"db");
        assert!(a[1]["pid"].is_null());
        assert_eq!(a[1]["last_exit"]["code"], 0);
        assert_eq!(a[1]["dropped_bytes"], 17);
    }
}
