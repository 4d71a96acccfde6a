//! The built-in `echo` service: a tiny in-process service for trying warm out, for tests and
//! for benchmarks.
//!
//! Methods:
//! - `echo PARAMS` returns its params unchanged;
//! - `sleep {"ms": N, "steps": K}` waits N ms, reporting progress K times; cancellable;
//! - `fail {"code": C, "message": M}` returns that error.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use warm_protocol::{ErrorCode, ErrorObject};

use crate::service::{BoxFuture, Call, Service};

#[derive(Debug, Default)]
pub struct EchoService;

#[derive(Deserialize)]
struct SleepParams {
    ms: u64,
    #[serde(default)]
    steps: u64,
}

#[derive(Deserialize)]
struct FailParams {
    #[serde(default = "default_fail_code")]
    code: i64,
    #[serde(default = "default_fail_message")]
    message: String,
}

fn default_fail_code() -> i64 {
    ErrorCode::InternalError.code()
}

fn default_fail_message() -> String {
    "failed on request".into()
}

fn params<T: for<'de> Deserialize<'de>>(params: Option<Value>) -> Result<T, ErrorObject> {
    serde_json::from_value(params.unwrap_or(Value::Null)).map_err(ErrorObject::invalid_params)
}

impl Service for EchoService {
    fn call(&self, call: Call) -> BoxFuture<Result<Value, ErrorObject>> {
        Box::pin(async move {
            match call.method.as_str() {
                "echo" => Ok(call.params.unwrap_or(Value::Null)),
                "sleep" => {
                    let SleepParams { ms, steps } = params(call.params)?;
                    let steps = steps.max(1);
                    let step = Duration::from_millis(ms)
                        .checked_div(steps as u32)
                        .unwrap_or_default();
                    for done in 1..=steps {
                        tokio::time::sleep(step).await;
                        if steps > 1 {
                            call.progress
                                .report(
                                    Some(format!("slept {done}/{steps}")),
                                    Some(done),
                                    Some(steps),
                                )
                                .await;
                        }
                    }
                    Ok(json!({ "slept_ms": ms }))
                }
                "fail" => {
                    let FailParams { code, message } = params(call.params)?;
                    Err(ErrorObject {
                        code,
                        message,
                        data: None,
                    })
                }
                other => Err(ErrorObject::method_not_found(other)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Progress;
    use crate::session::Outgoing;
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;
    use warm_protocol::{Message, RequestId};

    /// Calls `method` of the echo service; its answer and the progress it reported.
    async fn call(method: &str, params: Value) -> (Result<Value, ErrorObject>, Vec<Value>) {
        let (tx, mut rx) = mpsc::channel(64);
        let answer = EchoService
            .call(Call {
                method: method.into(),
                params: Some(params),
                progress: Progress::new(RequestId::Number(1), tx),
                cancel: CancellationToken::new(),
            })
            .await;
        let mut reported = Vec::new();
        while let Ok(Outgoing::One(Message::Notification(notification))) = rx.try_recv() {
            reported.push(notification.params.unwrap_or(Value::Null));
        }
        (answer, reported)
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_reports_progress_only_when_it_has_steps() {
        let (answer, reported) = call("sleep", json!({ "ms": 30 })).await;
        assert_eq!(answer.ok(), Some(json!({ "slept_ms": 30 })));
        assert!(reported.is_empty(), "one step, no progress: {reported:?}");
        let (_, reported) = call("sleep", json!({ "ms": 30, "steps": 3 })).await;
        let done: Vec<Value> = reported.iter().map(|p| p["done"].clone()).collect();
        assert_eq!(done, vec![json!(1), json!(2), json!(3)]);
        assert_eq!(reported[2]["message"], "slept 3/3");
    }

    #[tokio::test]
    async fn fail_answers_the_error_asked_for_or_an_internal_one() {
        let (answer, _) = call("fail", json!({ "code": -32001, "message": "slow" })).await;
        let error = answer.expect_err("fails");
        assert_eq!((error.code, error.message.as_str()), (-32001, "slow"));
        let (answer, _) = call("fail", json!({})).await;
        let error = answer.expect_err("fails");
        assert_eq!(
            (error.code, error.message.as_str()),
            (-32603, "failed on request")
        );
        let (answer, _) = call("echo", json!({ "a": [1, "é"] })).await;
        assert_eq!(answer.ok(), Some(json!({ "a": [1, "é"] })));
    }
}
