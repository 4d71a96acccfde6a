"""Benchmark of `warm lsp` against five real language servers (pylsp, pyright,
typescript-language-server, clangd, bash-language-server): warm one-shot queries versus the
cold path (spawn the server, initialize, open the file, ask) and versus the server's own warm
answer time (one persistent LSP session over pipes, the floor no client can beat), and the
diagnostics of a file just edited.

Run through scripts/bench-lsp:  bench/lsp.py WARM [SERVER...]   (WARM_BENCH_RUNS, default 20)
Prints a Markdown table of medians and ratios.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

WARM = os.path.abspath(sys.argv[1])
ONLY = sys.argv[2:]
RUNS = int(os.environ.get("WARM_BENCH_RUNS", "20"))
COLD_RUNS = int(os.environ.get("WARM_BENCH_COLD_RUNS", "3"))
# What warm tells servers it supports (some answers, e.g. pylsp's hover in markdown, cost far
# more than others): the floor asks for the same.
CAPABILITIES = {
    "window": {"workDoneProgress": True},
    "workspace": {"configuration": True, "workspaceFolders": True},
    "textDocument": {"hover": {"contentFormat": ["plaintext", "markdown"]}, "publishDiagnostics": {},
                     "synchronization": {"didSave": True}},
}

PY = {
    "main.py": "from service import helper\n\n\ndef go():\n    return helper(1)\n",
    "service.py": "def helper(x):\n    return x + 1\n",
}
SERVERS = {
    # name: (service, command, files, main, (line, col) of the call of `helper`, language)
    "pylsp": ("lsp-pylsp", [sys.executable, "-m", "pylsp"], PY, "main.py", (5, 12), "python"),
    "pyright": ("lsp-pyright", ["pyright-langserver", "--stdio"], PY, "main.py", (5, 12), "python"),
    "typescript-language-server": (
        "lsp-typescript-language-server", ["typescript-language-server", "--stdio"],
        {"main.ts": 'import { helper } from "./service";\n\nexport function go(): number {\n  return helper(1);\n}\n',
         "service.ts": "export function helper(n: number): number {\n  return n + 1;\n}\n",
         "tsconfig.json": '{ "compilerOptions": { "strict": true } }\n'},
        "main.ts", (4, 10), "typescript"),
    "clangd": (
        "lsp-clangd", ["clangd"],
        {"main.c": '#include "service.h"\n\nint go(void) {\n  return helper(1);\n}\n',
         "service.h": "int helper(int x);\n"},
        "main.c", (4, 10), "c"),
    "bash-language-server": (
        "lsp-bash-language-server", ["bash-language-server", "start"],
        {"main.sh": "#!/bin/bash\nsource ./service.sh\nhelper 1\n",
         "service.sh": 'helper() {\n  echo "$1"\n}\n'},
        "main.sh", (3, 1), "shellscript"),
}


class Session:
    """A language server over pipes, as an editor holds it: the file open, the server done
    reading the project (its diagnostics for the file in, its progress ended)."""

    def __init__(self, command, root, main, language):
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, cwd=root)
        self.lock = threading.Condition()
        self.answers, self.published, self.progress = {}, {}, set()
        self.last_publish = 0.0
        self.next_id = 0
        self.uri = "file://" + os.path.join(root, main)
        threading.Thread(target=self.reader, daemon=True).start()
        self.request("initialize", {"processId": os.getpid(), "rootUri": "file://" + root,
                                    "workspaceFolders": [{"uri": "file://" + root, "name": "b"}],
                                    "capabilities": CAPABILITIES})
        self.notify("initialized", {})
        with open(os.path.join(root, main)) as f:
            text = f.read()
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": self.uri, "languageId": language, "version": 1, "text": text}})
        self.wait_published()

    def send(self, message):
        body = json.dumps(message).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def reader(self):
        while True:
            length = None
            while True:
                line = self.proc.stdout.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            message = json.loads(self.proc.stdout.read(length))
            with self.lock:
                method = message.get("method")
                if method and "id" in message:
                    result = None
                    if method == "workspace/configuration":
                        result = [None] * len(message["params"]["items"])
                    self.send({"jsonrpc": "2.0", "id": message["id"], "result": result})
                elif method == "textDocument/publishDiagnostics":
                    self.published[message["params"]["uri"]] = message["params"]
                    self.last_publish = time.time()
                elif method == "$/progress":
                    token = json.dumps(message["params"]["token"])
                    kind = message["params"]["value"].get("kind")
                    if kind == "begin":
                        self.progress.add(token)
                    elif kind == "end":
                        self.progress.discard(token)
                elif "id" in message and not method:
                    self.answers[message["id"]] = message
                self.lock.notify_all()

    def wait_published(self):
        deadline = time.time() + 60
        with self.lock:
            while not (self.uri in self.published and not self.progress
                       and time.time() - self.last_publish > 1.0):
                if time.time() > deadline:
                    raise SystemExit("the server never published diagnostics")
                self.lock.wait(0.1)

    def notify(self, method, params):
        with self.lock:
            self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method, params):
        with self.lock:
            self.next_id += 1
            ident = self.next_id
            self.send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
            self.lock.wait_for(lambda: ident in self.answers, 60)
            return self.answers.pop(ident)

    def query(self, method, at):
        return self.request(method, {"textDocument": {"uri": self.uri},
                                     "position": {"line": at[0] - 1, "character": at[1] - 1}})

    def close(self):
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            self.proc.wait(5)
        except Exception:
            self.proc.kill()


def timed(fn):
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def median(fn, runs):
    return statistics.median(timed(fn) for _ in range(runs))


def bench(name, env):
    service, command, files, main, at, language = SERVERS[name]
    root = tempfile.mkdtemp(prefix="warm-bench-lsp-")
    os.mkdir(os.path.join(root, ".git"))
    for file, text in files.items():
        with open(os.path.join(root, file), "w") as f:
            f.write(text)
    if name == "clangd":
        with open(os.path.join(root, "compile_commands.json"), "w") as f:
            json.dump([{"directory": root, "command": "cc -c main.c", "file": "main.c"}], f)
    env = dict(env, WARM_RUNTIME_DIR=os.path.join(root, "rt"))
    os.mkdir(env["WARM_RUNTIME_DIR"], 0o700)
    env["WARM_CACHE_DIR"] = os.path.join(root, "cache")
    location = "%s:%d:%d" % (main, at[0], at[1])

    def warm(*args):
        subprocess.run([WARM, "lsp", "-s", service, *args], cwd=root, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cold():
        Session(command, root, main, language).query("textDocument/definition", at)

    rows = []
    floor = Session(command, root, main, language)
    try:
        for query, method in (("hover", "textDocument/hover"),
                              ("definition", "textDocument/definition")):
            warm(query, location)
            warm_ms = median(lambda: warm(query, location), RUNS)
            floor.query(method, at)
            floor_ms = median(lambda: floor.query(method, at), RUNS)
            rows.append((query, warm_ms, floor_ms))
        cold_ms = median(cold, COLD_RUNS)
        # Diagnostics of the file just edited (two contents in turn, both without errors).
        path = os.path.join(root, main)
        original = files[main]
        comment = "#" if main.endswith((".py", ".sh")) else "//"
        edits = [original + comment + " edited\n", original]
        state = {"n": 0}

        def edit_then_diagnostics():
            with open(path, "w") as f:
                f.write(edits[state["n"] % 2])
            state["n"] += 1
            warm("diagnostics", main)
        warm("diagnostics", main)
        diagnostics_ms = median(edit_then_diagnostics, max(5, RUNS // 4))
        unchanged_ms = median(lambda: warm("diagnostics", main), RUNS)
    finally:
        floor.close()
        subprocess.run([WARM, "stop", "--all"], cwd=root, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return rows, cold_ms, diagnostics_ms, unchanged_ms


def main():
    env = dict(os.environ)
    bindir = tempfile.mkdtemp(prefix="warm-bench-bin-")
    with open(os.path.join(bindir, "pylsp"), "w") as f:
        f.write("#!/bin/sh\nexec %s -m pylsp \"$@\"\n" % sys.executable)
    os.chmod(os.path.join(bindir, "pylsp"), 0o755)
    env["PATH"] = bindir + ":" + env["PATH"]
    true_ms = median(lambda: subprocess.run(["true"]), RUNS)
    print(f"`warm lsp` vs five language servers, medians ({RUNS} warm runs, {COLD_RUNS} cold runs)\n")
    print("| server | query | warm one-shot | server's own warm answer | warm overhead | cold (spawn+initialize+open+ask) | cold / warm |")
    print("|---|---|---|---|---|---|---|")
    diagnostics = []
    for name in SERVERS:
        if ONLY and name not in ONLY:
            continue
        rows, cold_ms, diagnostics_ms, unchanged_ms = bench(name, env)
        for query, warm_ms, floor_ms in rows:
            cold = f"{cold_ms:.0f} ms | {cold_ms / warm_ms:.0f}x" if query == "definition" else " | "
            print(f"| {name} | {query} | {warm_ms:.2f} ms | {floor_ms:.2f} ms | +{warm_ms - floor_ms:.2f} ms | {cold} |")
        diagnostics.append((name, unchanged_ms, diagnostics_ms))
    print("\n| server | diagnostics, nothing changed | diagnostics of a file just edited (no error) |")
    print("|---|---|---|")
    for name, unchanged_ms, edited_ms in diagnostics:
        print(f"| {name} | {unchanged_ms:.1f} ms | {edited_ms:.0f} ms |")
    print(f"\nFor scale, in the same run: starting `true` {true_ms:.2f} ms.")


if __name__ == "__main__":
    main()
