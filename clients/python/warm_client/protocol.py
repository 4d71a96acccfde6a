"""The wire: newline-delimited JSON-RPC 2.0 (the daemon detects the framing from the first
byte), and what each incoming message is for."""
import json

from . import errors


def encode(message):
    """One frame: the JSON text and a newline."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def request(request_id, method, params=None):
    message = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def notification(method, params):
    return {"jsonrpc": "2.0", "method": method, "params": params}


def classify(line):
    """What a frame from the daemon is:

    - `("answer", id, ("result", value))` or `("answer", id, ("error", exception))`;
    - `("progress", id, params)`: a `$/progress` of the request `id`;
    - `("notification", method, params)`: any other notification;
    - `None`: not a message (a client ignores what it cannot read).
    """
    try:
        message = json.loads(line)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    method = message.get("method")
    if method is None:
        if "error" in message:
            return "answer", message.get("id"), ("error", errors.from_error_object(message["error"]))
        return "answer", message.get("id"), ("result", message.get("result"))
    params = message.get("params")
    if method == "$/progress" and isinstance(params, dict) and "id" in params:
        return "progress", params["id"], params
    return "notification", method, params
