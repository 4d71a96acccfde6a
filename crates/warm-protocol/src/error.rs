//! JSON-RPC error objects and the error codes warm defines on top of JSON-RPC 2.0.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An error code: JSON-RPC's standard ones and warm's own in the server range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// -32700: the bytes were not valid JSON (or MessagePack).
    ParseError,
    /// -32600: valid JSON that is not a JSON-RPC request.
    InvalidRequest,
    /// -32601: no such method.
    MethodNotFound,
    /// -32602: the method exists but its params are wrong.
    InvalidParams,
    /// -32603: a bug or an unexpected failure inside the daemon.
    InternalError,
    /// -32000: the daemon is at its in-flight limit; retry after `data.retry_after_ms`.
    Busy,
    /// -32001: the request ran past its deadline.
    Timeout,
    /// -32002: the worker serving the request is unavailable or crashed.
    WorkerUnavailable,
    /// -32003: the daemon is shutting down; start a new one and retry.
    ShuttingDown,
    /// -32004: the frame or payload exceeds a limit.
    TooLarge,
    /// -32005: the request was cancelled.
    Cancelled,
    /// Any other code, kept as it was received.
    Other(i64),
}

impl ErrorCode {
    /// The numeric code on the wire.
    pub fn code(self) -> i64 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::InternalError => -32603,
            ErrorCode::Busy => -32000,
            ErrorCode::Timeout => -32001,
            ErrorCode::WorkerUnavailable => -32002,
            ErrorCode::ShuttingDown => -32003,
            ErrorCode::TooLarge => -32004,
            ErrorCode::Cancelled => -32005,
            ErrorCode::Other(code) => code,
        }
    }

    /// The code for a number received on the wire.
    pub fn from_code(code: i64) -> ErrorCode {
        match code {
            -32700 => ErrorCode::ParseError,
            -32600 => ErrorCode::InvalidRequest,
            -32601 => ErrorCode::MethodNotFound,
            -32602 => ErrorCode::InvalidParams,
            -32603 => ErrorCode::InternalError,
            -32000 => ErrorCode::Busy,
            -32001 => ErrorCode::Timeout,
            -32002 => ErrorCode::WorkerUnavailable,
            -32003 => ErrorCode::ShuttingDown,
            -32004 => ErrorCode::TooLarge,
            -32005 => ErrorCode::Cancelled,
            other => ErrorCode::Other(other),
        }
    }
}

/// The `error` member of a JSON-RPC response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorObject {
        ErrorObject {
            code: code.code(),
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> ErrorObject {
        self.data = Some(data);
        self
    }

    /// The typed code of this error.
    pub fn kind(&self) -> ErrorCode {
        ErrorCode::from_code(self.code)
    }

    pub fn method_not_found(method: &str) -> ErrorObject {
        ErrorObject::new(
            ErrorCode::MethodNotFound,
            format!("method not found: {method}"),
        )
    }

    pub fn invalid_params(detail: impl std::fmt::Display) -> ErrorObject {
        ErrorObject::new(
            ErrorCode::InvalidParams,
            format!("invalid params: {detail}"),
        )
    }

    pub fn busy(retry_after_ms: u64) -> ErrorObject {
        ErrorObject::new(ErrorCode::Busy, "busy: too many requests in flight")
            .with_data(serde_json::json!({ "retry_after_ms": retry_after_ms }))
    }

    pub fn shutting_down() -> ErrorObject {
        ErrorObject::new(
            ErrorCode::ShuttingDown,
            "shutting down: start a new daemon and retry",
        )
    }

    /// `data.retry_after_ms` of a busy error, if present.
    pub fn retry_after_ms(&self) -> Option<u64> {
        self.data.as_ref()?.get("retry_after_ms")?.as_u64()
    }
}

impl std::fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl std::error::Error for ErrorObject {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_code_round_trips_through_its_number() {
        for code in [
            ErrorCode::ParseError,
            ErrorCode::InvalidRequest,
            ErrorCode::MethodNotFound,
            ErrorCode::InvalidParams,
            ErrorCode::InternalError,
            ErrorCode::Busy,
            ErrorCode::Timeout,
            ErrorCode::WorkerUnavailable,
            ErrorCode::ShuttingDown,
            ErrorCode::TooLarge,
            ErrorCode::Cancelled,
        ] {
            assert_eq!(ErrorCode::from_code(code.code()), code);
        }
        assert_eq!(ErrorCode::from_code(7), ErrorCode::Other(7));
    }

    #[test]
    fn busy_carries_retry_after() {
        let error = ErrorObject::busy(25);
        assert_eq!(error.kind(), ErrorCode::Busy);
        assert_eq!(error.retry_after_ms(), Some(25));
    }
}
