"""A test worker: newline-delimited JSON-RPC on stdin/stdout.

Methods: echo (returns params), pid, slow {ms, steps} (progress, then a result),
flood {bytes} (writes one line of that many bytes), crash {code} (exits at once),
grow {mib} (holds that many more MiB, touched, and answers its pid),
digest {data} (sha256 and length of base64 data: raw bytes sent in binary frames arrive
as base64), read {ms} and reindex {ms} (report whether they overlapped an exclusive request, or any
request, by marker files in $WORKER_MARKS, shared by every worker of the pool).
WORKER_MODE: exit_at_once (exits 5 at start, after a stderr line), ignore_sigterm.
"""
import base64
import hashlib
import json
import os
import signal
import sys
import time

mode = os.environ.get("WORKER_MODE", "")
if mode == "exit_at_once":
    print("fatal: cannot load the index (test)", file=sys.stderr, flush=True)
    sys.exit(5)
if mode == "ignore_sigterm":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

out = sys.stdout
held = []
marks = os.environ.get("WORKER_MARKS", "")


def overlapped(kind, rid, ms):
    """Runs a request for ms, marking it; True if a conflicting request ran meanwhile."""
    mine = os.path.join(marks, f"{kind}-{os.getpid()}-{rid}")
    open(mine, "w").close()

    def conflict():
        others = [m for m in os.listdir(marks) if os.path.join(marks, m) != mine]
        return any(m.startswith("reindex-") for m in others) if kind == "read" else bool(others)

    seen = conflict()
    time.sleep(ms / 1000.0)
    seen = seen or conflict()
    os.remove(mine)
    return seen



def send(message):
    out.write(json.dumps(message) + "\n")
    out.flush()


for line in sys.stdin:
    if not line.strip():
        continue
    message = json.loads(line)
    method, params, rid = message.get("method"), message.get("params"), message.get("id")
    if rid is None:
        continue  # notifications ($/cancelRequest) need no answer here
    if method == "echo":
        send({"jsonrpc": "2.0", "id": rid, "result": params})
    elif method == "pid":
        send({"jsonrpc": "2.0", "id": rid, "result": os.getpid()})
    elif method == "slow":
        steps = params.get("steps", 1)
        for done in range(1, steps + 1):
            time.sleep(params["ms"] / 1000.0 / steps)
            send({"jsonrpc": "2.0", "method": "$/progress",
                  "params": {"id": rid, "message": f"step {done}", "done": done, "total": steps}})
        send({"jsonrpc": "2.0", "id": rid, "result": {"slept_ms": params["ms"]}})
    elif method == "flood":
        out.write("x" * params["bytes"] + "\n")
        out.flush()
    elif method == "digest":
        data = base64.b64decode(params["data"])
        send({"jsonrpc": "2.0", "id": rid, "result": {"sha256": hashlib.sha256(data).hexdigest(), "len": len(data)}})
    elif method in ("read", "reindex"):
        send({"jsonrpc": "2.0", "id": rid, "result": {"overlap": overlapped(method, rid, params["ms"])}})
    elif method == "grow":
        held.append(b"\x01" * (params["mib"] << 20))
        send({"jsonrpc": "2.0", "id": rid, "result": os.getpid()})
    elif method == "crash":
        os._exit(params.get("code", 3))
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": f"no method {method}"}})
