"""The `rg` shim against the reference ripgrep on a small tree (this repository), in one run:
medians of N alternating runs per query, and whether the outputs are the same bytes (the
reference with `--sort path`, which is warm's order).

Usage: shim.py WARM REFERENCE_RG [RUNS]
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

QUERIES = [["fn main"], ["-i", "todo"], ["-l", "unsafe"], ["-c", "fn"], ["-w", "Search"],
           ["-t", "rust", "impl"], ["-n", "--json", "Shutdown"]]


def main():
    warm, rg = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    tmp = tempfile.mkdtemp(prefix="warm-bench-shim-")
    runtime = os.path.join(tmp, "rt")
    os.mkdir(runtime, 0o700)
    shim = os.path.join(tmp, "rg")
    os.symlink(warm, shim)
    env = dict(os.environ, WARM_RUNTIME_DIR=runtime, WARM_RG=rg, WARM_SEARCH_WAIT="1",
               WARM_CACHE_DIR=os.path.join(runtime, "cache"))
    try:
        subprocess.run([shim, "-q", "x"], env=env, capture_output=True)
        env.pop("WARM_SEARCH_WAIT")

        def timed(cmd):
            start = time.perf_counter()
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return time.perf_counter() - start

        print(f"| query | rg p50 | shim p50 | shim / rg | same bytes |")
        print("|---|---|---|---|---|")
        for query in QUERIES:
            a, b = [], []
            for _ in range(runs):
                a.append(timed([rg] + query))
                b.append(timed([shim] + query))
            expected = subprocess.run([rg, "--sort", "path"] + query, env=env, capture_output=True).stdout
            actual = subprocess.run([shim] + query, env=env, capture_output=True).stdout
            if "--json" in query:  # elapsed times differ; compare the rest
                strip = lambda out: [l for l in out.splitlines() if b'"elapsed' not in l]
                expected, actual = strip(expected), strip(actual)
            ma, mb = statistics.median(a) * 1e3, statistics.median(b) * 1e3
            print(f"| `rg {' '.join(query)}` | {ma:.1f} ms | {mb:.1f} ms | {mb / ma:.2f} | "
                  f"{'yes' if expected == actual else 'NO'} |")
    finally:
        subprocess.run([warm, "stop", "--all"], env=env, capture_output=True)


if __name__ == "__main__":
    main()
