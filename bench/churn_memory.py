"""The search daemon's memory under churn (issue 15: within 1.2x of a fresh build's): a tree of
N files of real-looking source, indexed; R rounds that rewrite every file with new content
(each round waits until a query sees the last write); the daemon's RSS after each round; then
a fresh daemon on the final tree, and the ratio.

Usage: churn_memory.py WARM [FILES] [ROUNDS]
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

WORDS = ["alpha", "beta", "gamma", "delta", "needle", "haystack", "parse", "config", "value",
         "struct", "impl", "return", "match", "self", "error", "result", "option", "vector"]


def text(rng):
    lines = []
    for _ in range(rng.randint(20, 80)):
        lines.append(" ".join(rng.choice(WORDS) + str(rng.randint(0, 999)) for _ in range(rng.randint(3, 10))))
    return "\n".join(lines) + "\n"


def rss(warm, root, env):
    st = json.loads(subprocess.run([warm, "-s", "search", "status", "--json"], cwd=root, env=env,
                                   capture_output=True).stdout)
    with open(f"/proc/{st['pid']}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024


def ready(warm, root, env):
    while True:
        st = json.loads(subprocess.run([warm, "search", "--status", "--json"], cwd=root, env=env,
                                       capture_output=True).stdout or b"{}")
        if st.get("ready") and st.get("watching"):
            return st
        time.sleep(0.1)


def main():
    warm = sys.argv[1]
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    rng = random.Random(15)
    root = tempfile.mkdtemp(prefix="warm-churn-mem-")
    runtime = tempfile.mkdtemp(prefix="warm-churn-mem-rt-")
    os.chmod(runtime, 0o700)
    env = dict(os.environ, WARM_RUNTIME_DIR=runtime, WARM_CACHE_DIR=os.path.join(runtime, "cache"))
    os.makedirs(os.path.join(root, ".git"))
    paths = []
    for i in range(files):
        d = os.path.join(root, f"d{i // 200}")
        os.makedirs(d, exist_ok=True)
        paths.append(os.path.join(d, f"f{i}.rs"))
        with open(paths[-1], "w") as f:
            f.write(text(rng))
    try:
        subprocess.run([warm, "search", "-q", "x"], cwd=root, env=env, capture_output=True)
        st = ready(warm, root, env)
        start = rss(warm, root, env)
        print(f"{files} files, {st['bytes'] / 1e6:.1f} MB; fresh daemon RSS {start:.1f} MB")
        for r in range(rounds):
            for i, path in enumerate(paths):
                with open(path, "w") as f:
                    f.write(text(rng) + f"round_{r}_file_{i}\n")
            token = f"round_{r}_file_{files - 1}"
            while subprocess.run([warm, "search", "-q", token], cwd=root, env=env).returncode != 0:
                time.sleep(0.2)
            time.sleep(1)  # let the indexer finish what the last query did not need
            print(f"round {r + 1}: RSS {rss(warm, root, env):.1f} MB", flush=True)
        after = rss(warm, root, env)
        subprocess.run([warm, "stop", "--all"], env=env, capture_output=True)
        subprocess.run([warm, "search", "-q", "x"], cwd=root, env=env, capture_output=True)
        ready(warm, root, env)
        fresh = rss(warm, root, env)
        print(f"after {rounds} rounds: {after:.1f} MB; a fresh daemon on the final tree: {fresh:.1f} MB; "
              f"ratio {after / fresh:.2f}x (target <= 1.2x)")
    finally:
        subprocess.run([warm, "stop", "--all"], env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)


if __name__ == "__main__":
    main()
