//! supervisord configuration files: each `[program:x]` becomes a longrun whose `run` script
//! changes directory, exports the variables that need expanding, and execs the command.
//! `[include] files=` globs are followed (relative to the including file).

use super::writer::sh_quote;
use super::{Import, Service, read_text, service_name};
use std::path::{Path, PathBuf};

/// One `[section]` with its keys, in file order.
struct Section {
    name: String,
    file: String,
    keys: Vec<(String, String)>,
}

/// Keys that configure supervisord's own log files: tend logs every service itself.
const LOG_KEYS: &[&str] = &[
    "redirect_stderr",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stdout_capture_maxbytes",
    "stdout_events_enabled",
    "stdout_syslog",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "stderr_capture_maxbytes",
    "stderr_events_enabled",
    "stderr_syslog",
];

/// Reads the supervisord configuration `file` (and what it includes) into `imp`.
pub fn read(file: &Path, imp: &mut Import) -> Result<(), String> {
    let mut sections = Vec::new();
    parse_file(file, &mut sections, imp, true)?;
    let mut programs: Vec<(u32, Service)> = Vec::new();
    for sec in &sections {
        let (kind, name) = sec.name.split_once(':').unwrap_or((&sec.name, ""));
        let source = format!("{} [{}]", sec.file, sec.name);
        match kind {
            "program" => {
                if let Some(p) = program(name, sec, &source, imp) {
                    programs.push(p);
                }
            }
            "supervisord" => {
                if get(sec, "environment").is_some() {
                    imp.note(
                        &source,
                        "environment",
                        "not converted (set it in the image's ENV: every service inherits it)",
                    );
                }
            }
            "include" | "unix_http_server" | "inet_http_server" | "supervisorctl"
            | "rpcinterface" => {}
            _ => imp.note(
                &source,
                "section",
                "not converted (tend converts [program:x] sections)",
            ),
        }
    }
    // Priority: lower starts first and stops last; each program depends on those of the
    // next lower priority present.
    // Sorted by insertion: a sort of u32 would add its own copy of the sort code.
    let mut levels: Vec<u32> = Vec::new();
    for (p, _) in &programs {
        if let Err(i) = levels.binary_search(p) {
            levels.insert(i, *p);
        }
    }
    let by_level: Vec<(u32, String)> = programs.iter().map(|p| (p.0, p.1.name.clone())).collect();
    for (prio, s) in &mut programs {
        if let Some(i) = levels.iter().position(|l| l == prio).filter(|i| *i > 0) {
            for (l, n) in &by_level {
                if *l == levels[i - 1] {
                    s.dep(n);
                }
            }
        }
    }
    imp.services.extend(programs.into_iter().map(|p| p.1));
    Ok(())
}

// Cold code called from many places: one copy, not one per call (binary size).
#[inline(never)]
fn get<'a>(sec: &'a Section, key: &str) -> Option<&'a str> {
    sec.keys
        .iter()
        .rev()
        .find(|k| k.0 == key)
        .map(|k| k.1.as_str())
}

/// Converts one `[program:NAME]`; `None` when it has no command.
fn program(name: &str, sec: &Section, source: &str, imp: &mut Import) -> Option<(u32, Service)> {
    let Some(command) = get(sec, "command") else {
        imp.note(source, "command", "missing: program skipped");
        return None;
    };
    let mut s = Service::new(&service_name(name, source, imp));
    let mut run = format!("#!/bin/sh\n# Imported from {source}.\n");
    let mut priority = 999;
    let mut logs: Vec<&str> = Vec::new();
    let mut autorestart = "unexpected";
    let (mut startsecs, mut startretries) = (1u64, 3u64);
    let mut exitcodes = "0";
    for (key, value) in &sec.keys {
        let v = value.as_str();
        let bad = |imp: &mut Import, what: &str| {
            imp.note(source, key, &format!("'{v}' is not {what}: not converted"))
        };
        match key.as_str() {
            "command" => {}
            "directory" => {
                run.push_str(&format!(
                    "cd {} || exit 111\n",
                    expand(v, name, source, key, imp)
                ));
            }
            "user" => s.value("user", v),
            "environment" => {
                for (var, val) in env_pairs(v) {
                    let e = expand(&val, name, source, key, imp);
                    if e == format!("\"${{{var}}}\"") {
                        // VAR=%(ENV_VAR)s: the service inherits it anyway.
                    } else if e.contains("${") {
                        run.push_str(&format!("export {var}={e}\n"));
                    } else {
                        s.files.push((
                            format!("env/{var}"),
                            format!("{}\n", literal(&val, name)),
                            false,
                        ));
                    }
                }
            }
            "autorestart" => match v.to_ascii_lowercase().as_str() {
                "true" => autorestart = "true",
                "false" => autorestart = "false",
                "unexpected" => autorestart = "unexpected",
                _ => bad(imp, "true, false or unexpected"),
            },
            "autostart" => match v.to_ascii_lowercase().as_str() {
                "false" => s.value("disabled", ""),
                "true" => {}
                _ => bad(imp, "true or false"),
            },
            "startsecs" => match v.parse() {
                Ok(n) => startsecs = n,
                Err(_) => bad(imp, "a number of seconds"),
            },
            "startretries" => match v.parse() {
                Ok(n) => startretries = n,
                Err(_) => bad(imp, "a number"),
            },
            "stopsignal" => s.value("down-signal", &v.to_ascii_uppercase()),
            "stopwaitsecs" => match v.parse::<u64>().map(|n| n.checked_mul(1000)) {
                Ok(Some(ms)) if ms > 0 => s.value("timeout-kill", &ms.to_string()),
                _ => bad(imp, "a number of seconds above zero"),
            },
            "priority" => match v.parse() {
                Ok(n) => priority = n,
                Err(_) => bad(imp, "a number"),
            },
            "exitcodes" => exitcodes = v,
            // tend always signals the whole process group.
            "stopasgroup" | "killasgroup" => {}
            "numprocs" if v == "1" => {}
            "process_name" if v == "%(program_name)s" => {}
            k if LOG_KEYS.contains(&k) => logs.push(k),
            "numprocs" => imp.note(
                source,
                key,
                "not converted (one process per service; copy the service directory per instance)",
            ),
            _ => imp.note(source, key, "not converted (tend has no such setting)"),
        }
    }
    if !logs.is_empty() {
        let keys = logs.join(", ");
        imp.note(source, &keys, "not converted (tend writes each service's stdout and stderr to its own rotating log; flags go in log-options)");
    }
    match autorestart {
        "false" => s.value("restart", "never"),
        "unexpected" => s.value("restart", "on-failure"),
        _ => {}
    }
    if autorestart == "unexpected" && exitcodes.split(',').any(|c| c.trim() != "0") {
        imp.note(
            source,
            "exitcodes",
            &format!("'{exitcodes}' not converted (on-failure restarts after any exit but 0)"),
        );
    }
    if autorestart != "false" && startsecs > 0 {
        // supervisord gives up after startretries+1 runs that each ended within startsecs;
        // tend counts failed runs in a window: those runs, plus tend's backoff between them.
        let n = startretries.saturating_add(1);
        let window = n
            .saturating_mul(startsecs)
            .saturating_add(backoff_sum(startretries))
            .saturating_add(1);
        // Beyond what `restart-limit` holds (u32 runs, a window in ms) it never ends anyway.
        if n <= u64::from(u32::MAX) && window <= u64::MAX / 1000 {
            s.value("restart-limit", &format!("{n}/{window}s"));
        } else {
            imp.note(
                source,
                "startretries",
                "too large to convert: restarts without a limit",
            );
        }
    }
    run.push_str("exec");
    for word in split_words(command) {
        run.push(' ');
        run.push_str(&expand(&word, name, source, "command", imp));
    }
    run.push('\n');
    s.files.insert(0, ("run".into(), run, true));
    Some((priority, s))
}

/// Seconds tend waits before `restarts` restarts: 0, then 1 doubling to 30 (SPEC §5).
/// Counted, not looped: `startretries` comes from the source and may be huge.
fn backoff_sum(restarts: u64) -> u64 {
    // Delays after the first restart: 1, 2, 4, 8, 16, then 30 each.
    let k = restarts.saturating_sub(1);
    let doubling = (1u64 << k.min(5)) - 1;
    doubling.saturating_add(k.saturating_sub(5).saturating_mul(30))
}

/// Every word-level parser on `text` (for the fuzz test).
#[cfg(test)]
pub fn parse_for_tests(text: &str, imp: &mut Import) -> usize {
    let words = split_words(text);
    let pairs = env_pairs(text);
    let expanded: usize = words
        .iter()
        .map(|w| expand(w, "p", "s", "k", imp).len())
        .sum();
    let _ = wildcard(text.as_bytes(), b"some-file.conf");
    words.len() + pairs.len() + expanded + strip_comment(text).len()
}

/// `environment=A="1",B='x,y',C=3`: the pairs, quotes removed.
fn env_pairs(v: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = v.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.trim().is_empty() {
            return out;
        }
        let mut val = String::new();
        let mut quote = None;
        while let Some(&c) = chars.peek() {
            match (quote, c) {
                (None, ',') => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                _ => val.push(c),
            }
            chars.next();
        }
        out.push((key.trim().to_owned(), val.trim().to_owned()));
    }
}

/// Splits a command as supervisord's shlex does: spaces separate words; quotes and a
/// backslash outside single quotes keep characters together.
fn split_words(cmd: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = cmd.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
                continue;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                }
                in_word = false;
                continue;
            }
            (None, c) => cur.push(c),
        }
        in_word = true;
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// A word with supervisord's `%(…)s` expansions made sh: `%(ENV_X)s` becomes `"${X}"`
/// (expanded when the service starts, from the environment it inherits), `%(program_name)s`
/// the name; the rest is quoted. An unknown expansion is kept literally and noted.
fn expand(word: &str, program: &str, source: &str, key: &str, imp: &mut Import) -> String {
    let mut out = String::new();
    let mut lit = String::new();
    let mut rest = word;
    while let Some(i) = rest.find('%') {
        lit.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(r) = rest.strip_prefix("%%") {
            lit.push('%');
            rest = r;
            continue;
        }
        let Some((inner, after)) = rest.strip_prefix("%(").and_then(|r| r.split_once(')')) else {
            lit.push('%');
            rest = &rest[1..];
            continue;
        };
        let conv_len = after
            .find(|c: char| c.is_ascii_alphabetic())
            .map(|p| p + 1)
            .unwrap_or(0);
        let after = &after[conv_len..];
        if let Some(var) = inner.strip_prefix("ENV_") {
            if !lit.is_empty() {
                out.push_str(&sh_quote(&std::mem::take(&mut lit)));
            }
            out.push_str(&format!("\"${{{var}}}\""));
        } else if inner == "program_name" || inner == "group_name" {
            lit.push_str(program);
        } else if inner == "process_num" {
            lit.push('0');
        } else {
            imp.note(
                source,
                key,
                &format!("%({inner}) not expanded (kept as written)"),
            );
            lit.push_str(&rest[..rest.len() - after.len()]);
        }
        rest = after;
    }
    lit.push_str(rest);
    if !lit.is_empty() || out.is_empty() {
        out.push_str(&sh_quote(&lit));
    }
    out
}

/// A value with only the name expansions applied (for env/ files, read without a shell).
fn literal(v: &str, program: &str) -> String {
    v.replace("%(program_name)s", program)
        .replace("%(group_name)s", program)
        .replace("%%", "%")
}

/// Parses one ini file into `out`; `[include] files=` of the top file are followed.
fn parse_file(
    path: &Path,
    out: &mut Vec<Section>,
    imp: &mut Import,
    top: bool,
) -> Result<(), String> {
    let text = read_text(path)?;
    let shown = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let start = out.len();
    let mut key: Option<usize> = None;
    for raw in text.lines() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with(';') || trimmed.starts_with('#') {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            // A continuation of the previous value (multi-line environment=, command=).
            let here = out.len() > start;
            if let (Some(sec), Some(k), true) = (out.last_mut(), key, here) {
                let v = &mut sec.keys[k].1;
                v.push(' ');
                v.push_str(strip_comment(trimmed));
            }
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            out.push(Section {
                name: name.trim().to_owned(),
                file: shown.clone(),
                keys: Vec::new(),
            });
            key = None;
            continue;
        }
        let here = out.len() > start;
        let Some(sec) = out.last_mut().filter(|_| here) else {
            imp.note(&shown, trimmed, "outside any section: ignored");
            continue;
        };
        let Some(eq) = trimmed.find(['=', ':']) else {
            imp.note(&shown, trimmed, "not a key = value line: ignored");
            continue;
        };
        let k = trimmed[..eq].trim().to_ascii_lowercase();
        let v = strip_comment(trimmed[eq + 1..].trim()).to_owned();
        sec.keys.push((k, v));
        key = Some(sec.keys.len() - 1);
    }
    if !top {
        return Ok(());
    }
    let includes: Vec<String> = out[start..]
        .iter()
        .filter(|s| s.name == "include")
        .filter_map(|s| get(s, "files").map(str::to_owned))
        .collect();
    // `supervisord.conf` has the parent "", which read_dir cannot list.
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    for pattern in includes.iter().flat_map(|v| v.split_whitespace()) {
        let matched = glob(&base.join(pattern));
        if matched.is_empty() {
            imp.note(
                &shown,
                "[include] files",
                &format!("'{pattern}' matches no file here: not followed"),
            );
        }
        for m in matched {
            parse_file(&m, out, imp, false)?;
        }
    }
    Ok(())
}

/// `value ; comment` → `value` (supervisord needs a space before an inline `;`).
fn strip_comment(v: &str) -> &str {
    match v.find(" ;").or_else(|| v.find("\t;")) {
        Some(i) => v[..i].trim_end(),
        None => v,
    }
}

/// Files matching a pattern whose last component may hold `*` and `?`, sorted.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    super::list(dir, &mut Import::default())
        .into_iter()
        .filter(|n| wildcard(name.as_bytes(), n.as_bytes()))
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect()
}

/// Whether `text` matches `pat` with `*` (any run) and `?` (one byte): on a mismatch, the
/// last `*` takes one more byte, so the time stays linear in practice (no recursion).
fn wildcard(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(
            split_words(r#"/bin/x -a "b c" 'd e' f\ g"#),
            ["/bin/x", "-a", "b c", "d e", "f g"]
        );
        assert_eq!(split_words(r#"x "" y"#), ["x", "", "y"]);
    }

    #[test]
    fn env() {
        assert_eq!(
            env_pairs(r#"A="1",B='x,y', C=3,D="%(ENV_HOME)s""#),
            [
                ("A".into(), "1".into()),
                ("B".into(), "x,y".into()),
                ("C".into(), "3".into()),
                ("D".into(), "%(ENV_HOME)s".into())
            ]
        );
    }

    #[test]
    fn expansions() {
        let mut imp = Import::default();
        assert_eq!(
            expand("--port=%(ENV_PORT)s", "web", "s", "k", &mut imp),
            "--port=\"${PORT}\""
        );
        assert_eq!(
            expand(
                "/var/%(program_name)s.%(process_num)02d",
                "web",
                "s",
                "k",
                &mut imp
            ),
            "/var/web.0"
        );
        assert_eq!(expand("100%%", "web", "s", "k", &mut imp), "'100%'");
        assert!(imp.notes.is_empty());
        assert_eq!(
            expand("%(here)s/x", "web", "s", "k", &mut imp),
            "'%(here)s/x'"
        );
        assert_eq!(imp.notes.len(), 1);
    }

    #[test]
    fn globs() {
        assert!(wildcard(b"*.conf", b"app.conf"));
        assert!(!wildcard(b"*.conf", b"app.ini"));
        assert!(wildcard(b"a?c*", b"abcdef"));
        assert!(wildcard(b"*", b""));
        assert!(!wildcard(b"?", b""));
        assert!(wildcard(b"*a*b", b"xxaxxab"));
        assert!(!wildcard(b"*a*a*a*a*a*a*b", &[b'a'; 200]));
    }

    #[test]
    fn backoff() {
        assert_eq!(backoff_sum(0), 0);
        assert_eq!(backoff_sum(3), 3); // 0 + 1 + 2
        assert_eq!(backoff_sum(10), 1 + 2 + 4 + 8 + 16 + 30 * 4);
        for r in 0..40 {
            let looped: u64 = (1..r).map(|i| (1u64 << (i - 1).min(5)).min(30)).sum();
            assert_eq!(backoff_sum(r), looped, "{r}");
        }
        assert_eq!(backoff_sum(u64::MAX), u64::MAX);
    }
}
