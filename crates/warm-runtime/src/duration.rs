//! Human durations as written in `.warm.toml` and environment variables: `250ms`, `60s`,
//! `10m`, `1h`, or a bare `0`.

use std::time::Duration;

/// The longest duration accepted anywhere (TTLs, timeouts, windows): ten years. Longer ones
/// are typos, and past a few hundred million years `Instant + duration` overflows.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {0:?}: write e.g. \"250ms\", \"60s\", \"10m\", \"1h\" or \"0\"")]
    Invalid(String),
    #[error("duration {0:?} is too long: at most {hours}h (ten years); \"0\" means never", hours = MAX_DURATION.as_secs() / 3600)]
    TooLong(String),
}

/// Parses `"<integer><unit>"` with unit `ms`, `s`, `m` or `h`; a bare `0` is zero.
///
/// # Errors
/// [`DurationError`], whose message names the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || DurationError::Invalid(text.to_owned());
    let n: u64 = number.parse().map_err(|_| bad())?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    }
    .ok_or_else(bad)?;
    let duration = Duration::from_millis(millis);
    if duration > MAX_DURATION {
        return Err(DurationError::TooLong(text.to_owned()));
    }
    Ok(duration)
}

/// The shortest exact form of `duration` in the syntax [`parse_duration`] reads.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    match ms {
        0 => "0".into(),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1_000 == 0 => format!("{}s", ms / 1_000),
        ms => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_and_format_back() {
        for (text, ms) in [
            ("0", 0),
            ("250ms", 250),
            ("60s", 60_000),
            ("10m", 600_000),
            ("1h", 3_600_000),
        ] {
            let parsed = parse_duration(text).expect("parses");
            assert_eq!(parsed, Duration::from_millis(ms));
            assert_eq!(
                format_duration(parsed),
                if text == "60s" { "1m" } else { text }
            );
        }
    }

    #[test]
    fn durations_past_ten_years_are_refused() {
        assert!(parse_duration("87600h").is_ok());
        for text in ["87601h", "18446744073709551615ms"] {
            assert_eq!(
                parse_duration(text),
                Err(DurationError::TooLong(text.to_owned())),
                "{text}"
            );
        }
        assert!(parse_duration("99999999999999999999s").is_err());
    }

    #[test]
    fn garbage_is_refused_with_examples() {
        for text in ["", "10", "ten s", "5d", "-1s", "99999999999999999999h"] {
            let err = parse_duration(text).expect_err(text);
            assert_eq!(err, DurationError::Invalid(text.trim().to_owned()));
            assert!(err.to_string().contains("60s"), "{err}");
        }
    }
}
