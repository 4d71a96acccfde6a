"""`AsyncClient`: the asyncio form of `Client`, with the same behaviour (see `client`).

Cancelling the task that awaits a call sends the daemon `$/cancelRequest` for it.
"""
import asyncio
import itertools
import time
from contextlib import asynccontextmanager

from . import errors, protocol
from .common import HELLO_TIMEOUT, ClientBase, Lease, Retries
from .errors import (BusyError, ConnectionLost, ShuttingDown, UnavailableError, WarmError,
                     WarmTimeoutError)

# Frames may be up to 16 MiB (the daemon's default `max_frame_bytes`).
LINE_LIMIT = 32 << 20


class _NotSent(Exception):
    """The request could not be written: it did not run."""


class _AsyncConnection:
    def __init__(self, reader, writer, on_notification):
        self._reader = reader
        self._writer = writer
        self._on_notification = on_notification
        self._ids = itertools.count(1)
        self._pending = {}
        self.closed = False
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, path, on_notification):
        reader, writer = await asyncio.open_unix_connection(path, limit=LINE_LIMIT)
        return cls(reader, writer, on_notification)

    async def send(self, method, params=None, on_progress=None):
        if self.closed:
            raise _NotSent()
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (future, on_progress)
        try:
            await self._write(protocol.request(request_id, method, params))
        except OSError as error:
            self._pending.pop(request_id, None)
            raise _NotSent() from error
        return request_id, future

    async def notify(self, method, params):
        try:
            await self._write(protocol.notification(method, params))
        except OSError:
            pass  # the connection is gone; so is what the notification was about

    async def _write(self, message):
        self._writer.write(protocol.encode(message))
        await self._writer.drain()

    def forget(self, request_id):
        self._pending.pop(request_id, None)

    async def _read(self):
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                self._dispatch(line)
        except (OSError, ValueError):
            pass
        self.closed = True
        pending, self._pending = self._pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(
                    "the connection to the daemon closed before the answer came"))

    def _dispatch(self, line):
        kind, key, value = protocol.classify(line) or (None, None, None)
        if kind == "answer":
            future, _ = self._pending.pop(key, (None, None))
            if future is not None and not future.done():
                outcome, result = value
                if outcome == "error":
                    future.set_exception(result)
                else:
                    future.set_result(result)
            return
        if kind == "progress":
            _, on_progress = self._pending.get(key, (None, None))
            if on_progress is not None:
                on_progress(value)
                return
            kind, key = "notification", "$/progress"
        if kind == "notification" and self._on_notification is not None:
            self._on_notification(key, value)

    async def close(self):
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass
        self._task.cancel()


class AsyncClient(ClientBase):
    """Calls to the daemon of `service` for the project at `root`, from asyncio."""

    def __init__(self, service=None, root=None, *, warm=None, busy_timeout=60.0,
                 max_restarts=2, on_notification=None):
        super().__init__(service, root, warm, busy_timeout, max_restarts, on_notification)
        self._lock = asyncio.Lock()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *_):
        await self.close()

    async def close(self):
        for connection in self._all_connections():
            await connection.close()

    async def call(self, method, params=None, *, timeout=None, on_progress=None):
        """Calls `method` and returns its result (see `Client.call`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        retries = Retries(self)
        while True:
            connection = await self._connected()
            try:
                request_id, answer = await connection.send(method, params, on_progress)
            except _NotSent:
                self._retire_locked(connection)
                retries.restarted()
                continue
            try:
                return await self._wait(connection, request_id, answer, deadline)
            except ShuttingDown:
                self._retire_locked(connection)
                retries.restarted()
            except BusyError as busy:
                await asyncio.sleep(retries.busy_pause(busy))
            except ConnectionLost:
                self._retire_locked(connection)
                raise

    async def _wait(self, connection, request_id, answer, deadline):
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            return await asyncio.wait_for(asyncio.shield(answer), left)
        except WarmError:
            # The daemon's own answer (a -32001 is a `TimeoutError` too, but not ours).
            raise
        except asyncio.TimeoutError:
            await self._cancel(connection, request_id)
            raise WarmTimeoutError("no answer within the timeout; the call was cancelled",
                                   errors.TIMEOUT) from None
        except asyncio.CancelledError:
            await asyncio.shield(self._cancel(connection, request_id))
            raise

    async def _cancel(self, connection, request_id):
        connection.forget(request_id)
        await connection.notify("$/cancelRequest", {"id": request_id})

    async def _connected(self):
        async with self._lock:
            if self._connection is None or self._connection.closed:
                self._connection = await self._connect()
            return self._connection

    async def _connect(self):
        status = await self._target.start_async()
        try:
            connection = await _AsyncConnection.open(status["socket"], self._on_notification)
        except OSError as error:
            raise UnavailableError(f"cannot connect to {status.get('socket')}: {error}") from error
        try:
            _, hello = await connection.send("daemon/hello")
            self.daemon = await asyncio.wait_for(hello, HELLO_TIMEOUT)
            for lease in self._leases:
                _, taken = await connection.send("daemon/lease")
                lease.id = (await asyncio.wait_for(taken, HELLO_TIMEOUT))["lease_id"]
        except (WarmError, _NotSent, asyncio.TimeoutError, TypeError, KeyError) as error:
            await connection.close()
            raise UnavailableError(f"the daemon did not answer its hello: {error!r}") from error
        return connection

    @asynccontextmanager
    async def lease(self):
        """`async with client.lease():` holds a lease on the daemon (see `Client.lease`)."""
        lease = Lease()
        lease.id = (await self.call("daemon/lease"))["lease_id"]
        self._leases.add(lease)
        try:
            yield lease
        finally:
            self._leases.discard(lease)
            try:
                await self.call("daemon/release", {"lease_id": lease.id})
            except WarmError:
                pass
