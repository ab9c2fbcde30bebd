"""A loopback aiohttp.web server whose handlers a test writes, to play a hostile VPSBG."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def hostile(routes: Mapping[str, Handler]) -> AsyncIterator[str]:
    """Serve ``routes`` (path under ``/v1`` -> handler, any method) on this loop; yields the
    base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route("*", "/v1" + path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


class HostileThread:
    """The same, on its own loop in a thread: for a client in a child process."""

    def __init__(self, routes: Mapping[str, Handler]) -> None:
        self._routes = routes
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.url = ""
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with hostile(self._routes) as url:
            self.url = url
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> HostileThread:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
