"""Benchmark of `warm lsp` against python-lsp-server: warm one-shot queries versus the cold
path (spawn pylsp, initialize, open the file, ask) and versus the server's own warm answer
time (one persistent LSP session over pipes, the floor no client can beat).

Run through scripts/bench-lsp. Prints a Markdown table of medians and ratios.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

WARM = sys.argv[1]
RUNS = int(os.environ.get("WARM_BENCH_RUNS", "30"))
COLD_RUNS = int(os.environ.get("WARM_BENCH_COLD_RUNS", "5"))
# What warm tells servers it supports (some answers, e.g. pylsp's hover in markdown, cost
# far more than others): the floor asks for the same.
CAPABILITIES = {"textDocument": {"hover": {"contentFormat": ["plaintext", "markdown"]}}}
PYLSP = [sys.executable, "-m", "pylsp"]

APP = '''import os


def greet(name: str) -> str:
    """Say hello to someone."""
    return "hello " + name


class Greeter:
    def hello(self):
        return greet("world")
'''

QUERIES = {
    "hover": ("textDocument/hover", ["hover", "app.py:11:17"]),
    "definition": ("textDocument/definition", ["definition", "app.py:11:17"]),
    "diagnostics": (None, ["diagnostics", "app.py"]),
}


class Session:
    """A language server over pipes, as an editor holds it."""

    def __init__(self, root):
        self.proc = subprocess.Popen(PYLSP, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, cwd=root)
        self.next_id = 0
        self.root = root
        self.uri = "file://" + os.path.join(root, "app.py")
        self.request("initialize", {"processId": os.getpid(), "rootUri": "file://" + root,
                                    "capabilities": CAPABILITIES})
        self.notify("initialized", {})
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": self.uri, "languageId": "python", "version": 1, "text": APP}})

    def send(self, message):
        body = json.dumps(message).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def read(self):
        length = 0
        while True:
            line = self.proc.stdout.readline().strip()
            if not line:
                break
            key, value = line.split(b":", 1)
            if key.lower() == b"content-length":
                length = int(value)
        return json.loads(self.proc.stdout.read(length))

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            message = self.read()
            if message.get("id") == self.next_id and "method" not in message:
                return message
            if "method" in message and "id" in message:
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})

    def diagnostics(self):
        while True:
            message = self.read()
            if message.get("method") == "textDocument/publishDiagnostics":
                return message

    def query(self, method):
        return self.request(method, {"textDocument": {"uri": self.uri},
                                     "position": {"line": 10, "character": 16}})

    def close(self):
        self.request("shutdown", None)
        self.notify("exit", None)
        self.proc.wait()


def timed(fn):
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def cold(root, method):
    session = Session(root)
    if method is None:
        session.diagnostics()
    else:
        session.query(method)
    session.close()


def main():
    root = tempfile.mkdtemp(prefix="warm-bench-lsp-")
    os.mkdir(os.path.join(root, ".git"))
    with open(os.path.join(root, "app.py"), "w") as f:
        f.write(APP)
    env = dict(os.environ, WARM_RUNTIME_DIR=os.path.join(root, "rt"))
    os.mkdir(env["WARM_RUNTIME_DIR"], 0o700)
    bindir = os.path.join(root, "bin")
    os.mkdir(bindir)
    with open(os.path.join(bindir, "pylsp"), "w") as f:
        f.write("#!/bin/sh\nexec %s -m pylsp \"$@\"\n" % sys.executable)
    os.chmod(os.path.join(bindir, "pylsp"), 0o755)
    env["PATH"] = bindir + ":" + env["PATH"]

    def warm(args):
        subprocess.run([WARM, "lsp", *args], cwd=root, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    warm_call = lambda: subprocess.run([WARM, "-s", "lsp-pylsp", "call", "daemon/ping"], cwd=root,
                                       env=env, check=True, stdout=subprocess.DEVNULL)
    floor = Session(root)
    floor.query("textDocument/hover")  # first lookups import jedi's caches
    rows = []
    try:
        for name, (method, args) in QUERIES.items():
            warm(args)
            warm_ms = statistics.median(timed(lambda: warm(args)) for _ in range(RUNS))
            cold_ms = statistics.median(timed(lambda: cold(root, method)) for _ in range(COLD_RUNS))
            if method is None:
                floor_ms = None
            else:
                floor.query(method)
                floor_ms = statistics.median(timed(lambda: floor.query(method)) for _ in range(RUNS))
            rows.append((name, warm_ms, cold_ms, floor_ms))
        ping_ms = statistics.median(timed(warm_call) for _ in range(RUNS))
        true_ms = statistics.median(timed(lambda: subprocess.run(["true"])) for _ in range(RUNS))
    finally:
        floor.close()
        subprocess.run([WARM, "stop", "--all"], cwd=root, env=env, stdout=subprocess.DEVNULL)

    print(f"`warm lsp` vs python-lsp-server, medians ({RUNS} warm runs, {COLD_RUNS} cold runs)\n")
    print("| query | warm one-shot | cold (spawn+initialize+open+ask) | cold / warm | server's own warm answer | warm overhead |")
    print("|---|---|---|---|---|---|")
    for name, warm_ms, cold_ms, floor_ms in rows:
        floor = "n/a (pushed after a 0.5 s lint debounce)" if floor_ms is None else f"{floor_ms:.2f} ms"
        overhead = "" if floor_ms is None else f"+{warm_ms - floor_ms:.2f} ms"
        print(f"| {name} | {warm_ms:.2f} ms | {cold_ms:.0f} ms | {cold_ms / warm_ms:.0f}x | {floor} | {overhead} |")
    print(f"\nFor scale, in the same run: starting `true` {true_ms:.2f} ms; one-shot "
          f"`warm call daemon/ping` {ping_ms:.2f} ms.")


if __name__ == "__main__":
    main()
