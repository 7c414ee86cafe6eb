//! Shared helpers of the integration tests: the real binary, PID namespaces, polling.
#![allow(dead_code)]

mod tend_log;
#[allow(unused_imports)] // the `tend log` helpers; most tests use only a few
pub use tend_log::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The tend binary under test.
pub fn tend() -> &'static str {
    env!("CARGO_BIN_EXE_tend")
}

/// A fresh, empty temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("tend-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, s: &str) -> PathBuf {
        self.0.join(s)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `unshare --pid --fork --mount-proc tend ARGS…`: tend runs as PID 1 of a new namespace.
pub fn pid1(args: &[&str]) -> Command {
    let mut c = Command::new("unshare");
    // --kill-child: if unshare is killed (a time-out), tend gets SIGKILL too, and with its
    // PID 1 the whole namespace goes.
    c.args(["--pid", "--fork", "--mount-proc", "--kill-child", tend()])
        .args(args);
    c.stdin(Stdio::null());
    c
}

/// tend (not PID 1) with ARGS.
pub fn plain(args: &[&str]) -> Command {
    let mut c = Command::new(tend());
    c.args(args).stdin(Stdio::null());
    c
}

/// Runs a command to completion with a hard time limit; past it, kills the command and
/// everything under it (a tend that is PID 1 of a namespace would otherwise outlive
/// `unshare` holding the pipes) and fails the test.
pub fn output_within(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let what = format!("{cmd:?}");
    let child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let killer = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(50));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return false;
            }
        }
        kill_tree(pid);
        true
    });
    let out = child.wait_with_output().expect("wait");
    let timed_out = killer.join().unwrap_or(false);
    assert!(
        !timed_out,
        "timed out after {limit:?}, killed: {what}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A command run to its end: exit code (128+N for a signal), stderr, and how long it took.
pub struct Ran {
    pub code: i32,
    pub err: String,
    pub took: Duration,
}

impl Ran {
    /// Runs `cmd` to its end within `limit` (see [`output_within`]), timing it.
    pub fn new(cmd: Command, limit: Duration) -> Ran {
        let start = Instant::now();
        let out = output_within(cmd, limit);
        Ran {
            code: code(out.status),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: start.elapsed(),
        }
    }

    /// Asserts the exit code and that stderr holds every one of `lines`.
    pub fn expect(&self, want: i32, lines: &[&str]) -> &Ran {
        assert_eq!(self.code, want, "{}", self.err);
        for l in lines {
            assert!(self.err.contains(l), "no {l:?} in {}", self.err);
        }
        self
    }
}

/// Sends `sig` to tend (`pid`, PID 1 under `child`) and waits for it to exit; returns its
/// exit code and how long that took.
pub fn stop_timed(child: &mut Child, pid: i32, sig: &str) -> (i32, Duration) {
    let start = Instant::now();
    signal(pid, sig);
    let status = child.wait().expect("wait");
    (code(status), start.elapsed())
}

/// Asserts that a finished command exited 0, showing its stderr otherwise.
pub fn assert_ok(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// SIGKILLs `pid` and all its descendants, looked up before any is killed (an orphan is
/// reparented out of reach). Killing a namespace's PID 1 takes the rest of it along.
pub fn kill_tree(pid: u32) {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let tasks = format!("/proc/{}/task", all[i]);
        for task in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            all.extend(
                children
                    .split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
        i += 1;
    }
    let pids: Vec<String> = all.iter().map(u32::to_string).collect();
    let _ = Command::new("kill").arg("-9").args(&pids).status();
}

/// Polls `f` every 20 ms until it is true or `limit` passes; returns whether it became true.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pid of the tend running as PID 1 under `unshare` (its only child), as seen from here.
pub fn tend_pid_under(unshare: &Child) -> i32 {
    let path = format!("/proc/{0}/task/{0}/children", unshare.id());
    let mut pid = 0;
    assert!(
        wait_for(Duration::from_secs(5), || {
            pid = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
                .unwrap_or(0);
            pid > 0
        }),
        "tend did not start under unshare"
    );
    pid
}

/// Spawns a [`pid1`] command, stdout discarded and stderr to `stderr`; returns it and the
/// pid of tend under it.
pub fn spawn_pid1(mut cmd: Command, stderr: Stdio) -> (Child, i32) {
    cmd.stdout(Stdio::null()).stderr(stderr);
    let child = cmd.spawn().expect("spawn tend as PID 1");
    let pid = tend_pid_under(&child);
    (child, pid)
}

/// SIGTERMs tend (`pid`) and reaps `child`, ignoring failures: the Drop of a test's running
/// tend, so a failing test does not leave it behind.
pub fn term_and_reap(child: &mut Child, pid: i32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
}

/// Sends a signal by name with kill(1).
pub fn signal(pid: i32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

/// Exit code of a finished child (128+N for a signal, like the shell).
pub fn code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Reads a file, or an empty string.
pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Writes one file of a service directory; `exec` sets mode 0755.
pub fn put(dir: &Path, rel: &str, body: &str, exec: bool) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, body).unwrap();
    let mode = if exec { 0o755 } else { 0o644 };
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A service tree under construction in a temp dir, with a log root and a scratch dir.
pub struct Tree {
    pub tmp: TempDir,
}

impl Tree {
    pub fn new(tag: &str) -> Tree {
        let tmp = TempDir::new(tag);
        std::fs::create_dir_all(tmp.join("services")).unwrap();
        std::fs::create_dir_all(tmp.join("logs")).unwrap();
        std::fs::create_dir_all(tmp.join("out")).unwrap();
        Tree { tmp }
    }
    /// Adds an executable `run` (a `#!/bin/sh` script) for service `name`.
    pub fn longrun(&self, name: &str, script: &str) -> &Tree {
        self.file(name, "run", &format!("#!/bin/sh\n{script}\n"), true)
    }
    /// Adds any file to service `name`.
    pub fn file(&self, name: &str, rel: &str, body: &str, exec: bool) -> &Tree {
        put(&self.tmp.join("services").join(name), rel, body, exec);
        self
    }
    /// Declares that `name` depends on `dep`.
    pub fn dep(&self, name: &str, dep: &str) -> &Tree {
        self.file(name, &format!("dependencies.d/{dep}"), "", false)
    }
    /// The scratch dir services write their observations to.
    pub fn out(&self) -> PathBuf {
        self.tmp.join("out")
    }
    /// The log directory of a service.
    pub fn log_dir(&self, service: &str) -> PathBuf {
        self.tmp.join("logs/ns/app/pod").join(service)
    }
    /// Starts `tend init` (no CMD, output discarded) as PID 1; returns it and tend's pid.
    pub fn spawn_init(&self) -> (Child, i32) {
        self.spawn_init_with(&[], Stdio::null())
    }
    /// Like [`Tree::spawn_init`] with extra environment and stderr going to `stderr`.
    pub fn spawn_init_with(&self, env: &[(&str, &str)], stderr: Stdio) -> (Child, i32) {
        let mut cmd = self.init(&[]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        spawn_pid1(cmd, stderr)
    }
    /// `tend init` as PID 1 over this tree, identity ns/app/pod, CMD after `--` if given.
    pub fn init(&self, cmd: &[&str]) -> Command {
        let services = self.tmp.join("services");
        let logs = self.tmp.join("logs");
        let mut args = vec![
            "init",
            "--services",
            services.to_str().unwrap(),
            "--log-root",
            logs.to_str().unwrap(),
        ];
        if !cmd.is_empty() {
            args.push("--");
            args.extend_from_slice(cmd);
        }
        let mut c = pid1(&args);
        c.env("TEND_NAMESPACE", "ns")
            .env("TEND_APP", "app")
            .env("TEND_POD", "pod");
        c.env("OUT", self.out())
            .env("TEND_RUN_DIR", self.tmp.join("run"));
        c
    }
}

/// The offset just past each newline of `data`: where each complete line ends.
pub fn line_ends(data: &[u8]) -> Vec<usize> {
    data.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
        .collect()
}

/// Milliseconds since the epoch, as written by `date +%s%3N` in service scripts.
pub fn read_ms(p: &Path) -> u64 {
    read(p)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no timestamp in {}", p.display()))
}

/// Makes a FIFO at `p` (mode 0644).
pub fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// A tmpfs mounted for one test, unmounted on drop (also when the test fails).
pub struct Mount(pub PathBuf);

impl Mount {
    pub fn new(dir: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        if !st.status.success() {
            println!(
                "skipped: cannot mount tmpfs: {}",
                String::from_utf8_lossy(&st.stderr)
            );
            return None;
        }
        Some(Mount(dir.to_path_buf()))
    }
}

/// A fresh temp dir with a tmpfs of `size` mounted at its `mnt`; `None` (the test is then
/// skipped, as [`Mount::new`] says) where tmpfs cannot be mounted. Bound as `(t, m)`, the
/// mount goes before the directory.
pub fn temp_mount(tag: &str, size: &str) -> Option<(TempDir, Mount)> {
    let t = TempDir::new(tag);
    let m = Mount::new(&t.join("mnt"), size)?;
    Some((t, m))
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
