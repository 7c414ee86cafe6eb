//! Reading the files of one service directory: each helper reads one kind of file and
//! records a one-line error naming the service, the file and the value when it is wrong.

use nix::sys::signal::Signal;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One service directory being read; every problem found is pushed to `errors`.
pub struct ServiceDir<'a> {
    /// The service's name, the first word of every error.
    pub name: &'a str,
    /// The service directory.
    pub path: &'a Path,
    /// Every error found so far, each a full message.
    pub errors: Vec<String>,
}

impl<'a> ServiceDir<'a> {
    /// Starts reading the service `name` in `path`.
    pub fn new(name: &'a str, path: &'a Path) -> Self {
        ServiceDir {
            name,
            path,
            errors: Vec::new(),
        }
    }

    /// Records `<service>: <file>: <msg>`, kept on one line (see [`one_line`]).
    pub fn err(&mut self, file: &str, msg: impl std::fmt::Display) {
        self.errors
            .push(one_line(&format!("{}: {file}: {msg}", self.name)));
    }

    /// Whether `file` is present (a dangling symlink counts as present, so it is reported).
    pub fn exists(&self, file: &str) -> bool {
        fs::symlink_metadata(self.path.join(file)).is_ok()
    }

    /// The whole text of `file`, or `None` when absent or unreadable (then an error is recorded).
    /// Read with [`read_bounded`]: a FIFO, a device or a huge file is an error, never a hang.
    pub fn text(&mut self, file: &str) -> Option<String> {
        match String::from_utf8(self.bytes(file)?) {
            Ok(s) => Some(s),
            Err(_) => {
                self.err(file, "not UTF-8 text");
                None
            }
        }
    }

    /// [`ServiceDir::text`] for content that need not be text (an `env/` value).
    pub fn bytes(&mut self, file: &str) -> Option<Vec<u8>> {
        if !self.exists(file) {
            return None;
        }
        match read_bounded(&self.path.join(file)) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.err(file, e);
                None
            }
        }
    }

    /// The trimmed content of a single-value file (a trailing newline is normal).
    pub fn value(&mut self, file: &str) -> Option<String> {
        self.text(file).map(|s| s.trim().to_owned())
    }

    /// Parses a single-value file with `parse`; an `Err` becomes `<service>: <file>: <err>`.
    pub fn parsed<T>(
        &mut self,
        file: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let v = self.value(file)?;
        match parse(&v) {
            Ok(t) => Some(t),
            Err(e) => {
                self.err(file, e);
                None
            }
        }
    }

    /// A flag file such as `critical`: present means true; it must be empty.
    pub fn flag(&mut self, file: &str, meaning: &str) -> bool {
        match self.value(file) {
            None => false,
            Some(v) if v.is_empty() => true,
            Some(v) => {
                self.err(
                    file,
                    format!("'{v}' is not expected (an empty file {meaning}; remove the file to turn it off)"),
                );
                true
            }
        }
    }

    /// An executable file's path, or `None` when absent or wrong (then an error is recorded).
    pub fn executable(&mut self, file: &str) -> Option<PathBuf> {
        if !self.exists(file) {
            return None;
        }
        let path = self.path.join(file);
        match fs::metadata(&path) {
            Err(e) => self.err(file, format!("cannot read: {}", describe_io(&e))),
            Ok(m) if m.is_dir() => self.err(file, "is a directory (expected an executable file)"),
            Ok(m) if !m.is_file() => {
                self.err(file, "not a regular file (expected an executable file)")
            }
            Ok(m) if m.permissions().mode() & 0o111 == 0 => {
                self.err(file, "not executable (expected a file with the x bit set)")
            }
            Ok(_) => return Some(path),
        }
        None
    }

    /// The names in a directory such as `env/` or `dependencies.d/`, sorted, hidden ones skipped;
    /// `None` when the directory is absent.
    pub fn names(&mut self, sub: &str) -> Option<Vec<String>> {
        if !self.exists(sub) {
            return None;
        }
        let rd = match fs::read_dir(self.path.join(sub)) {
            Ok(rd) => rd,
            Err(e) => {
                self.err(sub, format!("cannot read: {}", describe_io(&e)));
                return None;
            }
        };
        let mut names = Vec::new();
        for entry in rd {
            match entry {
                Ok(entry) => match entry.file_name().into_string() {
                    Ok(n) if n.starts_with('.') => {}
                    Ok(n) => names.push(n),
                    Err(raw) => {
                        let shown = raw.to_string_lossy().into_owned();
                        self.err(&format!("{sub}/{shown}"), "the name is not UTF-8");
                    }
                },
                Err(e) => self.err(sub, format!("cannot read: {}", describe_io(&e))),
            }
        }
        super::sort_by_str(&mut names, |n| n);
        Some(names)
    }
}

/// The most a service file may hold: every one is a short value or a few lines.
pub const MAX_FILE: usize = 64 * 1024;

/// Reads a whole regular file of at most [`MAX_FILE`] bytes without ever blocking: opened with
/// `O_NONBLOCK` (a FIFO does not wait for a writer), then `fstat` on the open descriptor must
/// say regular file (a FIFO, socket or device such as `/dev/zero` is refused), then at most
/// one byte past the bound is read. A symlink is followed (s6 users link `run` scripts), but
/// the check applies to its target. The error is a short reason to follow `<service>: <file>:`.
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Checked before opening too: opening some devices has effects (a watchdog starts).
    let pre = fs::metadata(path).map_err(|e| format!("cannot read: {}", describe_io(&e)))?;
    not_regular(&pre)?;
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot read: {}", describe_io(&e)))?;
    let m = f
        .metadata()
        .map_err(|e| format!("cannot read: {}", describe_io(&e)))?;
    not_regular(&m)?;
    let mut buf = Vec::new();
    (&mut f)
        .take(MAX_FILE as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read: {}", describe_io(&e)))?;
    if buf.len() > MAX_FILE {
        return Err(format!(
            "larger than {} KiB (a service file holds a short value)",
            MAX_FILE / 1024
        ));
    }
    Ok(buf)
}

/// `Err` naming what the file is when it is not a regular file.
fn not_regular(m: &fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let ft = m.file_type();
    let what = if ft.is_file() {
        return Ok(());
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "a device"
    };
    Err(format!("is {what} (expected a regular file)"))
}

/// Every name tend reads in a service directory (SPEC §5, plus s6-rc's older `dependencies`
/// file and `timeout-finish`).
pub const KNOWN: &[&str] = &[
    "run",
    "finish",
    "type",
    "up",
    "down",
    "dependencies.d",
    "dependencies",
    "notification-fd",
    "notify",
    "check",
    "restart",
    "restart-limit",
    "critical",
    "down-signal",
    "timeout-kill",
    "timeout-up",
    "timeout-finish",
    "user",
    "env",
    "log-options",
    "disabled",
];

/// s6 and s6-rc files that tend has no use for: named as such rather than as typos.
const S6_ONLY: &[&str] = &[
    "log",
    "producer-for",
    "consumer-for",
    "pipeline-name",
    "timeout-down",
    "max-death-tally",
    "lock-fd",
    "nosetsid",
    "flag-essential",
    "contents",
    "contents.d",
    "data",
    "template",
    "instance",
    "instances",
];

/// Names other supervisors use for what a tend file does (compared lowercase, without `-`/`_`).
const ALIASES: &[(&str, &str)] = &[
    ("stopsignal", "down-signal"),
    ("killsignal", "down-signal"),
    ("stopwaitsecs", "timeout-kill"),
    ("killtimeout", "timeout-kill"),
    ("autorestart", "restart"),
    ("command", "run"),
    ("exec", "run"),
    ("start", "up"),
    ("stop", "down"),
    ("environment", "env"),
    ("requires", "dependencies.d"),
    ("after", "dependencies.d"),
    ("readyfd", "notification-fd"),
];

impl ServiceDir<'_> {
    /// Records an error for each entry of the service directory that tend does not read
    /// (hidden names such as `.gitkeep` are skipped), with a "did you mean" when one is close.
    pub fn unknown_files(&mut self) {
        let Ok(rd) = fs::read_dir(self.path) else {
            return; // unreadable: the missing run/up already says so
        };
        let mut unknown: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.') && !KNOWN.contains(&n.as_str()))
            .collect();
        super::sort_by_str(&mut unknown, |n| n);
        for name in unknown {
            let msg = if S6_ONLY.contains(&name.as_str()) {
                "an s6 file tend has no use for (tend logs every service itself; \
                 `tend import s6-rc` converts an s6-rc tree and lists what it drops)"
                    .to_owned()
            } else if let Some(s) = suggest(&name) {
                format!("not a service file (did you mean {s}?)")
            } else {
                format!("not a service file (expected one of {})", KNOWN.join(", "))
            };
            self.err(&name, msg);
        }
    }
}

/// The known file `name` most likely stands for: a name other supervisors use, or a known
/// name within a small edit distance (case and `_` for `-` ignored).
pub fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let bare: String = lower.chars().filter(|c| *c != '-' && *c != '_').collect();
    if let Some((_, to)) = ALIASES.iter().find(|(from, _)| *from == bare) {
        return Some(to);
    }
    let norm = lower.replace('_', "-");
    let limit = (norm.chars().count() / 3).clamp(1, 3);
    KNOWN
        .iter()
        .map(|k| (edit_distance(&norm, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance between `a` and `b`, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// `s` with control characters escaped (`\n`, `\0`, `\u{1b}`): messages quote values read
/// from files and names read from directories, and each must stay one line on stderr.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A short, libc-independent description of an I/O error (glibc and musl word them differently).
pub fn describe_io(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) => "no such file or directory".into(),
        Some(libc::ELOOP) => "symlink loop".into(),
        Some(libc::EACCES) => "permission denied".into(),
        Some(libc::ENOTDIR) => "not a directory".into(),
        _ => e.to_string(),
    }
}

/// Parses a signal: a name with or without `SIG`, in any case (`TERM`, `SIGTERM`, `term`),
/// or a number (`15`).
pub fn parse_signal(s: &str) -> Result<Signal, String> {
    let t = s.trim();
    let bad =
        || format!("'{s}' is not a signal (expected a name such as TERM, HUP, INT or a number)");
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let n: i32 = t.parse().map_err(|_| bad())?;
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = t.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse::<Signal>().map_err(|_| bad())
}

/// Parses `notification-fd`: a descriptor number from 3 to 1023.
pub fn parse_notification_fd(s: &str) -> Result<i32, String> {
    const EXPECTED: &str = "expected a file descriptor number from 3 to 1023";
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{s}' is not a number ({EXPECTED})"));
    }
    match s.parse::<i32>() {
        Ok(n) if (3..=1023).contains(&n) => Ok(n),
        _ => Err(format!("'{s}' is out of range ({EXPECTED})")),
    }
}

/// Parses `restart-limit`: `N` or `N/DURATION` (`5/60s`), N at least 1.
pub fn parse_restart_limit(s: &str) -> Result<super::RestartLimit, String> {
    const EXPECTED: &str = "expected N or N/DURATION, such as 5 or 5/60s";
    let (n, window) = match s.split_once('/') {
        Some((n, w)) => (n, Some(w)),
        None => (s, None),
    };
    let count = match n.trim().parse::<u32>() {
        Ok(c) if c >= 1 => c,
        _ => {
            return Err(format!(
                "'{s}' is not a restart limit ({EXPECTED}, N at least 1)"
            ));
        }
    };
    let within = match window {
        None => None,
        Some(w) => match crate::units::parse_duration(w) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => return Err(format!("'{s}': the window must be above zero ({EXPECTED})")),
            Err(e) => return Err(format!("{e} ({EXPECTED})")),
        },
    };
    Ok(super::RestartLimit { count, within })
}

/// An `env/NAME` file's value as s6-envdir reads it: `None` (unset) for an empty file, else
/// the first line with trailing spaces and tabs removed and NUL bytes turned into newlines.
/// The value is bytes: an environment value need not be UTF-8.
pub fn envdir_value(content: &[u8]) -> Option<OsString> {
    if content.is_empty() {
        return None;
    }
    let line = content.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let end = line
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    let value: Vec<u8> = line[..end]
        .iter()
        .map(|&b| if b == 0 { b'\n' } else { b })
        .collect();
    Some(OsString::from_vec(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_limits() {
        use std::time::Duration;
        let l = parse_restart_limit("5/60s").unwrap();
        assert_eq!((l.count, l.within), (5, Some(Duration::from_secs(60))));
        let l = parse_restart_limit("3").unwrap();
        assert_eq!((l.count, l.within), (3, None));
        for bad in ["0", "", "x", "5/", "5/60", "5/0s", "-1/5s", "5/60s/1"] {
            let e = parse_restart_limit(bad).unwrap_err();
            assert!(e.contains("expected N or N/DURATION"), "{bad}: {e}");
        }
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("TERM"), Ok(Signal::SIGTERM));
        assert_eq!(parse_signal("SIGTERM"), Ok(Signal::SIGTERM));
        assert_eq!(parse_signal("term"), Ok(Signal::SIGTERM));
        assert_eq!(parse_signal("sigHup"), Ok(Signal::SIGHUP));
        assert_eq!(parse_signal(" 15\n"), Ok(Signal::SIGTERM));
        assert_eq!(parse_signal("9"), Ok(Signal::SIGKILL));
        assert_eq!(parse_signal("USR1"), Ok(Signal::SIGUSR1));
        assert_eq!(
            parse_signal("FOO"),
            Err(
                "'FOO' is not a signal (expected a name such as TERM, HUP, INT or a number)".into()
            )
        );
        assert!(parse_signal("").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("999").is_err());
        assert!(parse_signal("99999999999999").is_err());
        assert!(parse_signal("SIG").is_err());
    }

    #[test]
    fn notification_fds() {
        assert_eq!(parse_notification_fd("3"), Ok(3));
        assert_eq!(parse_notification_fd("1023"), Ok(1023));
        assert_eq!(
            parse_notification_fd("x"),
            Err("'x' is not a number (expected a file descriptor number from 3 to 1023)".into())
        );
        assert_eq!(
            parse_notification_fd("2"),
            Err("'2' is out of range (expected a file descriptor number from 3 to 1023)".into())
        );
        assert!(parse_notification_fd("1024").is_err());
        assert!(parse_notification_fd("-4").is_err());
        assert!(parse_notification_fd("99999999999").is_err());
    }

    #[test]
    fn errors_stay_on_one_line() {
        // Found by fuzzing: a file's value with a newline or NUL made a multi-line error.
        let mut sd = ServiceDir::new("a", Path::new("/nonexistent"));
        sd.err("type", "'\0\n=' is not a service type");
        assert_eq!(sd.errors, ["a: type: '\\0\\n=' is not a service type"]);
    }

    #[test]
    fn envdir_values() {
        assert_eq!(envdir_value(b""), None);
        assert_eq!(envdir_value(b"\n"), Some(OsString::new()));
        assert_eq!(envdir_value(b"value\nignored\n"), Some("value".into()));
        assert_eq!(
            envdir_value(b"  lead kept \t \n"),
            Some("  lead kept".into())
        );
        assert_eq!(envdir_value(b"a\0b"), Some("a\nb".into()));
        assert_eq!(envdir_value(b"no newline"), Some("no newline".into()));
        assert_eq!(envdir_value(b" \t\n"), Some(OsString::new()));
        assert_eq!(
            envdir_value(b"a\xffb \n"),
            Some(OsString::from_vec(b"a\xffb".to_vec()))
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("timeout_kill"), Some("timeout-kill"));
        assert_eq!(suggest("Timeout-Kill"), Some("timeout-kill"));
        assert_eq!(suggest("stopsignal"), Some("down-signal"));
        assert_eq!(suggest("stop_signal"), Some("down-signal"));
        assert_eq!(suggest("notifcation-fd"), Some("notification-fd"));
        assert_eq!(suggest("dependency.d"), Some("dependencies.d"));
        assert_eq!(suggest("rum"), Some("run"));
        assert_eq!(suggest("README.md"), None);
        assert_eq!(suggest("x"), None);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn bounded_reads_refuse_what_could_block_or_grow() {
        let dir = std::env::temp_dir().join(format!("tend-files-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        assert_eq!(
            read_bounded(&fifo),
            Err("is a FIFO (expected a regular file)".into())
        );
        assert_eq!(
            read_bounded(Path::new("/dev/zero")),
            Err("is a device (expected a regular file)".into())
        );
        assert_eq!(
            read_bounded(&dir),
            Err("is a directory (expected a regular file)".into())
        );
        let big = dir.join("big");
        fs::write(&big, vec![b'x'; MAX_FILE + 1]).unwrap();
        assert_eq!(
            read_bounded(&big),
            Err("larger than 64 KiB (a service file holds a short value)".into())
        );
        fs::write(&big, vec![b'x'; MAX_FILE]).unwrap();
        assert_eq!(read_bounded(&big).map(|b| b.len()), Ok(MAX_FILE));
        let link = dir.join("link");
        std::os::unix::fs::symlink(&big, &link).unwrap();
        assert_eq!(read_bounded(&link).map(|b| b.len()), Ok(MAX_FILE));
        let _ = fs::remove_dir_all(&dir);
    }
}
