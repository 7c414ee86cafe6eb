//! Timestamps as tend writes them in records: RFC 3339 (archive names: `log::archive`).
//! Hand-parsed (the `time` crate's parsing feature would add weight for two formats).

/// Nanoseconds since the Unix epoch.
pub type Nanos = i128;

/// Parses RFC 3339: `2026-11-22T22:30:01Z`, `2026-11-22T22:30:01.123456789Z`,
/// `2026-11-22T23:30:01+01:00`.
pub fn parse_rfc3339(s: &[u8]) -> Option<Nanos> {
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    if s[13] != b':' || s[16] != b':' {
        return None;
    }
    let base = civil(
        num(&s[0..4])?,
        num(&s[5..7])?,
        num(&s[8..10])?,
        num(&s[11..13])?,
        num(&s[14..16])?,
        num(&s[17..19])?,
    )?;
    let (frac, rest) = fraction(&s[19..])?;
    let offset: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let v = num(&[*h1, *h2])? * 3600 + num(&[*m1, *m2])? * 60;
            if *sign == b'+' { v } else { -v }
        }
        _ => return None,
    };
    Some(Nanos::from(base - offset) * 1_000_000_000 + frac)
}

/// An optional `.digits` fraction as nanoseconds, and what follows it.
fn fraction(s: &[u8]) -> Option<(Nanos, &[u8])> {
    let Some(rest) = s.strip_prefix(b".") else {
        return Some((0, s));
    };
    let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let mut v: Nanos = 0;
    for (i, d) in rest[..n].iter().enumerate() {
        // Digits beyond nanoseconds are ignored, not rounded.
        if i < 9 {
            v = v * 10 + Nanos::from(d - b'0');
        }
    }
    for _ in n..9 {
        v *= 10;
    }
    Some((v, &rest[n..]))
}

fn num(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0i64, |a, d| a * 10 + i64::from(d - b'0')))
}

/// Seconds since the epoch of a UTC civil time (Howard Hinnant's days_from_civil).
fn civil(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = parse_rfc3339(b"2026-11-22T22:30:01.123456789Z").unwrap();
        assert_eq!(t, 1_795_386_601_123_456_789);
        assert_eq!(parse_rfc3339(b"2026-11-22T22:30:01.123456Z"), Some(t - 789));
        assert_eq!(
            parse_rfc3339(b"2026-11-22T22:30:01Z"),
            Some(t - 123_456_789)
        );
        assert_eq!(
            parse_rfc3339(b"2026-11-22T23:30:01+01:00"),
            Some(t - 123_456_789)
        );
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00Z"), Some(0));
        for bad in [
            &b"hello"[..],
            b"2026-13-22T22:30:01Z",
            b"2026-11-22T22:30:01",
            b"2026-11-22T22:30:01.Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }
}
