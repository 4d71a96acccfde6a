//! The three framings one socket speaks, and how a connection's framing is detected.

/// How messages are delimited on a connection. Detected from the connection's first byte and
/// then used in both directions, so each client is answered in the framing it chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// One JSON value per line (`\n`-terminated).
    Ndjson,
    /// LSP base protocol: `Content-Length: N\r\n` headers, a blank line, N bytes of JSON.
    Lsp,
    /// `0xEB 0x57` magic, version byte, flags byte, big-endian u32 length, MessagePack body.
    Binary,
}

/// First byte of a binary frame.
pub const BINARY_MAGIC_0: u8 = 0xEB;
/// Second byte of a binary frame (`W`).
pub const BINARY_MAGIC_1: u8 = 0x57;
/// The binary frame version this crate writes and accepts.
pub const BINARY_VERSION: u8 = 1;
/// Bytes before a binary frame's body.
pub const BINARY_HEADER_LEN: usize = 8;

impl Framing {
    /// The framing a connection uses, from its first byte; `None` for anything else, in which
    /// case the connection is closed.
    pub fn detect(first_byte: u8) -> Option<Framing> {
        match first_byte {
            b'{' | b'[' => Some(Framing::Ndjson),
            b if b.is_ascii_whitespace() => Some(Framing::Ndjson),
            b'C' | b'c' => Some(Framing::Lsp),
            BINARY_MAGIC_0 => Some(Framing::Binary),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Framing::Ndjson => "ndjson",
            Framing::Lsp => "lsp",
            Framing::Binary => "binary",
        }
    }
}

impl std::str::FromStr for Framing {
    type Err = UnknownFraming;

    fn from_str(s: &str) -> Result<Framing, UnknownFraming> {
        match s {
            "ndjson" => Ok(Framing::Ndjson),
            "lsp" => Ok(Framing::Lsp),
            "binary" => Ok(Framing::Binary),
            other => Err(UnknownFraming(other.to_owned())),
        }
    }
}

/// A framing name that is not one of warm's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown framing {0:?}: expected \"ndjson\", \"lsp\" or \"binary\"")]
pub struct UnknownFraming(pub String);

impl std::fmt::Display for Framing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_follows_the_first_byte() {
        assert_eq!(Framing::detect(b'{'), Some(Framing::Ndjson));
        assert_eq!(Framing::detect(b'['), Some(Framing::Ndjson));
        assert_eq!(Framing::detect(b' '), Some(Framing::Ndjson));
        assert_eq!(Framing::detect(b'\n'), Some(Framing::Ndjson));
        assert_eq!(Framing::detect(b'C'), Some(Framing::Lsp));
        assert_eq!(Framing::detect(b'c'), Some(Framing::Lsp));
        assert_eq!(Framing::detect(0xEB), Some(Framing::Binary));
        assert_eq!(Framing::detect(b'G'), None);
        assert_eq!(Framing::detect(0), None);
    }
}
