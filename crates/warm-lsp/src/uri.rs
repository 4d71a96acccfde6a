//! `file://` URIs, as language servers name files, and back.

use std::path::Path;

/// `file://` URI of an absolute path, percent-encoding what a URI path may not hold.
pub fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file://");
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                uri.push(char::from(*byte))
            }
            other => uri.push_str(&format!("%{other:02X}")),
        }
    }
    uri
}

/// The path of a `file://` URI, percent-decoded; `None` for other schemes.
pub fn path_from_uri(uri: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let encoded = uri.strip_prefix("file://")?;
    // `file://host/path` names another machine; only the local form is a path here.
    let encoded = encoded.strip_prefix("localhost").unwrap_or(encoded);
    if !encoded.starts_with('/') {
        return None;
    }
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    Some(std::ffi::OsString::from_vec(decoded).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_escape_what_they_must() {
        assert_eq!(
            file_uri(Path::new("/tmp/a b/é")),
            "file:///tmp/a%20b/%C3%A9"
        );
        assert_eq!(file_uri(Path::new("/x/y_z-1.rs")), "file:///x/y_z-1.rs");
    }

    #[test]
    fn file_uris_decode_back_to_their_path() {
        for path in ["/tmp/a b/é", "/x/100%.py", "/plain"] {
            assert_eq!(
                path_from_uri(&file_uri(Path::new(path))).as_deref(),
                Some(Path::new(path))
            );
        }
        assert_eq!(path_from_uri("file:///a%2"), Some("/a%2".into()));
        assert_eq!(path_from_uri("untitled:Untitled-1"), None);
        assert_eq!(path_from_uri("file://server/share"), None);
    }
}
