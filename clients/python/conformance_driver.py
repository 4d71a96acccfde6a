"""The Python client under the conformance suite's driver protocol
(clients/conformance/README.md): one JSON op per line on stdin, answers on stdout.

    python3 conformance_driver.py           # the sync Client, a thread per call
    python3 conformance_driver.py --async   # the AsyncClient, a task per call
"""
import asyncio
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import warm_client  # noqa: E402

_write_lock = threading.Lock()


def answer(**fields):
    with _write_lock:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


def error_fields(error):
    kind = type(error).__name__
    if isinstance(error, warm_client.WarmTimeoutError):
        kind = "TimeoutError"
    return {"type": kind, "code": getattr(error, "code", None),
            "message": str(error), "data": getattr(error, "data", None)}


def client_options(op):
    return {"warm": op.get("warm"), "busy_timeout": op.get("busy_timeout", 60.0),
            "max_restarts": op.get("max_restarts", 2)}


def run_sync():
    client, calls, leases = None, {}, {}

    def call(op, token):
        progress = (lambda params: answer(id=op["id"], progress=params)) if op.get("progress") else None
        try:
            result = client.call(op["method"], op.get("params"), timeout=op.get("timeout"),
                                 on_progress=progress, cancel=token)
            answer(id=op["id"], result=result)
        except warm_client.WarmError as error:
            answer(id=op["id"], error=error_fields(error))

    def hold(op):
        ready, release = threading.Event(), threading.Event()

        def body():
            try:
                with client.lease() as lease:
                    answer(id=op["id"], result={"lease_id": lease.id})
                    ready.set()
                    release.wait()
            except warm_client.WarmError as error:
                answer(id=op["id"], error=error_fields(error))
                ready.set()
        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        ready.wait()
        return release, thread

    for line in sys.stdin:
        op = json.loads(line)
        kind = op["op"]
        if kind == "connect":
            client = warm_client.Client(op.get("service"), op.get("root"), **client_options(op))
            answer(id=op["id"], ok=True)
        elif kind == "call":
            token = warm_client.CancelToken()
            calls[op["id"]] = token
            threading.Thread(target=call, args=(op, token), daemon=True).start()
        elif kind == "cancel":
            calls[op["call"]].cancel()
            answer(id=op["id"], ok=True)
        elif kind == "lease":
            leases[op["id"]] = hold(op)
        elif kind == "release":
            release, thread = leases.pop(op["lease"])
            release.set()
            thread.join()
            answer(id=op["id"], ok=True)
        elif kind == "daemon":
            answer(id=op["id"], result=client.daemon)
        elif kind == "close":
            client.close()
            answer(id=op["id"], ok=True)
            return


async def run_async():
    loop = asyncio.get_running_loop()
    client, calls, leases = None, {}, {}
    lines = asyncio.Queue()
    threading.Thread(target=lambda: [loop.call_soon_threadsafe(lines.put_nowait, l)
                                     for l in sys.stdin] and None, daemon=True).start()

    async def call(op):
        progress = (lambda params: answer(id=op["id"], progress=params)) if op.get("progress") else None
        try:
            result = await client.call(op["method"], op.get("params"), timeout=op.get("timeout"),
                                       on_progress=progress)
            answer(id=op["id"], result=result)
        except asyncio.CancelledError:
            answer(id=op["id"], error={"type": "CancelledError", "code": -32005,
                                       "message": "cancelled", "data": None})
        except warm_client.WarmError as error:
            answer(id=op["id"], error=error_fields(error))

    async def hold(op, release):
        try:
            async with client.lease() as lease:
                answer(id=op["id"], result={"lease_id": lease.id})
                await release.wait()
        except warm_client.WarmError as error:
            answer(id=op["id"], error=error_fields(error))

    while True:
        op = json.loads(await lines.get())
        kind = op["op"]
        if kind == "connect":
            client = warm_client.AsyncClient(op.get("service"), op.get("root"),
                                             **client_options(op))
            answer(id=op["id"], ok=True)
        elif kind == "call":
            calls[op["id"]] = asyncio.create_task(call(op))
        elif kind == "cancel":
            calls[op["call"]].cancel()
            answer(id=op["id"], ok=True)
        elif kind == "lease":
            release = asyncio.Event()
            leases[op["id"]] = (release, asyncio.create_task(hold(op, release)))
        elif kind == "release":
            release, task = leases.pop(op["lease"])
            release.set()
            await task
            answer(id=op["id"], ok=True)
        elif kind == "daemon":
            answer(id=op["id"], result=client.daemon)
        elif kind == "close":
            await client.close()
            answer(id=op["id"], ok=True)
            return


if __name__ == "__main__":
    if "--async" in sys.argv[1:]:
        asyncio.run(run_async())
    else:
        run_sync()
