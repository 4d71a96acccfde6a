"""A fresh, direct LSP client: the reference `warm lsp` is compared with.

    direct_lsp.py ROOT FILE METHOD LINE COL -- SERVER_COMMAND...
    direct_lsp.py ROOT FILE diagnostics -- SERVER_COMMAND...

Starts the server in ROOT, initializes it, opens FILE (as it is on disk now), waits until
the server has checked it (its first diagnostics for the file, and the end of any
work-done progress), then sends METHOD at 1-based LINE:COL (UTF-16 columns: the test files
are ASCII) and prints the server's answer as JSON; for `diagnostics`, the diagnostics of the
file. Shuts the server down and exits. Nothing of warm is used.
"""
import json
import os
import subprocess
import sys
import threading
import time

DEADLINE = 60


def main():
    split = sys.argv.index("--")
    args, command = sys.argv[1:split], sys.argv[split + 1:]
    root, file, method = os.path.abspath(args[0]), os.path.abspath(args[1]), args[2]
    server = subprocess.Popen(command, cwd=root, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    lock = threading.Condition()
    state = {"answers": {}, "published": {}, "progress": set(), "last_publish": 0.0}

    def send(message):
        body = json.dumps(message).encode()
        server.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        server.stdin.flush()

    def read():
        while True:
            length = None
            while True:
                line = server.stdout.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            message = json.loads(server.stdout.read(length))
            with lock:
                if "method" in message and "id" in message:
                    result = None
                    if message["method"] == "workspace/configuration":
                        result = [None] * len(message["params"]["items"])
                    send({"jsonrpc": "2.0", "id": message["id"], "result": result})
                elif message.get("method") == "textDocument/publishDiagnostics":
                    params = message["params"]
                    state["published"][params["uri"]] = params["diagnostics"]
                    state["last_publish"] = time.time()
                elif message.get("method") == "$/progress":
                    token = json.dumps(message["params"]["token"])
                    kind = message["params"]["value"].get("kind")
                    if kind == "begin":
                        state["progress"].add(token)
                    elif kind == "end":
                        state["progress"].discard(token)
                elif "id" in message:
                    state["answers"][message["id"]] = message
                lock.notify_all()

    threading.Thread(target=read, daemon=True).start()
    next_id = [0]

    def request(name, params):
        next_id[0] += 1
        ident = next_id[0]
        with lock:
            send({"jsonrpc": "2.0", "id": ident, "method": name, "params": params})
            if not lock.wait_for(lambda: ident in state["answers"], DEADLINE):
                sys.exit("no answer to " + name)
            return state["answers"].pop(ident)

    def notify(name, params):
        with lock:
            send({"jsonrpc": "2.0", "method": name, "params": params})

    uri = "file://" + file
    request("initialize", {
        "processId": os.getpid(),
        "rootUri": "file://" + root,
        "workspaceFolders": [{"uri": "file://" + root, "name": os.path.basename(root)}],
        "capabilities": {
            "window": {"workDoneProgress": True},
            "workspace": {"configuration": True, "workspaceFolders": True},
            "textDocument": {"publishDiagnostics": {}, "hover": {"contentFormat": ["plaintext", "markdown"]},
                             "synchronization": {"didSave": True}},
        },
    })
    notify("initialized", {})
    language = {".py": "python", ".ts": "typescript", ".c": "c", ".h": "c", ".sh": "shellscript"}
    with open(file, encoding="utf-8") as f:
        text = f.read()
    notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": language[os.path.splitext(file)[1]], "version": 1, "text": text}})
    # Checked: diagnostics for the file arrived, no progress is open, and the server has been
    # quiet for a second (a server may publish a file's diagnostics in parts).
    deadline = time.time() + DEADLINE
    with lock:
        while not (uri in state["published"] and not state["progress"]
                   and time.time() - state["last_publish"] > 1.0):
            if time.time() > deadline:
                sys.exit("the server never published diagnostics for " + file)
            lock.wait(0.2)
    if method == "diagnostics":
        with lock:
            answer = state["published"].get(uri, [])
    else:
        line, column = int(args[3]), int(args[4])
        params = {"textDocument": {"uri": uri}, "position": {"line": line - 1, "character": column - 1}}
        if method == "textDocument/references":
            params["context"] = {"includeDeclaration": True}
        answer = request(method, params).get("result")
    print(json.dumps(answer))
    sys.stdout.flush()
    try:
        request("shutdown", None)
        notify("exit", None)
        server.wait(5)
    except Exception:
        server.kill()


if __name__ == "__main__":
    main()
