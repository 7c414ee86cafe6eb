//! `tend import FORMAT SRC OUT`: converts an s6-rc source tree, an s6-overlay v2 `/etc`
//! layout or a supervisord configuration into a tend service tree, and lists, one line each,
//! what it could not convert. Each format has a reader producing an [`Import`]; one writer
//! ([`writer::write`]) turns it into files.

mod s6;
mod s6rc;
mod s6v2;
mod supervisord;
mod writer;

use std::path::Path;

/// One service to write: its files and dependencies.
#[derive(Debug, Default)]
pub struct Service {
    /// The service (directory) name.
    pub name: String,
    /// (path in the service directory, content, executable), in the order added.
    pub files: Vec<(String, String, bool)>,
    /// Names written as `dependencies.d/NAME`.
    pub deps: Vec<String>,
}

impl Service {
    /// A service with no files yet.
    // Cold code called from many places: one copy, not one per call (binary size).
    #[inline(never)]
    pub fn new(name: &str) -> Self {
        Service {
            name: name.to_owned(),
            ..Default::default()
        }
    }

    /// Adds a plain file holding `value` and a newline (an empty value: an empty flag file).
    // Cold code called from many places: one copy, not one per call (binary size).
    #[inline(never)]
    pub fn value(&mut self, file: &str, value: &str) {
        let text = if value.is_empty() {
            String::new()
        } else {
            format!("{value}\n")
        };
        self.files.push((file.to_owned(), text, false));
    }

    /// Adds an executable script.
    // Cold code called from many places: one copy, not one per call (binary size).
    #[inline(never)]
    pub fn script(&mut self, file: &str, text: String) {
        self.files.push((file.to_owned(), text, true));
    }

    /// Whether a file named `file` was added.
    // Cold code called from many places: one copy, not one per call (binary size).
    #[inline(never)]
    pub fn has(&self, file: &str) -> bool {
        self.files.iter().any(|f| f.0 == file)
    }

    /// Adds a dependency once.
    // Cold code called from many places: one copy, not one per call (binary size).
    #[inline(never)]
    pub fn dep(&mut self, name: &str) {
        if !self.deps.iter().any(|d| d == name) {
            self.deps.push(name.to_owned());
        }
    }
}

/// What a reader produced: the services and one note per item not converted.
#[derive(Debug, Default)]
pub struct Import {
    /// Services in the order found.
    pub services: Vec<Service>,
    /// `SOURCE: KEY: why`, one per item not (or only partly) converted.
    pub notes: Vec<String>,
    /// The first source file or directory that could not be read: then nothing is written.
    /// (Recorded rather than returned with `?` at every read: less code, same outcome.)
    pub fatal: Option<String>,
}

impl Import {
    /// Records that `key` of `source` was not converted, and why.
    // Cold code called from many places: one copy, not one per call (binary size).
    #[inline(never)]
    pub fn note(&mut self, source: &str, key: &str, why: &str) {
        self.notes
            .push(crate::service::one_line(&format!("{source}: {key}: {why}")));
    }
}

/// Converts the configuration at `src` in `format` (s6-rc, s6-overlay-v2 or supervisord)
/// into a service tree written at `out`. Ok: what was converted and the notes on what was
/// not; Err: why nothing was written.
pub fn convert(format: &str, src: &Path, out: &Path) -> Result<Import, String> {
    let mut imp = Import::default();
    let read = match format {
        "s6-rc" => s6rc::read(src, &mut imp),
        "s6-overlay-v2" => s6v2::read(src, &mut imp),
        "supervisord" => supervisord::read(src, &mut imp),
        other => Err(format!(
            "'{other}' is not a format tend imports (expected s6-rc, s6-overlay-v2 or supervisord)"
        )),
    };
    read.and_then(|()| imp.fatal.take().map_or(Ok(()), Err))?;
    writer::write(out, &imp)?;
    Ok(imp)
}

/// The text of a source file (bounded, never from a FIFO), or an error naming it.
fn read_text(path: &Path) -> Result<String, String> {
    let bytes =
        crate::service::read_bounded(path).map_err(|e| format!("{}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))
}

/// The text of a source file that must be converted, else "" with the error in `imp.fatal`.
fn text_or_fatal(path: &Path, imp: &mut Import) -> String {
    read_text(path).unwrap_or_else(|e| {
        imp.fatal.get_or_insert(e);
        String::new()
    })
}

/// Names in `dir` (hidden ones skipped), sorted; empty when `dir` is absent. Any other
/// error is recorded in `imp.fatal`.
// Cold code called from many places: one copy, not one per call (binary size).
#[inline(never)]
fn list(dir: &Path, imp: &mut Import) -> Vec<String> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound && imp.fatal.is_none() {
                imp.fatal = Some(format!("{}: cannot read: {e}", dir.display()));
            }
            return Vec::new();
        }
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    crate::service::sort_by_str(&mut names, |n| n);
    names
}

/// `name` made a valid service name: every other character becomes `-` (and a leading
/// non-alphanumeric one is dropped); the change is noted.
fn service_name(name: &str, source: &str, imp: &mut Import) -> String {
    if crate::name::is_valid(name) {
        return name.to_owned();
    }
    let mut n: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && crate::name::is_name_char(c as u8) {
                c
            } else {
                '-'
            }
        })
        .collect();
    n = n
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .take(253)
        .collect();
    if n.is_empty() {
        n = "service".into();
    }
    imp.note(
        source,
        "name",
        &format!("renamed to '{n}' (not a valid service name)"),
    );
    n
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The hand parsers never panic on any text (slicing is on char boundaries).
        #[test]
        fn parsers_never_panic(text in "(\\PC|[ \\t\\n%()\"'\\\\=,;-]|s6-notifyoncheck |s6-setuidgid |-c |%\\(ENV_|with-contenv ){0,40}") {
            let mut imp = Import::default();
            let _ = s6::script(&text, "s", "run", &mut imp);
            let _ = s6::command_line(&text, "s", "up", &mut imp);
            let _ = s6::unwrap_for_tests(&text);
            let _ = supervisord::parse_for_tests(&text, &mut imp);
            let _ = service_name(&text, "s", &mut imp);
        }
    }
}
