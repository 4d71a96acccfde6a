"""Soak: a daemon with a pool of two workers under mixed load for a bounded time, sampled every
second. Fails when a request is lost or when RSS (beyond 10% after warm-up), open fds, threads
or child processes grow.

Load, all at once: persistent pipelined clients (`warm bench`, reconnecting every few seconds),
one-shot clients (`warm bench --one-shot`), progress streams (`slow` with steps), clients that
disconnect mid-request (killed), and an exclusive method (`reindex`) between the others.

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

WARM = sys.argv[1]
WORKER = sys.argv[2]
DURATION = float(sys.argv[3]) if len(sys.argv) > 3 else 600.0
CHUNK = 5.0


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
    env = dict(os.environ, WARM_RUNTIME_DIR=runtime, WARM_TRUST_ALL="1")
    env.pop("WARM_PROGRESS", None)

    def warm(*args, **kw):
        return subprocess.run([WARM, "-s", "soak", *args], cwd=root, env=env, capture_output=True,
                              text=True, **kw)

    def status():
        return json.loads(warm("status", "--json").stdout)

    warm("start")
    first = status()
    pid = first["pid"]
    totals = Totals()
    deadline = time.monotonic() + DURATION
    samples = []

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

    def sample():
        while running():
            samples.append(measure(pid))
            time.sleep(1.0)

    threads = [
        threading.Thread(target=bench, args=("-c", "2", "--pipeline", "8")),
        threading.Thread(target=bench, args=("--one-shot", "-c", "1")),
        threading.Thread(target=call_loop, args=("slow", '{"ms": 100, "steps": 4}', "progress_calls")),
        threading.Thread(target=call_loop, args=("reindex", '{"ms": 20}', "exclusive_calls")),
        threading.Thread(target=cancel_loop),
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
    warm("stop")
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
    warmup = max(1, len(samples) // 5)
    early, late = samples[warmup:warmup * 2] or samples[:1], samples[-warmup:] or samples[-1:]
    growth = {}
    for key, slack in (("rss_kb", None), ("fds", 4), ("threads", 4), ("children", 0)):
        before = statistics.median(s[key] for s in early)
        after = statistics.median(s[key] for s in late)
        growth[key] = {"after_warmup": before, "at_end": after,
                       "max": max(s[key] for s in samples)}
        limit = before * 1.10 if slack is None else before + slack
        if after > limit:
            failures.append(f"{key} grew from {before} to {after}")
    served = last["requests"] - first["requests"]
    answered = (totals.counts.get("bench_requests", 0) + totals.counts.get("progress_calls", 0)
                + totals.counts.get("exclusive_calls", 0))
    if served < answered:
        failures.append(f"the daemon counted {served} requests, the clients {answered} answers")
    return {"seconds": len(samples), "client_counts": totals.counts,
            "daemon_requests": served, "client_answers": answered,
            "resources": growth, "failures": failures}


if __name__ == "__main__":
    main()
