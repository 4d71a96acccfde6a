//! Amounts of memory as written in `.warm.toml` (`max_rss = "2GiB"`): a whole number with
//! an optional unit `K`, `M`, `G` or `T` (powers of 1024, as systemd's `MemoryMax=` reads
//! them; `KiB`, `MB`, ... are read the same way), or a bare number of bytes; `0` means no cap.

use serde::Deserialize;

/// Why an amount of memory was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {0:?}: write e.g. \"512M\", \"2G\" (or \"2GiB\"), a number of bytes, or \"0\" for no cap")]
pub struct SizeError(pub String);

/// Parses `"<whole number><unit>"`, the unit one of `K`, `M`, `G`, `T` (each a power of
/// 1024), optionally followed by `iB` or `B`, in either case; no unit means bytes.
///
/// # Errors
/// [`SizeError`], whose message names the accepted forms.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    let bad = || SizeError(text.to_owned());
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let prefix = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let shift = match prefix {
        "" if !unit.ends_with("ib") => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(bad()),
    };
    number.checked_mul(1u64 << shift).ok_or_else(bad)
}

/// The shortest exact form of `bytes` in the syntax [`parse_size`] reads (`"512MiB"`).
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// Reads a size field of `.warm.toml` written as a string (`"2G"`) or a number of bytes,
/// keeping its text for [`parse_size`].
///
/// # Errors
/// Anything but a string or a non-negative whole number.
pub fn deserialize_text<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Bytes(u64),
    }
    match Option::<Written>::deserialize(deserializer) {
        Ok(written) => Ok(written.map(|w| match w {
            Written::Text(text) => text,
            Written::Bytes(n) => n.to_string(),
        })),
        Err(_) => Err(serde::de::Error::custom(
            "a size is a string such as \"512M\" or \"2G\", or a number of bytes",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_powers_of_1024_in_any_spelling() {
        for (text, bytes) in [
            ("0", 0),
            ("4096", 4096),
            ("1K", 1 << 10),
            ("1k", 1 << 10),
            ("1KiB", 1 << 10),
            ("1kb", 1 << 10),
            ("512M", 512 << 20),
            ("512 MiB", 512 << 20),
            ("2G", 2 << 30),
            ("2GB", 2 << 30),
            ("3T", 3 << 40),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn garbage_and_overflow_are_refused_with_examples() {
        for text in [
            "",
            "M",
            "1.5G",
            "-1",
            "1X",
            "1iB",
            "2 GiBs",
            "99999999999T",
            "1e9",
        ] {
            let error = parse_size(text).expect_err(text);
            assert!(error.to_string().contains("\"2G\""), "{error}");
        }
    }

    #[test]
    fn sizes_format_back_to_what_parses_to_them() {
        for bytes in [0, 1, 1000, 1 << 10, 3 << 20, (1 << 30) + 1, 5 << 40] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes), "{bytes}");
        }
        assert_eq!(format_size(512 << 20), "512MiB");
    }

    #[test]
    fn toml_takes_strings_and_numbers_of_bytes() {
        #[derive(serde::Deserialize)]
        struct Table {
            #[serde(default, deserialize_with = "deserialize_text")]
            max_rss: Option<String>,
        }
        let read = |text: &str| toml::from_str::<Table>(text).map(|t| t.max_rss);
        assert_eq!(read("max_rss = \"2G\"").expect("parses"), Some("2G".into()));
        assert_eq!(read("max_rss = 4096").expect("parses"), Some("4096".into()));
        assert_eq!(read("").expect("parses"), None);
        for bad in ["max_rss = -1", "max_rss = 1.5", "max_rss = true"] {
            let error = read(bad).err().map(|e| e.to_string());
            assert!(
                error
                    .as_deref()
                    .is_some_and(|e| e.contains("a size is a string")),
                "{bad}: {error:?}"
            );
        }
    }
}
