//! How a Rust tool adopts warm: one binary that is both its own client and its own daemon.
//!
//! ```text
//! cargo run -p warm-daemon --example embedded -- set greeting hello
//! cargo run -p warm-daemon --example embedded -- get greeting     # -> hello
//! cargo run -p warm-daemon --example embedded -- stats            # -> calls served, loaded once
//! ```
//!
//! The first call finds no daemon and starts this same executable with `__serve`; later calls
//! reach the warm daemon in about a millisecond. The "expensive" state (here a map and a load
//! timestamp; in a real tool an index or a parsed project) is built once per daemon.
//!
//! What the tool writes: a [`Service`] (its methods), a [`DaemonSpec`] (how to find and start
//! the daemon), and a branch in `main` for the serve mode. Everything else — single instance,
//! start races, idle exit, stale files, retries — is warm's.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};
use warm_client::{Client, DaemonSpec, SpawnCommand};
use warm_daemon::{BoxFuture, Call, DaemonOptions, ReadyReporter, Service};
use warm_protocol::{ErrorObject, Framing};
use warm_runtime::{
    ensure_runtime_dir, runtime_dir_location, ClientSettings, DaemonPaths, Identity,
};

const SERVICE: &str = "embedded-kv";
const SERVE_FLAG: &str = "__serve";

/// The tool's daemon-side state and methods.
struct KvService {
    loaded_at: Instant,
    map: Mutex<HashMap<String, Value>>,
    calls: Mutex<u64>,
}

impl Service for KvService {
    fn call(&self, call: Call) -> BoxFuture<Result<Value, ErrorObject>> {
        let result = self.handle(&call.method, call.params.unwrap_or(Value::Null));
        Box::pin(async move { result })
    }
}

impl KvService {
    fn handle(&self, method: &str, params: Value) -> Result<Value, ErrorObject> {
        if let Ok(mut calls) = self.calls.lock() {
            *calls += 1;
        }
        let key = || {
            params
                .get("key")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| ErrorObject::invalid_params("\"key\" (a string) is required"))
        };
        let mut map = self
            .map
            .lock()
            .map_err(|_| ErrorObject::invalid_params("state poisoned"))?;
        match method {
            "get" => Ok(map.get(&key()?).cloned().unwrap_or(Value::Null)),
            "set" => {
                let value = params.get("value").cloned().unwrap_or(Value::Null);
                Ok(map.insert(key()?, value).unwrap_or(Value::Null))
            }
            "stats" => Ok(json!({
                "keys": map.len(),
                "calls": self.calls.lock().map(|c| *c).unwrap_or(0),
                "daemon_age_ms": self.loaded_at.elapsed().as_millis() as u64,
                "pid": std::process::id(),
            })),
            other => Err(ErrorObject::method_not_found(other)),
        }
    }
}

fn identity() -> Result<Identity, String> {
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    Identity::new(SERVICE, &warm_runtime::find_root(&cwd, true)).map_err(|e| e.to_string())
}

/// Serve mode: what the client starts in the background.
fn serve() -> Result<(), String> {
    // First, before any thread exists: the pipe to the client waiting for us.
    let mut ready = ReadyReporter::from_env();
    let prepared = identity().and_then(|identity| {
        let runtime_dir = ensure_runtime_dir(&runtime_dir_location()).map_err(|e| e.to_string())?;
        let paths = DaemonPaths::new(&runtime_dir, &identity).map_err(|e| e.to_string())?;
        let mut options = DaemonOptions::new(identity, paths, env!("CARGO_PKG_VERSION"));
        options.ttl = std::time::Duration::from_secs(300);
        Ok(options)
    });
    let options = match prepared {
        Ok(options) => options,
        Err(reason) => {
            ready.fail(&reason);
            return Err(reason);
        }
    };
    warm_daemon::serve_blocking(options, ready, |_shutdown| {
        Arc::new(KvService {
            loaded_at: Instant::now(),
            map: Mutex::new(HashMap::new()),
            calls: Mutex::new(0),
        })
    })
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Client mode: one call, printed as JSON.
fn call(method: &str, params: Value) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let spec = DaemonSpec {
        identity: identity()?,
        runtime_dir: runtime_dir_location(),
        spawn: SpawnCommand::new(exe).arg(SERVE_FLAG),
        version: env!("CARGO_PKG_VERSION").into(),
        config_hash: None,
        settings: ClientSettings::default(),
        framing: Framing::Ndjson,
    };
    let mut client = Client::new(spec).map_err(|e| e.to_string())?;
    client.call(method, Some(params)).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match words.as_slice() {
        [SERVE_FLAG] => serve().map(|()| Value::Null),
        ["get", key] => call("get", json!({ "key": key })),
        ["set", key, value] => call("set", json!({ "key": key, "value": value })),
        ["stats"] => call("stats", json!({})),
        _ => {
            let name = Path::new(&std::env::args().next().unwrap_or_default())
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            eprintln!("usage: {name} get KEY | set KEY VALUE | stats");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(Value::Null) if words == [SERVE_FLAG] => ExitCode::SUCCESS,
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(3)
        }
    }
}
