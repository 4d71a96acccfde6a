"""Finding or starting a daemon, through the `warm` binary: spawning, the single-instance
lock and the version and configuration checks stay in one place (docs/protocol.md)."""
import json
import os
import shutil
import subprocess

from .errors import UnavailableError


class Target:
    """Which daemon: a service of a project, and the `warm` binary that starts it."""

    def __init__(self, service=None, root=None, warm=None):
        self.service = service
        self.root = os.fspath(root) if root is not None else None
        self.warm = warm or os.environ.get("WARM") or shutil.which("warm") or "warm"

    def start_command(self):
        command = [self.warm]
        if self.service:
            command += ["-s", self.service]
        if self.root:
            command += ["--root", self.root]
        return command + ["start", "--json"]

    def start(self):
        """Starts the daemon if it is not running; its status (`socket`, `pid`, ...)."""
        try:
            done = subprocess.run(self.start_command(), capture_output=True, text=True,
                                  cwd=self.root, stdin=subprocess.DEVNULL)
        except OSError as error:
            raise UnavailableError(f"cannot run {self.warm}: {error}") from error
        return self.status_from(done.returncode, done.stdout, done.stderr)

    async def start_async(self):
        """`start`, without blocking the event loop."""
        import asyncio
        try:
            process = await asyncio.create_subprocess_exec(
                *self.start_command(), cwd=self.root, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as error:
            raise UnavailableError(f"cannot run {self.warm}: {error}") from error
        stdout, stderr = await process.communicate()
        return self.status_from(process.returncode, stdout.decode(), stderr.decode())

    @staticmethod
    def status_from(returncode, stdout, stderr):
        if returncode != 0:
            reason = stderr.strip() or f"exit code {returncode}"
            raise UnavailableError(f"warm start failed: {reason}")
        try:
            return json.loads(stdout)
        except ValueError as error:
            raise UnavailableError(f"warm start printed no status: {stdout!r}") from error
