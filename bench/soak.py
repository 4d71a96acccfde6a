"""Soak: a daemon with a pool of two workers, and the project's search daemon under edits,
under mixed load for a bounded time, sampled every second. Fails when a request is lost, when
a search misses a write made before it, or when RSS (beyond 10% after warm-up), open fds,
threads or child processes of the daemons (and of a persistent `warm mcp` session) grow.

Load, all at once: persistent pipelined clients (`warm bench`, reconnecting every few seconds),
one-shot clients (`warm bench --one-shot`), progress streams (`slow` with steps), clients that
disconnect mid-request (killed), an exclusive method (`reindex`) between the others; files
written and renamed, each write followed at once by a `warm search` that must find it at its
current name; and an MCP session (as an agent holds one) whose `search` tool must find what
it has just written.

Run through scripts/soak (default 10 minutes; CI runs 60 s).
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mcp_session import McpSession  # noqa: E402

WARM = sys.argv[1]
WORKER = sys.argv[2]
DURATION = float(sys.argv[3]) if len(sys.argv) > 3 else 600.0
CHUNK = 5.0
# Files the edit loop rewrites and renames, and those the MCP session writes.
SEARCH_FILES = 100
MCP_FILES = 20


class Totals:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.failures = []

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def fail(self, what):
        with self.lock:
            self.failures.append(what)


def main():
    root = tempfile.mkdtemp(prefix="warm-soak-")
    marks = os.path.join(root, "marks")
    os.mkdir(marks)
    runtime = os.path.join(root, "rt")
    os.mkdir(runtime, 0o700)
    with open(os.path.join(root, ".warm.toml"), "w") as f:
        f.write(f'[services.soak]\ncommand = ["{sys.executable}", "{WORKER}"]\nworkers = 2\n'
                f'exclusive = ["reindex"]\nttl = "0"\nenv = {{ WORKER_MARKS = "{marks}" }}\n')
    # A throwaway project of our own: trusted (see docs/configuration.md, workspace trust).
    env = dict(os.environ, WARM_RUNTIME_DIR=runtime, WARM_TRUST_ALL="1",
               WARM_CACHE_DIR=os.path.join(runtime, "cache"))
    env.pop("WARM_PROGRESS", None)

    def warm(*args, **kw):
        return subprocess.run([WARM, "-s", "soak", *args], cwd=root, env=env, capture_output=True,
                              text=True, **kw)

    def status():
        return json.loads(warm("status", "--json").stdout)

    src = os.path.join(root, "src")
    os.mkdir(src)
    names = {i: f"f{i}.txt" for i in range(SEARCH_FILES)}
    for i, name in names.items():
        with open(os.path.join(src, name), "w") as f:
            f.write(f"seed {i}\n")
    os.mkdir(os.path.join(root, "agent"))

    warm("start")
    first = status()
    pid = first["pid"]
    search = subprocess.run([WARM, "search", "-l", "seed 7$", "src"], cwd=root, env=env,
                            capture_output=True, text=True)
    if search.stdout != "src/f7.txt\n":
        raise SystemExit(f"the first search: {search.stdout!r} {search.stderr}")
    search_pid = json.loads(subprocess.run([WARM, "-s", "search", "status", "--json"], cwd=root,
                                           env=env, capture_output=True, text=True).stdout)["pid"]
    mcp = McpSession(WARM, root, env)
    totals = Totals()
    deadline = time.monotonic() + DURATION
    samples = {"worker daemon": [], "search daemon": [], "warm mcp": []}

    def running():
        return time.monotonic() < deadline

    def bench(*extra):
        while running():
            seconds = max(0.5, min(CHUNK, deadline - time.monotonic()))
            out = warm("bench", "--method", "echo", "-d", f"{int(seconds * 1000)}ms", "--json", *extra)
            try:
                report = json.loads(out.stdout)["report"]
            except (ValueError, KeyError):
                totals.fail(f"bench {extra}: {out.stderr.strip()}")
                continue
            totals.add("bench_requests", report["requests"])
            totals.add("bench_ok", report["ok"])
            totals.add("bench_errors", sum(report["errors"].values()))
            if report["lost"]:
                totals.fail(f"bench {extra}: {report['lost']} lost")

    def call_loop(method, params, key):
        while running():
            out = warm("call", method, params)
            if out.returncode == 0:
                totals.add(key)
            else:
                totals.fail(f"{method}: exit {out.returncode}: {out.stderr.strip()}")

    def cancel_loop():
        # The test worker cannot stop a request once it started, so a cancelled `slow` still
        # holds a worker for its 300 ms: one a second keeps the pool from falling behind.
        while running():
            child = subprocess.Popen([WARM, "-s", "soak", "call", "slow", '{"ms": 300}'], cwd=root,
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.1)
            child.send_signal(signal.SIGKILL)
            child.wait()
            totals.add("cancelled")
            time.sleep(0.9)

    def edit_and_search_loop():
        # Read-your-writes through the one-shot CLI: every write, then a search for it.
        n = 0
        while running():
            n += 1
            i = n % SEARCH_FILES
            old = names[i]
            if n % 10 == 0:
                names[i] = ("g" if old.startswith("f") else "f") + old[1:]
                os.rename(os.path.join(src, old), os.path.join(src, names[i]))
            token = f"soaktoken{n}x"
            with open(os.path.join(src, names[i]), "w") as f:
                f.write(f"{token}\n")
            out = subprocess.run([WARM, "search", "-l", "-F", token], cwd=root, env=env,
                                 capture_output=True, text=True)
            if out.stdout != f"src/{names[i]}\n":
                totals.fail(f"search for {token} in src/{names[i]}: {out.stdout!r} {out.stderr}")
            totals.add("searches")
            time.sleep(0.02)

    def mcp_loop():
        n = 0
        try:
            while running():
                n += 1
                name = f"agent/m{n % MCP_FILES}.txt"
                token = f"agenttoken{n}y"
                with open(os.path.join(root, name), "w") as f:
                    f.write(f"{token}\n")
                text = mcp.call("search", {"pattern": token, "fixed_strings": True})
                if name not in text:
                    totals.fail(f"mcp search for {token}: {text!r}")
                totals.add("mcp_searches")
                time.sleep(0.05)
        except BaseException as error:  # the session itself failed
            totals.fail(f"mcp session: {error!r}")

    def sample():
        while running():
            samples["worker daemon"].append(measure(pid))
            samples["search daemon"].append(measure(search_pid))
            samples["warm mcp"].append(measure(mcp.proc.pid))
            time.sleep(1.0)

    threads = [
        threading.Thread(target=bench, args=("-c", "2", "--pipeline", "8")),
        threading.Thread(target=bench, args=("--one-shot", "-c", "1")),
        threading.Thread(target=call_loop, args=("slow", '{"ms": 100, "steps": 4}', "progress_calls")),
        threading.Thread(target=call_loop, args=("reindex", '{"ms": 20}', "exclusive_calls")),
        threading.Thread(target=cancel_loop),
        threading.Thread(target=edit_and_search_loop),
        threading.Thread(target=mcp_loop),
        threading.Thread(target=sample),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Killed clients' requests are cancelled in the daemon; wait until none is in flight.
    for _ in range(100):
        last = status()
        if last["in_flight"] == 0:
            break
        time.sleep(0.1)
    mcp.close()
    warm("stop")
    subprocess.run([WARM, "-s", "search", "stop"], cwd=root, env=env, capture_output=True)
    verdict = judge(samples, totals, first, last)
    print(json.dumps(verdict, indent=2))
    if verdict["failures"]:
        sys.exit(1)


def measure(pid):
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    children = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        children += 1
            except (OSError, ValueError, IndexError):
                pass
    return {
        "rss_kb": int(fields["VmRSS"].split()[0]),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "children": children,
    }


def judge(samples, totals, first, last):
    failures = list(totals.failures)
    growth = {}
    for process, series in samples.items():
        growth[process] = grown(process, series, failures)
    served = last["requests"] - first["requests"]
    answered = (totals.counts.get("bench_requests", 0) + totals.counts.get("progress_calls", 0)
                + totals.counts.get("exclusive_calls", 0))
    if served < answered:
        failures.append(f"the daemon counted {served} requests, the clients {answered} answers")
    return {"seconds": len(samples["worker daemon"]), "client_counts": totals.counts,
            "daemon_requests": served, "client_answers": answered,
            "resources": growth, "failures": failures}


def grown(process, series, failures):
    """How each resource of `process` went from after warm-up to the end; a growth past its
    slack is a failure. `warm mcp` runs a `warm` child per tool call: its children come and
    go, so they are not counted."""
    warmup = max(1, len(series) // 5)
    early, late = series[warmup:warmup * 2] or series[:1], series[-warmup:] or series[-1:]
    growth = {}
    for key, slack in (("rss_kb", None), ("fds", 4), ("threads", 4), ("children", 0)):
        if key == "children" and process == "warm mcp":
            continue
        before = statistics.median(s[key] for s in early)
        after = statistics.median(s[key] for s in late)
        growth[key] = {"after_warmup": before, "at_end": after,
                       "max": max(s[key] for s in series)}
        limit = before * 1.10 if slack is None else before + slack
        if after > limit:
            failures.append(f"{process}: {key} grew from {before} to {after}")
    return growth


if __name__ == "__main__":
    main()
