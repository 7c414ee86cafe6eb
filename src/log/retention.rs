//! Archive names (`@YYYYMMDDTHHMMSS.nnnnnnnnnZ.log[.gz]`) and listing (pruning: `index`).

use super::dirfd;
use std::os::fd::OwnedFd;

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
        let Some(stem) = name
            .strip_suffix(".log.gz")
            .or_else(|| name.strip_suffix(".log"))
        else {
            continue;
        };
        let Some(ns) = parse_stem(stem) else { continue };
        let Ok(st) = dirfd::stat_in(dir, &name) else {
            continue;
        };
        if !dirfd::is_regular(&st) {
            continue;
        }
        out.push(Archive {
            stem: stem.to_owned(),
            ns,
            size: st.st_size as u64,
            files: vec![name],
        });
    }
    // Sorted, the `.log` and `.log.gz` of one archive are neighbours: merge them (a linear
    // pass, not a search per name: directories hold thousands of archives).
    out.sort_by(|a, b| a.stem.cmp(&b.stem).then(a.files.cmp(&b.files)));
    let mut merged: Vec<Archive> = Vec::with_capacity(out.len());
    for a in out {
        match merged.last_mut() {
            Some(m) if m.stem == a.stem => {
                // `.log.gz` sorts after `.log`: its size is the one on disk that stays.
                m.size = a.size;
                m.files.extend(a.files);
            }
            _ => merged.push(a),
        }
    }
    Ok(merged)
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
