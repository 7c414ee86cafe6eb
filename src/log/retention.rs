//! Archive names (`@YYYYMMDDTHHMMSS.nnnnnnnnnZ.log[.gz]`) and pruning by count, size, age.

use super::dirfd;
use std::os::fd::OwnedFd;
use std::time::Duration;

/// Length of the stem `@20261122T223001.123456789Z`.
const STEM_LEN: usize = 27;

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

/// One archive: its stem and the regular files holding it (`.log`, `.log.gz`, or both
/// while the compressor finishes).
#[derive(Debug)]
pub struct Archive {
    /// `@…Z`, the sort key.
    pub stem: String,
    /// Time in the name, ns since the epoch.
    pub ns: i128,
    /// Bytes on disk (the `.gz` when it exists).
    pub size: u64,
    /// File names to delete to remove it.
    pub files: Vec<String>,
}

/// The archives in `dir`, oldest first. Anything that is not a regular file (a planted
/// symlink, a directory) is ignored, so it is never deleted or followed.
pub fn list(dir: &OwnedFd) -> nix::Result<Vec<Archive>> {
    let mut out: Vec<Archive> = Vec::new();
    for name in dirfd::list(dir)? {
        let (stem, gz) = if let Some(s) = name.strip_suffix(".log.gz") {
            (s, true)
        } else if let Some(s) = name.strip_suffix(".log") {
            (s, false)
        } else {
            continue;
        };
        let Some(ns) = parse_stem(stem) else { continue };
        let Ok(st) = dirfd::stat_in(dir, &name) else {
            continue;
        };
        if !dirfd::is_regular(&st) {
            continue;
        }
        let size = st.st_size as u64;
        match out.iter_mut().find(|a| a.stem == stem) {
            Some(a) => {
                if gz {
                    a.size = size;
                }
                a.files.push(name);
            }
            None => out.push(Archive {
                stem: stem.to_owned(),
                ns,
                size,
                files: vec![name],
            }),
        }
    }
    out.sort_by(|a, b| a.stem.cmp(&b.stem));
    Ok(out)
}

/// What to keep: `--keep`, `--max-total`, `--max-age`.
pub struct Policy {
    /// At most this many archives.
    pub keep: usize,
    /// Archives together at most this many bytes.
    pub max_total: Option<u64>,
    /// Archives named at most this long ago.
    pub max_age: Option<Duration>,
}

/// Deletes the oldest archives until `policy` holds; returns how many were deleted.
pub fn prune(dir: &OwnedFd, policy: &Policy, now_ns: i128) -> nix::Result<usize> {
    let archives = list(dir)?;
    let mut total: u64 = archives.iter().map(|a| a.size).sum();
    let mut left = archives.len();
    let mut deleted = 0;
    for a in &archives {
        let too_many = left > policy.keep;
        let too_big = policy.max_total.is_some_and(|m| total > m);
        let too_old = policy
            .max_age
            .is_some_and(|age| now_ns - a.ns > age.as_nanos() as i128);
        if !(too_many || too_big || too_old) {
            break;
        }
        remove(dir, a)?;
        total -= a.size;
        left -= 1;
        deleted += 1;
    }
    Ok(deleted)
}

/// Deletes the oldest archive, if any (disk full); returns whether one was deleted.
pub fn remove_oldest(dir: &OwnedFd) -> bool {
    match list(dir) {
        Ok(a) => a.first().is_some_and(|a| remove(dir, a).is_ok()),
        Err(_) => false,
    }
}

fn remove(dir: &OwnedFd, a: &Archive) -> nix::Result<()> {
    for f in &a.files {
        dirfd::unlink_in(dir, f)?;
    }
    Ok(())
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
}
