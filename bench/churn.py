"""A differential churn fuzzer for `warm search`: from a seed, apply random file-system
operations to a real tree (a git repository), interleaved with queries at random moments,
and compare every answer of `warm search` (from its warm, watched index) with ripgrep's on the
same tree at the same moment, byte for byte.

Every step is recorded as a concrete action (the file written and its text, the directories
swapped, the query run) in a journal, one JSON object per line. On a difference the fuzzer
prints the seed, keeps the journal, replays it in a fresh tree with a fresh daemon to check
that it reproduces, and shrinks it (delta debugging, within a time budget) to a minimal
sequence that still fails, which it prints and saves next to the journal.

Usage:
  churn.py WARM REFERENCE_RG SECONDS [SEED]     fuzz
  churn.py WARM REFERENCE_RG --replay JOURNAL   replay a journal (exit 1 if it differs)
  churn.py WARM REFERENCE_RG --shrink JOURNAL   shrink a journal to a minimal failing one
Environment: CHURN_SHRINK_SECONDS (default 300) bounds the shrinking; CHURN_KEEP=1 keeps the
tree of a difference for inspection instead of shrinking.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

WORDS = ["alpha", "beta", "gamma", "delta", "needle", "Needle", "haystack", "fn_main", "tok42"]
# Hidden names (some whitelisted by the .gitignore below), a newline and bytes that are not
# UTF-8 (a surrogate escape: the name on disk is b"x\xff").
NAMES = ["a", "b", "c", "dir x", "sub", "deep", "n\u00e9", "q", "l" * 200, ".h", ".k",
         "new\nline", os.fsdecode(b"x\xff")]
QUERIES = [["needle"], ["-i", "needle"], ["-w", "alpha"], ["-F", "fn_main"], ["tok4\\d"],
           ["-t", "py", "beta"], ["-g", "!*.txt", "gamma"], ["-l", "delta"], ["-c", "haystack"],
           ["-n", "--column", "beta"], ["-o", "-i", "needle"], ["-C", "1", "gamma"],
           ["--heading", "-n", "alpha"], ["-v", "-c", "alpha"],
           # Filters that admit ignored or hidden files: from the index and the names kept
           # beside it.
           ["-g", "*.py", "beta"], ["-g", "sub*", "-g", "deep*", "-g", "*.txt", "needle"],
           ["-g", ".h*", "-l", "alpha"], ["--iglob", "*.RS", "-g", "!a*", "gamma"],
           ["--files"], ["--files", "-g", "*.txt", "-g", "q*"]]
GIT = ["git", "-c", "user.name=c", "-c", "user.email=c@c"]


class Tree:
    """A working copy: random actions chosen from its current state, and their execution.
    Paths in actions are relative to the root, so a journal replays in any directory."""

    def __init__(self, root, rng=None):
        self.root, self.rng = root, rng

    def entries(self):
        """The tree's files and directories (relative paths), .git left out."""
        files, dirs = [], []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            rel = os.path.relpath(dirpath, self.root)
            files.extend(os.path.normpath(os.path.join(rel, f)) for f in sorted(filenames))
            dirs.extend(os.path.normpath(os.path.join(rel, d)) for d in dirnames)
        return files, dirs

    def text(self):
        rng = self.rng
        return "\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))
                         for _ in range(rng.randint(1, 8))) + "\n"

    def new_path(self, dirs, parent=None):
        parent = parent if parent is not None else self.rng.choice(["."] + dirs)
        name = self.rng.choice(NAMES) + str(self.rng.randint(0, 30))
        return os.path.normpath(os.path.join(parent, name + self.rng.choice([".txt", ".rs", ".py", ""])))

    def random_actions(self):
        """One random operation as the concrete actions that perform it."""
        rng = self.rng
        files, dirs = self.entries()
        choice = rng.choice(["create", "create", "append", "truncate", "delete", "rename",
                             "mkdir", "rename_dir", "swap_dirs", "rm_dir", "recreate_dir",
                             "gitignore", "ignore", "chmod", "symlink", "commit", "checkout"])
        if not files and choice in ("append", "truncate", "delete", "rename", "chmod"):
            choice = "create"
        if not dirs and choice in ("rename_dir", "swap_dirs", "rm_dir", "recreate_dir"):
            choice = "mkdir"
        if choice == "create":
            return [{"op": "write", "path": self.new_path(dirs), "text": self.text()}]
        if choice == "append":
            return [{"op": "append", "path": rng.choice(files), "text": self.text()}]
        if choice == "truncate":
            return [{"op": "write", "path": rng.choice(files), "text": ""}]
        if choice == "delete":
            return [{"op": "remove", "path": rng.choice(files)}]
        if choice == "rename":
            return [{"op": "rename", "from": rng.choice(files), "to": self.new_path(dirs)}]
        if choice == "chmod":
            mode = rng.choice([0o644, 0o600, 0o000]) if os.geteuid() != 0 else 0o644
            return [{"op": "chmod", "path": rng.choice(files), "mode": mode}]
        if choice == "mkdir":
            path = self.new_path(dirs)
            return [{"op": "mkdir", "path": path}] + [
                {"op": "write", "path": self.new_path(dirs, path), "text": self.text()}
                for _ in range(rng.randint(0, 3))]
        if choice == "rename_dir":
            path, to = rng.choice(dirs), self.new_path(dirs)
            if to.startswith(path + os.sep):
                return []
            return [{"op": "rename", "from": path, "to": to}]
        if choice == "swap_dirs":
            if len(dirs) < 2:
                return []
            a, b = rng.sample(dirs, 2)
            if a.startswith(b + os.sep) or b.startswith(a + os.sep):
                return []
            return [{"op": "rename", "from": a, "to": "swap-tmp"},
                    {"op": "rename", "from": b, "to": a},
                    {"op": "rename", "from": "swap-tmp", "to": b}]
        if choice == "rm_dir":
            return [{"op": "rmtree", "path": rng.choice(dirs)}]
        if choice == "recreate_dir":
            path = rng.choice(dirs)
            return [{"op": "rmtree", "path": path}, {"op": "mkdir", "path": path}] + [
                {"op": "write", "path": self.new_path(dirs, path), "text": self.text()}
                for _ in range(rng.randint(1, 3))]
        if choice == "ignore":
            text = "\n".join(rng.sample(["*.rs", "a*", "!a1*", "dir*/"], rng.randint(0, 2))) + "\n"
            return [{"op": "write", "path": rng.choice([".ignore", ".rgignore"]), "text": text}]
        if choice == "gitignore":
            text = "\n".join(rng.sample(["*.py", "sub*/", "deep*", "*.txt", "q*", "!.h*"],
                                        rng.randint(0, 3))) + "\n"
            return [{"op": "write", "path": ".gitignore", "text": text}]
        if choice == "symlink":
            if not files and not dirs:
                return []
            target = rng.choice(files + dirs)
            link = self.new_path(dirs)
            return [{"op": "symlink", "link": link,
                     "target": os.path.relpath(target, os.path.dirname(link) or ".")}]
        if choice == "commit":
            return [{"op": "git", "args": ["add", "-A"]},
                    {"op": "git", "args": ["commit", "-qm", "c", "--allow-empty"]}]
        return [{"op": "git", "args": ["checkout", "-qf", f"HEAD~{rng.randint(1, 3)}"]}]

    # Which paths of each action name where it writes, and whether it follows a link there.
    TARGETS = {"write": [("path", True)], "append": [("path", True)],
               "remove": [("path", False)], "rename": [("from", False), ("to", False)],
               "chmod": [("path", True)], "mkdir": [("path", False)],
               "rmtree": [("path", False)], "symlink": [("link", False)]}

    def confined(self, path, follow):
        """Whether `path` stays in the tree once links are resolved: its directory (and, for
        an action that follows a link, the path itself) is the root or under it. A relative
        link moved by a rename can point out of the tree (`a/l -> ..` renamed to `l`), and an
        action through it must never touch the rest of the machine."""
        root = os.path.realpath(self.root)
        inside = lambda p: p == root or p.startswith(root + os.sep)  # noqa: E731
        if not inside(os.path.realpath(os.path.dirname(path))):
            return False
        return not follow or inside(os.path.realpath(path))

    def apply(self, action):
        """Performs a file-system or git action; a failure (the path is gone) is part of the
        churn, not an error. An action that would reach out of the tree is skipped."""
        path = lambda key: os.path.join(self.root, action[key])  # noqa: E731
        op = action["op"]
        if not all(self.confined(path(key), follow) for key, follow in self.TARGETS.get(op, [])):
            return
        try:
            if op in ("write", "append"):
                with open(path("path"), "w" if op == "write" else "a") as f:
                    f.write(action["text"])
            elif op == "remove":
                os.remove(path("path"))
            elif op == "rename":
                os.rename(path("from"), path("to"))
            elif op == "chmod":
                os.chmod(path("path"), action["mode"])
            elif op == "mkdir":
                os.makedirs(path("path"), exist_ok=True)
            elif op == "rmtree":
                shutil.rmtree(path("path"))
            elif op == "symlink":
                os.symlink(action["target"], path("link"))
            elif op == "git":
                subprocess.run(GIT + action["args"], cwd=self.root, capture_output=True)
        except OSError:
            pass


def describe(action):
    op = action["op"]
    if op in ("write", "append"):
        return f"{op} {action['path']!r} ({len(action['text'])} bytes)"
    if op == "rename":
        return f"mv {action['from']!r} {action['to']!r}"
    if op == "symlink":
        return f"ln -s {action['target']!r} {action['link']!r}"
    if op == "chmod":
        return f"chmod {action['mode']:o} {action['path']!r}"
    if op == "git":
        return "git " + " ".join(action["args"])
    if op == "query":
        return "query: rg " + " ".join(action["args"])
    if op == "start":
        return "start the daemon and wait for its index"
    return f"{op} {action.get('path', '')!r}"


class Harness:
    """A fresh tree and runtime directory, with warm and the reference rg run in it."""

    def __init__(self, warm, rg):
        self.warm, self.rg = warm, rg
        self.last_stderr = b""
        self.runtime = tempfile.mkdtemp(prefix="warm-churn-rt-")
        os.chmod(self.runtime, 0o700)
        self.root = tempfile.mkdtemp(prefix="warm-churn-")
        self.env = dict(os.environ, WARM_RUNTIME_DIR=self.runtime,
                        WARM_CACHE_DIR=os.path.join(self.runtime, "cache"))
        subprocess.run(["git", "init", "-q", self.root], check=True)

    def status(self):
        out = subprocess.run([self.warm, "search", "--status", "--json"], cwd=self.root,
                             env=self.env, capture_output=True).stdout
        try:
            return json.loads(out or b"{}")
        except ValueError:
            return {}

    def start(self):
        """Starts the daemon and waits until its index is built and watched."""
        self.status()
        deadline = time.time() + 60
        while time.time() < deadline:
            status = self.status()
            if status.get("ready") and status.get("watching"):
                return
            time.sleep(0.05)

    def warm_search(self, args):
        p = subprocess.run([self.warm, "search"] + args, cwd=self.root, env=self.env,
                           capture_output=True)
        self.last_stderr = p.stderr
        return p.returncode, p.stdout

    def rg_search(self, args):
        """warm's order is the reference's `--sort path` order."""
        p = subprocess.run([self.rg, "--sort", "path"] + args, cwd=self.root, capture_output=True)
        return p.returncode, p.stdout

    def daemon_pid(self):
        status = subprocess.run([self.warm, "-s", "search", "status", "--json"], cwd=self.root,
                                env=self.env, capture_output=True).stdout
        try:
            return json.loads(status)["pid"]
        except (ValueError, KeyError):
            return None

    def rss_mb(self):
        try:
            pid = self.daemon_pid()
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except (ValueError, KeyError, OSError):
            pass
        return float("nan")

    def close(self):
        subprocess.run([self.warm, "stop", "--all"], env=self.env, capture_output=True)
        # A chmod 000 directory cannot be removed until it is readable again.
        for dirpath, dirnames, _ in os.walk(self.root):
            for d in dirnames:
                try:
                    os.chmod(os.path.join(dirpath, d), 0o755)
                except OSError:
                    pass
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.runtime, ignore_errors=True)


def replay(warm, rg, actions):
    """Runs a journal in a fresh tree: the first query whose answers differ, as (index, warm,
    rg), or None."""
    harness = Harness(warm, rg)
    tree = Tree(harness.root)
    try:
        for n, action in enumerate(actions):
            if action["op"] == "start":
                harness.start()
            elif action["op"] == "query":
                warm_answer = harness.warm_search(action["args"])
                rg_answer = harness.rg_search(action["args"])
                if warm_answer != rg_answer:
                    return n, warm_answer, rg_answer
            else:
                tree.apply(action)
        return None
    finally:
        harness.close()


def shrink(warm, rg, actions, budget):
    """Delta debugging (ddmin) over the actions: a smallest sequence found within `budget`
    seconds whose replay still differs. Queries are shrunk like any other action; the last
    one kept is where the difference shows."""
    deadline = time.time() + budget
    fails = lambda candidate: replay(warm, rg, candidate) is not None  # noqa: E731
    # Cheap first cut: everything after the first differing query is irrelevant, and most
    # queries before it only cost time.
    first = replay(warm, rg, actions)
    if first is None:
        return None
    actions = actions[:first[0] + 1]
    without_queries = [a for a in actions[:-1] if a["op"] != "query"] + [actions[-1]]
    if fails(without_queries):
        actions = without_queries
    chunks = 2
    while len(actions) >= 2 and time.time() < deadline:
        size = -(-len(actions) // chunks)
        reduced = False
        for start in range(0, len(actions), size):
            if time.time() >= deadline:
                break
            candidate = actions[:start] + actions[start + size:]
            if candidate and any(a["op"] == "query" for a in candidate) and fails(candidate):
                actions, chunks, reduced = candidate, max(chunks - 1, 2), True
                break
        if not reduced:
            if size == 1:
                break
            chunks = min(chunks * 2, len(actions))
    return actions


def write_journal(path, actions):
    with open(path, "w") as f:
        for action in actions:
            f.write(json.dumps(action) + "\n")


def read_journal(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def report_and_shrink(warm, rg, seed, journal, actions):
    print(f"the journal of all {len(actions)} actions: {journal}")
    print(f"replay it: scripts/churn --replay {journal}")
    budget = float(os.environ.get("CHURN_SHRINK_SECONDS", "300"))
    print(f"shrinking it (at most {budget:.0f} s; CHURN_SHRINK_SECONDS)...", flush=True)
    minimal = shrink(warm, rg, actions, budget)
    if minimal is None:
        print("the journal does not reproduce the difference on replay: it depends on timing "
              "(rerun the seed, or replay the journal a few times)")
        return
    path = journal.replace(".jsonl", "") + f"-minimal-{len(minimal)}.jsonl"
    write_journal(path, minimal)
    reproduced = sum(replay(warm, rg, minimal) is not None for _ in range(3))
    print(f"minimal failing sequence (seed {seed}), {len(minimal)} actions, "
          f"reproduced {reproduced} of 3 replays, saved to {path}:")
    for action in minimal:
        print("  ", describe(action))


def show_difference(harness, seed, actions, query, warm_answer, rg_answer):
    print(f"DIFFERENCE (seed {seed}) after {len(actions)} actions, query {query}:")
    for action in actions[-15:]:
        print("  ", describe(action))
    print(f"warm exit {warm_answer[0]}: {warm_answer[1]}")
    print(f"rg   exit {rg_answer[0]}: {rg_answer[1]}")
    print(f"warm stderr: {harness.last_stderr[:2000]}")
    summary = subprocess.run([harness.warm, "search", "--json"] + query, cwd=harness.root,
                             env=harness.env, capture_output=True).stdout
    print("warm summary:", summary.decode(errors="replace").splitlines()[-1:])
    time.sleep(3)
    later = harness.warm_search(query)
    print("warm 3 s later:", "the same" if later == warm_answer else f"{later}")
    only_warm = set(warm_answer[1].splitlines()) - set(rg_answer[1].splitlines())
    only_rg = set(rg_answer[1].splitlines()) - set(warm_answer[1].splitlines())
    print("only in warm:", sorted(only_warm)[:10], "only in rg:", sorted(only_rg)[:10])


def fuzz(warm, rg, seconds, seed):
    rng = random.Random(seed)
    harness = Harness(warm, rg)
    tree = Tree(harness.root, rng)
    journal = os.path.join(tempfile.gettempdir(), f"warm-churn-{seed}.jsonl")
    actions = []

    def act(action):
        actions.append(action)
        tree.apply(action)

    compared, started, pids = 0, time.time(), set()
    try:
        for _ in range(30):
            for action in tree.random_actions():
                act(action)
        actions.append({"op": "start"})
        harness.start()
        rss_start = harness.rss_mb()
        while time.time() - started < seconds:
            for _ in range(rng.randint(0, 6)):
                for action in tree.random_actions():
                    act(action)
            query = rng.choice(QUERIES)
            actions.append({"op": "query", "args": query})
            warm_answer, rg_answer = harness.warm_search(query), harness.rg_search(query)
            compared += 1
            if compared % 200 == 0:
                # Counters are per daemon: a daemon replaced mid-run must show.
                pids.add(harness.daemon_pid())
            if warm_answer != rg_answer:
                show_difference(harness, seed, actions, query, warm_answer, rg_answer)
                write_journal(journal, actions)
                if os.environ.get("CHURN_KEEP"):
                    print("tree kept at", harness.root)
                    os._exit(1)
                harness.close()
                report_and_shrink(warm, rg, seed, journal, actions)
                sys.exit(1)
        summarise(harness, seed, actions, compared, rss_start, pids)
    finally:
        harness.close()


def summarise(harness, seed, actions, compared, rss_start, pids):
    status = harness.status()
    served = status.get("queries", {})
    work = status.get("work", {})
    rss_end = harness.rss_mb()
    pids.add(harness.daemon_pid())
    # A fresh daemon on the final tree: what the churned one's memory should come back to.
    subprocess.run([harness.warm, "stop", "-s", "search"], cwd=harness.root, env=harness.env,
                   capture_output=True)
    harness.start()
    rss_fresh = harness.rss_mb()
    print(f"churn: seed {seed}, {len(actions)} actions, {compared} queries compared, 0 differences; "
          f"answered from the index {served.get('index')}, scanned {served.get('unwatched')} "
          f"(barrier timeouts {served.get('barrier_timeouts')}), while building {served.get('building')}; "
          f"index kept current by {work.get('updates')} updates, {work.get('builds')} builds, "
          f"{work.get('rescans')} rescans, {work.get('compactions')} compactions; "
          f"daemon RSS {rss_start:.1f} MB at start, {rss_end:.1f} MB at the end, {rss_fresh:.1f} MB "
          f"for a fresh daemon on the final tree ({status.get('files')} files, index "
          f"{status.get('index_bytes', 0) / 1e6:.2f} MB); daemons seen: {len(pids - {None})} "
          f"(sampled every 200 queries; the counters above are the last one's)")
    # Equal answers prove nothing if the index never answered: most queries must use it.
    if not served.get("index") or served["index"] < compared // 2:
        print("FAIL: the index answered fewer than half of the queries")
        sys.exit(1)


def main():
    warm, rg = sys.argv[1], sys.argv[2]
    if sys.argv[3] in ("--replay", "--shrink"):
        actions = read_journal(sys.argv[4])
        if sys.argv[3] == "--shrink":
            report_and_shrink(warm, rg, "of the journal", sys.argv[4], actions)
            sys.exit(1)
        difference = replay(warm, rg, actions)
        if difference is None:
            print(f"replayed {len(actions)} actions: no difference")
            return
        n, warm_answer, rg_answer = difference
        print(f"DIFFERENCE at action {n} ({describe(actions[n])}):")
        print(f"warm exit {warm_answer[0]}: {warm_answer[1]}")
        print(f"rg   exit {rg_answer[0]}: {rg_answer[1]}")
        sys.exit(1)
    seconds = float(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else random.randrange(1 << 30)
    fuzz(warm, rg, seconds, seed)



if __name__ == "__main__":
    main()
