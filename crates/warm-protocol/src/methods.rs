//! Names and parameter/result shapes of the built-in `daemon/*` methods.
//!
//! Shared by the daemon that answers them and by every client, so the two cannot drift.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const HELLO: &str = "daemon/hello";
pub const PING: &str = "daemon/ping";
pub const STATUS: &str = "daemon/status";
pub const SET_TTL: &str = "daemon/set_ttl";
pub const LEASE: &str = "daemon/lease";
pub const RELEASE: &str = "daemon/release";
pub const SHUTDOWN: &str = "daemon/shutdown";
pub const CANCEL_REQUEST: &str = "$/cancelRequest";
pub const PROGRESS: &str = "$/progress";

/// True for methods the daemon answers itself, never queued behind service work.
pub fn is_builtin(method: &str) -> bool {
    method.starts_with("daemon/")
}

/// `daemon/hello` params: who the client is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HelloParams {
    pub version: String,
    pub protocol: u32,
    /// Hash of the service's resolved configuration as the client sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
}

/// `daemon/hello` result: who the daemon is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HelloResult {
    pub version: String,
    pub protocol: u32,
    pub pid: u32,
    pub service: String,
    pub root: String,
    #[serde(default)]
    pub config_hash: Option<String>,
}

/// `daemon/ping` and `daemon/set_ttl` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TtlReport {
    /// The idle TTL; 0 means the daemon never exits for idleness.
    pub ttl_secs: u64,
    /// Seconds until the daemon would exit if nothing else happened; `null` when the TTL is 0
    /// or while a request or lease keeps the daemon busy.
    pub ttl_remaining_secs: Option<u64>,
    pub pid: u32,
}

/// `daemon/set_ttl` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetTtlParams {
    pub ttl_secs: u64,
}

/// `daemon/lease` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseResult {
    pub lease_id: u64,
    /// Leases now held on the daemon, all connections together.
    pub leases: u64,
}

/// `daemon/release` params; without `lease_id`, every lease of the connection is released.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReleaseParams {
    #[serde(default)]
    pub lease_id: Option<u64>,
}

/// `$/cancelRequest` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelParams {
    pub id: crate::RequestId,
}

/// `$/progress` params, sent to a client before the response to its request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressParams {
    pub id: crate::RequestId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// `daemon/status` result; also the body of `health.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub service: String,
    pub root: String,
    pub pid: u32,
    pub socket: String,
    pub version: String,
    pub protocol: u32,
    /// Unix time (seconds) the daemon started.
    pub started_at: u64,
    pub uptime_secs: u64,
    pub ttl_secs: u64,
    pub ttl_remaining_secs: Option<u64>,
    /// Connections open now.
    pub connections: u64,
    /// Service requests running now.
    pub in_flight: u64,
    /// Requests answered since start (built-in and service).
    pub requests: u64,
    /// Requests answered busy since start.
    pub busy: u64,
    /// Leases held now.
    pub leases: u64,
    pub max_in_flight: u64,
    pub max_connections: u64,
    /// One entry per worker process (empty for in-process services).
    pub workers: Vec<Value>,
}
