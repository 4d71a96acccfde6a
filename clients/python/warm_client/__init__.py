"""A client for warm daemons, in the Python standard library alone.

    from warm_client import Client

    with Client("index", root="/path/to/project") as index:
        hits = index.call("find", {"name": "main"}, on_progress=print)
        with index.lease():          # the daemon does not idle out in this block
            ...

`AsyncClient` is the same for asyncio. The daemon is found, or started, through the `warm`
binary (`$WARM`, else `warm` on `PATH`), which keeps spawning, single-instance locking and
version checks in one place. The protocol: docs/protocol.md of the warm repository.
"""
from .aio import AsyncClient
from .client import CancelToken, Client
from .common import Lease
from .errors import (BusyError, CancelledError, ConnectionLost, RpcError, TooLargeError,
                     UnavailableError, WarmError, WarmTimeoutError)

__all__ = [
    "AsyncClient", "BusyError", "CancelToken", "CancelledError", "Client", "ConnectionLost",
    "Lease", "RpcError", "TooLargeError", "UnavailableError", "WarmError", "WarmTimeoutError",
]
__version__ = "0.1.0"
