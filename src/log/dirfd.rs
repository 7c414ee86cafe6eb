//! Directory-relative file operations: everything below a log root is reached through a
//! directory fd with `O_NOFOLLOW`, so a planted symlink is never followed.

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// Mode of directories tend creates.
const DIR_MODE: u32 = 0o750;
/// Mode of files tend creates.
pub const FILE_MODE: u32 = 0o640;

/// Creates `path` (and parents) normally and opens it as a directory.
pub fn open_root(path: &Path) -> Result<OwnedFd, String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
        .map_err(|e| format!("{}: cannot create directory: {e}", path.display()))?;
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("{}: cannot open directory: {e}", path.display()))
}

/// Creates (if missing) and opens directory `name` inside `parent`, never through a symlink.
pub fn sub_dir(parent: &OwnedFd, name: &str, shown: &Path) -> Result<OwnedFd, String> {
    match mkdirat(parent, name, Mode::from_bits_truncate(DIR_MODE)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(format!("{}: cannot create directory: {e}", shown.display())),
    }
    openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::ELOOP | Errno::ENOTDIR => format!(
            "{}: is a symlink or not a directory (refusing to follow it)",
            shown.display()
        ),
        e => format!("{}: cannot open directory: {e}", shown.display()),
    })
}

/// Opens `name` in `dir` with `O_NOFOLLOW | O_CLOEXEC` added to `flags`.
pub fn open_in(dir: &OwnedFd, name: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(FILE_MODE),
    )
}

/// `lstat` of `name` in `dir`.
pub fn stat_in(dir: &OwnedFd, name: &str) -> nix::Result<FileStat> {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// `true` when `st` is a regular file.
pub fn is_regular(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
}

/// Renames within `dir`.
pub fn rename_in(dir: &OwnedFd, from: &str, to: &str) -> nix::Result<()> {
    renameat(dir, from, dir, to)
}

/// Removes file `name` from `dir`; a missing file is not an error.
pub fn unlink_in(dir: &OwnedFd, name: &str) -> nix::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Err(Errno::ENOENT) => Ok(()),
        r => r,
    }
}

/// Names of the entries of `dir` (not `.`/`..`), read through a duplicate of its fd.
pub fn list(dir: &OwnedFd) -> nix::Result<Vec<String>> {
    let d = nix::dir::Dir::openat(
        dir.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for e in d.into_iter().flatten() {
        if let Ok(n) = e.file_name().to_str()
            && n != "."
            && n != ".."
        {
            names.push(n.to_owned());
        }
    }
    Ok(names)
}

/// Opens `current` for appending. A symlink or hard link planted there is removed (its
/// target is never opened); anything else that is not a regular file is an error.
pub fn open_current(dir: &OwnedFd, shown: &str) -> Result<OwnedFd, String> {
    let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_APPEND | OFlag::O_NONBLOCK;
    for _ in 0..2 {
        let fd = match open_in(dir, "current", flags) {
            Ok(fd) => fd,
            Err(Errno::ELOOP) => {
                eprintln!("tend: {shown}/current: is a symlink; removing it (target untouched)");
                unlink_in(dir, "current")
                    .map_err(|e| format!("{shown}/current: cannot remove symlink: {e}"))?;
                continue;
            }
            Err(e) => return Err(format!("{shown}/current: cannot open: {e}")),
        };
        let st =
            nix::sys::stat::fstat(&fd).map_err(|e| format!("{shown}/current: cannot stat: {e}"))?;
        if !is_regular(&st) {
            return Err(format!("{shown}/current: not a regular file"));
        }
        if st.st_nlink > 1 {
            eprintln!("tend: {shown}/current: has other hard links; replacing it");
            unlink_in(dir, "current")
                .map_err(|e| format!("{shown}/current: cannot remove: {e}"))?;
            continue;
        }
        return Ok(fd);
    }
    Err(format!("{shown}/current: keeps being replaced by a link"))
}

/// Cleans up after a crash during compression: stale `.gz.tmp` files go, and a `.log`
/// whose `.log.gz` exists is deleted (the rename finished, the unlink did not).
pub fn recover_compression(dir: &OwnedFd) {
    let Ok(names) = list(dir) else { return };
    let names: std::collections::HashSet<String> = names.into_iter().collect();
    for n in &names {
        let regular = |f: &str| stat_in(dir, f).is_ok_and(|st| is_regular(&st));
        let gz = format!("{n}.gz");
        let stale = n.ends_with(".log.gz.tmp")
            || n.ends_with(".log") && names.contains(&gz) && regular(&gz);
        if stale && regular(n) {
            let _ = unlink_in(dir, n);
        }
    }
}
