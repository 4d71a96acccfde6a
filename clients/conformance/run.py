"""The warm client conformance suite: drives any client, through its driver (README.md),
through the same scenarios against real daemons, and says which pass.

    python3 run.py --warm target/x86_64-unknown-linux-gnu/debug/warm \\
        --driver python="python3 clients/python/conformance_driver.py" \\
        --driver node="node clients/node/conformance_driver.mjs"

Each scenario runs in a project and runtime directory of its own, its daemons stopped after
it. With two drivers or more, the last scenario has all of them call one Python worker at
once. Exit code 1 when a scenario failed for a driver.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The Python worker of warm's own tests.
ECHO_WORKER = os.path.normpath(os.path.join(HERE, "../../crates/warm/tests/it/workers/echo_worker.py"))


class Failed(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failed(what)


def wait_until(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def alive(pid):
    """Whether process `pid` runs (a zombie, which init reaps later, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Driver:
    """One client's driver process: ops in, answers (and progress) out, matched by id."""

    def __init__(self, command, env):
        self.proc = subprocess.Popen(command, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.ended = False
        self.ids = iter(range(1, 1 << 30))
        self.done = {}
        self.progress = {}
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            message = json.loads(line)
            with self.changed:
                if "progress" in message:
                    self.progress.setdefault(message["id"], []).append(message["progress"])
                else:
                    self.done[message["id"]] = message
                self.changed.notify_all()
        with self.changed:
            self.ended = True
            self.changed.notify_all()

    def send(self, op, **fields):
        op_id = next(self.ids)
        self.proc.stdin.write(json.dumps({"id": op_id, "op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        return op_id

    def wait(self, op_id, seconds=30.0):
        with self.changed:
            self.changed.wait_for(lambda: op_id in self.done or self.ended, seconds)
            if op_id not in self.done:
                why = "the driver exited" if self.ended else f"not within {seconds}s"
                raise Failed(f"no answer to op {op_id}: {why}")
            return self.done[op_id]

    def finished(self, op_id):
        with self.changed:
            return op_id in self.done

    def progress_of(self, op_id):
        with self.changed:
            return list(self.progress.get(op_id, []))

    def do(self, op, **fields):
        return self.wait(self.send(op, **fields))

    def call(self, method, params=None, **fields):
        return self.do("call", method=method, params=params, **fields)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def close(self):
        try:
            self.send("close")
            self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.proc.kill()
            self.proc.wait()


class Project:
    """A project and a runtime directory of one scenario, and the `warm` CLI in them."""

    def __init__(self, warm):
        self.tmp = tempfile.TemporaryDirectory(prefix="warm-conformance-")
        self.root = os.path.join(self.tmp.name, "project")
        os.makedirs(os.path.join(self.root, ".git"))
        runtime = os.path.join(self.tmp.name, "rt")
        os.mkdir(runtime, 0o700)
        self.warm_path = warm
        self.env = dict(os.environ, WARM=warm, WARM_RUNTIME_DIR=runtime,
                        WARM_CACHE_DIR=os.path.join(self.tmp.name, "cache"),
                        XDG_CONFIG_HOME=os.path.join(self.tmp.name, "config"),
                        # The scenarios' own .warm.toml files are trusted.
                        WARM_TRUST_ALL="1")

    def config(self, text):
        with open(os.path.join(self.root, ".warm.toml"), "w") as f:
            f.write(text)

    def warm(self, *args):
        return subprocess.run([self.warm_path, *args], cwd=self.root, env=self.env,
                              capture_output=True, text=True)

    def status(self, service):
        done = self.warm("-s", service, "status", "--json")
        return json.loads(done.stdout) if done.returncode == 0 else None

    def driver(self, command, service="echo", **options):
        driver = Driver(command, self.env)
        answer = driver.do("connect", service=service, root=self.root, **options)
        check(answer.get("ok"), f"connect: {answer}")
        return driver

    def close(self):
        self.warm("stop", "--all")
        self.tmp.cleanup()


def result(answer):
    check("result" in answer, f"expected a result, got {answer}")
    return answer["result"]


def error_type(answer):
    check("error" in answer, f"expected an error, got {answer}")
    return answer["error"]["type"]


# Scenarios: each takes the project and the driver command.

def round_trip(project, command):
    """Framing: params come back as sent, unicode and a 1 MiB string included."""
    with project.driver(command) as driver:
        params = {"text": "héllo — 世界 🌍", "nested": [1, 2.5, None, True, {"a": []}]}
        check(result(driver.call("echo", params)) == params, "echo of unicode and nesting")
        big = {"blob": "x" * (1 << 20)}
        check(result(driver.call("echo", big)) == big, "echo of 1 MiB")
        check(result(driver.call("echo", [])) == [], "an empty array")


def concurrent_calls(project, command):
    """Fifty calls in flight on one client at once each get their own answer."""
    with project.driver(command) as driver:
        ids = [driver.send("call", method="sleep", params={"ms": 100 + i}) for i in range(50)]
        for i, op_id in enumerate(ids):
            check(result(driver.wait(op_id)) == {"slept_ms": 100 + i}, f"call {i}")


def typed_errors(project, command):
    """Each error code is its own type, with the daemon's code and data."""
    with project.driver(command, busy_timeout=0) as driver:
        unknown = driver.call("no/such/method")
        check(error_type(unknown) == "RpcError" and unknown["error"]["code"] == -32601,
              f"unknown method: {unknown}")
        for code, kind in ((-32002, "UnavailableError"), (-32001, "TimeoutError"),
                           (-32004, "TooLargeError"), (-32000, "BusyError"), (-42, "RpcError")):
            answer = driver.call("fail", {"code": code, "message": f"made to fail {code}"})
            check(error_type(answer) == kind, f"{code}: {answer}")
            check(answer["error"]["code"] == code, f"{code} kept: {answer}")
            check("made to fail" in answer["error"]["message"], f"message kept: {answer}")


def unavailable(project, command):
    """A worker that cannot start is an UnavailableError, not a hang."""
    project.config('[services.broken]\ncommand = ["/nonexistent/worker"]\n')
    with project.driver(command, service="broken") as driver:
        answer = driver.call("anything", {})
        check(error_type(answer) == "UnavailableError", f"{answer}")


def progress(project, command):
    """Progress of a call reaches its callback, in order, before its result."""
    with project.driver(command) as driver:
        op_id = driver.send("call", method="sleep", params={"ms": 300, "steps": 3}, progress=True)
        check(result(driver.wait(op_id)) == {"slept_ms": 300}, "result")
        seen = [p.get("done") for p in driver.progress_of(op_id)]
        check(seen == [1, 2, 3], f"progress {driver.progress_of(op_id)}")
        check(all(p.get("total") == 3 for p in driver.progress_of(op_id)), "totals")


def timeout(project, command):
    """A call past its timeout is a TimeoutError, and is cancelled in the daemon."""
    with project.driver(command) as driver:
        started = time.monotonic()
        answer = driver.call("sleep", {"ms": 20000}, timeout=0.3)
        check(error_type(answer) == "TimeoutError", f"{answer}")
        check(time.monotonic() - started < 5, "answered at its timeout")
        check(wait_until(lambda: project.status("echo")["in_flight"] == 0),
              "the daemon still runs the timed-out call")


def cancel(project, command):
    """Cancelling a running call ends it as CancelledError, in the daemon too."""
    with project.driver(command) as driver:
        op_id = driver.send("call", method="sleep", params={"ms": 20000, "steps": 200},
                            progress=True)
        check(wait_until(lambda: driver.progress_of(op_id)), "the call did not start")
        started = time.monotonic()
        driver.do("cancel", call=op_id)
        answer = driver.wait(op_id, 10)
        check(error_type(answer) == "CancelledError", f"{answer}")
        check(time.monotonic() - started < 5, "cancelled at once")
        check(wait_until(lambda: project.status("echo")["in_flight"] == 0),
              "the daemon still runs the cancelled call")
        check(result(driver.call("echo", ["after"])) == ["after"], "the client serves on")


def restart(project, command):
    """After the daemon is restarted behind its back, the same client reaches the new one."""
    with project.driver(command) as driver:
        check(result(driver.call("echo", [1])) == [1], "first call")
        first = result(driver.do("daemon"))["pid"]
        check(project.warm("-s", "echo", "restart").returncode == 0, "warm restart")
        check(result(driver.call("echo", [2])) == [2], "call after the restart")
        second = result(driver.do("daemon"))["pid"]
        check(second != first, f"still pid {first}")
        check(project.warm("-s", "echo", "stop").returncode == 0, "warm stop")
        check(result(driver.call("echo", [3])) == [3], "call after a stop")


def resend_while_stopping(project, command):
    """A request sent while the daemon drains is answered -32003 (it did not run): the client
    sends it again to the next daemon; the request the old one was running finishes there."""
    with project.driver(command) as driver:
        socket = result(driver.call("daemon/status"))["socket"]
        running = driver.send("call", method="sleep", params={"ms": 1500})
        check(wait_until(lambda: project.status("echo")["in_flight"] == 1), "not running")
        stopping = subprocess.Popen([project.warm_path, "-s", "echo", "stop"], cwd=project.root,
                                    env=project.env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        # The first thing a stopping daemon does is remove its socket file.
        check(wait_until(lambda: not os.path.exists(socket)), "the daemon did not stop")
        check(result(driver.call("echo", ["resent"])) == ["resent"], "the request sent meanwhile")
        check(result(driver.wait(running)) == {"slept_ms": 1500}, "the drained request")
        check(stopping.wait(10) == 0, "warm stop")


def busy(project, command):
    """Busy answers are retried until they pass; with retrying off, BusyError says when."""
    project.config("[services.echo]\nmax_in_flight = 1\n")
    with project.driver(command) as driver:
        ids = [driver.send("call", method="sleep", params={"ms": 150}) for _ in range(4)]
        for op_id in ids:
            check(result(driver.wait(op_id)) == {"slept_ms": 150}, "a retried call")
        check(project.status("echo")["busy"] > 0, "no call was ever busy")
    with project.driver(command, busy_timeout=0) as impatient:
        ids = [impatient.send("call", method="sleep", params={"ms": 300}) for _ in range(2)]
        answers = [impatient.wait(op_id) for op_id in ids]
        refused = [a for a in answers if "error" in a]
        check(len(refused) == 1, f"{answers}")
        check(error_type(refused[0]) == "BusyError", f"{refused}")
        check((refused[0]["error"]["data"] or {}).get("retry_after_ms", 0) > 0, f"{refused}")


def lease(project, command):
    """A lease keeps the daemon past its idle TTL; released, it idles out."""
    project.config('[services.echo]\nttl = "1s"\n')
    with project.driver(command) as driver:
        lease_op = driver.send("lease")
        lease_id = result(driver.wait(lease_op))["lease_id"]
        check(lease_id, "a lease id")
        pid = project.status("echo")["pid"]
        # Three TTLs pass: the daemon stays. (Watched through /proc: a status request
        # would itself keep the daemon busy.)
        check(not wait_until(lambda: not alive(pid), 3), "the leased daemon idled out")
        check(project.status("echo")["leases"] >= 1, "no lease counted")
        check(driver.do("release", lease=lease_op).get("ok"), "release")
        check(wait_until(lambda: not alive(pid), 10), "the released daemon did not idle out")


def lease_across_restart(project, command):
    """A lease held while the daemon is restarted is taken again on the new daemon."""
    with project.driver(command) as driver:
        lease_op = driver.send("lease")
        check(result(driver.wait(lease_op))["lease_id"], "a lease id")
        check(project.warm("-s", "echo", "restart").returncode == 0, "warm restart")
        check(result(driver.call("echo", [1])) == [1], "a call after the restart")
        check(project.status("echo")["leases"] == 1, "the lease was not taken again")
        check(driver.do("release", lease=lease_op).get("ok"), "release")
        check(wait_until(lambda: project.status("echo")["leases"] == 0), "not released")


def shared_worker(project, commands):
    """All the clients at once call one Python worker that warm hosts."""
    project.config(f'[services.py]\ncommand = ["{sys.executable}", "{ECHO_WORKER}"]\n'
                   'workers = 2\n')
    drivers = [project.driver(command, service="py") for command in commands]
    try:
        sent = []
        for n, driver in enumerate(drivers):
            for i in range(200):
                params = {"client": n, "i": i}
                sent.append((driver, driver.send("call", method="echo", params=params), params))
        for driver, op_id, params in sent:
            check(result(driver.wait(op_id)) == params, f"answer to {params}")
        pids = {result(d.do("daemon"))["pid"] for d in drivers}
        check(len(pids) == 1, f"the clients reached {len(pids)} daemons")
    finally:
        for driver in drivers:
            driver.close()


SCENARIOS = [round_trip, concurrent_calls, typed_errors, unavailable, progress, timeout, cancel,
             restart, resend_while_stopping, busy, lease, lease_across_restart]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warm", required=True, help="the warm binary")
    parser.add_argument("--driver", action="append", required=True, metavar="NAME=COMMAND")
    parser.add_argument("--only", help="run the scenarios whose name contains this")
    args = parser.parse_args()
    warm = os.path.abspath(args.warm)
    drivers = [(name, shlex.split(command))
               for name, command in (d.split("=", 1) for d in args.driver)]
    runs = [(scenario.__name__, name, scenario, command)
            for scenario in SCENARIOS for name, command in drivers]
    if len(drivers) > 1:
        runs.append(("shared_worker", "+".join(n for n, _ in drivers), shared_worker,
                     [c for _, c in drivers]))
    failures = 0
    runs = [run for run in runs if not args.only or args.only in run[0]]
    for scenario_name, driver_name, scenario, command in runs:
        project = Project(warm)
        started = time.monotonic()
        try:
            scenario(project, command)
            verdict = "pass"
        except Failed as failure:
            verdict, failures = f"FAIL: {failure}", failures + 1
        finally:
            project.close()
        print(f"{driver_name:<14} {scenario_name:<22} {verdict} ({time.monotonic() - started:.1f}s)",
              flush=True)
    print(f"{len(runs) - failures} of {len(runs)} passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
