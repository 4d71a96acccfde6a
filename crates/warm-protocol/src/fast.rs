//! A typed parse for the common case: one well-formed JSON-RPC object.
//!
//! Parsing through `serde_json::Value` builds a map and strings for every member before
//! looking at them; for the small requests that dominate traffic that is most of the parse
//! cost. This path deserializes straight into the fields. Anything it does not accept (a
//! batch, a wrong type, a missing or bad `jsonrpc`) returns `None`, and the caller takes the
//! general path, which produces the precise error. The two paths must agree on every input
//! this one accepts (tested below, and by the `parse_message` fuzz target).
//!
//! JSON only: MessagePack map keys may be integers, and serde's derived field matching takes
//! an integer key as a field *index* (`{4: x}` would read as `result`), so binary bodies
//! always take the general path, which treats such keys as the strings they print as.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::ErrorObject;
use crate::message::{Message, Notification, Request, RequestId, Response};

#[derive(Deserialize)]
enum Version {
    #[serde(rename = "2.0")]
    V2,
}

/// Unknown members are refused, not skipped: serde skips them without the checks the general
/// path makes (UTF-8, numbers in range), so skipping would accept bodies that are not JSON
/// (found by fuzzing). Such messages are rare and take the general path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[allow(dead_code)]
    jsonrpc: Version,
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default, deserialize_with = "present")]
    params: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Value>,
}

/// `Some(value)` for a member that is present, even when it is `null`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// The message in `json`, when it is one valid JSON-RPC object; `None` otherwise.
pub fn parse_json(json: &[u8]) -> Option<Message> {
    let first = json.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    // No separate UTF-8 pass: serde_json validates every string it hands over, and the
    // only strings it skips unchecked are those of unknown members, which `Wire` refuses.
    from_wire(serde_json::from_slice(json).ok()?)
}

fn from_wire(wire: Wire) -> Option<Message> {
    let id = match wire.id {
        None => None,
        Some(Value::Number(n)) => Some(RequestId::Number(n.as_i64()?)),
        Some(Value::String(s)) => Some(RequestId::String(s)),
        Some(Value::Null) => Some(RequestId::Null),
        Some(_) => return None,
    };
    if let Some(params) = &wire.params {
        if !(params.is_object() || params.is_array() || params.is_null()) {
            return None;
        }
    }
    match (wire.method, id) {
        (Some(method), Some(id)) => Some(Message::Request(Request {
            id,
            method,
            params: wire.params,
        })),
        (Some(method), None) => Some(Message::Notification(Notification {
            method,
            params: wire.params,
        })),
        (None, Some(id)) => {
            let result = match (wire.result, wire.error) {
                (Some(result), None) => Ok(result),
                (None, Some(error)) => Err(serde_json::from_value::<ErrorObject>(error).ok()?),
                _ => return None,
            };
            Some(Message::Response(Response { id, result }))
        }
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Incoming;

    fn general(text: &str) -> Option<Message> {
        match Incoming::from_value(serde_json::from_str(text).ok()?) {
            Incoming::Single(Ok(message)) => Some(message),
            _ => None,
        }
    }

    #[test]
    fn agrees_with_the_general_path() {
        let cases = [
            r#"{"jsonrpc":"2.0","id":1,"method":"daemon/ping"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"m","params":{"k":[1,null]}}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"m","params":null}"#,
            r#"{"jsonrpc":"2.0","method":"n","params":[]}"#,
            r#"{"jsonrpc":"2.0","id":3,"result":null}"#,
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32000,"message":"busy","data":{"retry_after_ms":5}}}"#,
            r#"{"method":"m","jsonrpc":"2.0","id":9,"extra":true}"#,
            r#"  {"jsonrpc":"2.0","id":1,"method":"x"}"#,
            // Rejected by both, each in its own way.
            r#"{"jsonrpc":"1.0","id":1,"method":"m"}"#,
            r#"{"id":1,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"m","params":3}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"x"}}"#,
            r#"{"jsonrpc":"2.0"}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"m"}]"#,
            r#"5"#,
        ];
        for case in cases {
            let fast = parse_json(case.as_bytes());
            let general = general(case);
            // The fast path may decline what the general path accepts (it then falls back),
            // but what it accepts must be exactly what the general path would produce.
            if fast.is_some() {
                assert_eq!(fast, general, "{case}");
            }
        }
        assert!(
            parse_json(cases[0].as_bytes()).is_some(),
            "the common case takes the fast path"
        );
    }

    // Found by the parse_message fuzz target: a number out of f64's range inside a member
    // the typed parse skipped was accepted, though the general path refuses it.
    #[test]
    fn an_out_of_range_number_in_an_unknown_member_is_refused() {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"m","x":[1{}]}}"#,
            "0".repeat(400)
        );
        assert_eq!(parse_json(body.as_bytes()), None);
        assert!(serde_json::from_str::<Value>(&body).is_err());
    }

    // Found by the decode_ndjson fuzz target: invalid UTF-8 inside a member the typed
    // parse ignores was accepted, though the bytes are not JSON.
    #[test]
    fn invalid_utf8_in_an_ignored_member_is_not_json() {
        let body = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"x\":{\"\xff\":1}}";
        assert_eq!(parse_json(body), None);
        assert!(serde_json::from_slice::<Value>(body).is_err());
    }
}
