//! JSON text to a [`Value`], refusing an object with a key twice.
//!
//! `serde_json::Value` keeps the last of duplicate keys, so `{"method": "daemon/ping", ...,
//! "method": "daemon/shutdown"}` would be read as a shutdown while a proxy or log that keeps the
//! first key sees a ping. A message whose meaning depends on which duplicate wins is refused
//! as a parse error, at any depth.
//!
//! A batch (a top-level array) is also refused as soon as it passes a length limit, before the
//! rest of it is built: a 10 MB frame of tiny requests would otherwise become a tree many
//! times its size, and answers many times that.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `bytes` as one JSON value with no duplicate object keys.
///
/// # Errors
/// The JSON syntax error, or `duplicate key "K"`, with its position.
pub fn from_slice(bytes: &[u8]) -> serde_json::Result<Value> {
    match from_slice_limited(bytes, usize::MAX) {
        Ok(value) => Ok(value),
        Err(StrictError::Json(error)) => Err(error),
        // No array has more than usize::MAX elements; kept total all the same.
        Err(StrictError::BatchTooLong { max }) => {
            Err(de::Error::custom(format!("more than {max} elements")))
        }
    }
}

/// Why [`from_slice_limited`] refused a body.
#[derive(Debug)]
pub enum StrictError {
    Json(serde_json::Error),
    /// A top-level array with more than `max` elements.
    BatchTooLong {
        max: usize,
    },
}

/// Like [`from_slice`], refusing a top-level array of more than `max_batch` elements as
/// soon as its element `max_batch + 1` begins.
///
/// # Errors
/// [`StrictError`].
pub fn from_slice_limited(bytes: &[u8], max_batch: usize) -> Result<Value, StrictError> {
    let over = Cell::new(false);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let seed = StrictValue {
        batch: Some((max_batch, &over)),
    };
    let parsed = seed
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    match parsed {
        Ok(value) => Ok(value),
        Err(_) if over.get() => Err(StrictError::BatchTooLong { max: max_batch }),
        Err(error) => Err(StrictError::Json(error)),
    }
}

/// A value; at the top level, the batch limit and the flag that says it was hit.
#[derive(Clone, Copy)]
struct StrictValue<'a> {
    batch: Option<(usize, &'a Cell<bool>)>,
}

const NESTED: StrictValue<'static> = StrictValue { batch: None };

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor { batch: self.batch })
    }
}

struct StrictVisitor<'a> {
    batch: Option<(usize, &'a Cell<bool>)>,
}

impl<'de> Visitor<'de> for StrictVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a JSON number")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        NESTED.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(NESTED)? {
            items.push(item);
            if let Some((max, over)) = self.batch {
                if items.len() > max {
                    over.set(true);
                    return Err(de::Error::custom(format!("more than {max} elements")));
                }
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let value = map.next_value_seed(NESTED)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let top = br#"{"jsonrpc":"2.0","id":1,"method":"daemon/ping","method":"daemon/shutdown"}"#;
        let error = from_slice(top).expect_err("duplicate method");
        assert!(
            error.to_string().contains("duplicate key \"method\""),
            "{error}"
        );
        assert!(from_slice(br#"{"params":[{"a":1,"a":2}]}"#).is_err());
    }

    #[test]
    fn everything_else_reads_as_serde_json_reads_it() {
        for text in [
            r#"{"a":[1,-2,3.5,1e300,"s\u00e9",null,true,{}],"b":{"c":18446744073709551615}}"#,
            "0.1",
            r#""x""#,
            "[]",
        ] {
            let expected: Value = serde_json::from_str(text).expect("valid JSON");
            assert_eq!(
                from_slice(text.as_bytes()).expect("strict"),
                expected,
                "{text}"
            );
        }
        assert!(from_slice(b"{} x").is_err(), "trailing characters");
    }

    #[test]
    fn a_batch_past_the_limit_is_refused_but_nested_arrays_are_not_counted() {
        let batch = |n: usize| format!("[{}]", vec!["{}"; n].join(","));
        assert!(from_slice_limited(batch(3).as_bytes(), 3).is_ok());
        assert!(matches!(
            from_slice_limited(batch(4).as_bytes(), 3),
            Err(StrictError::BatchTooLong { max: 3 })
        ));
        assert!(from_slice_limited(br#"{"params":[1,2,3,4,5]}"#, 3).is_ok());
    }
}
