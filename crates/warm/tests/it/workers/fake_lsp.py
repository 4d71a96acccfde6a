"""A fake language server (LSP framing on stdio) that records what its client did.

It answers `initialize`, asks its client `workspace/configuration` and
`window/workDoneProgress/create` after `initialized`, and reports everything it saw on
`test/seen` (the documents opened, changed with their versions, and closed in this process,
the content of every open document when the last hover came, and its pid). On every didOpen and didChange it publishes diagnostics, without a version,
quoting the content's first line ($FAKE_PUBLISH_DELAY_MS later if set, as a server that
lints after a debounce). Its hover reports work-done progress, then answers with the position it got,
in the position encoding it chose (UTF-8 when the client offers it). Its rename edits the
document, and also the file named by $FAKE_RENAME_ALSO if set (wherever it is). Each hover makes it hold $FAKE_GROW_MIB more MiB of memory, if set (a server that leaks). It exits on `exit`, with code 0 only if `shutdown` came first (as the LSP says).
"""
import json
import os
import sys
import threading

inp, out = sys.stdin.buffer, sys.stdout.buffer


def read():
    headers = {}
    while True:
        line = inp.readline()
        if not line:
            return None
        line = line.strip()
        if not line:
            break
        key, value = line.split(b":", 1)
        headers[key.strip().lower()] = value.strip()
    return json.loads(inp.read(int(headers[b"content-length"])))


writing = threading.Lock()


def send(message):
    body = json.dumps(message).encode()
    with writing:
        out.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        out.flush()


def publish(uri, text):
    """Diagnostics without a version (as many servers send them): one warning quoting the
    document's first line, so a test can tell which content they were for."""
    first = text.splitlines()[0] if text else ""
    delay = int(os.environ.get("FAKE_PUBLISH_DELAY_MS", "0")) / 1000
    message = {"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics",
          "params": {"uri": uri, "diagnostics": [{
              "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}},
              "severity": 2, "source": "fake", "message": "content: " + first}]}}
    if delay:
        timer = threading.Timer(delay, send, [message])
        timer.daemon = True
        timer.start()
    else:
        send(message)


seen = {"initialize": None, "initialize_count": 0, "initialized": False, "settings": None,
        "answers": {}, "shutdown": False, "opened": [], "changed": [], "closed": [],
        "pid": os.getpid(), "open_at_last_hover": {}}
texts = {}
held = []
while True:
    msg = read()
    if msg is None:
        sys.exit(1)
    method = msg.get("method")
    if method == "initialize":
        seen["initialize"] = msg["params"]
        seen["initialize_count"] += 1
        offered = msg["params"]["capabilities"].get("general", {}).get("positionEncodings", [])
        capabilities = {"hoverProvider": True, "renameProvider": True}
        if "utf-8" in offered:
            capabilities["positionEncoding"] = "utf-8"
        send({"jsonrpc": "2.0", "id": msg["id"], "result": {"capabilities": capabilities}})
    elif method == "initialized":
        seen["initialized"] = True
        send({"jsonrpc": "2.0", "id": "cfg", "method": "workspace/configuration",
              "params": {"items": [{"section": "fake.level"}, {"section": "missing"}]}})
        send({"jsonrpc": "2.0", "id": "wdp", "method": "window/workDoneProgress/create",
              "params": {"token": "t1"}})
    elif method == "textDocument/didOpen":
        document = msg["params"]["textDocument"]
        seen["opened"].append(document["uri"])
        texts[document["uri"]] = document["text"]
        publish(document["uri"], document["text"])
    elif method == "textDocument/didChange":
        document = msg["params"]["textDocument"]
        seen["changed"].append([document["uri"], document["version"]])
        texts[document["uri"]] = msg["params"]["contentChanges"][-1]["text"]
        publish(document["uri"], msg["params"]["contentChanges"][-1]["text"])
    elif method == "textDocument/didClose":
        seen["closed"].append(msg["params"]["textDocument"]["uri"])
        texts.pop(msg["params"]["textDocument"]["uri"], None)
    elif method == "workspace/didChangeConfiguration":
        seen["settings"] = msg["params"]["settings"]
    elif method is None and "id" in msg:
        seen["answers"][msg["id"]] = msg.get("result", msg.get("error"))
    elif method == "textDocument/hover":
        # What a real server answers from: every document open at this moment.
        seen["open_at_last_hover"] = dict(texts)
        held.append(b"\x01" * (int(os.environ.get("FAKE_GROW_MIB", "0")) << 20))
        for value in ({"kind": "begin", "title": "Indexing", "percentage": 0},
                      {"kind": "report", "message": "3/4 files", "percentage": 75},
                      {"kind": "end"}):
            send({"jsonrpc": "2.0", "method": "$/progress", "params": {"token": "t1", "value": value}})
        position = msg["params"]["position"]
        send({"jsonrpc": "2.0", "id": msg["id"],
              "result": {"contents": "fake hover at %d:%d" % (position["line"], position["character"])}})
    elif method == "textDocument/rename":
        edit = [{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
                 "newText": msg["params"]["newName"]}]
        changes = {msg["params"]["textDocument"]["uri"]: edit}
        also = os.environ.get("FAKE_RENAME_ALSO")
        if also:
            changes["file://" + also] = edit
        send({"jsonrpc": "2.0", "id": msg["id"], "result": {"changes": changes}})
    elif method == "test/seen":
        send({"jsonrpc": "2.0", "id": msg["id"], "result": seen})
    elif method == "shutdown":
        seen["shutdown"] = True
        send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
    elif method == "exit":
        sys.exit(0 if seen["shutdown"] else 1)
    elif "id" in msg:
        send({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": f"no {method}"}})
