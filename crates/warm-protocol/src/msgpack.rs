//! MessagePack bodies as JSON values.
//!
//! Binary frames carry MessagePack, which has types JSON lacks. Raw bytes (`bin`, and the
//! data of `ext` values) become base64 strings (standard alphabet, padded): a binary client
//! can send megabytes of raw bytes, and a JSON worker receives a string it can decode. Map
//! keys that are numbers, booleans or nil are written as their JSON text; a map or an array as
//! a key is an error. Answers are encoded from JSON values, so bytes come back as those
//! strings.

use base64::Engine;
use serde_json::{Map, Number, Value};

/// Decodes one MessagePack value into JSON.
///
/// # Errors
/// What is malformed (truncated, trailing bytes, non-finite float, ...).
pub fn to_json(body: &[u8]) -> Result<Value, MsgpackError> {
    let mut reader = body;
    let value = rmpv::decode::read_value(&mut reader).map_err(MsgpackError::Decode)?;
    if !reader.is_empty() {
        return Err(MsgpackError::Trailing(reader.len()));
    }
    convert(value)
}

/// A MessagePack body that is malformed or has no JSON form.
#[derive(Debug, thiserror::Error)]
pub enum MsgpackError {
    #[error("{0}")]
    Decode(#[source] rmpv::decode::Error),
    #[error("{0} bytes after the value")]
    Trailing(usize),
    #[error("integer {0} out of range")]
    IntegerRange(String),
    #[error("string is not UTF-8")]
    NotUtf8,
    #[error("a map key is a map or an array; JSON keys are strings")]
    CompoundKey,
    #[error("duplicate map key {0:?}")]
    DuplicateKey(String),
    #[error("{0} has no JSON form")]
    NonFinite(f64),
}

fn convert(value: rmpv::Value) -> Result<Value, MsgpackError> {
    Ok(match value {
        rmpv::Value::Nil => Value::Null,
        rmpv::Value::Boolean(b) => Value::Bool(b),
        rmpv::Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(n), _) => Value::from(n),
            (None, Some(n)) => Value::from(n),
            _ => return Err(MsgpackError::IntegerRange(i.to_string())),
        },
        rmpv::Value::F32(f) => float(f64::from(f))?,
        rmpv::Value::F64(f) => float(f)?,
        rmpv::Value::String(s) => match s.into_str() {
            Some(s) => Value::String(s),
            None => return Err(MsgpackError::NotUtf8),
        },
        rmpv::Value::Binary(bytes) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        rmpv::Value::Ext(_, bytes) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        rmpv::Value::Array(items) => {
            Value::Array(items.into_iter().map(convert).collect::<Result<_, _>>()?)
        }
        rmpv::Value::Map(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (key, value) in entries {
                let key = match convert(key)? {
                    Value::String(s) => s,
                    // A map or array as a key has no JSON form; written as text, keys nested
                    // in keys would be escaped again at every level, doubling in size each
                    // time (a 215-byte body took seconds; found by fuzzing).
                    Value::Array(_) | Value::Object(_) => return Err(MsgpackError::CompoundKey),
                    scalar => scalar.to_string(),
                };
                // As in JSON text (see `strict`): a duplicate key makes the meaning ambiguous.
                if map.contains_key(&key) {
                    return Err(MsgpackError::DuplicateKey(key));
                }
                map.insert(key, convert(value)?);
            }
            Value::Object(map)
        }
    })
}

/// The element count of a body that is a MessagePack array (fixarray, array 16, array 32),
/// read from its first bytes.
pub fn array_len(body: &[u8]) -> Option<usize> {
    let (&marker, rest) = body.split_first()?;
    match marker {
        0x90..=0x9f => Some(usize::from(marker & 0x0f)),
        0xdc => Some(usize::from(u16::from_be_bytes(
            rest.get(..2)?.try_into().ok()?,
        ))),
        0xdd => usize::try_from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)).ok(),
        _ => None,
    }
}

fn float(f: f64) -> Result<Value, MsgpackError> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or(MsgpackError::NonFinite(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bytes_become_base64_and_the_rest_maps_one_to_one() {
        let value = rmpv::Value::Map(vec![
            (rmpv::Value::from("jsonrpc"), rmpv::Value::from("2.0")),
            (rmpv::Value::from("id"), rmpv::Value::from(7)),
            (
                rmpv::Value::from("params"),
                rmpv::Value::Map(vec![
                    (
                        rmpv::Value::from("data"),
                        rmpv::Value::Binary(vec![0, 1, 2, 255]),
                    ),
                    (rmpv::Value::from(1), rmpv::Value::F64(0.5)),
                    (rmpv::Value::from("n"), rmpv::Value::Nil),
                ]),
            ),
        ]);
        let mut body = Vec::new();
        rmpv::encode::write_value(&mut body, &value).expect("encode");
        assert_eq!(
            to_json(&body).expect("decodes"),
            json!({"jsonrpc": "2.0", "id": 7, "params": {"data": "AAEC/w==", "1": 0.5, "n": null}})
        );
    }

    #[test]
    fn keys_that_are_maps_or_arrays_are_errors_not_exponential_text() {
        let mut key = rmpv::Value::Nil;
        for _ in 0..64 {
            key = rmpv::Value::Map(vec![(key, rmpv::Value::Nil)]);
        }
        let mut body = Vec::new();
        rmpv::encode::write_value(&mut body, &rmpv::Value::Map(vec![(key, rmpv::Value::Nil)]))
            .expect("encode");
        let error = to_json(&body).expect_err("a map as a key");
        assert!(matches!(error, MsgpackError::CompoundKey), "{error}");
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert!(to_json(&[0x92, 0x01]).is_err(), "truncated array");
        assert!(to_json(&[0x01, 0x02]).is_err(), "trailing bytes");
        assert!(to_json(&[0xc4, 0x05, 1]).is_err(), "truncated bin");
    }
}
