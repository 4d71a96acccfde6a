"""The differential test at monorepo scale: on a corpus (bench/corpus.py), 40 patterns, each
with the common flag combinations in turn, through `warm search` (answers from its index) and
through the reference ripgrep with `--sort path` (warm's order), byte for byte and exit code
for exit code; then 1,000 edits (appends, new files, deletions, renames), with queries for what
they changed in between, and the 40 patterns again.

Usage: differential.py WARM REFERENCE_RG CORPUS
Prints one line per difference and a summary; exits 1 on any difference.
"""
import os
import random
import subprocess
import sys
import tempfile
import time

PATTERNS = [
    "SO_PEERCRED", "fn main", r"struct \w+Builder\b", "def __init__", "asyncio.Lock", "TODO",
    "unsafe impl", r"impl<T> \w+", "#include <stdio.h>", "Copyright", "deprecated", "HashMap",
    r"\bSelf::new\(", "println!", "raise ValueError", r"0x[0-9a-f]{8}", "foo|bar", "unwrap()",
    "import os", "sys.exit", r"class \w+Error", "EXPORT_SYMBOL", "size_t", "kelvin", "café",
    r"\p{Greek}+", "σας", "pub(crate) fn", "async fn", r"[A-Z]{5,}_[A-Z]+", "lazy_static",
    "serde::Deserialize", "typedef struct", "__attribute__", "return -1;", "assert_eq!",
    "license", "MIT OR Apache", "#[cfg(test)]", "zqxjkv_nothing_matches_this",
]
COMBOS = [[], ["-i"], ["-w"], ["-F"], ["-n"], ["-l"], ["-c"], ["-g", "*.py"], ["-t", "rust"],
          ["-o"], ["--json"], ["-C", "2"], ["-A", "1", "-B", "1"], ["-n", "--column"],
          ["-t", "py", "-l"], ["-g", "*.h", "-c"], ["--iglob", "*.TOML", "-g", "!target"],
          ["-g", "*.{rs,md}", "-g", "!tests", "-n"]]


def run(cmd, cwd, env):
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True)
    out = p.stdout
    if b'"type":"summary"' in out or b'"elapsed"' in out:
        # JSON: everything but timings (and warm's summary, which counts the files it read).
        out = b"\n".join(l for l in out.splitlines() if b'"type":"summary"' not in l and b'"elapsed"' not in l)
    return p.returncode, out


def compare(warm, rg, root, env, query, failures):
    w = run([warm, "search"] + query, root, env)
    r = run([rg, "--sort", "path"] + query, root, env)
    if w != r:
        failures.append(query)
        print(f"DIFFERENCE {query}: warm exit {w[0]} {len(w[1])} bytes, rg exit {r[0]} {len(r[1])} bytes", flush=True)
        wl, rl = w[1].splitlines(), r[1].splitlines()
        for i, (a, b) in enumerate(zip(wl, rl)):
            if a != b:
                print(f"  first differing line {i}: warm {a[:200]!r} rg {b[:200]!r}")
                break
    return w[1].count(b"\n")


def queries(round_):
    for i, pattern in enumerate(PATTERNS):
        for k in range(3):
            combo = COMBOS[(i * 3 + k + round_) % len(COMBOS)]
            yield combo + ["-e", pattern]


def edit(rng, root, files, log):
    kind = rng.choice(["append", "append", "create", "delete", "rename"])
    token = f"warm_diff_{rng.randrange(1 << 30)}"
    if kind == "append" and files:
        path = rng.choice(files)
        with open(path, "a") as f:
            f.write(f"\n// {token} fn main TODO\n")
    elif kind == "create":
        d = os.path.dirname(rng.choice(files)) if files else root
        path = os.path.join(d, f"{token}.rs")
        with open(path, "w") as f:
            f.write(f"fn main() {{ /* {token} */ }}\n")
        files.append(path)
    elif kind == "delete" and files:
        path = files.pop(rng.randrange(len(files)))
        os.remove(path)
    elif kind == "rename" and files:
        i = rng.randrange(len(files))
        new = files[i] + ".renamed.py"
        os.rename(files[i], new)
        files[i] = new
    log.append((kind, token))
    return token


def main():
    warm, rg, root = sys.argv[1], sys.argv[2], sys.argv[3]
    seed = int(os.environ.get("SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    runtime = tempfile.mkdtemp(prefix="warm-diff-rt-")
    env = dict(os.environ, WARM_RUNTIME_DIR=runtime, WARM_SEARCH_WAIT="1",
               WARM_CACHE_DIR=os.path.join(runtime, "cache"))
    failures, compared, started = [], 0, time.time()
    try:
        for query in queries(0):
            compare(warm, rg, root, env, query, failures)
            compared += 1
        source = subprocess.run([warm, "search", "--json", "-e", "fn main"], cwd=root, env=env,
                                capture_output=True).stdout.splitlines()[-1:]
        print(f"round 1: {compared} queries, {len(failures)} differences ({time.time() - started:.0f} s); "
              f"summary {source}", flush=True)
        files = []
        for dirpath, dirnames, names in os.walk(os.path.join(root, "crates")):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            files.extend(os.path.join(dirpath, n) for n in names if n.endswith((".rs", ".toml", ".md")))
            if len(files) > 20000:
                break
        log = []
        for i in range(1000):
            token = edit(rng, root, files, log)
            if i % 50 == 0:
                compare(warm, rg, root, env, ["-e", token], failures)
                compare(warm, rg, root, env, ["-l", "-e", "warm_diff_"], failures)
                compared += 2
        for query in queries(1):
            compare(warm, rg, root, env, query, failures)
            compared += 1
    finally:
        subprocess.run([warm, "stop", "--all"], env=env, capture_output=True)
    print(f"differential (seed {seed}): {compared} queries compared, 1000 edits, "
          f"{len(failures)} differences, {time.time() - started:.0f} s")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
