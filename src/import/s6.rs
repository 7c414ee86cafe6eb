//! What s6-rc and s6-overlay v2 service directories share: scripts made to run without
//! s6-overlay, and a longrun's run, finish, readiness and value files.

use super::{Import, Service, list, read_text};
use std::path::Path;

/// Files [`longrun`] converts (besides `run` and `finish`) whose trimmed value tend reads
/// the same way.
pub const SAME: &[&str] = &[
    "notification-fd",
    "timeout-up",
    "timeout-kill",
    "timeout-finish",
    "down-signal",
];

/// Converts the longrun in source directory `d` into `s`: `run` (with an
/// `s6-notifyoncheck` wrapper turned into a `check` file), `finish` (one that halts the
/// container becomes `critical`), the [`SAME`] files and `env/`. Returns the names of the
/// source files it used, or `None` (noted) when there is no readable `run`.
pub fn longrun(s: &mut Service, d: &Path, source: &str, imp: &mut Import) -> Option<Vec<String>> {
    let mut used: Vec<String> = vec!["run".into(), "finish".into(), "env".into()];
    let run = match read_text(&d.join("run")) {
        Ok(t) => t,
        Err(e) => {
            imp.note(
                source,
                "run",
                &format!("missing or unreadable ({e}): skipped"),
            );
            return None;
        }
    };
    let data_check = read_text(&d.join("data/check")).ok();
    let run = match notifyoncheck(&run, data_check.as_deref()) {
        Some((run, check)) => {
            s.script("check", script(&check, source, "data/check", imp));
            used.extend(["data".into(), "notification-fd".into()]);
            run
        }
        None => run,
    };
    let run = match setuidgid(&run) {
        Some((run, user)) => {
            s.value("user", &user);
            run
        }
        None => run,
    };
    s.script("run", script(&run, source, "run", imp));
    if let Ok(t) = read_text(&d.join("finish")) {
        if halts(&t) {
            halting_finish(s, source, imp);
        } else {
            s.script("finish", script(&t, source, "finish", imp));
        }
    }
    for key in SAME {
        if used.iter().any(|u| u == key) {
            continue;
        }
        used.push((*key).into());
        if let Ok(t) = read_text(&d.join(key)) {
            s.value(key, t.trim());
        }
    }
    env(s, d, imp);
    Some(used)
}

/// Copies `env/` as it is (tend reads it as s6-envdir does).
pub fn env(s: &mut Service, d: &Path, imp: &mut Import) {
    for var in list(&d.join("env"), imp) {
        if let Ok(t) = read_text(&d.join("env").join(&var)) {
            s.files.push((format!("env/{var}"), t, false));
        }
    }
}

/// Both run-script rewrites on `text` (for the fuzz test).
#[cfg(test)]
pub fn unwrap_for_tests(text: &str) -> bool {
    notifyoncheck(text, Some("x")).is_some() | setuidgid(text).is_some()
}

/// Where the word that holds byte `at` of `s` starts (after the whitespace before it).
fn word_start(s: &str, at: usize) -> usize {
    s[..at]
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(0, |(i, c)| i + c.len_utf8())
}

/// A run script's `s6-setuidgid USER PROG…` made `PROG…`, with USER for a `user` file.
fn setuidgid(run: &str) -> Option<(String, String)> {
    let at = run.find("s6-setuidgid ")?;
    let start = word_start(run, at);
    let rest = run[at + "s6-setuidgid ".len()..].trim_start_matches([' ', '\t']);
    let end = rest.find(char::is_whitespace)?;
    let user = &rest[..end];
    if user.is_empty() || user.starts_with(['$', '"', '\'']) {
        return None; // a variable or quoted name: left to the user
    }
    let after = rest[end..].trim_start_matches([' ', '\t']);
    Some((format!("{}{after}", &run[..start]), user.to_owned()))
}

/// A run script's `s6-notifyoncheck [OPTIONS] PROG…` made `PROG…`, with the check it ran
/// (its `-c CMD`, else the service's `data/check`) as a script: tend polls a `check` file
/// itself. `None` when the script has no such wrapper or no check can be found.
fn notifyoncheck(run: &str, data_check: Option<&str>) -> Option<(String, String)> {
    let at = run.find("s6-notifyoncheck ")?;
    let start = word_start(run, at);
    let mut rest = &run[at + "s6-notifyoncheck".len()..];
    let mut check = None;
    loop {
        let t = rest.trim_start_matches([' ', '\t']);
        let Some(opt) = t.strip_prefix('-').and_then(|o| o.chars().next()) else {
            break;
        };
        let after = t[1 + opt.len_utf8()..].trim_start_matches([' ', '\t']);
        let (arg, next) = match opt {
            'd' => ("", after),
            '3' | 's' | 'T' | 't' | 'w' | 'n' | 'c' => {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
            _ => return None,
        };
        if opt == 'c' {
            if arg.starts_with(['"', '\'']) {
                return None; // a quoted command: left to the user
            }
            check = Some(format!("#!/bin/sh\nexec {arg}\n"));
        }
        rest = next;
    }
    let check = check.or_else(|| data_check.map(str::to_owned))?;
    let new_run = format!("{}{}", &run[..start], rest.trim_start_matches([' ', '\t']));
    Some((new_run, check))
}

/// A script made to run without s6-overlay: `with-contenv` shebangs become the shell they
/// wrap (services inherit the container's environment); execline scripts are kept and noted,
/// and so is the first s6 tool the script still calls.
pub fn script(text: &str, source: &str, key: &str, imp: &mut Import) -> String {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let mut out = text.to_owned();
    if let Some(line) = first.strip_prefix("#!") {
        let words: Vec<&str> = line.split_whitespace().collect();
        let prog = words.first().map(|w| base(w)).unwrap_or("");
        if prog == "with-contenv" {
            let shell = match words.get(1).copied() {
                None | Some("sh") => "/bin/sh".to_owned(),
                Some(s) if s.starts_with('/') => s.to_owned(),
                Some(s) => format!("/usr/bin/env {s}"),
            };
            let args = words.get(2..).unwrap_or(&[]).join(" ");
            let sep = if args.is_empty() { "" } else { " " };
            out = format!("#!{shell}{sep}{args}\n{rest}");
        } else if prog.starts_with("execlineb") {
            imp.note(
                source,
                key,
                "kept as an execline script (needs execlineb at that path; rewrite it in sh to drop s6)",
            );
            return out;
        }
    }
    if let Some(tool) = s6_tool(&out) {
        imp.note(
            source,
            key,
            &format!(
                "still calls {tool} (keep s6 installed or replace it: s6-setuidgid by a user file, \
                 s6-notifyoncheck by a check file, s6-svc by tend ctl)"
            ),
        );
    }
    out
}

/// The first word of `text` (outside comments) that is an s6 or s6-overlay tool.
fn s6_tool(text: &str) -> Option<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split(|c: char| c.is_whitespace() || matches!(c, ';' | '|' | '&' | '(')))
        .find(|w| {
            let b = base(w);
            (b.starts_with("s6-") || w.starts_with("/command/") || b == "with-contenv")
                && !b.is_empty()
        })
        .map(str::to_owned)
}

fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether a finish script stops the whole container (s6-overlay's idiom for "this service
/// is essential"): tend says that with `critical` and `restart` `never`.
pub fn halts(text: &str) -> bool {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .any(|l| l.contains("/run/s6/basedir/bin/halt") || l.contains("s6-svscanctl -t"))
}

/// Marks `s` critical and never restarted in place of a finish script that halts.
pub fn halting_finish(s: &mut Service, source: &str, imp: &mut Import) {
    s.value("critical", "");
    s.value("restart", "never");
    imp.note(
        source,
        "finish",
        "stops the container: written as critical + restart never; the script itself is dropped",
    );
}

/// An s6-rc `up`/`down` file (one execline command line, possibly over several lines) as an
/// executable: a plain command becomes a `#!/bin/sh` script; anything using execline syntax
/// or shell metacharacters is kept for execlineb and noted.
pub fn command_line(text: &str, source: &str, key: &str, imp: &mut Import) -> String {
    let words: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace)
        .collect();
    let words = match words.first() {
        Some(w) if base(w) == "with-contenv" => &words[1..],
        _ => &words[..],
    };
    let plain = words.iter().all(|w| {
        w.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '/' | '.' | '_' | '-' | '=' | ':' | ',' | '+' | '@' | '%')
        })
    });
    if plain {
        if words.is_empty() {
            return "#!/bin/sh\n".into();
        }
        return format!("#!/bin/sh\nexec {}\n", words.join(" "));
    }
    imp.note(
        source,
        key,
        "kept as an execline command line for /command/execlineb (rewrite it in sh to drop s6)",
    );
    format!("#!/command/execlineb -P\n{}", text.trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs() {
        let mut imp = Import::default();
        assert_eq!(
            script("#!/command/with-contenv sh\nexec x\n", "a", "run", &mut imp),
            "#!/bin/sh\nexec x\n"
        );
        assert_eq!(
            script(
                "#!/usr/bin/with-contenv bash -e\nexec x\n",
                "a",
                "run",
                &mut imp
            ),
            "#!/usr/bin/env bash -e\nexec x\n"
        );
        assert!(imp.notes.is_empty());
        script("#!/bin/sh\nexec s6-setuidgid app x\n", "a", "run", &mut imp);
        assert_eq!(imp.notes.len(), 1);
        assert!(imp.notes[0].starts_with("a: run: still calls s6-setuidgid"));
    }

    #[test]
    fn command_lines() {
        let mut imp = Import::default();
        assert_eq!(
            command_line(
                "with-contenv\n/etc/s6-overlay/scripts/init  --x\n",
                "a",
                "up",
                &mut imp
            ),
            "#!/bin/sh\nexec /etc/s6-overlay/scripts/init --x\n"
        );
        assert!(imp.notes.is_empty());
        assert_eq!(
            command_line("if { true } echo hi\n", "a", "up", &mut imp),
            "#!/command/execlineb -P\nif { true } echo hi\n"
        );
        assert_eq!(imp.notes.len(), 1);
    }

    #[test]
    fn notifyoncheck_becomes_a_check() {
        let (run, check) = notifyoncheck(
            "#!/bin/sh\nexec s6-notifyoncheck -d -n 300 -w 1000 php-fpm82 -F\n",
            Some("#!/bin/sh\ncgi-fcgi\n"),
        )
        .unwrap();
        assert_eq!(run, "#!/bin/sh\nexec php-fpm82 -F\n");
        assert_eq!(check, "#!/bin/sh\ncgi-fcgi\n");
        let (run, check) = notifyoncheck(
            "exec /command/s6-notifyoncheck -c redis-ping redis-server\n",
            None,
        )
        .unwrap();
        assert_eq!(
            (run.as_str(), check.as_str()),
            ("exec redis-server\n", "#!/bin/sh\nexec redis-ping\n")
        );
        assert_eq!(notifyoncheck("exec s6-notifyoncheck x\n", None), None);
        assert_eq!(notifyoncheck("exec x\n", Some("y")), None);
        assert_eq!(
            setuidgid("exec s6-setuidgid nobody  php-fpm -F\n"),
            Some(("exec php-fpm -F\n".into(), "nobody".into()))
        );
        assert_eq!(setuidgid("exec s6-setuidgid $U x\n"), None);
    }
}
