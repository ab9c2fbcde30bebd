"""One private event loop per blocking client, with a daemon thread of its own, so blocking code
can drive the async client.

The blocking ``Client`` hands every coroutine to a :class:`LoopThread`. The loop is private to the
``LoopThread`` (the aiohttp session belongs to it): a call works the same from a plain script,
from many threads at once, and from a thread that is itself running an event loop (a Jupyter
cell, code under ``asyncio.run``), where ``asyncio.run`` or ``loop.run_until_complete`` would
refuse to start.

Where a call runs (see ``_loop_drive`` for the protocol): a caller with no event loop of its own
that finds the loop free *drives* it, on its own thread, so sequential calls cost no thread
switch. Otherwise the call is *handed off*: queued with ``call_soon_threadsafe`` for the loop's
thread, the caller blocked on a lock until its task ends. Hand-offs serve calls from a thread
running an event loop, calls from a second thread while the loop is in use (they run
concurrently with it), and calls from a main thread whose SIGINT handler is a custom one.

The loop can own one *resource* (for the client: the ``AsyncClient`` and its aiohttp session). It is
built on the loop when the loop starts, closed on the loop before the loop stops, and rebuilt in a
child process after ``os.fork()``, where the parent's loop thread does not exist.

Shutdown (``close()``, garbage collection, interpreter exit) first stops accepting calls, then
cancels the calls in flight (their callers get ``LoopClosedError``), closes the resource and stops
the loop. Ctrl-C in a waiting caller cancels that call's task and waits a bounded moment for it.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
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
from vpsbg_support._loop_drive import (
    LoopState,
    cancellation_notes,
    drive,
    hand_off_begins,
    hand_off_ends,
    may_drive,
    serve,
    wake_for_shutdown,
)
from vpsbg_support.errors import VPSBGError, add_note

__all__ = ["DeadlockError", "LoopClosedError", "LoopThread", "SyncContextManager"]

_CLOSED = "This client is closed; create a new one."

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
#: True once the interpreter exits (see _at_exit); registered after weakref's own exit hook.
_EXITING = False
_AT_EXIT_REGISTERED = False


class DeadlockError(VPSBGError, RuntimeError):
    """A blocking call was made from the background loop's own thread, where it would wait forever.

    This happens when code running on the client's loop (for example a callback handed to the
    async API) calls a method of the blocking ``Client``. Use the ``AsyncClient`` there instead.
    """


class LoopClosedError(VPSBGError, RuntimeError):
    """The blocking client was used after ``close()`` (or after its ``with`` block ended).

    Also raised by a call that was still running when another thread closed the client: the
    call is cancelled rather than left waiting on a loop that is going away.

    Attributes:
        request_sent: False when the call was refused before it started; True when it was
            cancelled while running, so its request may have reached the server (for a
            purchase, renew or cancel: check the account's orders before trying again).
    """

    def __init__(self, message: str, *, request_sent: bool = False) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class _Box:
    """What the finalizer needs, apart from the LoopThread so that it does not keep it alive.

    ``lock`` guards starting the loop, submitting to it and beginning its shutdown, so that a
    start, a call and a ``close()`` racing each other in different threads cannot leave a loop
    running after close, or a call queued on a stopped loop (which would wait forever).
    """

    __slots__ = ("aclose", "closed", "finished", "lock", "state")

    def __init__(self, aclose: Callable[[Any], Awaitable[None]] | None) -> None:
        self.state: LoopState | None = None
        self.aclose = aclose
        self.closed = False
        # Reentrant: a finalizer run by garbage collection in a thread holding it must not hang.
        self.lock = threading.RLock()
        #: set when shutdown is over, so a second, concurrent close() returns only then
        self.finished = threading.Event()


class LoopThread(Generic[R]):
    """A lazily started event loop with a daemon thread of its own, running coroutines for
    blocking callers: on the caller's thread when it can drive the loop, else on the loop's.

    Args:
        name: name of the loop's thread (shown in thread dumps).
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
        self._box = _Box(aclose)
        # The finalizer holds the box, never self: an unclosed LoopThread can still be collected.
        self._finalizer = weakref.finalize(self, _shutdown, self._box)
        _INSTANCES.add(self)
        global _AT_EXIT_REGISTERED
        if not _AT_EXIT_REGISTERED:
            # After the first weakref.finalize exists, so that (atexit runs last-in first-out)
            # _at_exit runs before weakref's exit hook would run our finalizers.
            _AT_EXIT_REGISTERED = True
            atexit.register(_at_exit)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._box.closed

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """This process's loop, started if needed.

        Work queued on it with ``call_soon_threadsafe`` runs at once while a call is running or
        the loop's thread holds it, and within ``LOOP_IDLE_HANDBACK`` seconds otherwise.

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
        """Run ``coro`` on this client's loop and block until it finishes.

        From a thread with no running event loop, and the loop free, this thread drives the
        loop itself; otherwise the call is handed to the loop's thread (see the module's doc).

        Args:
            coro: the coroutine to run; it is consumed even when the call is refused.

        Returns:
            The coroutine's result.

        Raises:
            DeadlockError: when called from code running on the loop itself.
            LoopClosedError: after :meth:`close`, or when :meth:`close` (from another thread)
                cancelled this call while it ran.
            KeyboardInterrupt: when interrupted while waiting; the coroutine is cancelled first.
            BaseException: whatever the coroutine raised, unchanged.
        """
        try:
            state = self._current()
            running = asyncio._get_running_loop()
            if running is state.loop or threading.get_ident() == state.thread_id:
                raise DeadlockError(
                    "A blocking vpsbg_support call was made from the client's own event loop "
                    "thread (by a coroutine or callback running on that loop), where it would "
                    "wait forever; use the AsyncClient in async code instead."
                )
            guard_sigint = may_drive() if running is None else False
        except BaseException:
            coro.close()
            raise
        if guard_sigint is not False:
            task = drive(state, coro, bool(guard_sigint), _CANCEL_GRACE)
            if task is not None:
                return self._outcome(state, task.result)
        return self._hand_off(state, coro)

    def _hand_off(self, state: LoopState, coro: Coroutine[Any, Any, T]) -> T:
        counted = False
        try:
            try:
                with self._box.lock:
                    if not state.accepting:
                        raise LoopClosedError(_CLOSED)
                    hand_off_begins(state)
                    counted = True
                    waiter = _submit(coro, state.loop)
            except KeyboardInterrupt as interrupt:
                self._settle_interrupted(coro, state, interrupt)
                raise
            except BaseException:
                coro.close()
                raise
            try:
                return self._outcome(state, waiter.result)
            except KeyboardInterrupt as interrupt:
                self._settle_interrupted(coro, state, interrupt)
                raise
        finally:
            if counted:
                hand_off_ends(state)

    def _outcome(self, state: LoopState, result: Callable[[], T]) -> T:
        try:
            return result()
        except asyncio.CancelledError:
            # Cancelled by close() in another thread, rather than by the coroutine itself.
            if not state.accepting:
                if _EXITING and threading.current_thread().daemon:
                    # The interpreter is exiting and closed the client under this daemon
                    # thread's call. The thread is about to be frozen; an exception would only
                    # print a traceback over a clean exit.
                    threading.Event().wait()
                raise LoopClosedError(
                    "The client was closed while this call was running; its request may have"
                    " reached the server (for a purchase, renew or cancel, check the account's"
                    " orders before trying again).",
                    request_sent=True,
                ) from None
            raise concurrent.futures.CancelledError() from None

    def _settle_interrupted(
        self,
        coro: Coroutine[Any, Any, Any],
        state: LoopState | None,
        interrupt: KeyboardInterrupt,
    ) -> None:
        # Cancel the task itself, not just this thread's wait, and give its cleanup (closing a
        # response, removing a partial download) a bounded moment, so the loop is left usable.
        # The interrupt may land before the future is returned, so the task is found by its coro;
        # cancelling the future as well would cancel the task twice and cut its cleanup short.
        with self._box.lock:
            if state is None:  # interrupted before anything was submitted
                coro.close()
                return
            if not state.accepting:  # close() has begun: its shutdown cancels the task
                return
            settle = asyncio.run_coroutine_threadsafe(_cancel_task_of(coro), state.loop)
        try:
            notes = settle.result(timeout=_CANCEL_GRACE)
        except Exception:  # a task ignoring cancellation must not hide the interrupt
            settle.cancel()
            return
        for note in notes:  # e.g. "this request may have reached VPSBG"
            add_note(interrupt, note)

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
        """Cancel calls in flight, close the resource, stop the loop and join its thread.

        Idempotent and thread-safe: a second ``close()`` (from any thread) returns once the first
        one has finished. Calls cancelled by it, and calls made after it, raise LoopClosedError.
        Called from the loop's own thread (a callback), it schedules the same shutdown and
        returns at once, since waiting there would wait for itself.
        """
        state = self._box.state
        on_loop = state is not None and _on_loop(state)
        self._box.closed = True
        self._finalizer()
        if not on_loop:
            self._box.finished.wait(_CANCEL_GRACE + 2 * _CLOSE_TIMEOUT)

    def _current(self) -> LoopState:
        state = self._box.state
        if state is not None and state.pid == os.getpid():
            return state
        with self._box.lock:
            if self._box.closed:
                raise LoopClosedError(_CLOSED)
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

    def _start(self) -> LoopState:
        # Called with the box's lock held. The loop's thread holds the loop from the start.
        state = LoopState(asyncio.new_event_loop(), self._box.lock)
        ready = threading.Event()
        state.thread = threading.Thread(
            target=serve, args=(state, ready), name=self._name, daemon=True
        )
        state.thread.start()
        ready.wait()
        state.thread_id = state.thread.ident
        if self._factory is not None:
            try:
                state.resource = asyncio.run_coroutine_threadsafe(
                    _call(self._factory), state.loop
                ).result()
            except BaseException:
                state.accepting = False  # we hold the lock: _serve must not wait for it
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
        if _on_loop(state):
            # Collected on the loop itself: blocking here would deadlock, so schedule.
            _schedule(state, aclose())
            return
        # close() may win the race since the check above; its shutdown closes the generator.
        with contextlib.suppress(LoopClosedError):
            self.run(aclose())

    def _forget_after_fork(self) -> None:
        # The parent may have held the lock while forking; in the child no thread will release it.
        self._box.lock = threading.RLock()
        if self._box.closed:  # a close() in progress in the parent will not finish here
            self._box.finished.set()
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
        self._entered = False

    def __enter__(self) -> U:
        try:
            value = self._runner.run(self._aenter())
        except KeyboardInterrupt as interrupt:
            # Ctrl-C can land after the enter finished on the loop but before run() returned:
            # the with block never starts, so exit here or the response would stay open.
            if self._entered:
                with contextlib.suppress(Exception):
                    self._runner.run(
                        _aexit(self._acm, type(interrupt), interrupt, interrupt.__traceback__)
                    )
            raise
        return cast(U, value) if self._wrap is None else self._wrap(value)

    async def _aenter(self) -> T:
        value = await self._acm.__aenter__()
        self._entered = True
        return value

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return self._runner.run(_aexit(self._acm, exc_type, exc, tb))


class _Waiter(Generic[T]):
    """One blocking call handed to the loop: the loop runs it as a task whose end releases a
    lock the caller is blocked on.

    Lighter than ``asyncio.run_coroutine_threadsafe``, which chains the task to a
    ``concurrent.futures.Future`` (a condition, a fresh lock per wait, state copied across):
    here one callback starts the task and one lock is released when it ends.
    """

    __slots__ = ("_done", "_error", "_task")

    def __init__(self) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self._task: asyncio.Task[T] | None = None
        self._error: BaseException | None = None

    def start(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> None:
        """On the loop: run ``coro`` as a task (in the caller's context, copied at submit)."""
        try:
            self._task = loop.create_task(coro)
        except BaseException as exc:  # the caller gets the error instead of waiting for ever
            coro.close()
            self._error = exc
            self._done.release()
            if not isinstance(exc, Exception):
                raise
            return
        self._task.add_done_callback(self._finished)

    def _finished(self, _task: asyncio.Task[T]) -> None:
        self._done.release()

    def result(self) -> T:
        """Block until the task ends; its result, or its exception (``asyncio.CancelledError``
        when it was cancelled). Interruptible: Ctrl-C raises KeyboardInterrupt here."""
        self._done.acquire()
        if self._task is None:
            raise cast(BaseException, self._error)
        return self._task.result()


def _submit(coro: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop) -> _Waiter[T]:
    """Queue ``coro`` on ``loop`` (from another thread); wait for it with ``.result()``."""
    waiter: _Waiter[T] = _Waiter()
    loop.call_soon_threadsafe(waiter.start, loop, coro)
    return waiter


async def _call(factory: Callable[[], T]) -> T:
    return factory()


async def _anext(aiterator: AsyncIterator[T]) -> T:
    return await aiterator.__anext__()


async def _aexit(
    acm: AbstractAsyncContextManager[Any],
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> bool | None:
    return await acm.__aexit__(exc_type, exc, tb)


async def _cancel_task_of(coro: Coroutine[Any, Any, Any]) -> list[str]:
    """Cancel the task running ``coro`` and wait for it; the notes its cancellation carries
    (the pipeline's "may have reached VPSBG" for a POST), for the KeyboardInterrupt."""
    # Runs on the loop after the callback that created the task for ``coro`` (callbacks run in
    # FIFO order), so a missing task means the coroutine was never submitted.
    for task in asyncio.all_tasks():
        if task.get_coro() is coro:
            task.cancel()
            await asyncio.wait({task})
            return cancellation_notes(task)
    coro.close()
    return []


def _on_loop(state: LoopState) -> bool:
    """Whether this code runs on the loop (a coroutine or callback), or on the loop's thread."""
    return asyncio._get_running_loop() is state.loop or threading.get_ident() == state.thread_id


def _schedule(state: LoopState, coro: Coroutine[Any, Any, Any]) -> None:
    """Start ``coro`` on the loop without waiting for it, from the loop or the loop's thread."""
    if asyncio._get_running_loop() is state.loop:
        state.loop.create_task(coro)
    else:  # on the loop's thread between two runs (a finalizer): a caller may be driving it
        state.loop.call_soon_threadsafe(state.loop.create_task, coro)


def _stop_and_join(state: LoopState) -> None:
    with state.cond:
        state.final = True
        wake_for_shutdown(state)
    with contextlib.suppress(RuntimeError):  # the loop already closed by itself
        state.loop.call_soon_threadsafe(state.loop.stop)
    if state.thread is not None:
        state.thread.join(_CLOSE_TIMEOUT)


def _shutdown(box: _Box) -> None:
    """Finalizer of a LoopThread: cancel calls in flight, close the resource, stop the loop."""
    box.closed = True
    with box.lock:
        state, box.state = box.state, None
        if state is not None:
            state.accepting = False  # from here on nothing can be queued on this loop
            if state.pid == os.getpid():
                wake_for_shutdown(state)  # a caller driving the loop hands it over when done
    try:
        if state is None or state.pid != os.getpid() or state.thread is None:
            return
        if _on_loop(state):
            # On the loop (close() from a callback, or garbage collection there): finish
            # asynchronously; the loop's thread exits by itself when the loop stops.
            _schedule(state, _close_and_stop(state, box.aclose))
            return
        if not state.thread.is_alive():
            return
        try:
            closing = asyncio.run_coroutine_threadsafe(
                _close_and_stop(state, box.aclose), state.loop
            )
            closing.result(timeout=_CANCEL_GRACE + _CLOSE_TIMEOUT)
        except Exception:  # best effort (e.g. it overran): the loop must still stop
            _stop_and_join(state)
        else:  # it stopped the loop; a second stop() would cut the final drain short
            state.thread.join(_CLOSE_TIMEOUT)
    finally:
        box.finished.set()


async def _close_and_stop(
    state: LoopState, aclose: Callable[[Any], Awaitable[None]] | None
) -> None:
    # Calls in flight are cancelled first (their callers get LoopClosedError) so that none of
    # them is cut off by the session closing under it, then the resource is closed.
    try:
        current = asyncio.current_task()
        others = [task for task in asyncio.all_tasks() if task is not current]
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=_CANCEL_GRACE)
        if aclose is not None and state.resource is not None:
            with contextlib.suppress(Exception):  # best effort: the loop must stop regardless
                await asyncio.wait_for(aclose(state.resource), _CLOSE_TIMEOUT)
    finally:
        state.final = True  # the loop's thread drains and closes the loop once it holds it
        state.loop.stop()


def _at_exit() -> None:
    global _EXITING
    _EXITING = True
    for runner in list(_INSTANCES):
        runner._finalizer()


def _after_fork_in_child() -> None:
    for runner in list(_INSTANCES):
        runner._forget_after_fork()


if hasattr(os, "register_at_fork"):  # POSIX only; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
