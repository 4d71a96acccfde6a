"""A differential churn fuzzer for `warm search`: from a seed, apply random file-system
operations to a real tree (a git repository), interleaved with queries at random moments,
and compare every answer of `warm search` (from its warm, watched index) with ripgrep's on the
same tree at the same moment. On a difference it prints the seed, the operations so far and
both answers, and exits 1.

Usage: churn.py WARM REFERENCE_RG SECONDS [SEED]
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


class Tree:
    def __init__(self, root, rng):
        self.root, self.rng = root, rng
        self.log = []

    def rel(self, path):
        return os.path.relpath(path, self.root)

    def entries(self):
        """The tree's files and directories (absolute paths), .git left out."""
        files, dirs = [], []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d != ".git"]
            files.extend(os.path.join(dirpath, f) for f in filenames)
            dirs.extend(os.path.join(dirpath, d) for d in dirnames)
        return files, dirs

    def dirs(self):
        return self.entries()[1]

    def text(self):
        return "\n".join(" ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(1, 6)))
                         for _ in range(self.rng.randint(1, 8))) + "\n"

    def new_path(self, parent=None):
        parent = parent or self.rng.choice([self.root] + self.dirs())
        name = self.rng.choice(NAMES) + str(self.rng.randint(0, 30))
        return os.path.join(parent, name + self.rng.choice([".txt", ".rs", ".py", ""]))

    def op(self):
        rng = self.rng
        files, dirs = self.entries()
        choice = rng.choice(["create", "create", "append", "truncate", "delete", "rename",
                             "mkdir", "rename_dir", "swap_dirs", "rm_dir", "recreate_dir",
                             "gitignore", "ignore", "chmod", "symlink", "commit", "checkout"])
        try:
            if choice == "create" or not files and choice in ("append", "truncate", "delete", "rename", "chmod"):
                path = self.new_path()
                with open(path, "w") as f:
                    f.write(self.text())
                return f"create {self.rel(path)}"
            if choice == "append":
                path = rng.choice(files)
                with open(path, "a") as f:
                    f.write(self.text())
                return f"append {self.rel(path)}"
            if choice == "truncate":
                path = rng.choice(files)
                open(path, "w").close()
                return f"truncate {self.rel(path)}"
            if choice == "delete":
                path = rng.choice(files)
                os.remove(path)
                return f"delete {self.rel(path)}"
            if choice == "rename":
                path = rng.choice(files)
                to = self.new_path()
                os.rename(path, to)
                return f"rename {self.rel(path)} -> {self.rel(to)}"
            if choice == "chmod":
                path = rng.choice(files)
                os.chmod(path, rng.choice([0o644, 0o600, 0o000]) if os.geteuid() != 0 else 0o644)
                return f"chmod {self.rel(path)}"
            if choice == "mkdir" or not dirs:
                path = self.new_path()
                os.makedirs(path, exist_ok=True)
                for _ in range(rng.randint(0, 3)):
                    with open(self.new_path(path), "w") as f:
                        f.write(self.text())
                return f"mkdir {self.rel(path)} (+files)"
            if choice == "rename_dir":
                path = rng.choice(dirs)
                to = self.new_path()
                if to.startswith(path + os.sep):
                    return "skip"
                os.rename(path, to)
                return f"rename dir {self.rel(path)} -> {self.rel(to)}"
            if choice == "swap_dirs" and len(dirs) >= 2:
                a, b = rng.sample(dirs, 2)
                if a.startswith(b + os.sep) or b.startswith(a + os.sep):
                    return "skip"
                tmp = os.path.join(self.root, "swap-tmp")
                os.rename(a, tmp)
                os.rename(b, a)
                os.rename(tmp, b)
                return f"swap dirs {self.rel(a)} <-> {self.rel(b)}"
            if choice == "rm_dir":
                path = rng.choice(dirs)
                shutil.rmtree(path)
                return f"rm -rf {self.rel(path)}"
            if choice == "recreate_dir":
                path = rng.choice(dirs)
                shutil.rmtree(path)
                os.makedirs(path)
                for _ in range(rng.randint(1, 3)):
                    with open(self.new_path(path), "w") as f:
                        f.write(self.text())
                return f"rm -rf && mkdir {self.rel(path)} (+files)"
            if choice == "ignore":
                with open(os.path.join(self.root, rng.choice([".ignore", ".rgignore"])), "w") as f:
                    f.write("\n".join(rng.sample(["*.rs", "a*", "!a1*", "dir*/"], rng.randint(0, 2))) + "\n")
                return "edit .ignore/.rgignore"
            if choice == "symlink":
                target = rng.choice(files + dirs) if files or dirs else None
                if target is None:
                    return "skip"
                link = self.new_path()
                os.symlink(os.path.relpath(target, os.path.dirname(link)), link)
                return f"symlink {self.rel(link)} -> {self.rel(target)}"
            if choice == "commit":
                subprocess.run(["git", "-c", "user.name=c", "-c", "user.email=c@c", "add", "-A"],
                               cwd=self.root, capture_output=True)
                subprocess.run(["git", "-c", "user.name=c", "-c", "user.email=c@c", "commit", "-qm", "c",
                                "--allow-empty"], cwd=self.root, capture_output=True)
                return "git commit"
            if choice == "checkout":
                back = rng.randint(1, 3)
                done = subprocess.run(["git", "checkout", "-qf", f"HEAD~{back}"], cwd=self.root,
                                      capture_output=True)
                return f"git checkout -f HEAD~{back} ({'ok' if done.returncode == 0 else 'no such commit'})"
            if choice == "gitignore":
                with open(os.path.join(self.root, ".gitignore"), "w") as f:
                    f.write("\n".join(rng.sample(["*.py", "sub*/", "deep*", "*.txt", "q*", "!.h*"],
                                                  rng.randint(0, 3))) + "\n")
                return "edit .gitignore"
        except (FileNotFoundError, OSError) as e:
            return f"{choice} failed: {e}"
        return "skip"


def daemon_rss_mb(warm, root, env):
    status = subprocess.run([warm, "-s", "search", "status", "--json"], cwd=root, env=env,
                            capture_output=True).stdout
    try:
        pid = json.loads(status)["pid"]
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (ValueError, KeyError, OSError):
        pass
    return float("nan")


def run(cmd, cwd, env=None):
    """Exit code and output bytes: warm's order is the reference's `--sort path` order."""
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True)
    return p.returncode, p.stdout


def main():
    warm, rg, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else random.randrange(1 << 30)
    rng = random.Random(seed)
    runtime = tempfile.mkdtemp(prefix="warm-churn-rt-")
    os.chmod(runtime, 0o700)
    root = tempfile.mkdtemp(prefix="warm-churn-")
    env = dict(os.environ, WARM_RUNTIME_DIR=runtime)
    tree = Tree(root, rng)
    subprocess.run(["git", "init", "-q", root], check=True)
    for _ in range(30):
        tree.op()
    subprocess.run([warm, "search", "--status"], cwd=root, env=env, capture_output=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        st = json.loads(subprocess.run([warm, "search", "--status", "--json"], cwd=root, env=env,
                                       capture_output=True).stdout or b"{}")
        if st.get("ready") and st.get("watching"):
            break
        time.sleep(0.05)
    queries = [["needle"], ["-i", "needle"], ["-w", "alpha"], ["-F", "fn_main"], ["tok4\\d"],
               ["-t", "py", "beta"], ["-g", "!*.txt", "gamma"], ["-l", "delta"], ["-c", "haystack"],
               ["-n", "--column", "beta"], ["-o", "-i", "needle"], ["-C", "1", "gamma"],
               ["--heading", "-n", "alpha"], ["-v", "-c", "alpha"]]
    ops, compared, started = [], 0, time.time()
    rss_start = daemon_rss_mb(warm, root, env)
    try:
        while time.time() - started < seconds:
            for _ in range(rng.randint(0, 6)):
                ops.append(tree.op())
            query = rng.choice(queries)
            warm_rc, warm_out = run([warm, "search"] + query, root, env)
            rg_rc, rg_out = run([rg, "--sort", "path"] + query, root)
            compared += 1
            if (warm_rc, warm_out) != (rg_rc, rg_out):
                source = subprocess.run([warm, "search", "--json"] + query, cwd=root, env=env,
                                        capture_output=True).stdout.decode(errors="replace").splitlines()[-1:]
                print(f"DIFFERENCE (seed {seed}) after {len(ops)} operations, query {query}:")
                for op in ops[-15:]:
                    print("  ", op)
                print(f"warm exit {warm_rc}: {warm_out}")
                print(f"rg   exit {rg_rc}: {rg_out}")
                print("warm summary:", source)
                time.sleep(3)
                later = run([warm, "search"] + query, root, env)
                print("warm 3 s later:", "the same" if later == (warm_rc, warm_out) else f"{later}")
                files_warm = run([warm, "search", "-l", ""], root, env)[1]
                files_rg = run([rg, "-l", ""], root)[1]
                files_warm, files_rg = set(files_warm.splitlines()), set(files_rg.splitlines())
                print("files only in warm:", sorted(files_warm - files_rg)[:10],
                      "files only in rg:", sorted(files_rg - files_warm)[:10])
                if os.environ.get("CHURN_KEEP"):
                    print("tree kept at", root)
                    os._exit(1)
                only_warm = set(warm_out.splitlines()) - set(rg_out.splitlines())
                only_rg = set(rg_out.splitlines()) - set(warm_out.splitlines())
                print("only in warm:", sorted(only_warm)[:10], "only in rg:", sorted(only_rg)[:10])
                sys.exit(1)
        status = json.loads(subprocess.run([warm, "search", "--status", "--json"], cwd=root, env=env,
                                           capture_output=True).stdout or b"{}")
        served = status.get("queries", {})
        rss_end = daemon_rss_mb(warm, root, env)
        # A fresh daemon on the final tree: what the churned one's memory should come back to.
        subprocess.run([warm, "stop", "-s", "search"], cwd=root, env=env, capture_output=True)
        subprocess.run([warm, "search", "--status"], cwd=root, env=env, capture_output=True)
        fresh_deadline = time.time() + 60
        while time.time() < fresh_deadline:
            fresh = json.loads(subprocess.run([warm, "search", "--status", "--json"], cwd=root, env=env,
                                              capture_output=True).stdout or b"{}")
            if fresh.get("ready"):
                break
            time.sleep(0.05)
        rss_fresh = daemon_rss_mb(warm, root, env)
        print(f"churn: seed {seed}, {len(ops)} operations, {compared} queries compared, 0 differences; "
              f"answered from the index {served.get('index')}, scanned {served.get('unwatched')} "
              f"(barrier timeouts {served.get('barrier_timeouts')}), rebuilt while building {served.get('building')}; "
              f"daemon RSS {rss_start:.1f} MB at start, {rss_end:.1f} MB at the end, {rss_fresh:.1f} MB "
              f"for a fresh daemon on the final tree ({status.get('files')} files, index "
              f"{status.get('index_bytes', 0) / 1e6:.2f} MB)")
        # Equal answers prove nothing if the index never answered: most queries must use it.
        if not served.get("index") or served["index"] < compared // 2:
            print("FAIL: the index answered fewer than half of the queries")
            sys.exit(1)
    finally:
        subprocess.run([warm, "stop", "--all"], env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)


main()
