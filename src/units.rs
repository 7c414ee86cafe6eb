//! Size and duration values as users write them: `10MiB`, `1M`, `500KB`, `250ms`, `1h`, `1d`.

use std::time::Duration;

/// Parses a size: a whole number with an optional unit `B`, `K`/`KiB`, `M`/`MiB`, `G`/`GiB`
/// (powers of 1024) or `KB`, `MB`, `GB` (powers of 1000). A bare number is bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let expected =
        "expected a whole number with an optional unit B, K, KiB, M, MiB, G, GiB, KB, MB or GB";
    if num.is_empty() {
        return Err(format!("'{s}' is not a size ({expected})"));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is too large a size"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" | "b" => 1,
        "K" | "k" | "KiB" | "Ki" => 1 << 10,
        "M" | "m" | "MiB" | "Mi" => 1 << 20,
        "G" | "g" | "GiB" | "Gi" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(format!("'{s}' has an unknown size unit ({expected})")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large a size"))
}

/// Parses a duration: a whole number with a unit `ms`, `s`, `m`, `h` or `d`. A bare number is
/// refused, since `5` could mean seconds or milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let expected = "expected a whole number with a unit ms, s, m, h or d";
    if num.is_empty() || unit.is_empty() {
        return Err(format!("'{s}' is not a duration ({expected})"));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is too long a duration"))?;
    let ms_per: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("'{s}' has an unknown duration unit ({expected})")),
    };
    n.checked_mul(ms_per)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("'{s}' is too long a duration"))
}

/// Parses a plain whole number of milliseconds (service files such as `timeout-kill`).
pub fn parse_millis(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{s}' is not a whole number of milliseconds"));
    }
    t.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("'{s}' is too large a number of milliseconds"))
}

/// Parses decimal seconds, `10`, `2.5` or `.25` (to the nanosecond; further digits are
/// dropped). `None` if `s` is not of that form; an error if it is too large.
pub fn parse_secs(s: &str) -> Option<Result<Duration, String>> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + frac.len() == 0 || !digits(whole) || !digits(frac) {
        return None;
    }
    let secs = if whole.is_empty() {
        Ok(0)
    } else {
        whole.parse::<u64>()
    };
    let nanos = frac.bytes().chain(std::iter::repeat(b'0')).take(9);
    let nanos = nanos.fold(0u32, |n, b| n * 10 + (b - b'0') as u32);
    Some(
        secs.map(|s| Duration::new(s, 0) + Duration::from_nanos(nanos as u64))
            .map_err(|_| format!("'{s}' is too large a number of seconds")),
    )
}

/// `10s`, `2.5s`, `0.001s`: seconds with no trailing zeros (no float formatting).
pub fn fmt_secs(d: Duration) -> String {
    let mut s = format!("{}.{:09}", d.as_secs(), d.subsec_nanos());
    s.truncate(s.trim_end_matches('0').trim_end_matches('.').len());
    s.push('s');
    s
}

/// `512 B`, `1 KiB`, `1.5 MiB`: powers of 1024, one decimal unless whole, rounded half to
/// even (the output of humansize's `BINARY.decimal_places(1)`, in integers).
pub fn fmt_size(b: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut k = 0;
    while k < 6 && b >> (10 * (k + 1)) > 0 {
        k += 1;
    }
    let shift = 10 * k as u32;
    let (whole, rem) = (b >> shift, b & ((1u64 << shift) - 1));
    if rem == 0 {
        return format!("{whole} {}", UNITS[k]);
    }
    // rem < 2^60, so ten times it still fits.
    let (mut tenth, r) = ((rem * 10) >> shift, (rem * 10) & ((1u64 << shift) - 1));
    let half = 1u64 << (shift - 1);
    if r > half || (r == half && tenth % 2 == 1) {
        tenth += 1;
    }
    let (whole, tenth) = if tenth == 10 {
        (whole + 1, 0)
    } else {
        (whole, tenth)
    };
    format!("{whole}.{tenth} {}", UNITS[k])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("2K"), Ok(2048));
        assert_eq!(parse_size("3G"), Ok(3 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("10XB").unwrap_err().contains("'10XB'"));
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("17179869184G").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5y").unwrap_err().contains("'5y'"));
        assert_eq!(parse_millis("5000"), Ok(Duration::from_millis(5000)));
        assert!(parse_millis("5s").is_err());
    }

    #[test]
    fn seconds_parse_and_print_without_floats() {
        assert_eq!(parse_secs("10"), Some(Ok(Duration::from_secs(10))));
        assert_eq!(parse_secs("2.5"), Some(Ok(Duration::from_millis(2500))));
        assert_eq!(parse_secs(".25"), Some(Ok(Duration::from_millis(250))));
        assert_eq!(parse_secs("1."), Some(Ok(Duration::from_secs(1))));
        assert_eq!(
            parse_secs("0.0000000019"),
            Some(Ok(Duration::from_nanos(1)))
        );
        for no in ["", ".", "500ms", "1m", "-1", "1e3", "1.2.3"] {
            assert_eq!(parse_secs(no), None, "{no}");
        }
        assert!(
            parse_secs("99999999999999999999")
                .unwrap()
                .unwrap_err()
                .contains("too large")
        );
        for (d, want) in [
            (10_000, "10s"),
            (2_500, "2.5s"),
            (1, "0.001s"),
            (0, "0s"),
            (90_000, "90s"),
        ] {
            assert_eq!(fmt_secs(Duration::from_millis(d)), want);
        }
    }

    #[test]
    fn sizes_print_as_humansize_did() {
        use humansize::{BINARY, format_size};
        let mut values = vec![
            0u64,
            1,
            1023,
            1024,
            1025,
            1152,
            1280,
            1536,
            1024 * 1023 + 1000,
            1 << 40,
            u64::MAX / 3,
        ];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x >> (x % 50));
        }
        for k in 1..5u32 {
            for m in 0..4096u64 {
                // Steps of 1/40 of a unit: exact tenths and exact halves of a tenth (ties).
                values.push((m << (10 * k)) / 40);
            }
        }
        for b in values.into_iter().filter(|&b| b < 1 << 53) {
            assert_eq!(fmt_size(b), format_size(b, BINARY.decimal_places(1)), "{b}");
        }
    }
}
