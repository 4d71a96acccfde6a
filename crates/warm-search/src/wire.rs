//! Paths between the daemon and the client. A file name need not be UTF-8 and a JSON string
//! must be: a path travels as a string when it is UTF-8, else as the array of its bytes, so
//! that no name is ever changed on the way (`foo\xFFbar` stays that file, not `foo�bar`).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

pub fn to_json(path: &Path) -> Value {
    match path.to_str() {
        Some(text) => Value::String(text.to_owned()),
        None => Value::Array(
            path.as_os_str()
                .as_bytes()
                .iter()
                .map(|&b| Value::from(b))
                .collect(),
        ),
    }
}

/// The path `value` carries; `None` if it is neither form.
pub fn from_json(value: &Value) -> Option<PathBuf> {
    match value {
        Value::String(text) => Some(PathBuf::from(text)),
        Value::Array(bytes) => bytes
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect::<Option<Vec<u8>>>()
            .map(|bytes| PathBuf::from(OsString::from_vec(bytes))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_survives_the_round_trip() {
        for name in [
            &b"plain.rs"[..],
            b"foo\xFFbar",
            b"caf\xC3\xA9",
            b"a\nb",
            b"",
        ] {
            let path = PathBuf::from(OsString::from_vec(name.to_vec()));
            assert_eq!(from_json(&to_json(&path)), Some(path));
        }
        assert_eq!(to_json(Path::new("a.rs")), Value::String("a.rs".into()));
        assert_eq!(from_json(&serde_json::json!([1, 300])), None);
        assert_eq!(from_json(&serde_json::json!({})), None);
    }
}
