"""Which event loop a client belongs to, and whether it was closed.

An aiohttp session, its connections and the rate limiter's waiters all belong to one loop. A
client used under a second loop (a second ``asyncio.run``, a thread with a loop of its own) would
fail deep inside aiohttp with "Event loop is closed" or hang; this says what happened instead.
"""

from __future__ import annotations

import asyncio

from vpsbg_support.errors import ClientClosedError, WrongEventLoopError

__all__ = ["Lifecycle"]


class Lifecycle:
    """The loop a client was first used on, and whether ``aclose()`` was called. Shared by a
    client and its ``with_options`` copies."""

    __slots__ = ("_loop", "closed")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def enter(self) -> None:
        """Check that a call may run here; binds the client to the running loop on first use.

        Raises:
            ClientClosedError: the client was closed.
            WrongEventLoopError: the running loop is not the one the client was first used on.
        """
        if self.closed:
            raise ClientClosedError(
                "this AsyncClient was closed (aclose() or the end of its 'async with' block);"
                " create a new client"
            )
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise WrongEventLoopError(
                "this AsyncClient is used under another event loop than the one it was first"
                " used on; a client belongs to the loop it was first used on, where its"
                " connections live. Create one AsyncClient per event loop (for example inside"
                " the coroutine given to asyncio.run), or use the blocking Client, which runs"
                " its own loop."
            )
