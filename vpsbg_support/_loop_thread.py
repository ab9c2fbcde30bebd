"""One background event loop on a daemon thread, so blocking code can drive the async client.

The blocking ``Client`` hands every coroutine to a :class:`LoopThread`. The loop is private to the
``LoopThread``: a call works the same from a plain script, from many threads at once, and from a
thread that is itself running an event loop (a Jupyter cell, code under ``asyncio.run``), where
``asyncio.run`` or ``loop.run_until_complete`` would refuse to start.

The loop can own one *resource* (for the client: the ``AsyncClient`` and its aiohttp session). It is
built on the loop when the loop starts, closed on the loop before the loop stops, and rebuilt in a
child process after ``os.fork()``, where the parent's loop thread does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Generic, TypeVar, cast, overload

from vpsbg_support import _constants as C
from vpsbg_support.errors import VPSBGError

__all__ = ["DeadlockError", "LoopClosedError", "LoopThread", "SyncContextManager"]

T = TypeVar("T")
U = TypeVar("U")
R = TypeVar("R")

_CANCEL_GRACE = C.LOOP_CANCEL_GRACE
_CLOSE_TIMEOUT = C.LOOP_CLOSE_TIMEOUT

# Loops and resources inherited from a parent process. The child must not close them (the loop
# "runs" on a thread that does not exist here, the sockets are shared with the parent) and must not
# let them be garbage collected either: aiohttp and asyncio would then report unclosed sessions and
# loops. Keeping them referenced costs one set of objects per fork.
_ABANDONED_AFTER_FORK: list[object] = []
_INSTANCES: weakref.WeakSet[LoopThread[Any]] = weakref.WeakSet()


class DeadlockError(VPSBGError, RuntimeError):
    """A blocking call was made from the background loop's own thread, where it would wait forever.

    This happens when code running on the client's loop (for example a callback handed to the
    async API) calls a method of the blocking ``Client``. Use the ``AsyncClient`` there instead.
    """


class LoopClosedError(VPSBGError, RuntimeError):
    """The blocking client was used after ``close()`` (or after its ``with`` block ended)."""


class _LoopState:
    """The loop, its thread and the resource built on it, valid in one process only."""

    __slots__ = ("loop", "pid", "resource", "thread", "thread_id")

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        self.loop = loop
        self.thread = thread
        self.thread_id: int | None = None
        self.pid = os.getpid()
        self.resource: Any = None


class _Box:
    """What the finalizer needs, apart from the LoopThread so that it does not keep it alive."""

    __slots__ = ("aclose", "closed", "state")

    def __init__(self, aclose: Callable[[Any], Awaitable[None]] | None) -> None:
        self.state: _LoopState | None = None
        self.aclose = aclose
        self.closed = False


class LoopThread(Generic[R]):
    """A lazily started event loop on a daemon thread that runs coroutines for blocking callers.

    Args:
        name: name of the background thread (shown in thread dumps).
        factory: optional zero-argument callable building the resource that belongs to the loop
            (the ``AsyncClient``). It is called *on* the loop, so what it creates is bound to it.
        aclose: coroutine function closing the resource; required with ``factory``.

    The loop is stopped and its thread joined by :meth:`close`, or at garbage collection or
    interpreter exit when ``close()`` was never called.
    """

    @overload
    def __init__(self: LoopThread[None], *, name: str = ...) -> None: ...

    @overload
    def __init__(
        self,
        *,
        name: str = ...,
        factory: Callable[[], R],
        aclose: Callable[[R], Awaitable[None]],
    ) -> None: ...

    def __init__(
        self,
        *,
        name: str = "vpsbg-support-loop",
        factory: Callable[[], R] | None = None,
        aclose: Callable[[R], Awaitable[None]] | None = None,
    ) -> None:
        self._name = name
        self._factory = factory
        self._lock = threading.Lock()
        self._box = _Box(aclose)
        # The finalizer holds the box, never self: an unclosed LoopThread can still be collected.
        self._finalizer = weakref.finalize(self, _shutdown, self._box)
        _INSTANCES.add(self)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._box.closed

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The background loop of this process, started if needed.

        Raises:
            LoopClosedError: after :meth:`close`.
        """
        return self._current().loop

    def resource(self) -> R:
        """Return the resource built by ``factory`` for this process's loop, building it if needed.

        Returns:
            The resource (``None`` for a LoopThread made without a factory).

        Raises:
            LoopClosedError: after :meth:`close`.
            Exception: whatever ``factory`` raised; the loop is then not left running.
        """
        return cast(R, self._current().resource)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the background loop and block until it finishes.

        Args:
            coro: the coroutine to run; it is consumed even when the call is refused.

        Returns:
            The coroutine's result.

        Raises:
            DeadlockError: when called from the loop's own thread.
            LoopClosedError: after :meth:`close`.
            KeyboardInterrupt: when interrupted while waiting; the coroutine is cancelled first.
            BaseException: whatever the coroutine raised, unchanged.
        """
        try:
            state = self._current()
        except BaseException:
            coro.close()
            raise
        if threading.get_ident() == state.thread_id:
            coro.close()
            raise DeadlockError(
                "A blocking vpsbg_support call was made from the client's own event loop thread, "
                "where it would wait forever; use the AsyncClient in async code instead."
            )
        try:
            return asyncio.run_coroutine_threadsafe(coro, state.loop).result()
        except KeyboardInterrupt:
            # Cancel the task itself, not just this thread's wait, and give its cleanup (closing a
            # response, removing a partial download) a moment, so the loop is left usable. The
            # interrupt may land before the future is returned, so the task is found by its coro;
            # cancelling the future as well would cancel the task twice and cut its cleanup short.
            settle = asyncio.run_coroutine_threadsafe(_cancel_task_of(coro), state.loop)
            try:
                settle.result(timeout=_CANCEL_GRACE)
            except Exception:  # a cleanup that overruns must not hide the interrupt
                settle.cancel()
            raise

    def iterate(self, aiterator: AsyncIterator[T]) -> Iterator[T]:
        """Turn an async iterator into a blocking one that pulls items one at a time on the loop.

        Args:
            aiterator: the async iterator (typically an async generator object).

        Returns:
            A generator; closing it early (``break``, garbage collection) closes the async one.
        """
        try:
            while True:
                try:
                    item = self.run(_anext(aiterator))
                except StopAsyncIteration:
                    return
                yield item
        except GeneratorExit:
            self._close_async_iterator(aiterator)
            raise
        except BaseException:
            # The error in flight (an API error, Ctrl-C) matters more than a failed cleanup.
            with contextlib.suppress(Exception):
                self._close_async_iterator(aiterator)
            raise

    @overload
    def context(self, acm: AbstractAsyncContextManager[T]) -> SyncContextManager[T, T]: ...

    @overload
    def context(
        self, acm: AbstractAsyncContextManager[T], wrap: Callable[[T], U]
    ) -> SyncContextManager[T, U]: ...

    def context(
        self, acm: AbstractAsyncContextManager[T], wrap: Callable[[T], Any] | None = None
    ) -> SyncContextManager[T, Any]:
        """Wrap an async context manager so that ``with`` enters and exits it on the loop.

        Args:
            acm: the async context manager.
            wrap: applied to what ``acm`` yields (to give blocking users a blocking view of it).

        Returns:
            A blocking context manager yielding what ``acm`` yields, passed through ``wrap``.
        """
        return SyncContextManager(self, acm, wrap)

    def close(self) -> None:
        """Close the resource on the loop, stop the loop and join its thread. Idempotent.

        Raises:
            DeadlockError: when called from the loop's own thread.
        """
        state = self._box.state
        if state is not None and threading.get_ident() == state.thread_id:
            raise DeadlockError("close() cannot be called from the client's own event loop thread.")
        self._box.closed = True
        self._finalizer()

    def _current(self) -> _LoopState:
        state = self._box.state
        if state is not None and state.pid == os.getpid():
            return state
        with self._lock:
            if self._box.closed:
                raise LoopClosedError("This client is closed; create a new one.")
            state = self._box.state
            if state is not None and state.pid == os.getpid():
                return state
            if state is not None:
                # A fork that register_at_fork did not see (a raw fork() from C code).
                _ABANDONED_AFTER_FORK.append(state)
            self._box.state = None
            state = self._start()
            self._box.state = state
            return state

    def _start(self) -> _LoopState:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        thread = threading.Thread(target=_serve, args=(loop, ready), name=self._name, daemon=True)
        state = _LoopState(loop, thread)
        thread.start()
        ready.wait()
        state.thread_id = thread.ident
        if self._factory is not None:
            try:
                state.resource = asyncio.run_coroutine_threadsafe(
                    _call(self._factory), loop
                ).result()
            except BaseException:
                _stop_and_join(state)
                raise
        return state

    def _close_async_iterator(self, aiterator: AsyncIterator[Any]) -> None:
        aclose = getattr(aiterator, "aclose", None)
        state = self._box.state
        if (
            aclose is None
            or self._box.closed
            or state is None
            or state.pid != os.getpid()
            or sys.is_finalizing()
        ):
            # The loop's shutdown_asyncgens() (or nothing, after a fork) takes care of it.
            return
        if threading.get_ident() == state.thread_id:
            # Collected on the loop thread itself: blocking here would deadlock, so schedule.
            state.loop.create_task(aclose())
            return
        self.run(aclose())

    def _forget_after_fork(self) -> None:
        # The parent may have held the lock while forking; in the child no thread will release it.
        self._lock = threading.Lock()
        if self._box.state is not None:
            _ABANDONED_AFTER_FORK.append(self._box.state)
            self._box.state = None


class SyncContextManager(Generic[T, U]):
    """A blocking context manager entering and exiting an async one on a :class:`LoopThread`."""

    def __init__(
        self,
        runner: LoopThread[Any],
        acm: AbstractAsyncContextManager[T],
        wrap: Callable[[T], U] | None = None,
    ) -> None:
        self._runner = runner
        self._acm = acm
        self._wrap = wrap

    def __enter__(self) -> U:
        value = self._runner.run(_aenter(self._acm))
        return cast(U, value) if self._wrap is None else self._wrap(value)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return self._runner.run(_aexit(self._acm, exc_type, exc, tb))


async def _call(factory: Callable[[], T]) -> T:
    return factory()


async def _anext(aiterator: AsyncIterator[T]) -> T:
    return await aiterator.__anext__()


async def _aenter(acm: AbstractAsyncContextManager[T]) -> T:
    return await acm.__aenter__()


async def _aexit(
    acm: AbstractAsyncContextManager[Any],
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> bool | None:
    return await acm.__aexit__(exc_type, exc, tb)


async def _cancel_task_of(coro: Coroutine[Any, Any, Any]) -> None:
    # Runs on the loop after the callback that created the task for ``coro`` (callbacks run in
    # FIFO order), so a missing task means the coroutine was never submitted.
    for task in asyncio.all_tasks():
        if task.get_coro() is coro:
            task.cancel()
            await asyncio.wait({task})
            return
    coro.close()


def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    try:
        loop.run_forever()
    finally:
        _drain_and_close(loop)


def _drain_and_close(loop: asyncio.AbstractEventLoop) -> None:
    # What asyncio.run() does on exit: cancel leftovers and let them finish, so nothing is
    # reported as "Task was destroyed but it is pending".
    try:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _stop_and_join(state: _LoopState) -> None:
    state.loop.call_soon_threadsafe(state.loop.stop)
    state.thread.join(_CLOSE_TIMEOUT)


def _shutdown(box: _Box) -> None:
    """Finalizer of a LoopThread: close its resource, stop its loop, join its thread."""
    box.closed = True
    state, box.state = box.state, None
    if state is None or state.pid != os.getpid() or not state.thread.is_alive():
        return
    if threading.get_ident() == state.thread_id:
        # Collected on the loop thread: finish asynchronously, the thread exits by itself.
        state.loop.create_task(_close_and_stop(state, box.aclose))
        return
    if box.aclose is not None and state.resource is not None:
        closing = asyncio.run_coroutine_threadsafe(
            _call_aclose(box.aclose, state.resource), state.loop
        )
        try:
            closing.result(timeout=_CLOSE_TIMEOUT)
        except Exception:  # best effort: the loop must still be stopped
            closing.cancel()
    _stop_and_join(state)


async def _call_aclose(aclose: Callable[[Any], Awaitable[None]], resource: Any) -> None:
    await aclose(resource)


async def _close_and_stop(
    state: _LoopState, aclose: Callable[[Any], Awaitable[None]] | None
) -> None:
    try:
        if aclose is not None and state.resource is not None:
            await aclose(state.resource)
    finally:
        state.loop.stop()


def _after_fork_in_child() -> None:
    for runner in list(_INSTANCES):
        runner._forget_after_fork()


if hasattr(os, "register_at_fork"):  # POSIX only; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
