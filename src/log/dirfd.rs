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
        if let Ok(n) = e.file_name().to_str() {
            if n != "." && n != ".." {
                names.push(n.to_owned());
            }
        }
    }
    Ok(names)
}
