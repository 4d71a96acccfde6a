//! The JSON-RPC 2.0 message model: requests, notifications, responses and batches.
//!
//! Messages are parsed from a [`serde_json::Value`] by hand rather than with an untagged serde
//! enum, so that an invalid message yields a precise error (and the id, when one was present)
//! instead of "data did not match any variant".

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ErrorCode, ErrorObject};

/// A request id: a number or a string (or `null`, which only a response to an unreadable
/// request carries).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(i64),
    String(String),
    Null,
}

impl From<i64> for RequestId {
    fn from(id: i64) -> RequestId {
        RequestId::Number(id)
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestId::Number(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{s:?}"),
            RequestId::Null => f.write_str("null"),
        }
    }
}

/// A call that expects a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: RequestId,
    pub method: String,
    pub params: Option<Value>,
}

/// A call that expects no response.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub method: String,
    pub params: Option<Value>,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: RequestId,
    pub result: Result<Value, ErrorObject>,
}

impl Response {
    pub fn ok(id: RequestId, result: Value) -> Response {
        Response {
            id,
            result: Ok(result),
        }
    }

    pub fn error(id: RequestId, error: ErrorObject) -> Response {
        Response {
            id,
            result: Err(error),
        }
    }
}

/// One JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

impl From<Request> for Message {
    fn from(request: Request) -> Message {
        Message::Request(request)
    }
}

impl From<Notification> for Message {
    fn from(notification: Notification) -> Message {
        Message::Notification(notification)
    }
}

impl From<Response> for Message {
    fn from(response: Response) -> Message {
        Message::Response(response)
    }
}

/// A message that could not be understood, with the id to answer it under.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidMessage {
    pub id: RequestId,
    pub error: ErrorObject,
}

impl InvalidMessage {
    /// The error response this invalid message deserves.
    pub fn into_response(self) -> Response {
        Response::error(self.id, self.error)
    }
}

/// What one frame carried: a single message or a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Single(Result<Message, InvalidMessage>),
    Batch(Vec<Result<Message, InvalidMessage>>),
}

impl Incoming {
    /// Interprets a parsed JSON value. An empty batch is itself an invalid request.
    pub fn from_value(value: Value) -> Incoming {
        match value {
            Value::Array(items) if items.is_empty() => Incoming::Single(Err(invalid(
                RequestId::Null,
                "invalid request: empty batch",
            ))),
            Value::Array(items) => {
                Incoming::Batch(items.into_iter().map(Message::from_value).collect())
            }
            other => Incoming::Single(Message::from_value(other)),
        }
    }
}

fn invalid(id: RequestId, message: impl Into<String>) -> InvalidMessage {
    InvalidMessage {
        id,
        error: ErrorObject::new(ErrorCode::InvalidRequest, message),
    }
}

impl Message {
    /// Interprets one JSON value as a message.
    pub fn from_value(value: Value) -> Result<Message, InvalidMessage> {
        let Value::Object(mut object) = value else {
            return Err(invalid(
                RequestId::Null,
                "invalid request: a message must be a JSON object",
            ));
        };
        let id = match object.remove("id") {
            None => None,
            Some(raw) => Some(parse_id(raw)?),
        };
        let answer_id = id.clone().unwrap_or(RequestId::Null);
        match object.get("jsonrpc") {
            Some(Value::String(v)) if v == "2.0" => {}
            _ => {
                return Err(invalid(
                    answer_id,
                    "invalid request: \"jsonrpc\" must be \"2.0\"",
                ))
            }
        }
        let params = object.remove("params");
        if let Some(params) = &params {
            if !(params.is_object() || params.is_array() || params.is_null()) {
                return Err(invalid(
                    answer_id,
                    "invalid request: \"params\" must be an object or an array",
                ));
            }
        }
        match object.remove("method") {
            Some(Value::String(method)) => Ok(match id {
                Some(id) => Message::Request(Request { id, method, params }),
                None => Message::Notification(Notification { method, params }),
            }),
            Some(_) => Err(invalid(
                answer_id,
                "invalid request: \"method\" must be a string",
            )),
            None => parse_response(answer_id, id.is_some(), object),
        }
    }
}

fn parse_id(raw: Value) -> Result<RequestId, InvalidMessage> {
    match raw {
        Value::Number(n) => match n.as_i64() {
            Some(n) => Ok(RequestId::Number(n)),
            None => Err(invalid(
                RequestId::Null,
                "invalid request: \"id\" must be an integer or a string",
            )),
        },
        Value::String(s) => Ok(RequestId::String(s)),
        Value::Null => Ok(RequestId::Null),
        _ => Err(invalid(
            RequestId::Null,
            "invalid request: \"id\" must be an integer or a string",
        )),
    }
}

fn parse_response(
    id: RequestId,
    has_id: bool,
    mut object: Map<String, Value>,
) -> Result<Message, InvalidMessage> {
    if !has_id {
        return Err(invalid(id, "invalid request: no \"method\" and no \"id\""));
    }
    let result = match (object.remove("result"), object.remove("error")) {
        (Some(result), None) => Ok(result),
        (None, Some(error)) => Err(serde_json::from_value::<ErrorObject>(error)
            .map_err(|e| invalid(id.clone(), format!("invalid response error object: {e}")))?),
        _ => {
            return Err(invalid(
                id,
                "invalid response: exactly one of \"result\" and \"error\" is required",
            ))
        }
    };
    Ok(Message::Response(Response { id, result }))
}

/// A request to be written, borrowing its parts: serializing it copies nothing, however
/// large the params. Same wire form as [`Message::Request`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RequestRef<'a> {
    jsonrpc: &'static str,
    pub id: &'a RequestId,
    pub method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<&'a Value>,
}

impl<'a> RequestRef<'a> {
    pub fn new(id: &'a RequestId, method: &'a str, params: Option<&'a Value>) -> RequestRef<'a> {
        RequestRef {
            jsonrpc: "2.0",
            id,
            method,
            params,
        }
    }
}

impl Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Borrowing views avoid cloning params and results on the hot write path.
        #[derive(Serialize)]
        struct Wire<'a> {
            jsonrpc: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            id: Option<&'a RequestId>,
            #[serde(skip_serializing_if = "Option::is_none")]
            method: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            params: Option<&'a Value>,
            #[serde(skip_serializing_if = "Option::is_none")]
            result: Option<&'a Value>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<&'a ErrorObject>,
        }
        let mut wire = Wire {
            jsonrpc: "2.0",
            id: None,
            method: None,
            params: None,
            result: None,
            error: None,
        };
        match self {
            Message::Request(r) => {
                wire.id = Some(&r.id);
                wire.method = Some(&r.method);
                wire.params = r.params.as_ref();
            }
            Message::Notification(n) => {
                wire.method = Some(&n.method);
                wire.params = n.params.as_ref();
            }
            Message::Response(r) => {
                wire.id = Some(&r.id);
                match &r.result {
                    Ok(result) => wire.result = Some(result),
                    Err(error) => wire.error = Some(error),
                }
            }
        }
        wire.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Incoming {
        Incoming::from_value(serde_json::from_str(text).expect("test JSON"))
    }

    #[test]
    fn request_notification_and_response_are_told_apart() {
        assert!(matches!(
            parse(r#"{"jsonrpc":"2.0","id":1,"method":"a"}"#),
            Incoming::Single(Ok(Message::Request(_)))
        ));
        assert!(matches!(
            parse(r#"{"jsonrpc":"2.0","method":"a","params":[1]}"#),
            Incoming::Single(Ok(Message::Notification(_)))
        ));
        assert!(matches!(
            parse(r#"{"jsonrpc":"2.0","id":"x","result":null}"#),
            Incoming::Single(Ok(Message::Response(_)))
        ));
    }

    #[test]
    fn invalid_messages_keep_their_id_for_the_answer() {
        let Incoming::Single(Err(invalid)) = parse(r#"{"jsonrpc":"1.0","id":7,"method":"a"}"#)
        else {
            panic!("expected an invalid message");
        };
        assert_eq!(invalid.id, RequestId::Number(7));
        assert_eq!(invalid.error.kind(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn empty_batch_is_one_invalid_request() {
        assert!(matches!(parse("[]"), Incoming::Single(Err(_))));
        let Incoming::Batch(items) = parse(r#"[{"jsonrpc":"2.0","id":1,"method":"a"}, 5]"#) else {
            panic!("expected a batch");
        };
        assert!(items[0].is_ok());
        assert!(items[1].is_err());
    }

    #[test]
    fn messages_round_trip_and_request_ref_writes_the_same() {
        let messages = [
            Message::Request(Request {
                id: RequestId::String("a".into()),
                method: "m".into(),
                params: Some(json!({"k": [1, 2]})),
            }),
            Message::Notification(Notification {
                method: "n".into(),
                params: None,
            }),
            Message::Response(Response::ok(RequestId::Number(3), json!(null))),
            Message::Response(Response::error(RequestId::Null, ErrorObject::busy(10))),
        ];
        for message in messages {
            let serialized = serde_json::to_value(&message).expect("serializes");
            if let Message::Request(r) = &message {
                let borrowed = RequestRef::new(&r.id, &r.method, r.params.as_ref());
                assert_eq!(
                    serde_json::to_value(borrowed).expect("serializes"),
                    serialized
                );
            }
            assert_eq!(Message::from_value(serialized), Ok(message));
        }
    }
}
