//! Archive names and listings, the one definition shared by retention (the writer),
//! `tend logs` and `tend logs -f` (the readers).
//!
//! An archive is `@YYYYMMDDTHHMMSS.nnnnnnnnnZ.log`, or `.log.gz` once compressed. While the
//! compressor finishes, both files of one stem exist; they are one archive. Stems sort by
//! name in time order, and the writer never reuses or goes back on a stem.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Length of the stem `@20261122T223001.123456789Z`.
const STEM_LEN: usize = 27;
/// A listing that keeps changing under us is retried at most this often.
const STABLE_TRIES: usize = 20;

/// The stem of the archive made at `ns` nanoseconds since the epoch (UTC, sortable by name).
pub fn stem(ns: i128) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ns)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "@{:04}{:02}{:02}T{:02}{:02}{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// The time encoded in an archive stem, in nanoseconds since the epoch.
pub fn parse_stem(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    if b.len() != STEM_LEN || b[0] != b'@' || b[9] != b'T' || b[16] != b'.' || b[26] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let d = &s[r];
        d.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| d.parse().ok())?
    };
    let month = time::Month::try_from(num(5..7)? as u8).ok()?;
    let date = time::Date::from_calendar_date(num(1..5)? as i32, month, num(7..9)? as u8).ok()?;
    let tod = time::Time::from_hms_nano(
        num(10..12)? as u8,
        num(12..14)? as u8,
        num(14..16)? as u8,
        num(17..26)?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, tod)
            .assume_utc()
            .unix_timestamp_nanos(),
    )
}

/// The stem of an archive file name and whether it is the compressed form; `None` for
/// anything else (`current`, `lock`, a `.gz.tmp` being written).
pub fn split_name(name: &str) -> Option<(&str, bool)> {
    let (stem, gz) = if let Some(s) = name.strip_suffix(".log.gz") {
        (s, true)
    } else {
        (name.strip_suffix(".log")?, false)
    };
    parse_stem(stem).map(|_| (stem, gz))
}

/// One archive: its stem and which of its files exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archive {
    /// `@…Z`, the sort key.
    pub stem: String,
    /// Time in the name, ns since the epoch.
    pub ns: i128,
    /// `STEM.log` exists.
    pub log: bool,
    /// `STEM.log.gz` exists.
    pub gz: bool,
    /// Bytes on disk (the `.gz` when it exists); 0 in readers' listings.
    pub size: u64,
    /// File names to delete to remove it.
    pub files: Vec<String>,
}

impl Archive {
    /// `STEM.log`.
    pub fn log_name(&self) -> String {
        format!("{}.log", self.stem)
    }

    /// `STEM.log.gz`.
    pub fn gz_name(&self) -> String {
        format!("{}.log.gz", self.stem)
    }
}

/// Groups file names into archives, oldest first; `size_of` gives a file's size, or `None`
/// to leave it out (not a regular file, vanished).
pub fn group(
    names: impl IntoIterator<Item = String>,
    mut size_of: impl FnMut(&str) -> Option<u64>,
) -> Vec<Archive> {
    let mut map: BTreeMap<String, Archive> = BTreeMap::new();
    for name in names {
        let Some((stem, gz)) = split_name(&name) else {
            continue;
        };
        let Some(size) = size_of(&name) else { continue };
        let a = map.entry(stem.to_owned()).or_insert_with(|| Archive {
            stem: stem.to_owned(),
            ns: parse_stem(stem).unwrap_or(0),
            log: false,
            gz: false,
            size,
            files: Vec::new(),
        });
        if gz {
            a.gz = true;
            a.size = size;
        } else {
            a.log = true;
        }
        a.files.push(name);
    }
    map.into_values().collect()
}

/// The archives in `dir` (the writer's view), oldest first. Anything that is not a regular
/// file (a planted symlink, a FIFO, a directory) is left out, so it is never deleted or
/// followed.
pub fn list(dir: &OwnedFd) -> nix::Result<Vec<Archive>> {
    let names = super::dirfd::list(dir)?;
    Ok(group(names, |n| {
        let st = super::dirfd::stat_in(dir, n).ok()?;
        super::dirfd::is_regular(&st).then_some(st.st_size as u64)
    }))
}

/// The archives of a directory as a reader sees them, oldest first, from a listing that
/// missed nothing.
///
/// One `readdir` pass is not a snapshot: while the compressor renames `X.log.gz.tmp` to
/// `X.log.gz` and unlinks `X.log`, a pass can see neither name and lose archive X. A lost
/// stem shows up as two passes that disagree, so passes are repeated until two in a row
/// agree on the set of stems (the `.log`/`.log.gz` form may differ: it is one archive).
pub fn list_stable(dir: &Path) -> std::io::Result<Vec<Archive>> {
    let once = || -> std::io::Result<Vec<Archive>> {
        let mut names = Vec::new();
        for ent in std::fs::read_dir(dir)? {
            if let Ok(n) = ent?.file_name().into_string() {
                names.push(n);
            }
        }
        Ok(group(names, |_| Some(0)))
    };
    let stems = |v: &[Archive]| v.iter().map(|a| a.stem.clone()).collect::<Vec<_>>();
    let mut last = once()?;
    for _ in 0..STABLE_TRIES {
        let next = once()?;
        if stems(&next) == stems(&last) {
            return Ok(merge(last, next));
        }
        last = next;
    }
    Ok(last)
}

/// Two agreeing listings as one: a file seen in either counts (the reader tries both forms).
fn merge(a: Vec<Archive>, b: Vec<Archive>) -> Vec<Archive> {
    a.into_iter()
        .zip(b)
        .map(|(x, mut y)| {
            y.log |= x.log;
            y.gz |= x.gz;
            y
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_round_trip_and_sort() {
        let ns = 1_795_386_601_123_456_789i128;
        assert_eq!(stem(ns), "@20261122T223001.123456789Z");
        assert_eq!(parse_stem("@20261122T223001.123456789Z"), Some(ns));
        assert!(stem(ns + 1) > stem(ns));
        assert_eq!(parse_stem("@20261322T223001.123456789Z"), None);
        assert_eq!(parse_stem("current"), None);
    }

    #[test]
    fn both_forms_of_a_stem_are_one_archive() {
        let names = [
            "@20261122T223002.000000000Z.log",
            "@20261122T223001.000000000Z.log.gz",
            "@20261122T223001.000000000Z.log",
            "@20261122T223003.000000000Z.log.gz.tmp",
            "current",
            "lock",
            "@junk.log",
        ];
        let got = group(
            names.iter().map(|s| s.to_string()),
            |n| Some(n.len() as u64),
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].stem, "@20261122T223001.000000000Z");
        assert!(got[0].log && got[0].gz);
        assert_eq!(got[0].size, 34, "the .gz's size counts");
        assert_eq!(got[0].files.len(), 2);
        assert!(got[1].log && !got[1].gz);
    }
}
