//! Prometheus text exposition of service status, for `tend ctl metrics` and `--metrics-file`.

use super::proto::{Exit, ServiceStatus, Shown};
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::Path;

/// The metric families, in the order of [`samples`]: name and help. A name ending in
/// `_total` is a counter, any other a gauge (the Prometheus naming rule).
const FAMILIES: [(&str, &str); 6] = [
    (
        "tend_service_up",
        "1 if the service's process is running (starting, ready, up or stopping), else 0.",
    ),
    (
        "tend_service_restarts_total",
        "Restarts of the service since tend started.",
    ),
    (
        "tend_log_bytes_total",
        "Bytes written to the service's log directory.",
    ),
    (
        "tend_log_dropped_bytes_total",
        "Bytes dropped because the log could not keep up (--on-full drop).",
    ),
    (
        "tend_log_rotations_total",
        "Rotations of the service's current log file.",
    ),
    (
        "tend_service_last_exit_code",
        "Exit code of the service's last run; 128+N if killed by signal N.",
    ),
];

/// A service's sample of each of [`FAMILIES`], in its order (None: no sample).
fn samples(s: &ServiceStatus) -> [Option<i64>; 6] {
    let running = matches!(
        s.shown(),
        Some(Shown::Starting | Shown::Ready | Shown::Up | Shown::Stopping)
    );
    [
        Some(running as i64),
        Some(s.runs.restarts as i64),
        Some(s.log_bytes as i64),
        Some(s.dropped_bytes as i64),
        Some(s.rotations as i64),
        // In i64: a status line may carry any i32 signal number.
        s.runs.last_exit.map(|e| match e {
            Exit::Code(c) => i64::from(c),
            Exit::Signal(n) => 128 + i64::from(n),
        }),
    ]
}

/// Renders every service as Prometheus text format (version 0.0.4).
pub fn render_metrics(status: &[ServiceStatus]) -> String {
    let mut out = String::with_capacity(512 + 400 * status.len());
    let samples: Vec<_> = status.iter().map(samples).collect();
    for (i, (name, help)) in FAMILIES.iter().enumerate() {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (s, sample) in status.iter().zip(&samples) {
            if let Some(v) = sample[i] {
                let _ = writeln!(out, "{name}{{service=\"{}\"}} {v}", label(&s.name));
            }
        }
    }
    out
}

/// Escapes a label value: backslash, double quote and newline, as the format requires.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Replaces `path` with `text` atomically: a temp file in the same directory, fsync,
/// rename, so a scraper (node_exporter's textfile collector) never reads half a file.
///
/// tend runs as root and the directory may not be its own: the temp file is created with
/// `O_EXCL|O_NOFOLLOW` under an unpredictable name, relative to the directory's fd (a
/// planted symlink or file is never written through), mode 0644; a directory writable by
/// others without the sticky bit is refused (anyone could swap the file under us).
pub fn write_metrics_file(path: &Path, text: &str) -> io::Result<()> {
    use nix::fcntl::{OFlag, open, openat, renameat};
    use nix::sys::stat::{Mode, fchmod, fstat};
    let dir_path = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "metrics path has no file name")
    })?;
    let dir = open(
        dir_path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let st = fstat(&dir)?;
    if st.st_mode & 0o002 != 0 && st.st_mode & 0o1000 == 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{}: writable by others without the sticky bit (refusing to write there)",
                dir_path.display()
            ),
        ));
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(file_name);
    tmp.push(format!(".tmp.{}.{nanos:09}", std::process::id()));
    let tmp = Path::new(&tmp);
    let fd = openat(
        &dir,
        tmp,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )?;
    let result = (|| {
        // The umask may have taken bits away; scrapers run as other users.
        fchmod(&fd, Mode::from_bits_truncate(0o644))?;
        let mut f = std::fs::File::from(fd);
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        renameat(&dir, tmp, &dir, file_name)?;
        // Make the rename itself durable; a failure here leaves a complete file either way.
        let _ = nix::unistd::fsync(&dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = nix::unistd::unlinkat(&dir, tmp, nix::unistd::UnlinkatFlags::NoRemoveDir);
    }
    result
}

/// Writes `--metrics-file` on its own thread, so a slow or full disk never stalls PID 1.
pub struct MetricsWriter {
    tx: std::sync::mpsc::SyncSender<String>,
}

impl MetricsWriter {
    /// Starts the writer thread for `path`.
    pub fn start(path: std::path::PathBuf) -> io::Result<MetricsWriter> {
        // One slot: if the disk is slower than 10 s per write, newer text replaces nothing
        // and is dropped; the next tick tries again.
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(1);
        std::thread::Builder::new()
            .name("tend-metrics".into())
            .spawn(move || {
                let mut warned = false;
                for text in rx {
                    match write_metrics_file(&path, &text) {
                        Ok(()) => warned = false,
                        Err(e) if !warned => {
                            eprintln!("tend: cannot write {}: {e}", path.display());
                            warned = true;
                        }
                        Err(_) => {}
                    }
                }
            })?;
        Ok(MetricsWriter { tx })
    }

    /// Hands a fresh rendering to the writer; dropped if the previous one is still pending.
    pub fn offer(&self, text: String) {
        let _ = self.tx.try_send(text);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A small parser of the text format: (metric, service label) → value; checks that
    /// every sample has a preceding TYPE line and the labels are well-formed.
    pub fn parse_prometheus(text: &str) -> HashMap<(String, String), f64> {
        let mut typed = std::collections::HashSet::new();
        let mut out = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut w = rest.split(' ');
                let name = w.next().unwrap();
                assert!(matches!(w.next(), Some("gauge" | "counter")), "{line}");
                typed.insert(name.to_owned());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            assert!(
                !line.starts_with('#') && !line.is_empty(),
                "stray line {line:?}"
            );
            let (name, rest) = line.split_once('{').expect("labels");
            assert!(typed.contains(name), "no TYPE for {name}");
            let rest = rest.strip_prefix("service=\"").expect("service label");
            let mut val = String::new();
            let mut chars = rest.chars();
            loop {
                match chars.next().expect("unterminated label") {
                    '\\' => match chars.next().unwrap() {
                        'n' => val.push('\n'),
                        c => val.push(c),
                    },
                    '"' => break,
                    c => val.push(c),
                }
            }
            let tail: String = chars.collect();
            let num = tail.strip_prefix("} ").expect("value");
            out.insert((name.to_owned(), val), num.parse().unwrap());
        }
        out
    }

    #[test]
    fn render_and_parse() {
        let text = render_metrics(&crate::ctl::proto::tests::sample());
        let m = parse_prometheus(&text);
        let g = |n: &str, s: &str| m.get(&(n.to_owned(), s.to_owned())).copied();
        assert_eq!(g("tend_service_up", "web"), Some(1.0));
        assert_eq!(g("tend_service_up", "migrate\"db"), Some(0.0));
        assert_eq!(g("tend_service_restarts_total", "web"), Some(2.0));
        assert_eq!(g("tend_log_bytes_total", "web"), Some(1_234_567.0));
        assert_eq!(g("tend_log_dropped_bytes_total", "migrate\"db"), Some(17.0));
        assert_eq!(g("tend_log_rotations_total", "web"), Some(3.0));
        assert_eq!(g("tend_service_last_exit_code", "web"), Some(137.0));
        assert_eq!(g("tend_service_last_exit_code", "migrate\"db"), Some(0.0));
    }

    #[test]
    fn atomic_file() {
        let dir = std::env::temp_dir().join(format!("tend-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("tend.prom");
        write_metrics_file(&p, "a 1\n").unwrap();
        write_metrics_file(&p, "a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a 2\n");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temp file left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temp_file_is_never_written_through_a_link_and_unsafe_dirs_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("tend-metrics-sec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        // The old predictable name, planted as a symlink to a file root must not overwrite.
        let planted = dir.join(format!(".tend.prom.tmp.{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let p = dir.join("tend.prom");
        write_metrics_file(&p, "a 1\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a 1\n");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        // World-writable without sticky: refused; with sticky (like /tmp): fine.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = write_metrics_file(&p, "a 2\n").unwrap_err();
        assert!(e.to_string().contains("without the sticky bit"), "{e}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        write_metrics_file(&p, "a 3\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a 3\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
