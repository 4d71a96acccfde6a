"""Assembles a monorepo-scale tree from sources on the machine image: the cargo registry's
crate sources, /usr/include, Python's standard library and site-packages, Perl's and Node's
modules, copied (symlinks kept as links) into one git repository, with copies of the registry
added until the tree reaches the target size. Prints the root.

Usage: corpus.py DIR [MIN_BYTES] [MIN_FILES]   (default 1.5 GB, 80,000 files)
"""
import glob
import os
import shutil
import subprocess
import sys


def sources():
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    found = [(os.path.join("crates", os.path.basename(d)), d)
             for d in sorted(glob.glob(os.path.join(home, "registry", "src", "*")))]
    found.append(("include", "/usr/include"))
    for d in sorted(glob.glob("/usr/lib/python3*") + glob.glob(os.path.expanduser("~/.pyenv/versions/*/lib/python3*"))):
        found.append((os.path.join("python", d.strip("/").replace("/", "_")), d))
    for d in ["/usr/lib/node_modules", "/usr/share/perl", "/usr/share/perl5"]:
        if os.path.isdir(d):
            found.append((os.path.join("misc", d.strip("/").replace("/", "_")), d))
    return found


def usage(root):
    files = size = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            files += 1
            size += st.st_size
    return size, files


def main():
    root = sys.argv[1]
    min_bytes = int(float(sys.argv[2])) if len(sys.argv) > 2 else 1_500_000_000
    min_files = int(sys.argv[3]) if len(sys.argv) > 3 else 80_000
    os.makedirs(root, exist_ok=True)
    subprocess.run(["git", "init", "-q", root], check=True)
    for name, src in sources():
        dest = os.path.join(root, name)
        if not os.path.exists(dest):
            shutil.copytree(src, dest, symlinks=True, ignore_dangling_symlinks=True)
    size, files = usage(root)
    copy = 1
    registry = [s for s in sources() if s[0].startswith("crates")]
    while (size < min_bytes or files < min_files) and registry:
        for name, src in registry:
            dest = os.path.join(root, f"copy{copy}", name)
            if not os.path.exists(dest):
                shutil.copytree(src, dest, symlinks=True, ignore_dangling_symlinks=True)
        copy += 1
        size, files = usage(root)
    print(f"{root}\t{size}\t{files}")


if __name__ == "__main__":
    main()
