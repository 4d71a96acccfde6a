"""The errors a warm call can end in, one class per thing a caller does differently.

Every class derives from `WarmError`. An error answered by the daemon keeps its JSON-RPC
`code`, `message` and `data`.
"""

# JSON-RPC codes of docs/protocol.md.
BUSY = -32000
TIMEOUT = -32001
UNAVAILABLE = -32002
SHUTTING_DOWN = -32003
TOO_LARGE = -32004
CANCELLED = -32005


class WarmError(Exception):
    """Any failure of a warm call."""

    def __init__(self, message, code=None, data=None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.data = data


class RpcError(WarmError):
    """An error the daemon or its service answered (a worker's own error, an unknown
    method, bad params, ...): the request ran, or was refused; retrying will not help."""


class BusyError(WarmError):
    """The daemon's in-flight limit was reached (-32000): the request did not run. Raised
    only when retrying was turned off or ran out of time; `retry_after_ms` says when to try
    again."""

    @property
    def retry_after_ms(self):
        return (self.data or {}).get("retry_after_ms", 100)


class UnavailableError(WarmError):
    """No daemon could be reached or started, or its worker is unavailable (-32002)."""


class WarmTimeoutError(WarmError, TimeoutError):
    """The call took longer than its timeout (it was cancelled), or the service answered
    -32001."""


class CancelledError(WarmError):
    """The call was cancelled (-32005): it may have partly run."""


class TooLargeError(WarmError):
    """A frame over the daemon's limit (-32004)."""


class ConnectionLost(WarmError):
    """The connection closed after the request was written: it may have run, so it is not
    resent."""


class ShuttingDown(WarmError):
    """-32003: the request did not run (the daemon is stopping); the client resends it to
    the next daemon and never raises this to its caller."""


_BY_CODE = {
    BUSY: BusyError,
    TIMEOUT: WarmTimeoutError,
    UNAVAILABLE: UnavailableError,
    SHUTTING_DOWN: ShuttingDown,
    TOO_LARGE: TooLargeError,
    CANCELLED: CancelledError,
}


def from_error_object(error):
    """The exception for a JSON-RPC error object."""
    code = error.get("code")
    cls = _BY_CODE.get(code, RpcError)
    return cls(error.get("message", "error"), code, error.get("data"))
