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
