//! [`Guarded`]: a service call whose panic is that request's error, not the daemon's.
//!
//! A service's future is first polled on its connection's task: a panic there would end the
//! connection without an answer and leave the request counted in flight forever (so the
//! daemon would never idle out). Caught at the boundary, it becomes -32603 for that request
//! alone; the connection, the other clients and the daemon carry on.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use serde_json::Value;
use warm_protocol::{ErrorCode, ErrorObject};

use crate::service::{BoxFuture, Call, Service};

/// The answer of `service` to `call`, or -32603 if the service panics while making or
/// running it.
pub fn guarded_call(service: &dyn Service, call: Call) -> Guarded {
    let method = call.method.clone();
    // Unwind safety: a panicking service's own state is its business; warm's state is not
    // touched inside the closure.
    match catch_unwind(AssertUnwindSafe(|| service.call(call))) {
        Ok(inner) => Guarded {
            method,
            inner: Some(inner),
        },
        Err(payload) => {
            let error = panicked(&method, payload.as_ref());
            Guarded {
                method,
                inner: Some(Box::pin(async move { Err(error) })),
            }
        }
    }
}

/// See [`guarded_call`].
pub struct Guarded {
    method: String,
    /// `None` once it panicked (never polled again).
    inner: Option<BoxFuture<Result<Value, ErrorObject>>>,
}

impl Future for Guarded {
    type Output = Result<Value, ErrorObject>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(Err(ErrorObject::new(
                ErrorCode::InternalError,
                "internal error: the service panicked",
            )));
        };
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                self.inner = None;
                Poll::Ready(Err(panicked(&self.method, payload.as_ref())))
            }
        }
    }
}

fn panicked(method: &str, payload: &(dyn std::any::Any + Send)) -> ErrorObject {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned());
    tracing::error!(%method, %message, "the service panicked; answered -32603");
    ErrorObject::new(
        ErrorCode::InternalError,
        format!("internal error: the service panicked on {method}: {message}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Progress;
    use tokio_util::sync::CancellationToken;

    struct Panicky;

    impl Service for Panicky {
        fn call(&self, call: Call) -> BoxFuture<Result<Value, ErrorObject>> {
            if call.method == "now" {
                panic!("at once");
            }
            Box::pin(async move {
                tokio::task::yield_now().await;
                panic!("later");
            })
        }
    }

    fn call(method: &str) -> Call {
        Call {
            method: method.into(),
            params: None,
            progress: Progress::none(),
            cancel: CancellationToken::new(),
        }
    }

    #[tokio::test]
    async fn a_panic_becomes_an_internal_error_for_that_call() {
        for (method, said) in [("now", "at once"), ("later", "later")] {
            let error = guarded_call(&Panicky, call(method))
                .await
                .expect_err("a panic is an error");
            assert_eq!(error.kind(), ErrorCode::InternalError);
            assert!(error.message.contains(said), "{}", error.message);
        }
    }
}
