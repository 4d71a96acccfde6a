"""An edit storm on a large tree: N files, then E edits as fast as one writer goes while a
client queries in a loop; reports each query's latency (median, p99, max) during the storm,
and checks the last answer against ripgrep's on the settled tree.

Usage: storm.py WARM [FILES] [EDITS]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

warm = sys.argv[1]
files = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
edits = int(sys.argv[3]) if len(sys.argv) > 3 else 5_000
runtime = tempfile.mkdtemp(prefix="warm-storm-rt-")
os.chmod(runtime, 0o700)
root = tempfile.mkdtemp(prefix="warm-storm-")
env = dict(os.environ, WARM_RUNTIME_DIR=runtime, WARM_CACHE_DIR=os.path.join(runtime, "cache"))
os.makedirs(os.path.join(root, ".git"))
for i in range(files):
    d = os.path.join(root, f"d{i // 500}")
    if i % 500 == 0:
        os.makedirs(d)
    with open(os.path.join(d, f"f{i}.rs"), "w") as f:
        f.write(f"fn item_{i}() {{ let value = {i}; }}\n")
subprocess.run([warm, "search", "--status"], cwd=root, env=env, capture_output=True)
started = time.time()
while True:
    st = json.loads(subprocess.run([warm, "search", "--status", "--json"], cwd=root, env=env,
                                   capture_output=True).stdout or b"{}")
    if st.get("ready") and st.get("watching"):
        break
    time.sleep(0.1)
print(f"{files} files indexed in {time.time() - started:.1f} s (watch set up included)")

done = threading.Event()


def writer():
    for e in range(edits):
        i = (e * 7919) % files
        with open(os.path.join(root, f"d{i // 500}", f"f{i}.rs"), "w") as f:
            f.write(f"fn item_{i}() {{ let value = {i}; }} // storm_edit_{e}\n")
    done.set()


latencies = []
thread = threading.Thread(target=writer)
storm_started = time.time()
thread.start()
while not done.is_set():
    t = time.perf_counter()
    subprocess.run([warm, "search", "-c", "storm_edit_"], cwd=root, env=env, capture_output=True)
    latencies.append(time.perf_counter() - t)
thread.join()
storm = time.time() - storm_started
latencies.sort()
final = subprocess.run([warm, "search", "-l", "storm_edit_"], cwd=root, env=env, capture_output=True)
expected = subprocess.run(["rg", "-l", "storm_edit_"], cwd=root, capture_output=True)
same = sorted(final.stdout.splitlines()) == sorted(expected.stdout.splitlines())
st = json.loads(subprocess.run([warm, "search", "--status", "--json"], cwd=root, env=env,
                               capture_output=True).stdout or b"{}")
pct = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000
print(f"{edits} edits in {storm:.1f} s; {len(latencies)} queries during the storm: "
      f"median {pct(0.5):.0f} ms, p99 {pct(0.99):.0f} ms, max {latencies[-1] * 1000:.0f} ms; "
      f"final answer equal to rg's: {same}; queries {st.get('queries')}")
subprocess.run([warm, "stop", "--all"], env=env, capture_output=True)
shutil.rmtree(root, ignore_errors=True)
shutil.rmtree(runtime, ignore_errors=True)
sys.exit(0 if same else 1)
