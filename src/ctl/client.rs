//! `tend ctl`: sends one request to a running init and, for state changes, waits until
//! `status` shows the change happened.

use super::addr::Addr;
use super::proto::{
    Exit, Kind, Request, ServiceStatus, Shown, is_ready, not_ready, parse_signal_name,
    parse_status_line, status_json,
};
use crate::sys::io_msg;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often `status` is polled while waiting for a state change.
const POLL_EVERY: Duration = Duration::from_millis(50);
const USAGE: &str = "expected status [--json] [NAME], ready [NAME…], start NAME, stop NAME, restart NAME, kill SIGNAL NAME, shutdown, metrics or rotate NAME|all";

/// Why a `tend ctl` run failed: the message for stderr, and whether it was a usage error
/// (exit 2) or a failure (exit 1).
pub enum Fail {
    /// Bad words or flags.
    Usage(String),
    /// The request failed or the state did not change in time.
    Failed(String),
}

impl Fail {
    fn one(msg: impl Into<String>) -> Fail {
        Fail::Failed(msg.into())
    }
}

/// What `tend ctl` was asked, resolved from its flags.
pub struct CtlOptions {
    /// Directory of the control socket.
    pub run_dir: PathBuf,
    /// Time allowed for each exchange and for a requested state change.
    pub timeout: Duration,
    /// `--json` (status).
    pub json: bool,
    /// The command and its arguments.
    pub words: Vec<String>,
}

/// Sends the request of `opts.words` and, for state changes, waits for the change.
pub fn run(opts: CtlOptions) -> Result<(), Fail> {
    let usage = Fail::Usage;
    let timeout = opts.timeout;
    // argh's greedy positional also collects a `--json` written after the command.
    let mut json = opts.json;
    let words: Vec<&str> = opts
        .words
        .iter()
        .map(String::as_str)
        .filter(|w| {
            let j = *w == "--json";
            json |= j;
            !j
        })
        .collect();
    let run_dir = opts.run_dir;
    let c = Conn {
        addrs: Addr::candidates(&run_dir),
        timeout,
        used: Default::default(),
    };
    match words.as_slice() {
        ["status"] if json => {
            let lines = c.ask(&Request::StatusJson)?;
            println!("{}", lines.join("\n"));
            Ok(())
        }
        ["status"] => {
            print!("{}", table(&c.status()?));
            Ok(())
        }
        // One service; the exit code says whether it is ready or up (for exec probes).
        ["status", name] => {
            let s = c.find(name)?;
            if json {
                println!("{}", status_json(std::slice::from_ref(&s)));
            } else {
                print!("{}", table(std::slice::from_ref(&s)));
            }
            if is_ready(&s) {
                Ok(())
            } else {
                Err(Fail::one(format!("{name} is {}", s.state)))
            }
        }
        ["ready", names @ ..] => {
            let list = c.status()?;
            let bad = not_ready(&list, names).map_err(Fail::one)?;
            if bad.is_empty() {
                println!("ready");
                Ok(())
            } else {
                Err(Fail::one(format!("not ready: {}", bad.join(", "))))
            }
        }
        ["metrics"] => {
            for l in c.ask(&Request::Metrics)? {
                println!("{l}");
            }
            Ok(())
        }
        ["start", name] => {
            c.ask(&Request::Start((*name).into()))?;
            c.wait(name, "come up", |s| {
                is_ready(s) || (s.kind == Kind::Oneshot.as_str() && s.shown() == Some(Shown::Done))
            })
        }
        ["stop", name] => {
            c.ask(&Request::Stop((*name).into()))?;
            c.wait(name, "stop", |s| {
                matches!(s.shown(), Some(Shown::Down | Shown::Done | Shown::Failed))
            })
        }
        ["restart", name] => {
            let before = c.find(name)?.pid;
            c.ask(&Request::Restart((*name).into()))?;
            c.wait(name, "restart", |s| {
                s.pid.is_some() && s.pid != before && is_ready(s)
            })
        }
        ["kill", sig, name] => {
            let sig = parse_signal_name(sig).map_err(usage)?;
            c.ask(&Request::Kill(sig, (*name).into()))?;
            Ok(())
        }
        ["rotate", "all"] => c.ask(&Request::Rotate(None)).map(drop),
        ["rotate", name] => c.ask(&Request::Rotate(Some((*name).into()))).map(drop),
        ["shutdown"] => {
            c.ask(&Request::Shutdown)?;
            let addr = c.used.borrow().clone();
            let end = Instant::now() + timeout;
            // tend removes its socket as it exits; a refused connection means it is gone too.
            while addr.as_ref().is_some_and(|a| a.connect().is_ok()) {
                if Instant::now() >= end {
                    return Err(Fail::one(format!(
                        "tend is still running after {}",
                        secs(timeout)
                    )));
                }
                std::thread::sleep(POLL_EVERY);
            }
            Ok(())
        }
        [] => Err(usage(format!("no command given ({USAGE})"))),
        _ => Err(usage(format!(
            "'{}' is not a command ({USAGE})",
            words.join(" ")
        ))),
    }
}

/// Seconds (`10`, `2.5`) or a duration with a unit (`500ms`, `1m`).
pub fn parse_timeout(t: &str) -> Result<Duration, String> {
    match crate::units::parse_secs(t) {
        Some(d) => d,
        None => crate::units::parse_duration(t),
    }
}

fn secs(d: Duration) -> String {
    crate::units::fmt_secs(d)
}

/// The control-socket addresses to try and the time allowed for each exchange.
struct Conn {
    addrs: Vec<Addr>,
    timeout: Duration,
    /// The address the last exchange used (shutdown watches that one go away).
    used: std::cell::RefCell<Option<Addr>>,
}

impl Conn {
    /// The first address that answers: the socket file, then the abstract name. Err says
    /// why each failed.
    fn connect(&self) -> Result<(UnixStream, &Addr), String> {
        let mut why = Vec::new();
        for a in &self.addrs {
            match a.connect() {
                Ok(s) => {
                    *self.used.borrow_mut() = Some(a.clone());
                    return Ok((s, a));
                }
                Err(e) => why.push(format!("at {a}: {}", io_msg(&e))),
            }
        }
        Err(why.join(", nor "))
    }

    /// Sends one request; the reply lines before the final `ok`.
    fn ask(&self, req: &Request) -> Result<Vec<String>, Fail> {
        let (mut s, addr) = self
            .connect()
            .map_err(|e| Fail::one(format!("cannot reach tend {e}")))?;
        let unreachable =
            |e: io::Error| Fail::one(format!("cannot reach tend at {addr}: {}", io_msg(&e)));
        let t = Some(self.timeout.max(Duration::from_millis(1)));
        s.set_read_timeout(t).map_err(unreachable)?;
        s.set_write_timeout(t).map_err(unreachable)?;
        let mut line = req.to_line();
        line.push('\n');
        // A server that refuses (wrong uid) replies and closes at once, so the write may
        // fail with EPIPE while the refusal waits to be read: read before giving up.
        let wrote = s.write_all(line.as_bytes());
        let mut out = Vec::new();
        if let Err(e) = s.read_to_end(&mut out) {
            // A reset after a complete reply still carries the whole answer.
            if !out.ends_with(b"\n") {
                return Err(Fail::one(format!("no reply from tend at {addr}: {e}")));
            }
        }
        if let Err(e) = wrote
            && out.is_empty()
        {
            return Err(unreachable(e));
        }
        let out = String::from_utf8_lossy(&out);
        let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
        match lines.pop() {
            Some(l) if l == "ok" => Ok(lines),
            Some(l) if l.starts_with("error ") => Err(Fail::one(l["error ".len()..].to_owned())),
            _ => Err(Fail::one(format!(
                "tend at {addr} closed the connection before replying"
            ))),
        }
    }

    fn status(&self) -> Result<Vec<ServiceStatus>, Fail> {
        self.ask(&Request::Status)?
            .iter()
            .map(|l| parse_status_line(l).map_err(Fail::one))
            .collect()
    }

    fn find(&self, name: &str) -> Result<ServiceStatus, Fail> {
        self.status()?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Fail::one(format!("no service named '{name}'")))
    }

    /// Polls `status` until `done(service)` or the timeout; prints the final state.
    fn wait(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&ServiceStatus) -> bool,
    ) -> Result<(), Fail> {
        let end = Instant::now() + self.timeout;
        loop {
            let s = self.find(name)?;
            if done(&s) {
                match s.pid {
                    Some(p) => println!("{name}: {} (pid {p})", s.state),
                    None => println!("{name}: {}", s.state),
                }
                return Ok(());
            }
            if Instant::now() >= end {
                return Err(Fail::one(format!(
                    "{name} did not {what} within {} (state: {})",
                    secs(self.timeout),
                    s.state
                )));
            }
            std::thread::sleep(POLL_EVERY);
        }
    }
}

/// The `status` table: NAME STATE PID UPTIME RESTARTS LAST-EXIT LOG DROPPED.
fn table(list: &[ServiceStatus]) -> String {
    let size = crate::units::fmt_size;
    let mut rows: Vec<[String; 8]> = vec![
        [
            "NAME",
            "STATE",
            "PID",
            "UPTIME",
            "RESTARTS",
            "LAST-EXIT",
            "LOG",
            "DROPPED",
        ]
        .map(str::to_owned),
    ];
    for s in list {
        rows.push([
            s.name.clone(),
            s.state.clone(),
            s.pid.map_or("-".into(), |p| p.to_string()),
            s.since.map_or("-".into(), uptime),
            s.runs.restarts.to_string(),
            match s.runs.last_exit {
                None => "-".into(),
                Some(Exit::Code(c)) => c.to_string(),
                Some(Exit::Signal(n)) => nix::sys::signal::Signal::try_from(n)
                    .map_or_else(|_| format!("signal {n}"), |s| s.as_str().to_owned()),
            },
            size(s.log_bytes),
            size(s.dropped_bytes),
        ]);
    }
    let mut widths = [0usize; 8];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(c);
            line.extend(std::iter::repeat_n(' ', w - c.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `3d4h`, `2h5m`, `5m3s`, `12s`: the two largest units, like `docker ps`.
fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    let (dd, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if dd > 0 {
        format!("{dd}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_uptime() {
        let t = table(&crate::ctl::proto::tests::sample());
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("NAME"), "{t}");
        assert!(
            lines[1].contains("SIGKILL") && lines[1].contains("1.2 MiB"),
            "{t}"
        );
        assert!(lines[1].contains("1h2m"), "{t}");
        assert!(lines[2].contains("17 B"), "{t}");
        assert_eq!(uptime(Duration::from_secs(90_061)), "1d1h");
        assert_eq!(uptime(Duration::from_secs(59)), "59s");
        assert_eq!(parse_timeout("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_timeout("soon").is_err());
    }
}
