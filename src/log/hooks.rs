//! Side outputs of a sink: `--tee` copies and the `--on-rotate` hook.

use nix::errno::Errno;
use std::path::Path;

/// Copies written records to tend's stdout (`--tee`); errors are ignored.
pub fn tee(mut buf: &[u8]) {
    let out = std::io::stdout();
    let fd = std::os::fd::AsFd::as_fd(&out);
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(0) => return,
            Ok(k) => buf = &buf[k..],
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Runs `--on-rotate` with `archive` appended; a detached thread reaps it so the log
/// thread never waits on a process.
pub fn spawn_hook(argv: &[String], archive: &Path) {
    let Some((prog, args)) = argv.split_first() else {
        return;
    };
    let child = std::process::Command::new(prog)
        .args(args)
        .arg(archive)
        .stdin(std::process::Stdio::null())
        .spawn();
    match child {
        Ok(mut c) => {
            let _ = std::thread::Builder::new()
                .name("tend-hook".into())
                .spawn(move || {
                    let _ = c.wait();
                });
        }
        Err(e) => eprintln!("tend: --on-rotate {prog}: cannot start: {e}"),
    }
}
