//! The flags of `tend log` (also taken by `run`, `init`, `TEND_*` variables and a service's
//! `log-options` file), parsed into one validated [`LogOptions`].

use crate::units::{parse_duration, parse_size};
use std::time::Duration;

/// Record format of a log directory (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Kubernetes CRI: `<time> <stream> <P|F> <line>`.
    Cri,
    /// Docker json-file: `{"log":…,"stream":…,"time":…}`.
    Json,
    /// s6-log `T` style: `<time> <line>`, microseconds.
    Ts,
    /// The bytes exactly as written.
    Plain,
}

/// What to do when the disk or the writer cannot keep up (`--on-full`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFull {
    /// Stop reading the pipe so the producer blocks: nothing is lost.
    Block,
    /// Drop bytes and write a `tend: dropped N bytes` marker record once writing resumes.
    Drop,
}

/// The form of the `--tee` copy (`--tee-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeeFormat {
    /// The records exactly as written to the file.
    Same,
    /// The raw line.
    Plain,
    /// `NAME | line`.
    Prefixed,
}

/// Everything that shapes one log directory: format, framing, rotation and retention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// Record format.
    pub format: Format,
    /// Longest record payload; longer lines are split.
    pub max_line: usize,
    /// Rotate `current` before a write would pass this many bytes.
    pub rotate_size: u64,
    /// Also rotate when `current` is this old.
    pub rotate_every: Option<Duration>,
    /// Keep at most this many archives.
    pub keep: usize,
    /// Delete oldest archives while all archives together exceed this.
    pub max_total: Option<u64>,
    /// Delete archives older than this.
    pub max_age: Option<Duration>,
    /// Gzip archives in the background.
    pub compress: bool,
    /// Program and arguments run with the archive path appended after each rotation.
    pub on_rotate: Option<Vec<String>>,
    /// Disk-full policy.
    pub on_full: OnFull,
    /// Also copy records to tend's own stdout/stderr.
    pub tee: bool,
    /// The copy's form; `None`: the command's default (`prefixed` for init, else `same`).
    pub tee_format: Option<TeeFormat>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            format: Format::Cri,
            max_line: 16 * 1024,
            rotate_size: 10 << 20,
            rotate_every: None,
            keep: 5,
            max_total: None,
            max_age: None,
            compress: false,
            on_rotate: None,
            on_full: OnFull::Block,
            tee: false,
            tee_format: None,
        }
    }
}

/// How one flag's value is applied (a bare `--tee` is applied as `""`); Err says what was
/// expected, without the flag's name.
type Apply = fn(&mut LogOptions, &str) -> Result<(), String>;

/// Every log flag by long name, with how its value is applied: the one list. `cli` splices
/// the same flags into `log`, `run` and `init` (a unit test there keeps it in step), `cmd`
/// reads their `TEND_*` variables from it, `log-options` files and error hints use it.
const TABLE: &[(&str, Apply)] = &[
    ("format", |o, v| {
        let words = [
            ("cri", Format::Cri),
            ("json", Format::Json),
            ("ts", Format::Ts),
            ("plain", Format::Plain),
        ];
        o.format = pick(v, "a format", &words)?;
        Ok(())
    }),
    ("max-line", |o, v| {
        let n = parse_size(v)?;
        if n < MIN_MAX_LINE as u64 || n > MAX_MAX_LINE as u64 {
            return Err(format!(
                "'{v}' is out of range (expected {MIN_MAX_LINE}B to 1MiB)"
            ));
        }
        o.max_line = n as usize;
        Ok(())
    }),
    ("rotate-size", |o, v| {
        let n = parse_size(v)?;
        if n < 4096 {
            return Err(format!("'{v}' is too small (expected at least 4KiB)"));
        }
        o.rotate_size = n;
        Ok(())
    }),
    ("rotate-every", |o, v| {
        o.rotate_every = Some(nonzero_duration(v)?);
        Ok(())
    }),
    ("keep", |o, v| {
        o.keep = v
            .parse()
            .map_err(|_| format!("'{v}' is not a whole number of archives"))?;
        Ok(())
    }),
    ("max-total", |o, v| {
        o.max_total = Some(parse_size(v)?);
        Ok(())
    }),
    ("max-age", |o, v| {
        o.max_age = Some(nonzero_duration(v)?);
        Ok(())
    }),
    ("compress", |o, v| {
        o.compress = pick(v, "a compression", &[("gzip", true), ("none", false)])?;
        Ok(())
    }),
    ("on-rotate", |o, v| {
        let argv: Vec<String> = v.split_whitespace().map(str::to_owned).collect();
        if argv.is_empty() {
            // Quote the value (blanks only) like every other error does.
            return Err(format!(
                "'{v}' is an empty command (expected a program and its arguments)"
            ));
        }
        o.on_rotate = Some(argv);
        Ok(())
    }),
    ("on-full", |o, v| {
        o.on_full = pick(
            v,
            "a policy",
            &[("block", OnFull::Block), ("drop", OnFull::Drop)],
        )?;
        Ok(())
    }),
    ("tee-format", |o, v| {
        let words = [
            ("same", TeeFormat::Same),
            ("plain", TeeFormat::Plain),
            ("prefixed", TeeFormat::Prefixed),
        ];
        o.tee_format = Some(pick(v, "a tee format", &words)?);
        Ok(())
    }),
    ("tee", |o, v| {
        o.tee = match v {
            "" | "1" | "true" | "yes" => true,
            "0" | "false" | "no" => false,
            v => return Err(format!("'{v}' is not a boolean (expected true or false)")),
        };
        Ok(())
    }),
];

/// The long names of every log flag, as written after `--` on the command line.
pub const FLAGS: &[&str] = &{
    let mut names = [""; TABLE.len()];
    let mut i = 0;
    while i < TABLE.len() {
        names[i] = TABLE[i].0;
        i += 1;
    }
    names
};

/// Smallest `--max-line`: a record must hold at least one 4-byte UTF-8 character.
const MIN_MAX_LINE: usize = 16;
/// Largest `--max-line`: bounds the per-stream carry buffer (RSS stays small).
const MAX_MAX_LINE: usize = 1 << 20;

impl LogOptions {
    /// Applies one flag by its long name (without `--`); `value` is `None` only for `tee`.
    /// Errors name the flag, the value and what was expected.
    pub fn set(&mut self, flag: &str, value: Option<&str>) -> Result<(), String> {
        let Some((_, apply)) = TABLE.iter().find(|(name, _)| *name == flag) else {
            return Err(format!(
                "--{flag} is not a log option (expected one of --{})",
                FLAGS.join(", --")
            ));
        };
        let value = match value {
            Some(v) => v,
            None if flag == "tee" => "",
            None => return Err(format!("--{flag} needs a value")),
        };
        apply(self, value).map_err(|msg| format!("--{flag}: {msg}"))
    }

    /// Applies the lines of a `log-options` file: one flag per line, `--flag value`,
    /// `--flag=value` or a bare `--tee`; blank lines and `#` comments are skipped.
    pub fn apply_lines(&mut self, text: &str) -> Result<(), String> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |e: String| format!("line {}: {e}", i + 1);
            let body = line
                .strip_prefix("--")
                .ok_or_else(|| at(format!("'{line}' is not a flag (expected --name value)")))?;
            let (flag, value) = match body.find(['=', ' ', '\t']) {
                Some(p) => (&body[..p], Some(body[p + 1..].trim())),
                None => (body, None),
            };
            self.set(flag, value).map_err(at)?;
        }
        Ok(())
    }
}

/// The value named by `v` among `words`; else `'v' is not WHAT (expected a, b or c)`.
fn pick<T: Copy>(v: &str, what: &str, words: &[(&str, T)]) -> Result<T, String> {
    if let Some((_, t)) = words.iter().find(|(w, _)| *w == v) {
        return Ok(*t);
    }
    let names: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
    let (last, rest) = names.split_last().unwrap_or((&"", &[]));
    Err(format!(
        "'{v}' is not {what} (expected {} or {last})",
        rest.join(", ")
    ))
}

fn nonzero_duration(v: &str) -> Result<Duration, String> {
    let d = parse_duration(v)?;
    if d.is_zero() {
        return Err(format!("'{v}' must be longer than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_apply_and_errors_name_flag_and_value() {
        let mut o = LogOptions::default();
        o.set("rotate-size", Some("1MiB")).unwrap();
        assert_eq!(o.rotate_size, 1 << 20);
        o.set("format", Some("json")).unwrap();
        assert_eq!(o.format, Format::Json);
        o.set("tee", None).unwrap();
        assert!(o.tee);
        let e = o.set("keep", Some("many")).unwrap_err();
        assert!(e.contains("--keep") && e.contains("'many'"), "{e}");
        let e = o.set("format", Some("xml")).unwrap_err();
        assert!(e.contains("--format") && e.contains("'xml'"), "{e}");
        assert!(o.set("bogus", Some("1")).is_err());
    }

    #[test]
    fn lines() {
        let mut o = LogOptions::default();
        o.apply_lines("# comment\n--keep 3\n--compress=gzip\n\n--tee\n")
            .unwrap();
        assert_eq!((o.keep, o.compress, o.tee), (3, true, true));
        let e = o.apply_lines("--keep 3\nkeep 4\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
    }

    #[test]
    fn blank_on_rotate_is_quoted() {
        // Found by fuzzing: the one error that did not quote the value it refused.
        let e = LogOptions::default()
            .set("on-rotate", Some(" \t"))
            .unwrap_err();
        assert!(
            e.starts_with("--on-rotate: ' \t' is an empty command"),
            "{e}"
        );
    }
}
