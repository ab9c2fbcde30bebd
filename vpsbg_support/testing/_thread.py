"""``FakeVPSBGThread``: a ``FakeVPSBG`` served from its own event loop on a background thread."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from vpsbg_support.testing._app import FakeVPSBG
from vpsbg_support.testing._faults import FaultInjector
from vpsbg_support.testing._state import FakeState
from vpsbg_support.testing._traffic import RecordedRequest

_START_TIMEOUT = 30.0


class FakeVPSBGThread:
    """Runs a :class:`FakeVPSBG` on a daemon thread with its own event loop, for blocking code.

    It works the same from sync tests and from async tests (the server never shares the test's
    loop). State, faults and the request log are safe to use from the calling thread::

        with FakeVPSBGThread(FakeVPSBG(seed=1, tickets=5)) as fake:
            urllib.request.urlopen(...fake.url...)

    Args:
        fake: the server to run (default: ``FakeVPSBG()``); it must not be running yet.
    """

    def __init__(self, fake: FakeVPSBG | None = None) -> None:
        self.fake = fake if fake is not None else FakeVPSBG()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<FakeVPSBGThread {self.fake!r}>"

    def start(self) -> None:
        """Start the thread and wait until the server listens.

        Raises:
            RuntimeError: when already started.
            OSError: when the server cannot bind its address.
        """
        if self._thread is not None:
            raise RuntimeError("FakeVPSBGThread is already running")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.fake.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.fake.stop())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=serve, name="FakeVPSBG", daemon=True)
        thread.start()
        if not ready.wait(_START_TIMEOUT):
            raise RuntimeError("FakeVPSBG did not start in time")
        if failure:
            thread.join()
            raise failure[0]
        self._loop, self._thread = loop, thread

    def stop(self) -> None:
        """Stop the server and its thread (no error when not running)."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()

    def __enter__(self) -> FakeVPSBGThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the running fake's surface, for convenience ---------------------------------------

    @property
    def url(self) -> str:
        """The base URL including ``/v1`` (see :attr:`FakeVPSBG.url`)."""
        return self.fake.url

    @property
    def token(self) -> str:
        """The write token."""
        return self.fake.token

    @property
    def read_only_token(self) -> str:
        """The read-only token (403 on anything but GET)."""
        return self.fake.read_only_token

    @property
    def state(self) -> FakeState:
        """The served state (see :class:`FakeState`)."""
        return self.fake.state

    @property
    def faults(self) -> FaultInjector:
        """The fault configuration (see :class:`FaultInjector`)."""
        return self.fake.faults

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        return self.fake.requests

    def count(self, route: str | None, *, status: int | None = None) -> int:
        """Count received requests for a route name (see :meth:`FakeVPSBG.count`).

        Args:
            route: one of :data:`~vpsbg_support.testing.ROUTE_NAMES`, or ``None``.
            status: count only the requests answered with this status.

        Returns:
            How many requests were recorded.

        Raises:
            ValueError: for an unknown route name.
        """
        return self.fake.count(route, status=status)
