"""Hand-written bases of the generated blocking classes, so that ``_sync.py`` stays one-liners.

``SyncClientBase`` owns the :class:`LoopThread` and the ``AsyncClient`` built on it; the resource
groups (``Tickets``, ``Plans``) and wrapped values (a download stream) only borrow the runner, and
look the async object up on every call, so a forked child transparently gets its own client.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

from vpsbg_support._client import AsyncClient
from vpsbg_support._loop_thread import LoopThread

__all__ = ["SyncClientBase", "SyncResource", "SyncWrapper"]

_C = TypeVar("_C", bound="SyncClientBase")
_A = TypeVar("_A")


async def _aclose(client: AsyncClient) -> None:
    await client.aclose()


class SyncClientBase:
    """Base of the blocking ``Client``: one private event loop and one ``AsyncClient`` on it."""

    def __init__(self, factory: Callable[[], AsyncClient]) -> None:
        """Start the loop and build the async client on it.

        Args:
            factory: builds the ``AsyncClient``; called on the loop, and again in a forked child.

        Raises:
            Exception: whatever ``factory`` raises (for example ConfigurationError).
        """
        self._runner: LoopThread[AsyncClient] = LoopThread(
            name="vpsbg-support-loop", factory=factory, aclose=_aclose
        )
        # Built now, not at the first call, so a missing token fails here like AsyncClient's.
        self._runner.resource()

    @property
    def _async(self) -> AsyncClient:
        return self._runner.resource()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the ``with`` block ended)."""
        return self._runner.closed

    def close(self) -> None:
        """Close the connection pool and stop the client's background thread. Idempotent.

        Safe from any thread: calls still running in other threads are cancelled and raise
        LoopClosedError, as does any later call. A client that is never closed is cleaned up
        when it is garbage collected or at interpreter exit; closing it (or using ``with``)
        releases its connections sooner.
        """
        self._runner.close()

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._runner.closed:
            return f"<{type(self).__name__} (closed)>"
        return repr(self._async).replace(type(self._async).__name__, type(self).__name__, 1)


class SyncResource:
    """Base of a blocking resource group (``client.tickets``): borrows the client's runner."""

    __slots__ = ("_runner",)

    def __init__(self, runner: LoopThread[AsyncClient]) -> None:
        self._runner = runner

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class SyncWrapper(Generic[_A]):
    """Base of a blocking view of one async object returned by the API (a download stream)."""

    __slots__ = ("_runner", "_wrapped")

    def __init__(self, runner: LoopThread[AsyncClient], wrapped: _A) -> None:
        self._runner = runner
        self._wrapped = wrapped

    @property
    def _async(self) -> _A:
        return self._wrapped

    def __repr__(self) -> str:
        return repr(self._wrapped)
