"""Benchmark of `warm mcp`, the MCP server coding agents reach warm through.

1. Round trips of `tools/call` in one persistent session (as an agent holds it): `search`
   and `lsp_definition`, against the same query as a one-shot `warm search` / `warm lsp
   definition` command (what the tool runs for each call), so the difference is what MCP
   adds.
2. A fresh agent session's first answer on a project whose daemons are warm (spawn `warm
   mcp`, initialize, `lsp_definition`) against a per-session server that must start its own
   language server (spawn pylsp, initialize, open the file, ask): what every MCP
   code-intelligence server that runs one language server per session pays.

Run through scripts/bench-mcp:  bench/mcp.py WARM   (WARM_BENCH_RUNS, default 30)
Prints a Markdown table of medians and ratios.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lsp import PY, Session  # noqa: E402  (the LSP benchmark's project and client)
from mcp_session import McpSession  # noqa: E402

WARM = os.path.abspath(sys.argv[1])
RUNS = int(os.environ.get("WARM_BENCH_RUNS", "30"))
COLD_RUNS = int(os.environ.get("WARM_BENCH_COLD_RUNS", "5"))
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AT = {"file": "main.py", "line": 5, "column": 12}
PATTERN = "fn main"


class ColdSession(Session):
    """A language server a per-session MCP server starts for itself: the first answer does
    not wait for the server to finish reading the project."""

    def wait_published(self):
        pass


def timed(action, runs):
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def run_command(env, root, args, expect):
    out = subprocess.run([WARM, *args], cwd=root, env=env, capture_output=True, text=True)
    if expect not in out.stdout:
        raise SystemExit(f"warm {args}: {out.stdout!r} {out.stderr!r}")


def main():
    tmp = tempfile.mkdtemp(prefix="warm-bench-mcp-")
    root = os.path.join(tmp, "project")
    # Search over a real tree (this repository's crates), language queries on PY's files.
    shutil.copytree(os.path.join(REPO, "crates"), os.path.join(root, "crates"))
    for name, text in PY.items():
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
    subprocess.run(["git", "init", "-q", root], check=True)
    runtime = os.path.join(tmp, "rt")
    os.mkdir(runtime, 0o700)
    env = dict(os.environ, WARM_RUNTIME_DIR=runtime, WARM_CACHE_DIR=os.path.join(runtime, "cache"))
    env.pop("WARM_PROGRESS", None)
    rows = []
    try:
        session = McpSession(WARM, root, env)
        want_search = session.call("search", {"pattern": PATTERN})
        want_definition = session.call("lsp_definition", AT)
        if "service.py:1:5" not in want_definition:
            raise SystemExit(f"lsp_definition: {want_definition!r}")
        mcp_search = timed(lambda: session.call("search", {"pattern": PATTERN}), RUNS)
        search_args = ["search", "--line-number", "--no-heading", "--with-filename",
                       "--color", "never", f"--regexp={PATTERN}", "--"]
        cli_search = timed(lambda: run_command(env, root, search_args, want_search[:20]), RUNS)
        mcp_definition = timed(lambda: session.call("lsp_definition", AT), RUNS)
        at = f"{AT['file']}:{AT['line']}:{AT['column']}"
        cli_definition = timed(
            lambda: run_command(env, root, ["lsp", "definition", at], "service.py:1:5"), RUNS)
        rows.append(("`search` (tools/call, persistent session)", mcp_search,
                     "`warm search` one-shot", cli_search))
        rows.append(("`lsp_definition` (tools/call, persistent session)", mcp_definition,
                     "`warm lsp definition` one-shot", cli_definition))
        session.close()

        def fresh_session():
            fresh = McpSession(WARM, root, env)
            fresh.call("lsp_definition", AT)
            fresh.close()

        def per_session_server():
            server = ColdSession([sys.executable, "-m", "pylsp"], root, "main.py", "python")
            answer = server.request("textDocument/definition", {
                "textDocument": {"uri": server.uri},
                "position": {"line": AT["line"] - 1, "character": AT["column"] - 1}})
            if not answer.get("result"):
                raise SystemExit(f"pylsp cold: {answer}")
            server.proc.kill()
            server.proc.wait()

        rows.append(("fresh `warm mcp` session's first `lsp_definition` (daemons warm)",
                     timed(fresh_session, COLD_RUNS),
                     "per-session pylsp: spawn, initialize, open, definition",
                     timed(per_session_server, COLD_RUNS)))
    finally:
        subprocess.run([WARM, "stop", "--all"], env=env, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"runs: {RUNS} (fresh sessions: {COLD_RUNS}); medians in ms\n")
    print("| measured | p50 ms | against | p50 ms | difference | ratio |")
    print("|---|---:|---|---:|---:|---:|")
    for name, ours, other, theirs in rows:
        print(f"| {name} | {ours:.2f} | {other} | {theirs:.2f} | {ours - theirs:+.2f} | "
              f"{theirs / ours:.2f}x |")


main()
