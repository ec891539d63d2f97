/*!
Sizes and durations as people write them on a command line: `256M`, `1G`, `64k`, `30s`,
`500ms`, `5m`, `1h`. Plain numbers are bytes and seconds.
*/

use std::time::Duration;

/// Parses a size: a number with an optional `k`, `M`, `G` or `T` suffix (powers of 1024,
/// `B`/`iB` accepted after it), e.g. `256M`, `1GiB`, `65536`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                _ => {
                    return Err(format!(
                        "{text:?}: unknown size unit {c:?} (use k, M, G or T)"
                    ))
                }
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: not a size (e.g. 256M, 1G, 65536)"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?}: too large"))
}

/// Parses a duration: a number with an optional `ms`, `s`, `m` or `h` suffix, e.g. `30s`,
/// `500ms`, `5m`; a plain number is seconds. Zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (digits, unit_ms) = if let Some(d) = t.strip_suffix("ms") {
        (d, 1)
    } else if let Some(d) = t.strip_suffix('s') {
        (d, 1000)
    } else if let Some(d) = t.strip_suffix('m') {
        (d, 60_000)
    } else if let Some(d) = t.strip_suffix('h') {
        (d, 3_600_000)
    } else {
        (t, 1000)
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: not a duration (e.g. 30s, 500ms, 5m)"))?;
    let ms = n
        .checked_mul(unit_ms)
        .ok_or_else(|| format!("{text:?}: too long"))?;
    if ms == 0 {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2MB"), Ok(2 << 20));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
