//! Human durations as written on the command line, in `.warm.toml` and in environment
//! variables: `250ms`, `60s`, `10m`, `1h`, or a bare number of seconds (`2`, `0.5`), as
//! `sleep` and `timeout` take them.

use std::time::Duration;

use serde::Deserialize;

/// The longest duration accepted anywhere (TTLs, timeouts, windows): ten years. Longer ones
/// are typos, and past a few hundred million years `Instant + duration` overflows.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {0:?}: write e.g. \"250ms\", \"60s\" (or \"60\": seconds), \"10m\", \"1h\" or \"0\"")]
    Invalid(String),
    #[error("duration {0:?} is too long: at most {hours}h (ten years); \"0\" means never", hours = MAX_DURATION.as_secs() / 3600)]
    TooLong(String),
}

/// Parses `"<number><unit>"` with unit `ms`, `s`, `m` or `h`, or a bare number of seconds;
/// the number may have a fraction (`1.5s`, `0.5`), kept to the millisecond.
///
/// # Errors
/// [`DurationError`], whose message names the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || DurationError::Invalid(text.to_owned());
    // Digits with at most one point, and a digit on some side of it: no "", ".", "1.2.3".
    let well_formed = number.bytes().filter(|b| *b == b'.').count() <= 1
        && number.bytes().any(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(bad());
    }
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" | "" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let too_long = || DurationError::TooLong(text.to_owned());
    let mut millis = whole.checked_mul(millis_per_unit).ok_or_else(too_long)?;
    // The fraction, exactly: digits past what a millisecond can tell are dropped.
    let mut scale = millis_per_unit;
    for digit in fraction.bytes().map(|b| u64::from(b - b'0')) {
        millis = millis.saturating_add(digit * scale / 10);
        scale /= 10;
        if scale == 0 {
            break;
        }
    }
    let duration = Duration::from_millis(millis);
    if duration > MAX_DURATION {
        return Err(too_long());
    }
    Ok(duration)
}

/// Reads a duration field of `.warm.toml` written as a string (`"10m"`) or as a bare number of
/// seconds (`ttl = 2`, `ttl = 0.5`), keeping its text for [`parse_duration`].
///
/// # Errors
/// Anything but a string or a non-negative number.
pub fn deserialize_text<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<DurationText>::deserialize(deserializer)?.map(|d| d.0))
}

/// Like [`deserialize_text`], for a required field (`window = 60`).
///
/// # Errors
/// Anything but a string or a non-negative number.
pub fn deserialize_required<'de, D>(deserializer: D) -> Result<String, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(DurationText::deserialize(deserializer)?.0)
}

/// Like [`deserialize_text`], for a list (`retry_delays = [0.1, "1s"]`).
///
/// # Errors
/// Anything but a list of strings and non-negative numbers.
pub fn deserialize_texts<'de, D>(deserializer: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let texts = Option::<Vec<DurationText>>::deserialize(deserializer)?;
    Ok(texts.map(|texts| texts.into_iter().map(|d| d.0).collect()))
}

/// A duration as written: a string, or a number of seconds.
struct DurationText(String);

impl<'de> serde::Deserialize<'de> for DurationText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            Whole(u64),
            Seconds(f64),
        }
        let text = match Written::deserialize(deserializer) {
            Ok(Written::Text(text)) => text,
            Ok(Written::Whole(n)) => n.to_string(),
            Ok(Written::Seconds(n)) if n.is_finite() && n >= 0.0 => n.to_string(),
            _ => return Err(serde::de::Error::custom(
                "a duration is a string such as \"250ms\", \"10m\", \"1h\", or a number of seconds",
            )),
        };
        Ok(DurationText(text))
    }
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
        for text in [
            "",
            "s",
            ".",
            "1.2.3",
            "ten s",
            "5d",
            "-1s",
            "1e3",
            "99999999999999999999h",
        ] {
            let err = parse_duration(text).expect_err(text);
            assert_eq!(err, DurationError::Invalid(text.trim().to_owned()));
            assert!(err.to_string().contains("60s"), "{err}");
        }
    }

    #[test]
    fn a_bare_number_is_seconds_and_fractions_are_kept_to_the_millisecond() {
        for (text, ms) in [
            ("2", 2_000),
            ("0", 0),
            ("0.5", 500),
            (".25", 250),
            ("1.5s", 1_500),
            ("0.0019", 1),
            ("1.5m", 90_000),
            ("2.5ms", 2),
            ("87600", 87_600_000),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        assert!(matches!(
            parse_duration("315360001"),
            Err(DurationError::TooLong(_))
        ));
    }

    #[test]
    fn toml_takes_strings_and_numbers_of_seconds() {
        #[derive(serde::Deserialize)]
        struct Table {
            #[serde(default, deserialize_with = "deserialize_text")]
            ttl: Option<String>,
            #[serde(default, deserialize_with = "deserialize_texts")]
            delays: Option<Vec<String>>,
        }
        let table: Table = toml::from_str("ttl = 2\ndelays = [0.5, \"1s\"]").expect("parses");
        assert_eq!(
            table.ttl.as_deref().map(parse_duration),
            Some(Ok(Duration::from_secs(2)))
        );
        let delays: Vec<Duration> = table
            .delays
            .unwrap_or_default()
            .iter()
            .map(|d| parse_duration(d).expect("a duration"))
            .collect();
        assert_eq!(delays, [Duration::from_millis(500), Duration::from_secs(1)]);
        let none: Table = toml::from_str("").expect("parses");
        assert!(none.ttl.is_none() && none.delays.is_none());
        for bad in ["ttl = -1", "ttl = true", "ttl = [1]"] {
            let error = toml::from_str::<Table>(bad).err().map(|e| e.to_string());
            assert!(
                error
                    .as_deref()
                    .is_some_and(|e| e.contains("a duration is a string")),
                "{bad}: {error:?}"
            );
        }
    }
}
