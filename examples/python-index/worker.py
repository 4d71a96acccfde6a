"""An index kept warm by warm: load once, answer many.

Builds an inverted index (word -> files) of the text files under the working directory, which
warm sets to the project root. Speaks newline-delimited JSON-RPC on stdin/stdout:

  search  {"q": "words to find"}  -> {"files": [...], "loaded_ms": N}   files holding every word
  reindex {}                      -> {"files": N}   rebuilds, with $/progress (exclusive in .warm.toml)
  stats   {}                      -> {"files": N, "words": N, "loaded_ms": N, "pid": N}

Run `python3 worker.py --once search "some words"` to do what a cold tool does on every call:
load the index, answer one query, exit.
"""
import json
import os
import re
import sys
import time

TEXT = (".py", ".rs", ".md", ".txt", ".toml", ".js", ".c", ".h", ".go", ".java")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


def text_files(root):
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".") and d not in ("target", "node_modules")]
        for name in names:
            if name.endswith(TEXT) and not name.startswith("."):
                yield os.path.join(directory, name)


def build(root, progress=None):
    index, paths = {}, list(text_files(root))
    for n, path in enumerate(paths, 1):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                words = set(w.lower() for w in WORD.findall(f.read()))
        except OSError:
            continue
        rel = os.path.relpath(path, root)
        for word in words:
            index.setdefault(word, set()).add(rel)
        if progress and (n % 50 == 0 or n == len(paths)):
            progress(n, len(paths))
    return index, len(paths)


def search(index, query):
    words = [w.lower() for w in WORD.findall(query)]
    if not words:
        return []
    found = set.intersection(*(index.get(w, set()) for w in words))
    return sorted(found)


def main():
    started = time.monotonic()
    index, count = build(os.getcwd())
    loaded_ms = round((time.monotonic() - started) * 1000, 1)
    if sys.argv[1:2] == ["--once"]:
        print(json.dumps({"files": search(index, " ".join(sys.argv[3:])), "loaded_ms": loaded_ms}))
        return
    out = sys.stdout

    def send(message):
        out.write(json.dumps(message) + "\n")
        out.flush()

    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        rid, method, params = msg.get("id"), msg.get("method"), msg.get("params") or {}
        if rid is None:
            continue
        if method == "search":
            send({"jsonrpc": "2.0", "id": rid,
                  "result": {"files": search(index, params.get("q", "")), "loaded_ms": loaded_ms}})
        elif method == "reindex":
            def progress(done, total):
                send({"jsonrpc": "2.0", "method": "$/progress",
                      "params": {"id": rid, "message": "indexing", "done": done, "total": total}})
            index, count = build(os.getcwd(), progress)
            send({"jsonrpc": "2.0", "id": rid, "result": {"files": count}})
        elif method == "stats":
            send({"jsonrpc": "2.0", "id": rid, "result": {
                "files": count, "words": len(index), "loaded_ms": loaded_ms, "pid": os.getpid()}})
        else:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": f"unknown method {method}"}})


if __name__ == "__main__":
    main()
