"""Who runs the blocking client's event loop: its own thread, or the caller that is waiting.

Handing each call to another thread and back costs two thread wake-ups and two GIL hand-overs
(100-120 us per call on a small VM, a third of a loopback request). So the loop is not tied to
its thread. It has one *holder* at a time (:attr:`LoopState.owner`):

- a **caller** that has no event loop of its own (a script, a worker thread) and finds the loop
  free takes it and drives it itself (:func:`drive`: create the task, ``run_forever`` until it
  is done), so a burst of sequential calls from one thread runs with no thread switch at all;
- the loop's **own thread** (:func:`serve`) holds it otherwise: it takes the loop back when
  another thread hands work to it (a *hand-off*: calls from inside a running event loop, calls
  from a second thread while the loop is busy), when the loop has been left undriven for
  ``LOOP_IDLE_HANDBACK`` seconds (so keep-alive timers and connection closes still run between
  bursts), and for shutdown. A caller that finds the loop held by its thread, with no hand-off
  in flight, asks for it back and waits for it (one hand-over per burst).

Ctrl-C: when the main thread drives, a KeyboardInterrupt raised by Python's default SIGINT
handler could land inside a loop callback (half way through aiohttp's bookkeeping). So, as
``asyncio.Runner`` does, the driver installs its own SIGINT handler for the call: the first
Ctrl-C cancels the call's task, which gets ``LOOP_CANCEL_GRACE`` seconds to clean up; a second
one, or the grace running out, stops driving at once and the task finishes on the loop's
thread. KeyboardInterrupt is then raised from the caller's frame, outside the loop, with the
notes of the task's cancellation ("this request may have reached VPSBG"). A main thread whose
SIGINT handler is somebody else's Python function does not drive: its calls are handed off, as
before, so that handler keeps working.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Coroutine
from types import FrameType
from typing import Any, TypeVar

from vpsbg_support import _constants as C
from vpsbg_support.errors import add_note

__all__ = [
    "BACKGROUND",
    "LoopState",
    "cancellation_notes",
    "drive",
    "hand_off_begins",
    "hand_off_ends",
    "may_drive",
    "serve",
    "wake_for_shutdown",
]

T = TypeVar("T")

#: ``LoopState.owner`` when the loop's own thread holds the loop (a caller's is its thread id).
BACKGROUND = -1

#: False pins every call to the hand-off path (tests of that path; a switch if driving misbehaves).
CALLER_DRIVES = True

# The C functions behind signal.getsignal() and signal.signal(): the wrappers convert handlers
# to and from enums (a ValueError per Python handler), ~10 us of a 25 us driven call.
try:
    _csignal: Any = importlib.import_module("_signal")
except ImportError:  # pragma: no cover - not CPython
    _csignal = signal


class LoopState:
    """The loop, its thread and the resource built on it, valid in one process only; and who
    holds the loop now.

    Every field below ``resource`` is guarded by ``cond`` (built on the LoopThread's lock).
    ``accepting`` turns False when shutdown begins or the loop thread ends: from then on
    nothing more is submitted. ``final`` is set when the loop must stop for good: its thread
    then drains it and closes it.
    """

    __slots__ = (
        "accepting",
        "cond",
        "final",
        "handoffs",
        "loop",
        "owner",
        "pid",
        "released_at",
        "resource",
        "signal_wakeup",
        "thread",
        "thread_id",
        "yield_asked",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, lock: threading.RLock) -> None:
        self.loop = loop
        self.thread: threading.Thread | None = None
        self.thread_id: int | None = None
        self.pid = os.getpid()
        self.resource: Any = None
        self.cond = threading.Condition(lock)
        self.accepting = True
        self.final = False
        #: BACKGROUND, the id of the thread driving the loop, or None: nobody runs it
        self.owner: int | None = BACKGROUND
        #: calls handed to the loop by other threads and not finished: the loop must keep running
        self.handoffs = 0
        #: a caller asked the loop's thread to give the loop up
        self.yield_asked = False
        #: time.monotonic() when a caller last let go of the loop
        self.released_at = 0.0
        #: (read end watched by the loop, write end) woken by a signal while the main thread
        #: drives; made at the first such call
        self.signal_wakeup: tuple[socket.socket, socket.socket] | None = None


def may_drive() -> bool | None:
    """Whether this thread may drive the loop, and whether it must guard SIGINT.

    Returns:
        None: yes, no Python signal handler runs in this thread (not the main thread), or
        Ctrl-C cannot raise here (SIGINT ignored or left to the OS); True: yes, with the driver's
        own SIGINT handler in place of Python's default one; False: no, the main thread's SIGINT
        handler is a custom one, which must keep seeing Ctrl-C (the call is handed off).
    """
    if not CALLER_DRIVES:
        return False
    if threading.current_thread() is not threading.main_thread():
        return None
    handler = _csignal.getsignal(signal.SIGINT)
    if handler is signal.default_int_handler:
        # The guard's wake-up socket needs loop.add_reader(), which Windows' loop lacks.
        return sys.platform != "win32"
    return None if handler in (signal.SIG_IGN, signal.SIG_DFL) else False


def hand_off_begins(state: LoopState) -> None:
    """Count one call handed to the loop from another thread; make sure somebody runs the loop.

    Called with ``state.cond`` held, before the call is queued on the loop.
    """
    state.handoffs += 1
    if state.owner is None:
        state.owner = BACKGROUND
        state.cond.notify_all()


def hand_off_ends(state: LoopState) -> None:
    """The caller of a handed-off call has its outcome (or gave up on it)."""
    with state.cond:
        state.handoffs -= 1


def wake_for_shutdown(state: LoopState) -> None:
    """Make the loop's thread take the loop if nobody runs it. Called with ``state.cond`` held."""
    if state.owner is None:
        state.owner = BACKGROUND
    state.cond.notify_all()


def drive(
    state: LoopState, coro: Coroutine[Any, Any, T], guard_sigint: bool, grace: float
) -> asyncio.Task[T] | None:
    """Run ``coro`` on the loop from this thread if the loop can be had; return its ended task.

    Args:
        state: the loop's state; this thread has no running event loop of its own.
        coro: the call; consumed unless None is returned.
        guard_sigint: install the driver's SIGINT handler for the call (see the module's doc).
        grace: seconds a task cancelled by Ctrl-C may take to clean up before KeyboardInterrupt.

    Returns:
        The task, done (its outcome is for the caller to read), or None when the loop is held
        by another caller or busy with handed-off calls: hand ``coro`` off instead.

    Raises:
        KeyboardInterrupt: Ctrl-C while driving, after the task was cancelled (with its notes),
            or while waiting for the loop (the coroutine is then closed).
        BaseException: one escaping the loop (for example SystemExit from the coroutine); a task
            not done by then is left to the loop's thread.
    """
    me = threading.get_ident()
    try:
        try:
            taken = _take(state, me)
        except BaseException:
            coro.close()
            raise
        if not taken:
            return None
        return _drive_taken(state, coro, guard_sigint, grace)
    finally:
        if state.owner == me:  # only this thread can change an owner that is this thread
            _release(state)


def _take(state: LoopState, me: int) -> bool:
    cond = state.cond
    with cond:
        if not state.accepting:
            return False  # the hand-off path refuses it with LoopClosedError
        if state.owner is None:
            state.owner = me
            return True
        if state.owner != BACKGROUND or state.handoffs or state.yield_asked:
            return False
        # The loop's thread holds an idle loop: ask for it (one hand-over for a whole burst).
        state.yield_asked = True
        state.loop.call_soon_threadsafe(_yield_if_idle, state)
        while state.owner == BACKGROUND and state.yield_asked:
            cond.wait()
        if state.owner is None and state.accepting:
            state.owner = me
            return True
        return False


def _release(state: LoopState) -> None:
    with state.cond:
        if state.handoffs or not state.accepting or state.final:
            state.owner = BACKGROUND  # work from other threads, or shutdown: its thread runs it
            state.cond.notify_all()
        else:
            # Nobody is woken: the loop's thread takes an idle loop back by itself (serve()).
            state.owner = None
            state.released_at = time.monotonic()


def _drive_taken(
    state: LoopState, coro: Coroutine[Any, Any, T], guard_sigint: bool, grace: float
) -> asyncio.Task[T]:
    loop = state.loop
    drive = _Drive(loop)
    driven = _driven(coro, drive)
    try:
        # In a copy of the caller's context, as call_soon_threadsafe gives a handed-off call.
        task = loop.create_task(driven)
    except BaseException:
        driven.close()
        coro.close()
        raise
    if loop.get_task_factory() is not None:  # it may cancel the task before its first step
        task.add_done_callback(drive.stop_if_never_started)
    guard = _SigintGuard(loop, task, grace) if guard_sigint else None
    elsewhere: threading.Event | None = None
    try:
        if guard is None:
            _run_until_done(state, task, None)
        else:
            # The wake-up fd: a signal landing just before the loop blocks in select(), or
            # caught by another thread, would otherwise wait for select()'s timeout.
            wakeup_fd = signal.set_wakeup_fd(_signal_wakeup(state), warn_on_full_buffer=False)
            try:
                previous = _csignal.signal(signal.SIGINT, guard.handler)
                try:
                    _run_until_done(state, task, guard)
                finally:
                    guard.finish()
                    _csignal.signal(signal.SIGINT, previous)
            finally:
                signal.set_wakeup_fd(wakeup_fd)
    finally:
        if not task.done():  # this thread still holds the (stopped) loop: hand the task over
            drive.active = False
            elsewhere = _adopt(state, task)
            _release(state)  # now, not after waiting for the task: its thread must run it
        elif task.cancelled():
            coro.close()  # never started when cancelled before its first step
        else:
            task.exception()  # retrieved, also when it escaped run_forever() (SystemExit)
    if guard is not None and guard.interrupted:
        interrupt = KeyboardInterrupt()
        if task.done():
            for note in cancellation_notes(task):
                add_note(interrupt, note)
        raise interrupt
    if elsewhere is not None:  # shutdown began while driving: close() cancels the task there
        elsewhere.wait()
    return task


def _run_until_done(state: LoopState, task: asyncio.Task[Any], guard: _SigintGuard | None) -> None:
    loop = state.loop
    while not task.done():
        loop.run_forever()
        if (guard is not None and guard.gave_up) or not state.accepting:
            return  # the task goes on (its thread runs it); shutdown cancels it if need be


class _Drive:
    """What the driver and its task share: whether this thread still drives the task, and
    whether the coroutine started."""

    __slots__ = ("active", "loop", "started")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.active = True
        self.started = False

    def stop_if_never_started(self, _: object) -> None:
        """Done callback: a task cancelled before its first step (which only a task factory can
        do: our task's first step is queued before any callback could cancel it) never ran
        _driven's stop."""
        if self.active and not self.started:
            self.loop.stop()


async def _driven(coro: Coroutine[Any, Any, T], drive: _Drive) -> T:
    """``coro``, then stop the loop in the same iteration (a done callback costs one more)."""
    drive.started = True
    try:
        return await coro
    finally:
        if drive.active:
            drive.loop.stop()


def _signal_wakeup(state: LoopState) -> int:
    """The fd a signal writes to so that the loop wakes up (this thread holds the loop)."""
    if state.signal_wakeup is None:
        watched, woken = socket.socketpair()
        watched.setblocking(False)
        woken.setblocking(False)
        state.loop.add_reader(watched.fileno(), _drain_socket, watched)
        state.signal_wakeup = (watched, woken)
    return state.signal_wakeup[1].fileno()


def _drain_socket(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # BlockingIOError once empty
        while sock.recv(4096):
            pass


def _adopt(state: LoopState, task: asyncio.Task[Any]) -> threading.Event:
    """Make a task this thread stops driving a hand-off, which the loop's thread runs to its
    end; the event is set when it ends. Called while this thread still holds the loop."""
    ended = threading.Event()

    def ends(_: object) -> None:
        hand_off_ends(state)
        ended.set()

    with state.cond:
        state.handoffs += 1
    task.add_done_callback(ends)
    return ended


class _SigintGuard:
    """The driver's SIGINT handler: it only queues work on the loop, never raises inside it."""

    __slots__ = (
        "_cancelling",
        "_finished",
        "_grace",
        "_loop",
        "_task",
        "_timer",
        "gave_up",
        "interrupted",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any], grace: float
    ) -> None:
        self._loop = loop
        self._grace = grace
        self._task = task
        self._cancelling = False
        self._finished = False
        self._timer: asyncio.TimerHandle | None = None
        self.interrupted = False
        self.gave_up = False

    def handler(self, signum: int, frame: FrameType | None) -> None:
        """Runs between two bytecodes of this thread, maybe inside the loop: just queue."""
        self.interrupted = True
        self._loop.call_soon_threadsafe(self._on_loop)

    def _on_loop(self) -> None:
        if self._finished:  # a late Ctrl-C: the caller raises KeyboardInterrupt already
            return
        if not self._cancelling:
            self._cancelling = True
            self._task.cancel()
            self._timer = self._loop.call_later(self._grace, self._give_up)
        else:  # a second Ctrl-C: stop waiting for the cleanup
            self._give_up()

    def _give_up(self) -> None:
        self.gave_up = True
        self._loop.stop()

    def finish(self) -> None:
        """The call is over for this thread: forget the timer and later interrupts."""
        self._finished = True
        if self._timer is not None:
            self._timer.cancel()


def cancellation_notes(task: asyncio.Task[Any]) -> list[str]:
    """The notes of a done task's cancellation (the pipeline's "may have reached VPSBG" for a
    POST); [] when it ended otherwise (that outcome is dropped: the call was interrupted)."""
    try:
        task.result()
    except asyncio.CancelledError as cancelled:
        return cancelled_notes(cancelled)
    except BaseException:  # the outcome of a call already interrupted: not ours to raise
        pass
    return []


def cancelled_notes(cancelled: BaseException) -> list[str]:
    """The notes on a CancelledError and on the CancelledErrors it was raised from.

    Python 3.11 hands the awaiting side the coroutine's own CancelledError, notes and all;
    3.10 a fresh one whose ``__context__`` is the coroutine's.
    """
    notes: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = cancelled
    while isinstance(current, asyncio.CancelledError) and id(current) not in seen:
        seen.add(id(current))
        notes += [note for note in getattr(current, "__notes__", ()) if note not in notes]
        current = current.__context__
    return notes


def _yield_if_idle(state: LoopState) -> None:
    # On the loop, run by its own thread: a caller asked for the loop.
    with state.cond:
        if state.owner == BACKGROUND and state.yield_asked and not state.handoffs:
            state.loop.stop()  # serve() gives the loop up when run_forever() returns
        else:
            state.yield_asked = False  # refused: a hand-off arrived meanwhile
            state.cond.notify_all()


def serve(state: LoopState, ready: threading.Event) -> None:
    """The loop's own thread: run the loop while it holds it, park while a caller drives."""
    loop = state.loop
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    try:
        loop.run_forever()  # no lock taken first: the starting thread holds it until ready
        while _hold(state):
            loop.run_forever()
    finally:
        if not state.final:  # the loop ended without close() (a BaseException escaped a task)
            with state.cond:
                state.accepting = False
                state.final = True
                state.owner = BACKGROUND
                state.yield_asked = False
                state.cond.notify_all()
        _drain_and_close(state)


def _hold(state: LoopState) -> bool:
    """Between two ``run_forever``: wait until this thread should run the loop (True) or the
    loop is to be closed (False)."""
    if state.final and state.owner == BACKGROUND:  # a failed start sets it, holding the lock
        return False
    cond = state.cond
    with cond:
        while True:
            if state.final and state.owner in (BACKGROUND, None):  # not while a caller drives
                state.owner = BACKGROUND
                return False
            if state.owner == BACKGROUND:
                if not state.yield_asked:
                    return True
                state.yield_asked = False
                if not state.handoffs and state.accepting:
                    state.owner = None  # the caller that asked takes it
                    state.released_at = time.monotonic()
                cond.notify_all()
                continue
            if state.owner is None:
                idle = state.released_at + C.LOOP_IDLE_HANDBACK - time.monotonic()
                if idle <= 0 or not state.accepting:
                    state.owner = BACKGROUND
                    return True
                cond.wait(idle)
            else:  # a caller drives; it wakes this thread only when it leaves work behind
                cond.wait(C.LOOP_IDLE_HANDBACK)


def _drain_and_close(state: LoopState) -> None:
    """What asyncio.run() does on exit: cancel leftovers and let them finish, so nothing is
    reported as "Task was destroyed but it is pending"; then close the loop."""
    loop = state.loop
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
        if state.signal_wakeup is not None:
            loop.remove_reader(state.signal_wakeup[0].fileno())
            for sock in state.signal_wakeup:
                sock.close()
        loop.close()
