//! The built-in `daemon/*` methods, answered by the daemon itself.
//!
//! They run inline on the connection's reader, never behind service work or the in-flight
//! limit, so a client can always tell a busy daemon from a hung one.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use warm_protocol::methods::{
    self, HelloParams, HelloResult, LeaseResult, ReleaseParams, SetTtlParams, TtlReport,
};
use warm_protocol::{ErrorCode, ErrorObject, Request, Response, PROTOCOL_VERSION};
use warm_runtime::sync::Recover;

use crate::session::ConnectionState;
use crate::state::Shared;

/// The built-in methods, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    Hello,
    Ping,
    Status,
    SetTtl,
    Lease,
    Release,
    Shutdown,
}

impl Builtin {
    fn from_method(method: &str) -> Option<Builtin> {
        Some(match method {
            methods::HELLO => Builtin::Hello,
            methods::PING => Builtin::Ping,
            methods::STATUS => Builtin::Status,
            methods::SET_TTL => Builtin::SetTtl,
            methods::LEASE => Builtin::Lease,
            methods::RELEASE => Builtin::Release,
            methods::SHUTDOWN => Builtin::Shutdown,
            _ => return None,
        })
    }
}

/// Answers one `daemon/*` request.
pub fn handle(request: Request, shared: &Arc<Shared>, state: &ConnectionState) -> Response {
    let Some(builtin) = Builtin::from_method(&request.method) else {
        return Response::error(request.id, ErrorObject::method_not_found(&request.method));
    };
    let params = request.params;
    let result = match builtin {
        Builtin::Hello => hello(shared, state, params),
        Builtin::Ping => Ok(ttl_report(shared)),
        Builtin::Status => serde_json::to_value(shared.status()).map_err(internal),
        Builtin::SetTtl => set_ttl(shared, params),
        Builtin::Lease => Ok(lease(shared, state)),
        Builtin::Release => release(shared, state, params),
        Builtin::Shutdown => Ok(shutdown(shared, params)),
    };
    Response {
        id: request.id,
        result,
    }
}

fn parse<T: DeserializeOwned>(params: Option<Value>) -> Result<T, ErrorObject> {
    serde_json::from_value(params.unwrap_or_else(|| json!({}))).map_err(ErrorObject::invalid_params)
}

fn internal(error: impl std::fmt::Display) -> ErrorObject {
    ErrorObject::new(warm_protocol::ErrorCode::InternalError, error.to_string())
}

fn hello(
    shared: &Shared,
    state: &ConnectionState,
    params: Option<Value>,
) -> Result<Value, ErrorObject> {
    // A client that sends no params still learns who we are.
    if let Some(params) = params.filter(|p| !p.is_null()) {
        let hello: HelloParams = parse(Some(params))?;
        let options = &shared.options;
        let config_differs = hello.config_hash.is_some()
            && options.config_hash.is_some()
            && hello.config_hash != options.config_hash;
        if hello.version != options.version || config_differs {
            tracing::info!(client_version = %hello.version, config_differs, "client expects another daemon; refusing its service requests");
            state.refuse_service.store(true, Ordering::Relaxed);
        }
    }
    let options = &shared.options;
    serde_json::to_value(HelloResult {
        version: options.version.clone(),
        protocol: PROTOCOL_VERSION,
        pid: shared.pid,
        service: options.identity.service.clone(),
        root: options.identity.root.display().to_string(),
        config_hash: options.config_hash.clone(),
    })
    .map_err(internal)
}

fn ttl_report(shared: &Shared) -> Value {
    let report = TtlReport {
        ttl_secs: shared.activity.ttl().as_secs(),
        ttl_remaining_secs: shared.activity.remaining().map(|d| d.as_secs()),
        pid: shared.pid,
    };
    serde_json::to_value(report).unwrap_or(Value::Null)
}

fn set_ttl(shared: &Shared, params: Option<Value>) -> Result<Value, ErrorObject> {
    let SetTtlParams { ttl_secs } = parse(params)?;
    let max = warm_runtime::duration::MAX_DURATION.as_secs();
    if ttl_secs > max {
        return Err(ErrorObject::new(
            ErrorCode::InvalidParams,
            format!("ttl_secs {ttl_secs} is too long: at most {max} (ten years); 0 means never"),
        ));
    }
    let old = shared.activity.ttl().as_secs();
    shared.activity.set_ttl(Duration::from_secs(ttl_secs));
    shared.events.record(
        "ttl.changed",
        json!({ "from_secs": old, "to_secs": ttl_secs }),
    );
    tracing::info!(from_secs = old, to_secs = ttl_secs, "ttl changed");
    Ok(ttl_report(shared))
}

fn lease(shared: &Shared, state: &ConnectionState) -> Value {
    let lease_id = shared.next_lease_id.fetch_add(1, Ordering::Relaxed);
    state.leases.recover().push(lease_id);
    let leases = shared.activity.lease_acquired();
    shared.events.record(
        "lease.acquired",
        json!({ "lease_id": lease_id, "leases": leases }),
    );
    serde_json::to_value(LeaseResult { lease_id, leases }).unwrap_or(Value::Null)
}

fn release(
    shared: &Shared,
    state: &ConnectionState,
    params: Option<Value>,
) -> Result<Value, ErrorObject> {
    let ReleaseParams { lease_id } = parse(params)?;
    let released: Vec<u64> = {
        let mut leases = state.leases.recover();
        match lease_id {
            Some(id) => {
                let before = leases.len();
                leases.retain(|l| *l != id);
                if leases.len() < before {
                    vec![id]
                } else {
                    Vec::new()
                }
            }
            None => leases.drain(..).collect(),
        }
    };
    if let Some(id) = lease_id.filter(|_| released.is_empty()) {
        return Err(ErrorObject::invalid_params(format!(
            "lease {id} is not held by this connection"
        )));
    }
    let left = if released.is_empty() {
        shared.activity.leases()
    } else {
        shared.activity.lease_released(released.len() as u64)
    };
    if !released.is_empty() {
        shared.events.record(
            "lease.released",
            json!({ "lease_ids": released, "leases": left }),
        );
    }
    Ok(json!({ "released": released, "leases": left }))
}

fn shutdown(shared: &Shared, params: Option<Value>) -> Value {
    let reason = params
        .as_ref()
        .and_then(|p| p.get("reason"))
        .and_then(Value::as_str)
        .unwrap_or("requested")
        .to_owned();
    // Triggered after this answer is queued: the connection task sends it before it sees
    // the shutdown (answers are queued in order).
    shared.shutdown.trigger(format!("request: {reason}"));
    json!({ "stopping": true, "pid": shared.pid })
}
