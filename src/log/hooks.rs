//! The `--on-rotate` hook.

use std::path::Path;

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
