"""Hand-written bases of the generated blocking classes, so that ``_sync.py`` stays one-liners.

``SyncClientBase`` owns the :class:`LoopThread` and the ``AsyncClient`` built on it; the resource
groups (``Tickets``, ``Plans``) and wrapped values (a download stream) only borrow the runner, and
look the async object up on every call, so a forked child transparently gets its own client.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Generic, TypeVar

import aiohttp

from vpsbg_support._client import AsyncClient
from vpsbg_support._loop_thread import LoopThread
from vpsbg_support._retry import RetryPolicy

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

    def with_options(
        self: _C,
        *,
        timeout: float | aiohttp.ClientTimeout | None = None,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str | int] | None = None,
    ) -> _C:
        """A client with other timeout, retry, header or query settings, sharing this one's
        background loop, connection pool, rate limiter and event hooks.

        ``client.with_options(max_retries=0).plans.renew(billing_cycle=1)``

        Args:
            timeout: seconds for a whole request, or an ``aiohttp.ClientTimeout``.
            max_retries: retries after the first attempt (applied on top of ``retry_policy``).
            retry_policy: a whole retry policy to use instead of this client's.
            extra_headers: headers added to every request of the new client (as
                ``default_headers``: never ``Authorization``).
            extra_query: query parameters added to every request of the new client; a call's
                own parameters (``page``...) win over them.

        Returns:
            A new client; closing either one closes the shared loop and pool.

        Raises:
            ValueError: ``max_retries`` is negative, ``timeout`` is not a finite number of
                seconds above 0, or ``extra_headers``/``extra_query`` hold a bad name or value
                (InvalidParameterError).
        """

        def derive(client: AsyncClient) -> AsyncClient:
            return client.with_options(
                timeout=timeout,
                max_retries=max_retries,
                retry_policy=retry_policy,
                extra_headers=extra_headers,
                extra_query=extra_query,
            )

        base = self._async
        derived = derive(base)  # bad settings raise here, not at the first call
        clone = copy.copy(self)
        clone._runner = _DerivedRunner(self._runner, derive, (base, derived))
        for name, value in vars(clone).items():
            if isinstance(value, SyncResource):
                setattr(clone, name, type(value)(clone._runner))
        return clone

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


class _DerivedRunner(LoopThread[AsyncClient]):
    """The loop of a blocking client, its ``AsyncClient`` seen through ``with_options``.

    Not a second loop: it shares the base's loop, state and shutdown (``close()`` on either
    closes both), and keeps the base alive. The derived AsyncClient is rebuilt when the base's
    is (in a forked child).
    """

    def __init__(
        self,
        base: LoopThread[AsyncClient],
        derive: Callable[[AsyncClient], AsyncClient],
        derived: tuple[AsyncClient, AsyncClient],
    ) -> None:
        # LoopThread.__init__ is not called on purpose: it would start a loop of its own.
        self._base = base
        self._name = base._name
        self._factory = base._factory
        self._box = base._box
        self._finalizer = base._finalizer
        self._derive = derive
        #: (the base's AsyncClient, the one derived from it), rebuilt when the base's changes
        self._derived = derived

    def resource(self) -> AsyncClient:
        """The base's AsyncClient with this view's options."""
        client = self._base.resource()
        derived = self._derived
        if derived[0] is not client:
            derived = (client, self._derive(client))
            self._derived = derived
        return derived[1]


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
