//! Starting a process the way a supervisor must: own process group or session, terminal
//! hand-over, readiness fd, credentials, captured stdout/stderr, default signal dispositions.

use crate::init::signals::Inherited;
use nix::unistd::{Gid, Pid, Uid};
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Where the new process sits among sessions and process groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// A new session (and so process group): services, detached from any terminal.
    Session,
    /// A new process group in tend's session; it takes the terminal's foreground when stdin
    /// is a terminal (what tini does, so ^C and job control reach the child).
    Group,
}

/// The uid, gid and supplementary groups to switch to before exec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ids {
    /// User id.
    pub uid: Uid,
    /// Primary group id.
    pub gid: Gid,
    /// Supplementary groups.
    pub groups: Vec<Gid>,
}

/// What to start and how.
pub struct Spawn<'a, A: AsRef<OsStr> = String> {
    /// Program (looked up in PATH when it has no `/`) and its arguments, as bytes.
    pub argv: &'a [A],
    /// Variables to set (`Some`) or unset (`None`) on top of tend's environment.
    pub env: &'a [(String, Option<std::ffi::OsString>)],
    /// Where fd 1 goes; `None` inherits tend's.
    pub stdout: Option<BorrowedFd<'a>>,
    /// Where fd 2 goes; `None` inherits tend's.
    pub stderr: Option<BorrowedFd<'a>>,
    /// Give the child /dev/null as stdin instead of tend's.
    pub stdin_null: bool,
    /// Session or process group.
    pub isolation: Isolation,
    /// Credentials to switch to.
    pub ids: Option<&'a Ids>,
    /// An extra fd the child gets at a fixed number (s6 `notification-fd`).
    pub extra_fd: Option<(RawFd, BorrowedFd<'a>)>,
    /// Working directory.
    pub cwd: Option<&'a Path>,
}

/// The exit code a shell gives for a command that could not be executed: 127 when it was
/// not found, 126 when it was found but could not run.
pub fn exec_failure_code(e: &io::Error) -> i32 {
    if e.kind() == io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

fn dup_stdio(fd: Option<BorrowedFd<'_>>) -> io::Result<Option<OwnedFd>> {
    fd.map(|fd| fd.try_clone_to_owned()).transpose()
}

/// Starts the process; the error is the exec failure (`ENOENT`, `EACCES`, …).
pub fn spawn<A: AsRef<OsStr>>(s: &Spawn<'_, A>) -> io::Result<Pid> {
    let argv: Vec<&OsStr> = s.argv.iter().map(AsRef::as_ref).collect();
    let stdin = if s.stdin_null {
        Some(OwnedFd::from(std::fs::File::open("/dev/null")?))
    } else {
        None
    };
    let stdio = [stdin, dup_stdio(s.stdout)?, dup_stdio(s.stderr)?];
    let isolation = s.isolation;
    let inherited = crate::init::signals::inherited();
    let extra: Option<(RawFd, RawFd)> = s.extra_fd.map(|(n, fd)| (n, fd.as_raw_fd()));
    let groups: Vec<libc::gid_t> = s
        .ids
        .map(|i| i.groups.iter().map(|g| g.as_raw()).collect())
        .unwrap_or_default();
    fork_exec(&argv, s.env, &stdio, s.cwd, &|| {
        child_setup(isolation, extra, inherited.as_ref())?;
        if let Some(ids) = s.ids {
            switch_ids(ids, &groups)?;
        }
        Ok(())
    })
}

fn cstring(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a NUL byte in a command, variable or path",
        )
    })
}

/// fork + exec without `std::process::Command` (its environment maps and pipes cost ~16 KB
/// of the static binary, issue 16). Everything the child needs is allocated first: between
/// fork and exec it only makes async-signal-safe system calls. The child gets `stdio[n]` as
/// fd `n` (`None`: tend's), `cwd`, the default SIGPIPE disposition and an empty signal mask
/// (as Command gives), then runs `setup`, then execs `argv[0]` (looked up in the `PATH` of
/// its environment when it has no `/`) with tend's environment changed by `env`. An exec
/// failure comes back as the error, through a close-on-exec pipe, and the child is reaped.
pub fn fork_exec(
    argv: &[&OsStr],
    env: &[(String, Option<OsString>)],
    stdio: &[Option<OwnedFd>; 3],
    cwd: Option<&Path>,
    setup: &dyn Fn() -> io::Result<()>,
) -> io::Result<Pid> {
    let Some(program) = argv.first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    };
    let args: Vec<CString> = argv
        .iter()
        .map(|a| cstring(a.as_bytes()))
        .collect::<io::Result<_>>()?;
    let mut vars: Vec<CString> = Vec::new();
    let mut path = None;
    for (k, v) in std::env::vars_os() {
        if !env.iter().any(|(n, _)| k.as_bytes() == n.as_bytes()) {
            if k == "PATH" {
                path = Some(v.as_bytes().to_vec());
            }
            vars.push(cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat())?);
        }
    }
    for (k, v) in env {
        if let Some(v) = v {
            if k == "PATH" {
                path = Some(v.as_bytes().to_vec());
            }
            vars.push(cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat())?);
        }
    }
    // execvp's search: each PATH entry in turn (musl's default PATH when there is none).
    let program = program.as_bytes();
    let candidates: Vec<CString> = if program.contains(&b'/') {
        vec![cstring(program)?]
    } else {
        let path = path.unwrap_or_else(|| b"/usr/local/bin:/bin:/usr/bin".to_vec());
        path.split(|&b| b == b':')
            .map(|dir| cstring(&[dir, b"/", program].concat()))
            .collect::<io::Result<_>>()?
    };
    let cwd = cwd.map(|d| cstring(d.as_os_str().as_bytes())).transpose()?;
    let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let (argp, envp) = (ptrs(&args), ptrs(&vars));
    let fds: [Option<RawFd>; 3] = [0, 1, 2].map(|n| stdio[n].as_ref().map(AsRawFd::as_raw_fd));
    let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;

    // SAFETY: fork in a threaded process: the child only makes async-signal-safe system
    // calls on memory allocated above (and `setup`, which promises the same), then execs or
    // _exits; it never returns into Rust code that could allocate or take a lock.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        let w = report_w.as_raw_fd();
        // SAFETY: see above; every pointer is into a CString or Vec that outlives the exec.
        unsafe {
            let errno = child_exec(&fds, cwd.as_ref(), setup, &candidates, &argp, &envp);
            let bytes = errno.to_ne_bytes();
            libc::write(w, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127);
        }
    }
    drop(report_w);
    let mut buf = [0u8; 4];
    let n = loop {
        match nix::unistd::read(&report_r, &mut buf) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r.unwrap_or(0),
        }
    };
    if n == buf.len() {
        // The child never ran the command: reap it here, as Command does.
        let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
        return Err(io::Error::from_raw_os_error(i32::from_ne_bytes(buf)));
    }
    Ok(Pid::from_raw(pid))
}

/// The child's side of [`fork_exec`]: returns the errno to report when it could not exec.
///
/// # Safety
/// Only in the child of a fork, with pointers from live CStrings (null-terminated lists).
unsafe fn child_exec(
    fds: &[Option<RawFd>; 3],
    cwd: Option<&CString>,
    setup: &dyn Fn() -> io::Result<()>,
    candidates: &[CString],
    argp: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> i32 {
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    };
    // SAFETY: plain system calls on integers and live C strings, allowed between fork/exec.
    unsafe {
        for (target, fd) in (0..).zip(fds) {
            match *fd {
                // dup2 onto itself keeps FD_CLOEXEC, which would close it at exec.
                Some(fd) if fd == target => {
                    libc::fcntl(fd, libc::F_SETFD, 0);
                }
                Some(fd) if libc::dup2(fd, target) < 0 => return errno(),
                _ => {}
            }
        }
        if let Some(dir) = cwd
            && libc::chdir(dir.as_ptr()) < 0
        {
            return errno();
        }
        // std ignores SIGPIPE in tend; a command gets the default back, as Command does.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        if let Err(e) = setup() {
            return e.raw_os_error().unwrap_or(libc::EIO);
        }
        // As execvp: a missing entry tries the next one; EACCES is kept unless one runs.
        let mut result = libc::ENOENT;
        for c in candidates {
            libc::execve(c.as_ptr(), argp.as_ptr(), envp.as_ptr());
            match errno() {
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES => result = libc::EACCES,
                e => return e,
            }
        }
        result
    }
}

/// Session or group, terminal, readiness fd, and the signal mask and TTIN/TTOU dispositions
/// tend was started with. Runs in the child.
fn child_setup(
    isolation: Isolation,
    extra: Option<(RawFd, RawFd)>,
    inherited: Option<&Inherited>,
) -> io::Result<()> {
    // SAFETY (whole function): plain system calls on integers, allowed between fork and exec.
    unsafe {
        match isolation {
            Isolation::Session => {
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Isolation::Group => {
                if libc::setpgid(0, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                // Only a terminal on stdin gets handed over; ENOTTY and friends are fine.
                if libc::isatty(0) == 1 {
                    libc::tcsetpgrp(0, libc::getpgrp());
                }
            }
        }
        if let Some((target, fd)) = extra {
            if target == fd {
                // dup2 onto itself keeps FD_CLOEXEC, which would close it at exec.
                libc::fcntl(fd, libc::F_SETFD, 0);
            } else if libc::dup2(fd, target) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // tend ignores TTIN/TTOU and blocks every signal for its signalfd; the command gets
        // what tend itself was started with instead (tini does the same), so a signal the
        // caller ignored or blocked stays so. Without a record: defaults, empty mask.
        let disposition = |ignored: bool| {
            if ignored {
                libc::SIG_IGN
            } else {
                libc::SIG_DFL
            }
        };
        let (ttin, ttou) = inherited.map_or((false, false), |i| (i.ttin_ignored, i.ttou_ignored));
        libc::signal(libc::SIGTTIN, disposition(ttin));
        libc::signal(libc::SIGTTOU, disposition(ttou));
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut mask);
        if let Some(i) = inherited {
            mask = i.mask;
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
    }
    Ok(())
}

/// setgroups, setgid, setuid — in that order, since setuid drops the right to do the others.
fn switch_ids(ids: &Ids, groups: &[libc::gid_t]) -> io::Result<()> {
    // SAFETY: plain system calls; `groups` was allocated before fork and is only read.
    unsafe {
        if libc::setgroups(groups.len(), groups.as_ptr()) < 0 && libc::geteuid() == 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setgid(ids.gid.as_raw()) < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setuid(ids.uid.as_raw()) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{WaitStatus, waitpid};

    fn run(
        argv: &[&str],
        env: &[(String, Option<OsString>)],
        cwd: Option<&Path>,
    ) -> io::Result<i32> {
        let argv: Vec<&OsStr> = argv.iter().map(OsStr::new).collect();
        let pid = fork_exec(&argv, env, &[None, None, None], cwd, &|| Ok(()))?;
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => Ok(code),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn looks_up_the_program_in_the_path_of_the_new_environment() {
        let path = |p: &str| vec![("PATH".to_owned(), Some(OsString::from(p)))];
        assert_eq!(
            run(&["true"], &path("/nonexistent:/bin:/usr/bin"), None).unwrap(),
            0
        );
        let e = run(&["true"], &path("/nonexistent"), None).unwrap_err();
        assert_eq!(exec_failure_code(&e), 127, "{e}");
        let e = run(&["/etc/hostname"], &[], None).unwrap_err();
        assert_eq!(exec_failure_code(&e), 126, "{e}");
    }

    #[test]
    fn sets_the_environment_directory_and_stdout() {
        let dir = std::env::temp_dir().join(format!("tend-spawn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = std::fs::File::create(dir.join("out")).unwrap();
        let env = [
            ("TEND_SPAWN_X".to_owned(), Some(OsString::from("x y"))),
            ("HOME".to_owned(), None),
        ];
        let argv = [
            OsStr::new("sh"),
            OsStr::new("-c"),
            OsStr::new("pwd; echo \"$TEND_SPAWN_X|${HOME-unset}\""),
        ];
        let stdio = [None, Some(OwnedFd::from(out)), None];
        let pid = fork_exec(&argv, &env, &stdio, Some(&dir), &|| Ok(())).unwrap();
        assert_eq!(waitpid(pid, None).unwrap(), WaitStatus::Exited(pid, 0));
        let text = std::fs::read_to_string(dir.join("out")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(text, format!("{}\nx y|unset\n", dir.display()));
    }

    #[test]
    fn a_failing_setup_is_the_error() {
        let argv = [OsStr::new("true")];
        let e = fork_exec(&argv, &[], &[None, None, None], None, &|| {
            Err(io::Error::from_raw_os_error(libc::EPERM))
        })
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    }
}
