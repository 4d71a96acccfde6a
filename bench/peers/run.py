"""warm against its peers, side by side in one session on one machine.

Peers: a minimal Rust Unix-socket echo (the floor: no protocol at all), watchman `version`,
an RPyC Unix-socket server, a Node `net` IPC server, and nailgun `ng`. For each: one-shot
calls (a new client process per call, as a shell or an agent makes them), persistent round
trips (one connection, sequential requests, measured inside the client), and cold start where
the peer starts its own server (warm and watchman).

Writes the table into docs/benchmarks.md (between the peers markers) and the plot into
docs/peers.svg. Run through scripts/bench-peers, which installs the peers.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "bench", "peers")
# Both built by scripts/bench-peers: warm as its release build ships, the floor with rustc's
# default optimised settings (dynamically linked, as any small Rust program is by default).
WARM = os.environ["PEERS_WARM"]
FLOOR = os.environ["PEERS_FLOOR"]
PYTHON = sys.executable
ONE_SHOTS = int(os.environ.get("PEERS_ONE_SHOTS", "200"))
LOOPS = int(os.environ.get("PEERS_LOOPS", "5000"))
COLD = int(os.environ.get("PEERS_COLD", "15"))
NG_CLASSPATH = "/usr/share/java/nailgun-server.jar:/usr/share/java/jna.jar"


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(micros):
    return {
        "p50": percentile(micros, 50),
        "p90": percentile(micros, 90),
        "p99": percentile(micros, 99),
        "per_sec": 1e6 / statistics.mean(micros),
    }


def timed_runs(argv, count, env=None, before=None):
    """Runs argv `count` times; the wall time of each run in µs."""
    micros = []
    for _ in range(count):
        if before:
            before()
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        micros.append((time.perf_counter() - start) * 1e6)
    return micros


def interleaved_runs(argvs, count, env=None):
    """Runs each argv `count` times, alternating call by call, so that the machine's drift
    (up to 1.5x between minutes here) hits them alike; the wall times in µs, per argv."""
    runs = [[] for _ in argvs]
    for _ in range(count):
        for argv, micros in zip(argvs, runs):
            micros.extend(timed_runs(argv, 1, env))
    return runs


def wait_for(check, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, subprocess.CalledProcessError):
            pass
        time.sleep(0.05)
    raise SystemExit(f"peers: {what} did not come up")


def listening(path):
    import socket
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


def running(pidfile):
    """Whether the process named in pidfile is alive (not a zombie)."""
    try:
        pid = int(open(pidfile).read().strip())
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return False
    return state not in ("Z", "X")


def succeeds(argv, env=None):
    return subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


class Peer:
    """A server started in the background, with its one-shot and persistent clients."""

    def __init__(self, name, serve, call, loop=None, env=None):
        self.name, self.serve, self.call, self.loop, self.env = name, serve, call, loop, env
        self.process = None

    def start(self):
        if self.serve:
            self.process = subprocess.Popen(self.serve, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: succeeds(self.call, self.env), self.name)

    def measure(self):
        result = {"one_shot": summary(timed_runs(self.call, ONE_SHOTS, self.env))}
        if self.loop:
            out = subprocess.run(self.loop, env=self.env, check=True, capture_output=True, text=True).stdout
            result["persistent"] = summary(json.loads(out))
        return result

    def stop(self):
        if self.process:
            self.process.kill()
            self.process.wait()


def measure_warm(tmp):
    env = dict(os.environ, WARM_RUNTIME_DIR=os.path.join(tmp, "warm-rt"))
    os.makedirs(env["WARM_RUNTIME_DIR"], mode=0o700)
    env["WARM_CACHE_DIR"] = os.path.join(tmp, "warm-cache")
    call = [WARM, "-s", "echo", "call", "--root", tmp, "daemon/ping"]
    subprocess.run([WARM, "-s", "echo", "start", "--root", tmp], env=env, check=True, stdout=subprocess.DEVNULL)
    result = {"one_shot": summary(timed_runs(call, ONE_SHOTS, env))}
    # The ratio the one-shot target is about, measured call by call against the floor.
    floor = Peer("floor", [FLOOR, "serve", f"{tmp}/floor-paired.sock"], [FLOOR, "call", f"{tmp}/floor-paired.sock"])
    floor.start()
    try:
        warm_runs, floor_runs = interleaved_runs([call, floor.call], ONE_SHOTS, env)
    finally:
        floor.stop()
    result["paired"] = {"warm": summary(warm_runs)["p50"], "floor": summary(floor_runs)["p50"]}
    bench = subprocess.run(
        [WARM, "-s", "echo", "bench", "--root", tmp, "--method", "daemon/ping", "-n", str(LOOPS), "-c", "1", "--json"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    report = json.loads(bench)["report"]
    latency = report["latency_us"]
    result["persistent"] = {"p50": latency["p50"], "p90": latency["p90"], "p99": latency["p99"], "per_sec": report["requests_per_sec"]}
    many = subprocess.run(
        [WARM, "-s", "echo", "bench", "--root", tmp, "--method", "daemon/ping", "-n", str(LOOPS * 10), "-c", "8", "--pipeline", "16", "--json"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    result["throughput_8x16"] = json.loads(many)["report"]["requests_per_sec"]
    stop_argv = [WARM, "-s", "echo", "stop", "--root", tmp]
    stop = lambda: subprocess.run(stop_argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result["cold"] = summary(timed_runs(call, COLD, env, before=stop))
    stop()
    return result


def measure_watchman(tmp):
    sock = os.path.join(tmp, "watchman.sock")
    flags = [f"--sockname={sock}", f"--statefile={tmp}/wm.state", f"--logfile={tmp}/wm.log", f"--pidfile={tmp}/wm.pid", "--no-save-state"]
    call = ["watchman", *flags, "version"]
    stop = lambda: subprocess.run(["watchman", *flags, "shutdown-server"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: succeeds(call), "watchman")
    result = {"one_shot": summary(timed_runs(call, ONE_SHOTS))}

    def stopped():
        stop()
        wait_for(lambda: not listening(sock) and not running(f"{tmp}/wm.pid"), "watchman stop")

    result["cold"] = summary(timed_runs(call, COLD, before=stopped))
    stop()
    return result


def measure_all():
    tmp = tempfile.mkdtemp(prefix="warm-peers-")
    results = {}
    try:
        results["warm"] = measure_warm(tmp)
        peers = [
            Peer("floor (Rust, no protocol)", [FLOOR, "serve", f"{tmp}/floor.sock"], [FLOOR, "call", f"{tmp}/floor.sock"], [FLOOR, "loop", f"{tmp}/floor.sock", str(LOOPS)]),
            Peer("Node net", ["node", f"{HERE}/node_peer.js", "serve", f"{tmp}/node.sock"], ["node", f"{HERE}/node_peer.js", "call", f"{tmp}/node.sock"], ["node", f"{HERE}/node_peer.js", "loop", f"{tmp}/node.sock", str(LOOPS)]),
            Peer("RPyC", [PYTHON, f"{HERE}/rpyc_peer.py", "serve", f"{tmp}/rpyc.sock"], [PYTHON, f"{HERE}/rpyc_peer.py", "call", f"{tmp}/rpyc.sock"], [PYTHON, f"{HERE}/rpyc_peer.py", "loop", f"{tmp}/rpyc.sock", str(LOOPS)]),
            Peer("nailgun", ["java", "-cp", NG_CLASSPATH, "com.martiansoftware.nailgun.NGServer", f"local:{tmp}/ng.sock"], ["ng-nailgun", "--nailgun-server", f"local:{tmp}/ng.sock", "ng-version"]),
        ]
        for peer in peers:
            peer.start()
            try:
                results[peer.name] = peer.measure()
            finally:
                peer.stop()
        results["watchman"] = measure_watchman(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def ms(micros):
    return f"{micros / 1000:.2f}" if micros < 100_000 else f"{micros / 1000:.0f}"


def table(results):
    warm = results["warm"]
    lines = [
        "| peer | one-shot p50 ms | p90 | p99 | vs warm | persistent p50 µs | p99 µs | round trips/s (1 conn) | cold start p50 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        one = r["one_shot"]
        ratio = one["p50"] / warm["one_shot"]["p50"]
        persistent = r.get("persistent")
        cells = [
            name, ms(one["p50"]), ms(one["p90"]), ms(one["p99"]), f"{ratio:.2f}x",
            f"{persistent['p50']:.0f}" if persistent else "n/a",
            f"{persistent['p99']:.0f}" if persistent else "n/a",
            f"{persistent['per_sec']:,.0f}" if persistent else "n/a",
            ms(r["cold"]["p50"]) if "cold" in r else "n/a",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def svg(results):
    """Log-scale latency plot: for each peer and mode, a bar from p50 to p90 and a whisker to p99."""
    rows = []
    for name, r in results.items():
        for mode in ("one_shot", "persistent", "cold"):
            if mode in r:
                rows.append((f"{name} · {mode.replace('_', '-')}", r[mode]))
    import math
    left, width, row_h, top = 260, 560, 22, 30
    lo, hi = 10, 1_000_000  # 10 µs .. 1 s
    x = lambda us: left + width * (math.log10(max(us, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    height = top + row_h * len(rows) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" height="{height}" font-family="sans-serif" font-size="12">']
    out.append(f'<text x="{left}" y="16">latency, log scale (bar: p50 to p90, whisker: to p99)</text>')
    for decade, label in [(10, "10 µs"), (100, "100 µs"), (1000, "1 ms"), (10_000, "10 ms"), (100_000, "100 ms"), (1_000_000, "1 s")]:
        gx = x(decade)
        out.append(f'<line x1="{gx:.1f}" y1="{top - 6}" x2="{gx:.1f}" y2="{height - 30}" stroke="#ddd"/>')
        out.append(f'<text x="{gx:.1f}" y="{height - 14}" text-anchor="middle">{label}</text>')
    for i, (label, s) in enumerate(rows):
        y = top + i * row_h
        color = "#d9480f" if label.startswith("warm") else "#1c7ed6"
        out.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end">{label}</text>')
        out.append(f'<line x1="{x(s["p90"]):.1f}" y1="{y + 10}" x2="{x(s["p99"]):.1f}" y2="{y + 10}" stroke="{color}"/>')
        out.append(f'<rect x="{x(s["p50"]):.1f}" y="{y + 4}" width="{max(2, x(s["p90"]) - x(s["p50"])):.1f}" height="12" fill="{color}"/>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_docs(results, machine):
    doc = os.path.join(ROOT, "docs", "benchmarks.md")
    text = open(doc).read()
    begin, end = "<!-- peers:begin -->", "<!-- peers:end -->"
    block = f"{begin}\n{machine}\n\n{table(results)}\n\n![latency distributions](peers.svg)\n{end}"
    text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    open(doc, "w").write(text)
    open(os.path.join(ROOT, "docs", "peers.svg"), "w").write(svg(results))


def main():
    results = measure_all()
    paired = results["warm"]["paired"]
    machine = (
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}; {ONE_SHOTS} one-shot calls, {LOOPS} persistent round trips, "
        f"{COLD} cold starts per peer. warm with 8 connections × 16 pipelined: {results['warm']['throughput_8x16']:,.0f} requests/s. "
        f"One-shot calls alternating with the floor's: warm {ms(paired['warm'])} ms, floor {ms(paired['floor'])} ms "
        f"({paired['warm'] / paired['floor']:.2f}x)."
    )
    print(machine)
    print(table(results))
    json.dump(results, open(os.path.join(tempfile.gettempdir(), "warm-peers.json"), "w"), indent=1)
    if "--write" in sys.argv:
        write_docs(results, machine)


main()
