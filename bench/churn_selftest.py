"""The churn fuzzer's own test: it must find a difference, and shrink it to the few actions
that cause it. `warm` is replaced by a fake that answers as the reference rg except that it
drops every line naming a file whose name starts with `q1` (a planted bug); the fuzzer must
report a difference, and the minimal sequence must be a write of such a file and a query.

Usage: churn_selftest.py PYTHON REFERENCE_RG
"""
import os
import shutil
import stat
import subprocess
import sys
import tempfile

FAKE_WARM = r'''#!{python}
import json, subprocess, sys
args = sys.argv[1:]
if args and args[0] == "-s":
    args = args[2:]
if args[:1] != ["search"]:
    sys.exit(0)  # stop, status of other services: nothing to do
args = args[1:]
if args[:1] == ["--status"]:
    print(json.dumps({{"ready": True, "watching": True, "queries": {{"index": 1}}}}))
    sys.exit(0)
if "--json" in args:
    sys.exit(0)
done = subprocess.run([{rg!r}, "--sort", "path"] + args, capture_output=True)
lines = [l for l in done.stdout.splitlines(keepends=True) if b"/q1" not in b"/" + l]
sys.stdout.buffer.write(b"".join(lines))
sys.exit(done.returncode)
'''


def every_seed_runs(seeds=200, operations=100):
    """The fuzzer's own operations never fail, whatever state the tree is in (an empty tree
    once made `symlink` choose from nothing and end a CI run in its first second), and never
    reach out of the tree (a relative link moved by a rename once let them write into /tmp
    and /)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import churn  # noqa: E402 (its main() runs only as a script)
    for seed in range(seeds):
        # The tree sits five directories deep in a directory of its own: a link that escapes
        # it (`..` moved by a rename) would leave files in one of these, which must stay empty.
        outer = tempfile.mkdtemp(prefix="warm-churn-selftest-")
        chain = [os.path.join(outer, *"abcde"[:n]) for n in range(6)]
        root = os.path.join(chain[-1], "tree")
        os.makedirs(root)
        try:
            tree = churn.Tree(root, churn.random.Random(seed))
            for _ in range(operations):
                for action in tree.random_actions():
                    tree.apply(action)
            for level, below in zip(chain, ["a", "b", "c", "d", "e", "tree"]):
                strays = sorted(set(os.listdir(level)) - {below})
                if strays:
                    sys.exit(f"FAIL: seed {seed} wrote out of its tree, into {level}: {strays}")
        except Exception as error:  # noqa: BLE001 (any failure is the finding)
            sys.exit(f"FAIL: seed {seed} crashed the fuzzer's operations: {error!r}")
        finally:
            root = outer
            for dirpath, dirnames, _ in os.walk(root):
                for name in dirnames:
                    try:
                        os.chmod(os.path.join(dirpath, name), 0o755)
                    except OSError:
                        pass
            shutil.rmtree(root, ignore_errors=True)
    print(f"churn self-test: {seeds} seeds x {operations} operations ran without an error, "
          "all inside their tree")


def main():
    python, rg = sys.argv[1], sys.argv[2]
    every_seed_runs()
    work = tempfile.mkdtemp(prefix="warm-churn-selftest-")
    fake = os.path.join(work, "warm")
    with open(fake, "w") as f:
        f.write(FAKE_WARM.format(python=python, rg=rg))
    os.chmod(fake, stat.S_IRWXU)
    churn = os.path.join(os.path.dirname(os.path.abspath(__file__)), "churn.py")
    env = dict(os.environ, CHURN_SHRINK_SECONDS="120", TMPDIR=work)
    try:
        done = subprocess.run([python, churn, fake, rg, "120", "1"], env=env,
                              capture_output=True, text=True, errors="replace")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = done.stdout
    print(out[-3000:])
    if done.returncode != 1 or "DIFFERENCE (seed 1)" not in out:
        sys.exit(f"FAIL: the planted difference was not found (exit {done.returncode}):\n{done.stderr}")
    minimal = out.split("minimal failing sequence", 1)[-1].splitlines()[1:]
    steps = [line.strip() for line in minimal if line.startswith("   ")]
    writes_q1 = [s for s in steps if s.startswith(("write 'q1", "append 'q1")) or "/q1" in s]
    queries = [s for s in steps if s.startswith("query:")]
    # A write of a q1 file and the query, with what put the file where rg reaches it (a
    # directory made for it; a hidden one renamed to a visible name): a handful of actions.
    if not steps or len(steps) > 5 or not writes_q1 or len(queries) != 1:
        sys.exit(f"FAIL: not shrunk to a write of a q1 file and a query: {steps}")
    print(f"churn self-test: the planted difference was found and shrunk to {len(steps)} actions")


main()
