"""Benchmark of `warm search` against ripgrep, side by side in one session, over a real tree of
at least 200 MB (the cargo registry's sources plus /usr/include, copied), warm page cache; or,
with WARM_BENCH_CORPUS=DIR, over the monorepo-scale corpus of bench/corpus.py (used in place;
the edit test appends comment lines to its include/stdio.h).

Run through scripts/bench-search. Prints a Markdown table of medians and ratios.
"""
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

WARM = sys.argv[1]
# The reference ripgrep (scripts/reference-rg), whatever `rg` is on PATH.
RG = sys.argv[2] if len(sys.argv) > 2 else "rg"
RUNS = int(os.environ.get("WARM_BENCH_RUNS", "10"))
QUERIES = [
    ("selective literal", ["SO_PEERCRED"]),
    ("case-insensitive literal", ["-i", "peercred"]),
    ("regex with required literals", [r"struct \w+Builder\b"]),
    ("common literal", ["def __init__"]),
    ("word", ["-w", "EPOLLIN"]),
    ("fixed string", ["-F", "fn main() {"]),
    ("files with matches", ["-l", "SO_PEERCRED"]),
    ("count", ["-c", "SO_PEERCRED"]),
    ("JSON", ["--json", "SO_PEERCRED"]),
    ("type", ["-t", "py", "asyncio.Lock"]),
    ("glob", ["-g", "*.py", "asyncio.Lock"]),
    ("glob, no filter", ["asyncio.Lock"]),
    ("no usable trigram", [r"\d{4}-\d\d-\d\d"]),
]
CORPUS = os.environ.get("WARM_BENCH_CORPUS")


def tree():
    if CORPUS:
        return CORPUS
    root = tempfile.mkdtemp(prefix="warm-bench-search-")
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    registry = os.path.join(home, "registry", "src")
    for index in sorted(os.listdir(registry)):
        shutil.copytree(os.path.join(registry, index), os.path.join(root, "crates", index), symlinks=True)
    shutil.copytree("/usr/include", os.path.join(root, "include"), symlinks=True)
    return root


def size(root):
    out = subprocess.run(["du", "-sb", root], capture_output=True, text=True).stdout
    return int(out.split()[0])


def timed(argv, cwd, env):
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def median(argv, cwd, env, runs=RUNS):
    return statistics.median(timed(argv, cwd, env) for _ in range(runs))


def concurrent(argv, cwd, env, clients=8, each=RUNS * 3):
    """p50 and p99 of `argv` run by `clients` threads at once, `each` times each."""
    times, lock = [], threading.Lock()

    def client():
        for _ in range(each):
            t = timed(argv, cwd, env)
            with lock:
                times.append(t)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times.sort()
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]


def wait_ready(warm, root, env):
    while True:
        status = json.loads(subprocess.run(warm + ["--status", "--json"], cwd=root, env=env,
                                           capture_output=True, text=True).stdout)
        if status.get("ready") and status.get("watching"):
            return status
        time.sleep(0.05)


def main():
    root = tree()
    bytes_ = size(root)
    # The stored index goes outside the tree, as ~/.cache does: inside it, its writes would
    # be watch events of the tree.
    cache = tempfile.mkdtemp(prefix="warm-bench-cache-")
    env = dict(os.environ, WARM_RUNTIME_DIR=os.path.join(root, ".rt"), WARM_CACHE_DIR=cache)
    os.mkdir(env["WARM_RUNTIME_DIR"], 0o700)
    warm = [WARM, "search"]
    try:
        # Warm page cache for both, then the cold first query: daemon start and index build.
        subprocess.run([RG, "-c", "SO_PEERCRED"], cwd=root, stdout=subprocess.DEVNULL)
        rg_pass = median([RG, "SO_PEERCRED"], root, env, 5)
        started = time.perf_counter()
        cold = timed(warm + ["SO_PEERCRED"], root, env)
        status = wait_ready(warm, root, env)
        ready_ms = (time.perf_counter() - started) * 1000
        # Right after ready: the first queries must not pay for the build's leftovers.
        after_ready = [timed(warm + ["SO_PEERCRED"], root, env) for _ in range(5)]
        rows = []
        for name, args in QUERIES:
            subprocess.run(warm + args, cwd=root, env=env, stdout=subprocess.DEVNULL)
            w = median(warm + args, root, env)
            r = median([RG] + args, root, env)
            rows.append((name, " ".join(args), w, r))
        p50, p99 = concurrent(warm + ["SO_PEERCRED"], root, env)
        rg_p50, rg_p99 = concurrent([RG, "SO_PEERCRED"], root, env, each=2)
        # An edit, then a query at once: the barrier makes it see the edit.
        target = os.path.join(root, "include", "stdio.h")
        updates = []
        for i in range(RUNS):
            token = f"warm_bench_token_{i}_{time.time_ns()}"
            with open(target, "a") as f:
                f.write(f"/* {token} */\n")
            start = time.perf_counter()
            out = subprocess.run(warm + ["-c", token], cwd=root, env=env, capture_output=True, text=True)
            updates.append((time.perf_counter() - start) * 1000)
            assert out.stdout.strip().endswith(":1"), out
        pid = json.loads(subprocess.run([WARM, "-s", "search", "status", "--json"], cwd=root, env=env,
                                        capture_output=True, text=True).stdout)["pid"]
        memory = {}
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    memory[key] = int(value.split()[0]) * 1024
        stored = json.loads(subprocess.run(warm + ["--status", "--json"], cwd=root, env=env,
                                           capture_output=True, text=True).stdout)
        # A restart over the unchanged tree: the first query (it waits while the daemon checks
        # its stored index against the tree), and when the index is ready.
        subprocess.run([WARM, "-s", "search", "stop"], cwd=root, env=env, stdout=subprocess.DEVNULL)
        started = time.perf_counter()
        restart_first = timed(warm + ["SO_PEERCRED"], root, env)
        wait_ready(warm, root, env)
        restart_ready = (time.perf_counter() - started) * 1000
        # Again, with 1,000 files created while no daemon ran: they are read at the start.
        subprocess.run([WARM, "-s", "search", "stop"], cwd=root, env=env, stdout=subprocess.DEVNULL)
        changed_dir = os.path.join(root, "warm-bench-changed")
        os.makedirs(changed_dir, exist_ok=True)
        for i in range(1000):
            with open(os.path.join(changed_dir, f"f{i}.c"), "w") as f:
                f.write(f"int changed_while_down_{i} = {i};\n" * 40)
        restart_changed = timed(warm + ["changed_while_down_999"], root, env)
        shutil.rmtree(changed_dir, ignore_errors=True)
        indexed_events = [e for e in events(env) if e.get("event") == "search.index"]
        loads = [e for e in indexed_events if e.get("why") == "loaded"]
        built = next(e for e in indexed_events if e.get("why") == "start")
    finally:
        subprocess.run([WARM, "stop", "--all"], env=env, stdout=subprocess.DEVNULL)
        if not CORPUS:
            shutil.rmtree(root, ignore_errors=True)
        else:
            shutil.rmtree(env["WARM_RUNTIME_DIR"], ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)

    print(f"`warm search` vs ripgrep {rg_version()}: {status['files']} files, "
          f"{bytes_ / 1e6:.0f} MB on disk ({status['bytes'] / 1e6:.0f} MB indexed), medians of {RUNS} runs\n")
    print("| query | arguments | warm search | rg | rg / warm |")
    print("|---|---|---|---|---|")
    for name, pattern, w, r in rows:
        print(f"| {name} | `{pattern}` | {w:.1f} ms | {r:.1f} ms | {r / w:.1f}x |")
    print(f"| cold first query (starts the daemon; scans while it indexes) | `SO_PEERCRED` | {cold:.0f} ms | "
          f"{rg_pass:.0f} ms (one full pass) | {rg_pass / cold:.2f}x |")
    print(f"| 8 concurrent clients, p50 / p99 | `SO_PEERCRED` | {p50:.1f} / {p99:.1f} ms | "
          f"{rg_p50:.0f} / {rg_p99:.0f} ms | {rg_p50 / p50:.1f}x (p50) |")
    print(f"| first query after a daemon restart, unchanged tree | `SO_PEERCRED` | {restart_first:.0f} ms | "
          f"{rg_pass:.0f} ms | {rg_pass / restart_first:.2f}x |")
    print(f"| first query after a restart, 1,000 files created while down | `changed_while_down_999` | "
          f"{restart_changed:.0f} ms | {rg_pass:.0f} ms | {rg_pass / restart_changed:.2f}x |")
    print(f"\nThe first query scans while the daemon builds the index in the background; the index "
          f"was ready {ready_ms:.0f} ms after the first query started ({restart_ready:.0f} ms after a "
          f"restart). The five queries right after it was ready: "
          f"{', '.join(f'{t:.0f}' for t in after_ready)} ms.")
    indexed = status['bytes']
    print(f"Index: built in {built['ms'] / 1000:.1f} s, {built['index_bytes'] / 1e6:.1f} MB in the heap, for "
          f"{indexed / 1e6:.0f} MB indexed ({built['index_bytes'] / indexed:.2f}x); stored: {stored['stored']['bytes'] / 1e6:.0f} MB "
          f"on disk ({stored['stored']['bytes'] / indexed:.3f}x), read through mmap; then {stored['index_bytes'] / 1e6:.1f} MB "
          f"in the heap. Daemon RSS {memory['VmRSS'] / 1e6:.0f} MB, of which private (anonymous) "
          f"{memory['RssAnon'] / 1e6:.0f} MB ({memory['RssAnon'] / indexed:.3f}x the bytes indexed) and "
          f"page cache of the stored index {memory['RssFile'] / 1e6:.0f} MB.")
    for load in loads:
        print(f"A daemon start loaded the stored index in {load['ms']} ms: {load['kept']} files kept, "
              f"{load['read']} read, {load['dropped']} dropped.")
    print(f"Edit one file, then query at once: the edit is found in {statistics.median(updates):.1f} ms "
          f"(median; the whole one-shot query, barrier included).")


def events(env):
    found = []
    for path in glob.glob(os.path.join(env["WARM_RUNTIME_DIR"], "search-*", "events.jsonl")):
        with open(path) as f:
            found.extend(json.loads(line) for line in f if line.strip())
    return found


def rg_version():
    return subprocess.run([RG, "--version"], capture_output=True, text=True).stdout.split()[1]


if __name__ == "__main__":
    main()
