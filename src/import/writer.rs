//! The one writer of imported service trees.

use super::{Import, Service};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes every service of `imp` under `out`, which must be absent or an empty directory.
/// The tree is built in a hidden sibling directory and renamed into place, so OUT is either
/// complete or untouched.
pub fn write(out: &Path, imp: &Import) -> Result<(), String> {
    let shown = out.display();
    match fs::read_dir(out) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                return Err(format!(
                    "{shown}: not empty (tend import writes only into a new or empty directory)"
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{shown}: cannot use as output: {e}")),
    }
    // Two sources may become one name (`a b` and `a-b`, or a section given twice).
    for (i, a) in imp.services.iter().enumerate() {
        if imp.services[..i].iter().any(|b| b.name == a.name) {
            return Err(format!(
                "two sources become service '{}' (a section given twice, or names that differ only in characters a service name cannot hold); rename one; nothing was written",
                a.name
            ));
        }
    }
    let tmp = staging(out);
    let _ = fs::remove_dir_all(&tmp);
    let result = write_all(&tmp, imp).and_then(|()| {
        fs::rename(&tmp, out).map_err(|e| format!("{shown}: cannot move the new tree in: {e}"))
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// `DIR/.NAME.tend-import-PID` beside `out`.
fn staging(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parent.join(format!(".{name}.tend-import-{}", std::process::id()))
}

fn write_all(root: &Path, imp: &Import) -> Result<(), String> {
    mkdir(root)?;
    for s in &imp.services {
        write_service(&root.join(&s.name), s)?;
    }
    Ok(())
}

fn write_service(dir: &Path, s: &Service) -> Result<(), String> {
    mkdir(dir)?;
    for (rel, text, exe) in &s.files {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            mkdir(parent)?;
        }
        file(&p, text, if *exe { 0o755 } else { 0o644 })?;
    }
    if !s.deps.is_empty() {
        let d = dir.join("dependencies.d");
        mkdir(&d)?;
        for dep in &s.deps {
            file(&d.join(dep), "", 0o644)?;
        }
    }
    Ok(())
}

fn mkdir(p: &Path) -> Result<(), String> {
    match fs::create_dir(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("{}: cannot create: {e}", p.display())),
    }
}

fn file(p: &Path, text: &str, mode: u32) -> Result<(), String> {
    let err = |e: std::io::Error| format!("{}: cannot write: {e}", p.display());
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(p)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    // The umask may have cleared bits of `mode`: the x bit of a run script matters.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(err)
}

/// `s` quoted for sh when it holds anything but plain word characters.
pub fn sh_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '/' | '.' | '_' | '-' | '=' | ':' | ',' | '+' | '@')
        });
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("/usr/bin/x"), "/usr/bin/x");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("$HOME"), "'$HOME'");
    }
}
