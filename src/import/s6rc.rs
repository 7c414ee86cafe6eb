//! s6-rc source directories, including s6-overlay v3's `/etc/s6-overlay/s6-rc.d` with its
//! `user` (and `user2`) bundle: longruns and oneshots become services, bundles are expanded
//! into the dependencies that name them, and atomic services outside `user` are disabled.

use super::s6::{command_line, env, longrun, script};
use super::{Import, Service, list, read_text, service_name};
use std::path::Path;

/// Files converted below; any other file of a source service is noted.
const HANDLED: &[&str] = &[
    "type",
    "run",
    "finish",
    "up",
    "down",
    "dependencies",
    "dependencies.d",
    "contents",
    "contents.d",
    "notification-fd",
    "timeout-up",
    "timeout-kill",
    "timeout-finish",
    "down-signal",
    "env",
    "producer-for",
    "consumer-for",
    "pipeline-name",
];

/// s6-overlay's own bundles and services, which its users' services name as dependencies.
const OVERLAY: &[&str] = &[
    "base",
    "legacy-cont-init",
    "legacy-services",
    "user",
    "user2",
];

struct Src {
    kind: String,
    deps: Vec<String>,
    contents: Vec<String>,
}

/// Reads the s6-rc source directory `dir` into `imp`.
pub fn read(dir: &Path, imp: &mut Import) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(format!(
            "{}: not a directory (expected an s6-rc source directory such as /etc/s6-overlay/s6-rc.d)",
            dir.display()
        ));
    }
    // Vectors, not maps: a few dozen entries, and no new map types in the binary.
    let mut all: Vec<(String, Src)> = Vec::new();
    for name in list(dir, imp) {
        let d = dir.join(&name);
        if !d.is_dir() {
            continue;
        }
        let kind = match read_text(&d.join("type")) {
            Ok(t) => t.trim().to_owned(),
            Err(_) => {
                imp.note(
                    &name,
                    "type",
                    "missing or unreadable: skipped (s6-rc requires it)",
                );
                continue;
            }
        };
        let mut deps = list(&d.join("dependencies.d"), imp);
        deps.extend(lines_of(&d, "dependencies"));
        let mut contents = list(&d.join("contents.d"), imp);
        contents.extend(lines_of(&d, "contents"));
        all.push((
            name,
            Src {
                kind,
                deps,
                contents,
            },
        ));
    }

    // Services the `user` bundles start, with everything they depend on.
    let has_user = ["user", "user2"]
        .iter()
        .any(|b| get(&all, b).is_some_and(|s| s.kind == "bundle"));
    // Every name reached (bundles too, so a bundle cycle ends); atomic ones are enabled.
    let mut reached: Vec<&str> = Vec::new();
    let mut todo: Vec<&str> = vec!["user", "user2"];
    while let Some(n) = todo.pop() {
        let Some(s) = get(&all, n).filter(|_| !reached.contains(&n)) else {
            continue;
        };
        reached.push(n);
        let next = if s.kind == "bundle" {
            &s.contents
        } else {
            &s.deps
        };
        todo.extend(next.iter().map(String::as_str));
    }

    let loggers: Vec<&str> = all
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| dir.join(n).join("consumer-for").exists())
        .collect();
    // (source name, service name) of every service written.
    let mut renamed: Vec<(&str, String)> = Vec::new();
    for (name, src) in &all {
        if src.kind != "bundle" && !loggers.contains(&name.as_str()) {
            renamed.push((name, service_name(name, name, imp)));
        }
    }
    let new_name = |n: &str| renamed.iter().find(|r| r.0 == n).map(|r| r.1.as_str());
    for (name, src) in &all {
        let d = dir.join(name);
        match src.kind.as_str() {
            "bundle" => {
                if !OVERLAY.contains(&name.as_str()) {
                    imp.note(name, "type", "bundle: not a service in tend; its members are dependencies of whatever named it");
                }
                continue;
            }
            _ if loggers.contains(&name.as_str()) => {
                imp.note(name, "consumer-for", "logger service dropped (tend logs every service's output itself; per-service log flags go in log-options)");
                continue;
            }
            "longrun" | "oneshot" => {}
            other => {
                imp.note(
                    name,
                    "type",
                    &format!("'{other}' is not an s6-rc type: skipped"),
                );
                continue;
            }
        }
        let Some(new) = new_name(name) else { continue };
        let mut s = Service::new(new);
        let mut moved: Vec<String> = Vec::new();
        if src.kind == "oneshot" {
            s.value("type", "oneshot");
            for key in ["up", "down"] {
                let Ok(t) = read_text(&d.join(key)) else {
                    continue;
                };
                // The common `up` naming a script beside it: that script becomes `up`.
                match own_script(&t, name, &d) {
                    Some(f) => {
                        let text = super::text_or_fatal(&d.join(&f), imp);
                        s.script(key, script(&text, name, &f, imp));
                        moved.push(f);
                    }
                    None => s.script(key, command_line(&t, name, key, imp)),
                }
            }
            if !s.has("up") {
                s.script("up", "#!/bin/sh\n".into());
            }
            if let Ok(t) = read_text(&d.join("timeout-up")) {
                s.value("timeout-up", t.trim());
            }
            env(&mut s, &d, imp);
        } else {
            match longrun(&mut s, &d, name, imp) {
                Some(used) => moved.extend(used),
                None => continue,
            }
        }
        let mut seen = Vec::new();
        for dep in &src.deps {
            for member in expand(dep, &all, &mut seen) {
                match new_name(&member) {
                    // A bundle that holds the service itself.
                    Some(n) if n == new => {}
                    Some(n) => s.dep(n),
                    None if OVERLAY.contains(&member.as_str()) => {}
                    None if loggers.contains(&member.as_str()) => {}
                    None => imp.note(
                        name,
                        &format!("dependencies.d/{member}"),
                        "no such service in the source: dropped",
                    ),
                }
            }
        }
        if has_user && !reached.contains(&name.as_str()) {
            s.value("disabled", "");
        }
        for f in list(&d, imp) {
            if HANDLED.contains(&f.as_str()) || moved.contains(&f) {
                continue;
            }
            let why = match f.as_str() {
                "timeout-down" => {
                    "not converted (tend has no time limit on stopping; timeout-kill ends a longrun's stop)"
                }
                "flag-essential" => "not converted (tend ctl stop always acts)",
                "data" => "not copied (scripts that read ./data need it copied by hand)",
                _ => "not converted (tend has no such file)",
            };
            imp.note(name, &f, why);
        }
        for key in ["producer-for", "pipeline-name"] {
            if d.join(key).exists() {
                imp.note(
                    name,
                    key,
                    "log pipeline not converted (tend logs this service's output itself)",
                );
            }
        }
        imp.services.push(s);
    }
    Ok(())
}

/// When an `up`/`down` command line is just the path of a file in the service's own source
/// directory (`/etc/s6-overlay/s6-rc.d/NAME/run`), that file's name.
fn own_script(line: &str, name: &str, d: &Path) -> Option<String> {
    let words: Vec<&str> = line
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace)
        .filter(|w| !w.ends_with("with-contenv"))
        .collect();
    let [path] = words[..] else { return None };
    let (dir, file) = path.rsplit_once('/')?;
    let inside = dir.rsplit('/').next() == Some(name);
    (inside && !file.is_empty() && d.join(file).is_file()).then(|| file.to_owned())
}

/// The atomic services `name` stands for: itself, or a bundle's members, recursively.
fn expand(name: &str, all: &[(String, Src)], seen: &mut Vec<String>) -> Vec<String> {
    match get(all, name) {
        Some(s) if s.kind == "bundle" => {
            if seen.iter().any(|n| n == name) {
                return Vec::new(); // a bundle cycle: s6-rc-compile refuses it too
            }
            seen.push(name.to_owned());
            s.contents
                .iter()
                .flat_map(|m| expand(m, all, seen))
                .collect()
        }
        _ => vec![name.to_owned()],
    }
}

// Cold code called from many places: one copy, not one per call (binary size).
#[inline(never)]
fn get<'a>(all: &'a [(String, Src)], name: &str) -> Option<&'a Src> {
    all.iter().find(|(n, _)| n == name).map(|(_, s)| s)
}

/// The names in an older s6-rc list file (`dependencies`, `contents`): one per line.
fn lines_of(d: &Path, file: &str) -> Vec<String> {
    read_text(&d.join(file))
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
