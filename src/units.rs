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
}
