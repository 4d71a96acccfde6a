"""`Client`: calls to one warm daemon from any number of threads, over one connection.

One reader thread per connection routes answers to their callers and `$/progress` to their
callbacks. What the client does for its caller, as docs/protocol.md asks:

- it finds or starts the daemon through `warm start --json`, and does so again when the
  connection is gone (the daemon idled out or was restarted);
- it resends a request answered -32003 (the daemon was stopping: it did not run) to the next
  daemon, at most `max_restarts` times per call;
- it resends a request answered -32000 (busy: it did not run) after `data.retry_after_ms`,
  with jitter, for up to `busy_timeout` seconds;
- it never resends a request whose connection closed after it was written (it may have
  run): that is `ConnectionLost`.
"""
import itertools
import socket
import threading
import time
from contextlib import contextmanager

from . import errors, protocol
from .common import HELLO_TIMEOUT, ClientBase, Lease, Retries
from .errors import (BusyError, CancelledError, ConnectionLost, ShuttingDown,
                     UnavailableError, WarmError, WarmTimeoutError)


class CancelToken:
    """Cancels the calls it is passed to: each is sent `$/cancelRequest` and raises
    `CancelledError`."""

    def __init__(self):
        self._lock = threading.Lock()
        self._cancelled = False
        self._callbacks = []

    @property
    def cancelled(self):
        return self._cancelled

    def cancel(self):
        with self._lock:
            self._cancelled = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def _subscribe(self, callback):
        """Runs `callback` on cancellation (at once if cancelled); returns its undo."""
        with self._lock:
            if not self._cancelled:
                self._callbacks.append(callback)
                return lambda: self._unsubscribe(callback)
        callback()
        return lambda: None

    def _unsubscribe(self, callback):
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)


class _NotSent(Exception):
    """The request could not be written: it did not run."""


class _Pending:
    def __init__(self, request_id, on_progress):
        self.id = request_id
        self.on_progress = on_progress
        self._done = threading.Event()
        self._outcome = None

    def settle(self, outcome):
        if not self._done.is_set():
            self._outcome = outcome
            self._done.set()

    def wait(self, timeout):
        """The result; raises the error. `None` timeout waits for ever; past it, `False`."""
        if not self._done.wait(timeout):
            return False, None
        kind, value = self._outcome
        if kind == "error":
            raise value
        return True, value


class _Connection:
    """One socket to the daemon, newline-delimited JSON, and its reader thread."""

    def __init__(self, path, on_notification):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self._on_notification = on_notification
        self._ids = itertools.count(1)
        self._pending = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._read, name="warm-client-reader", daemon=True).start()

    def send(self, method, params=None, on_progress=None):
        pending = _Pending(next(self._ids), on_progress)
        with self._lock:
            if self.closed:
                raise _NotSent()
            self._pending[pending.id] = pending
        try:
            self._write(protocol.request(pending.id, method, params))
        except OSError as error:
            self._forget(pending.id)
            raise _NotSent() from error
        return pending

    def notify(self, method, params):
        try:
            self._write(protocol.notification(method, params))
        except OSError:
            pass  # the connection is gone; so is what the notification was about

    def _write(self, message):
        with self._write_lock:
            self.sock.sendall(protocol.encode(message))

    def _forget(self, request_id):
        with self._lock:
            return self._pending.pop(request_id, None)

    def _read(self):
        try:
            with self.sock.makefile("rb") as lines:
                for line in lines:
                    self._dispatch(line)
        except (OSError, ValueError):
            pass
        with self._lock:
            self.closed = True
            pending, self._pending = list(self._pending.values()), {}
        lost = ConnectionLost("the connection to the daemon closed before the answer came")
        for request in pending:
            request.settle(("error", lost))

    def _dispatch(self, line):
        kind, key, value = protocol.classify(line) or (None, None, None)
        if kind == "answer":
            request = self._forget(key)
            if request is not None:
                request.settle(value)
            return
        if kind == "progress":
            with self._lock:
                request = self._pending.get(key)
            if request is not None and request.on_progress is not None:
                request.on_progress(value)
                return
            kind, key = "notification", "$/progress"
        if kind == "notification" and self._on_notification is not None:
            self._on_notification(key, value)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class Client(ClientBase):
    """Calls to the daemon of `service` (the project's default service if `None`) for the
    project at `root` (found from the current directory if `None`)."""

    def __init__(self, service=None, root=None, *, warm=None, busy_timeout=60.0,
                 max_restarts=2, on_notification=None):
        super().__init__(service, root, warm, busy_timeout, max_restarts, on_notification)
        self._lock = threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def close(self):
        with self._lock:
            connections = self._all_connections()
        for connection in connections:
            connection.close()

    def call(self, method, params=None, *, timeout=None, on_progress=None, cancel=None):
        """Calls `method` and returns its result.

        `on_progress(params)` is called with each `$/progress` of the call; `timeout`
        (seconds) cancels it and raises `WarmTimeoutError`; a `CancelToken` cancels it from
        another thread.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        retries = Retries(self)
        while True:
            if cancel is not None and cancel.cancelled:
                raise CancelledError("cancelled before it was sent", errors.CANCELLED)
            connection = self._connected()
            try:
                pending = connection.send(method, params, on_progress)
            except _NotSent:
                self._retire(connection)
                retries.restarted()
                continue
            try:
                return self._wait(connection, pending, deadline, cancel)
            except ShuttingDown:
                self._retire(connection)
                retries.restarted()
            except BusyError as busy:
                time.sleep(retries.busy_pause(busy))
            except ConnectionLost:
                self._retire(connection)
                raise

    def _wait(self, connection, pending, deadline, cancel):
        send_cancel = lambda: connection.notify("$/cancelRequest", {"id": pending.id})  # noqa: E731
        undo = cancel._subscribe(send_cancel) if cancel is not None else (lambda: None)
        try:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            answered, result = pending.wait(left)
            if not answered:
                send_cancel()
                connection._forget(pending.id)
                raise WarmTimeoutError("no answer within the timeout; the call was cancelled",
                                       errors.TIMEOUT)
            return result
        finally:
            undo()

    def _retire(self, connection):
        with self._lock:
            self._retire_locked(connection)

    def _connected(self):
        with self._lock:
            if self._connection is None or self._connection.closed:
                self._connection = self._connect()
            return self._connection

    def _connect(self):
        status = self._target.start()
        try:
            connection = _Connection(status["socket"], self._on_notification)
        except OSError as error:
            raise UnavailableError(f"cannot connect to {status.get('socket')}: {error}") from error
        try:
            _, self.daemon = connection.send("daemon/hello").wait(HELLO_TIMEOUT)
            # Leases taken on a connection now gone are taken again on this one.
            for lease in self._leases:
                _, answer = connection.send("daemon/lease").wait(HELLO_TIMEOUT)
                lease.id = answer["lease_id"]
        except (WarmError, _NotSent, TypeError, KeyError) as error:
            connection.close()
            raise UnavailableError(f"the daemon did not answer its hello: {error!r}") from error
        return connection

    @contextmanager
    def lease(self):
        """Holds a lease on the daemon for the `with` block (and takes it again after a
        reconnection), so that it does not idle out meanwhile."""
        lease = Lease()
        lease.id = self.call("daemon/lease")["lease_id"]
        with self._lock:
            self._leases.add(lease)
        try:
            yield lease
        finally:
            with self._lock:
                self._leases.discard(lease)
            try:
                self.call("daemon/release", {"lease_id": lease.id})
            except WarmError:
                pass  # the connection, and so the lease, is gone already
