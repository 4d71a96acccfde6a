//! `warm call`: call a method, print its result.

use std::io::Read;
use std::sync::Arc;

use serde_json::Value;
use warm_client::Client;
use warm_runtime::duration::parse_duration;

use super::print_json;
use crate::cli::CallArgs;
use crate::context::Context;
use crate::failure::{CommandResult, Failure};
use warm_lsp::dialect::{LspDialect, LspInit};
use warm_protocol::Framing;
use warm_worker::WorkerConfig;

pub fn run(context: &Context, args: &CallArgs) -> CommandResult {
    let params = read_params(args.params.as_deref())?;
    let mut client = Client::new(context.spec(&[])?)?;
    if let Some(text) = &args.timeout {
        let timeout =
            parse_duration(text).map_err(|e| Failure::Usage(format!("--timeout: {e}")))?;
        client.set_timeout(Some(timeout).filter(|t| !t.is_zero()));
    }
    let mut on_progress = super::progress_printer();
    match client.call_with_progress(&args.method, params.as_ref(), &mut on_progress) {
        Ok(result) => {
            print_json(&result);
            Ok(())
        }
        Err(warm_client::Error::Rpc(error)) => {
            if context.json {
                print_json(&error);
            }
            Err(Failure::Method(error))
        }
        // Only when no daemon was reached: a request lost in flight may have run already.
        Err(error @ warm_client::Error::Unavailable { .. }) => {
            fall_back(context, args, params, error)
        }
        Err(error) => Err(error.into()),
    }
}

/// Runs the request on the service's worker directly when no daemon can be reached (unless
/// `--no-fallback` or `fallback = false`), and says so on stderr.
fn fall_back(
    context: &Context,
    args: &CallArgs,
    params: Option<Value>,
    error: warm_client::Error,
) -> CommandResult {
    let worker = WorkerConfig::from_service(&context.service, context.root.clone());
    let Some(mut worker) = worker.filter(|_| context.settings.fallback && !args.no_fallback) else {
        return Err(error.into());
    };
    if worker.framing == Framing::Lsp {
        let init = LspInit::from_service(&context.service);
        worker.dialect = Some(Arc::new(LspDialect::new(init)));
    }
    errln!("warm: {error}; running the worker directly for this call (slower; see `warm logs`)");
    match warm_worker::fallback::run_once(&worker, &args.method, params) {
        Ok(result) => {
            print_json(&result);
            Ok(())
        }
        Err(error) => {
            if context.json {
                print_json(&error);
            }
            Err(Failure::Method(error))
        }
    }
}

fn read_params(text: Option<&str>) -> Result<Option<Value>, Failure> {
    let text = match text {
        None => return Ok(None),
        Some("-") => {
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .map_err(|e| Failure::Usage(format!("cannot read params from stdin: {e}")))?;
            input
        }
        Some(text) => text.to_owned(),
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Failure::Usage(format!("params are not valid JSON: {e}")))?;
    if !(value.is_object() || value.is_array()) {
        return Err(Failure::Usage(
            "params must be a JSON object or array, e.g. '{\"key\": 1}' or '[1, 2]'".into(),
        ));
    }
    Ok(Some(value))
}
