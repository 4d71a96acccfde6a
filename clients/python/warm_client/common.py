"""What the sync and asyncio clients share: their settings and state, and how one call is
retried."""
import random
import time

from .daemon import Target
from .errors import UnavailableError

HELLO_TIMEOUT = 10.0


class Lease:
    """A lease on the daemon (`daemon/lease`): it does not idle out while held."""

    def __init__(self):
        self.id = None


class ClientBase:
    def __init__(self, service, root, warm, busy_timeout, max_restarts, on_notification):
        self._target = Target(service, root, warm)
        self.busy_timeout = busy_timeout
        self.max_restarts = max_restarts
        self._on_notification = on_notification
        self._connection = None
        # Connections given up for new calls (their daemon is stopping) whose calls in
        # flight still get their answers; the daemon closes them when it has drained.
        self._retired = []
        self._leases = set()
        #: What the daemon said in its hello (`pid`, `version`, `service`, `root`).
        self.daemon = None

    def _retire_locked(self, connection):
        """New calls go to another connection; this one keeps serving the calls it has in
        flight until the daemon closes it. (The caller holds the client's lock.)"""
        if self._connection is connection:
            self._connection = None
            self._retired = [c for c in self._retired if not c.closed] + [connection]

    def _all_connections(self):
        connections = [c for c in [self._connection, *self._retired] if c is not None]
        self._connection, self._retired = None, []
        return connections


class Retries:
    """How one call is retried: a busy answer (it did not run) after its `retry_after_ms`,
    with jitter, until `busy_timeout` has passed; a request the daemon did not run because it
    was stopping, on the next daemon, `max_restarts` times at most."""

    def __init__(self, client):
        self.busy_until = time.monotonic() + client.busy_timeout
        self.max_restarts = client.max_restarts
        self.restarts = 0

    def restarted(self):
        if self.restarts >= self.max_restarts:
            raise UnavailableError(
                f"the daemon was restarted {self.restarts + 1} times during this call and is "
                "still not answering")
        self.restarts += 1

    def busy_pause(self, busy):
        """Seconds to wait before resending; raises `busy` when that would be too late."""
        pause = busy.retry_after_ms / 1000 * random.uniform(0.8, 1.2)
        if time.monotonic() + pause > self.busy_until:
            raise busy
        return pause
