"""Calls driven on the caller's thread: when they are, when they are handed off instead, and the
corners of a loop that moves between threads (Ctrl-C, close, fork, idle timers, contextvars)."""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import pytest

from tests._forking import run_in_fork
from tests.test_loop_thread import (
    HANG_GUARD,
    Resource,
    ctrl_c_when,
    echo,
    long_call,
    loop_identity,
    loop_thread_of,
    needs_signals,
)
from vpsbg_support import _constants as C
from vpsbg_support import _loop_thread
from vpsbg_support._loop_thread import DeadlockError, LoopClosedError, LoopThread
from vpsbg_support.errors import add_note


@pytest.fixture
def runner() -> Iterator[LoopThread[None]]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture
def no_idle_hand_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop's thread does not take an undriven loop back by itself within the test: what
    the test sees done was handed over on purpose."""
    monkeypatch.setattr(C, "LOOP_IDLE_HANDBACK", 2 * HANG_GUARD)


async def until(event: threading.Event) -> None:
    """Wait on the loop for a threading.Event set by another thread."""
    assert await asyncio.to_thread(event.wait, HANG_GUARD)


def _forbid_hand_offs(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_hand_off(*args: object) -> None:
        raise AssertionError("a call was handed off to the loop's thread")

    monkeypatch.setattr(_loop_thread, "_submit", no_hand_off)


def test_a_burst_from_a_worker_thread_is_driven_by_that_thread(
    runner: LoopThread[None], monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_id, _ = runner.run(loop_identity())
    _forbid_hand_offs(monkeypatch)

    def burst() -> set[tuple[int, int]]:
        return {runner.run(loop_identity()) for _ in range(100)}

    with ThreadPoolExecutor(1) as pool:
        seen = pool.submit(burst).result(HANG_GUARD)
        worker = pool.submit(threading.get_ident).result(HANG_GUARD)

    assert seen == {(loop_id, worker)}


def test_another_threads_call_during_a_drive_runs_concurrently_on_the_driven_loop(
    runner: LoopThread[None], no_idle_hand_back: None
) -> None:
    runner.run(echo(0))
    gate: asyncio.Event | None = None
    started = threading.Event()

    async def first() -> int:
        nonlocal gate
        gate = asyncio.Event()
        started.set()
        await asyncio.wait_for(gate.wait(), HANG_GUARD)  # opened only by the other call
        return threading.get_ident()

    async def second() -> int:
        assert gate is not None
        gate.set()
        return threading.get_ident()

    with ThreadPoolExecutor(2) as pool:
        driving = pool.submit(runner.run, first())
        assert started.wait(HANG_GUARD)
        other = pool.submit(runner.run, second())
        assert other.result(HANG_GUARD) == driving.result(HANG_GUARD)  # same loop, same thread


def test_work_left_behind_by_a_driver_is_handed_to_the_loops_thread_at_once(
    runner: LoopThread[None], no_idle_hand_back: None
) -> None:
    loops_own_thread = loop_thread_of(runner)
    runner.run(echo(0))
    gate: asyncio.Event | None = None
    started, second_waiting = threading.Event(), threading.Event()

    async def first() -> None:
        nonlocal gate
        gate = asyncio.Event()
        started.set()
        await until(second_waiting)

    async def second() -> int:
        assert gate is not None
        second_waiting.set()
        await asyncio.wait_for(gate.wait(), HANG_GUARD)  # outlives the driver's call
        return threading.get_ident()

    async def open_gate() -> int:
        assert gate is not None
        gate.set()
        return threading.get_ident()

    with ThreadPoolExecutor(2) as pool:
        driving = pool.submit(runner.run, first())
        assert started.wait(HANG_GUARD)
        other = pool.submit(runner.run, second())
        driving.result(HANG_GUARD)
        # The driver is gone, the second call still waits: the loop's thread runs the loop
        # now, so this call (from a thread that could drive) is handed off to it as well.
        assert runner.run(open_gate()) == loops_own_thread.ident
        assert other.result(HANG_GUARD) == loops_own_thread.ident
    assert runner.run(loop_identity())[1] == threading.get_ident()  # driven again once idle


def test_a_notebook_cell_and_a_driving_thread_share_the_loop(runner: LoopThread[None]) -> None:
    started, release = threading.Event(), threading.Event()

    async def slow() -> int:
        started.set()
        await until(release)
        return id(asyncio.get_running_loop())

    async def notebook_cell() -> int:
        loop_id, _ = runner.run(loop_identity())  # handed off, while the worker drives
        release.set()
        return loop_id

    with ThreadPoolExecutor(1) as pool:
        driving = pool.submit(runner.run, slow())
        assert started.wait(HANG_GUARD)
        assert asyncio.run(notebook_cell()) == driving.result(HANG_GUARD)


def test_a_blocking_call_from_a_driven_coroutine_raises_deadlock_error(
    runner: LoopThread[None],
) -> None:
    async def coroutine_calling_blocking_api() -> int:
        return runner.run(echo(1))

    outcome: list[BaseException] = []

    def drive_it() -> None:  # on a daemon thread: a regression hangs it, not the test run
        try:
            runner.run(coroutine_calling_blocking_api())
        except BaseException as exc:
            outcome.append(exc)

    driver = threading.Thread(target=drive_it, daemon=True)
    driver.start()
    driver.join(HANG_GUARD)

    assert len(outcome) == 1 and isinstance(outcome[0], DeadlockError)
    assert "own event loop thread" in str(outcome[0])
    assert runner.run(echo(2)) == 2


REQUEST = contextvars.ContextVar("REQUEST", default="unset")


@pytest.mark.parametrize("pinned", [False, True], ids=["driven", "handed-off"])
def test_the_call_sees_a_copy_of_the_callers_context(
    runner: LoopThread[None], monkeypatch: pytest.MonkeyPatch, pinned: bool
) -> None:
    monkeypatch.setattr(_loop_thread, "may_drive", lambda: False if pinned else None)

    async def read_and_change() -> tuple[str, bool]:
        seen = REQUEST.get()
        REQUEST.set("changed inside")
        return seen, threading.get_ident() == caller

    caller = threading.get_ident()
    token = REQUEST.set("from the caller")
    try:
        assert runner.run(read_and_change()) == ("from the caller", not pinned)
        assert REQUEST.get() == "from the caller"  # the coroutine's change does not leak back
    finally:
        REQUEST.reset(token)


def test_a_cancelled_call_keeps_its_error_types(runner: LoopThread[None]) -> None:
    async def gives_up() -> None:
        raise asyncio.CancelledError

    from concurrent.futures import CancelledError

    with pytest.raises(CancelledError):
        runner.run(gives_up())
    assert runner.run(echo(3)) == 3


def test_a_driven_task_cancelled_before_its_first_step_ends_the_call(
    runner: LoopThread[None],
) -> None:
    def cancelled_at_once(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop)
        task.cancel()
        return task

    runner.run(echo(0))
    runner.loop.set_task_factory(cancelled_at_once)
    outcome: list[BaseException] = []

    def drive_it() -> None:  # on a daemon thread: a regression hangs it, not the test run
        try:
            runner.run(echo(1))
        except BaseException as exc:
            outcome.append(exc)

    driver = threading.Thread(target=drive_it, daemon=True)
    driver.start()
    driver.join(HANG_GUARD)
    runner.loop.set_task_factory(None)

    from concurrent.futures import CancelledError

    assert len(outcome) == 1 and isinstance(outcome[0], CancelledError)
    assert runner.run(echo(2)) == 2


# --- Ctrl-C -----------------------------------------------------------------------------------


@needs_signals
def test_ctrl_c_during_a_driven_call_carries_the_notes_of_its_cancellation(
    runner: LoopThread[None],
) -> None:
    started, cancelled = threading.Event(), threading.Event()
    caller = threading.get_ident()

    async def post() -> None:
        assert threading.get_ident() == caller  # driven by the main thread itself
        started.set()
        try:
            await asyncio.sleep(HANG_GUARD)
        except asyncio.CancelledError as exc:
            cancelled.set()
            add_note(exc, "this request may have reached VPSBG")
            raise

    with ctrl_c_when(started), pytest.raises(KeyboardInterrupt) as info:
        runner.run(post())

    assert cancelled.is_set()
    assert "this request may have reached VPSBG" in getattr(info.value, "__notes__", [])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    assert runner.run(loop_identity())[1] == caller  # usable, and still driven


@needs_signals
@pytest.mark.parametrize("send", ["to the main thread", "to the process", "to another thread"])
def test_ctrl_c_reaches_a_loop_blocked_in_select(runner: LoopThread[None], send: str) -> None:
    # Python runs the handler in the main thread, at its next bytecode; select() must not
    # sleep on until its timeout (here the end of the sleep) first. That happens when the
    # signal does not interrupt select(): it lands on another thread (the kernel may pick any
    # for a process-directed one), or just before the loop blocks (the sender takes the GIL
    # the moment the loop releases it to block). The driver's wake-up fd wakes the loop.
    def press_when(started: threading.Event) -> None:
        if started.wait(HANG_GUARD):
            if send == "to the process":  # as a terminal's Ctrl-C
                os.kill(os.getpid(), signal.SIGINT)
            elif send == "to another thread":  # this one
                signal.pthread_kill(threading.get_ident(), signal.SIGINT)
            else:
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    for _ in range(20):
        started = threading.Event()
        loop_time: list[float] = []

        async def sleeper(
            started: threading.Event = started, seen: list[float] = loop_time
        ) -> None:
            loop = asyncio.get_running_loop()
            begun = loop.time()
            started.set()
            try:
                await asyncio.sleep(HANG_GUARD)
            finally:
                seen.append(loop.time() - begun)

        presser = threading.Thread(target=press_when, args=(started,))
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            presser.start()
            with pytest.raises(KeyboardInterrupt):
                runner.run(sleeper())
        finally:
            presser.join()
            signal.signal(signal.SIGINT, previous)
        assert loop_time[0] < HANG_GUARD / 2  # interrupted, not slept out


@needs_signals
def test_a_second_ctrl_c_stops_waiting_for_the_cleanup(
    runner: LoopThread[None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_loop_thread, "_CANCEL_GRACE", 10 * HANG_GUARD)
    started, ignored, released_by_guard = threading.Event(), threading.Event(), threading.Event()
    finish = asyncio.Event()
    loop = runner.loop

    def press_again() -> None:
        if started.wait(HANG_GUARD) and ignored.wait(HANG_GUARD):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    def hang_guard() -> None:  # ends the call if only the (long) grace could
        released_by_guard.set()
        loop.call_soon_threadsafe(finish.set)

    second, guard = threading.Thread(target=press_again), threading.Timer(HANG_GUARD, hang_guard)
    guard.start()
    with ctrl_c_when(started), pytest.raises(KeyboardInterrupt):
        second.start()
        try:
            runner.run(long_call(started, ignored, finish.wait, swallow=True))
        finally:
            second.join()
            guard.cancel()

    assert ignored.is_set()
    assert not released_by_guard.is_set()
    assert runner.run(echo(5)) == 5  # handed off: the stubborn task still runs on the loop
    runner.loop.call_soon_threadsafe(finish.set)


@needs_signals
def test_a_custom_sigint_handler_keeps_the_call_on_the_loops_thread(
    runner: LoopThread[None],
) -> None:
    pressed = threading.Event()
    started, done = threading.Event(), threading.Event()

    def handler(signum: int, frame: object) -> None:
        pressed.set()

    async def waits_for_the_press() -> int:
        started.set()
        await until(pressed)
        done.set()
        return threading.get_ident()

    def press() -> None:
        if started.wait(HANG_GUARD):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, handler)
    presser = threading.Thread(target=press)
    try:
        presser.start()
        ran_on = runner.run(waits_for_the_press())  # the handler runs, nothing is interrupted
    finally:
        presser.join()
        signal.signal(signal.SIGINT, previous)

    assert done.is_set()
    assert ran_on != threading.get_ident()


# --- close, fork, idle --------------------------------------------------------------------------


def test_close_while_a_driven_task_ignores_cancellation_still_stops_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_loop_thread, "_CANCEL_GRACE", 0.05)
    lt = LoopThread(factory=Resource, aclose=Resource.aclose)
    resource = lt.resource()
    thread = loop_thread_of(lt)
    started, ignored = threading.Event(), threading.Event()
    never = asyncio.Event()  # the task waits on after swallowing the first cancellation

    outcome: list[BaseException] = []

    def drive_it() -> None:  # on a daemon thread: a regression hangs it, not the test run
        try:
            lt.run(long_call(started, ignored, never.wait, swallow=True))
        except BaseException as exc:
            outcome.append(exc)

    driver = threading.Thread(target=drive_it, daemon=True)
    driver.start()
    assert started.wait(HANG_GUARD)
    lt.close()
    driver.join(HANG_GUARD)

    assert ignored.is_set()
    assert len(outcome) == 1 and isinstance(outcome[0], LoopClosedError)  # drained at last
    assert not thread.is_alive()
    assert resource.closed_on is resource.loop and resource.loop.is_closed()


def test_close_of_an_undriven_loop_runs_the_shutdown_at_once(no_idle_hand_back: None) -> None:
    lt = LoopThread(factory=Resource, aclose=Resource.aclose)
    resource = lt.resource()
    thread = loop_thread_of(lt)
    lt.run(echo(0))  # driven: the loop now sits undriven, its thread waiting

    lt.close()

    assert not thread.is_alive()
    assert resource.closed_on is resource.loop  # closed by the shutdown, not cut short


def test_close_from_another_thread_cancels_a_driven_call() -> None:
    lt = LoopThread(factory=Resource, aclose=Resource.aclose)
    resource = lt.resource()
    thread = loop_thread_of(lt)
    started = threading.Event()

    async def in_flight() -> None:
        started.set()
        await asyncio.sleep(HANG_GUARD)

    def close_once_started() -> None:
        if started.wait(HANG_GUARD):
            lt.close()

    closer = threading.Thread(target=close_once_started)
    closer.start()
    with pytest.raises(LoopClosedError, match="closed while this call was running") as info:
        lt.run(in_flight())  # driven by this thread until close() cancels it
    closer.join(HANG_GUARD)

    assert info.value.request_sent
    assert not closer.is_alive() and not thread.is_alive()
    assert resource.closed_on is resource.loop and resource.loop.is_closed()
    with pytest.raises(LoopClosedError):
        lt.run(echo(1))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_while_another_thread_drives_the_loop() -> None:
    lt = LoopThread(factory=Resource, aclose=Resource.aclose)
    started, release = threading.Event(), threading.Event()

    async def slow() -> str:
        started.set()
        await until(release)
        return "parent's call"

    try:
        parent_loop, _ = lt.run(loop_identity())
        with ThreadPoolExecutor(1) as pool:
            driving = pool.submit(lt.run, slow())
            assert started.wait(HANG_GUARD)

            def child() -> str:
                loop_id, thread_id = lt.run(loop_identity())
                report = f"{loop_id != parent_loop} {thread_id == threading.get_ident()}"
                lt.close()
                return report

            code, report = run_in_fork(child, timeout=HANG_GUARD)
            release.set()
            assert driving.result(HANG_GUARD) == "parent's call"
        assert (code, report) == (0, "True True")
        assert lt.run(loop_identity())[0] == parent_loop
    finally:
        lt.close()


def test_an_idle_loop_goes_back_to_its_thread_to_run_timers(runner: LoopThread[None]) -> None:
    fired_on: list[int] = []
    fired = threading.Event()

    async def schedule_a_timer() -> None:
        def fire() -> None:
            fired_on.append(threading.get_ident())
            fired.set()

        asyncio.get_running_loop().call_later(0.01, fire)

    runner.run(schedule_a_timer())  # driven: the loop stops with this call

    assert fired.wait(HANG_GUARD)  # no further call drives it: its own thread must
    assert fired_on == [loop_thread_of(runner).ident]


class _KeepAliveServer:
    """A loopback HTTP/1.1 server answering one request per connection and keeping it open;
    it records when the client closes the connection."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/"
        self.closed_by_client = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._sock.accept()
        with conn:
            conn.settimeout(HANG_GUARD)
            conn.recv(65_536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            try:
                if conn.recv(65_536) == b"":
                    self.closed_by_client.set()
            except OSError:
                pass

    def close(self) -> None:
        self._sock.close()
        self._thread.join(HANG_GUARD)


def test_keep_alive_connections_are_closed_between_bursts() -> None:
    def session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(keepalive_timeout=0.1))

    server = _KeepAliveServer()
    lt: LoopThread[aiohttp.ClientSession] = LoopThread(
        factory=session, aclose=aiohttp.ClientSession.close
    )

    async def get() -> bytes:
        async with lt.resource().get(server.url) as response:
            return await response.read()

    try:
        assert lt.run(get()) == b"ok"  # driven; the connection goes back to the pool
        # No further call: the pool's keep-alive timer must still run, on the loop's thread.
        assert server.closed_by_client.wait(HANG_GUARD)
    finally:
        lt.close()
        server.close()


def test_with_options_copies_drive_the_same_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    from vpsbg_support._sync_base import _DerivedRunner

    lt: LoopThread[Any] = LoopThread(factory=Resource, aclose=Resource.aclose)
    derived = _DerivedRunner(lt, lambda resource: resource, (lt.resource(), lt.resource()))
    try:
        loop_id, _ = lt.run(loop_identity())
        _forbid_hand_offs(monkeypatch)
        assert derived.run(loop_identity()) == (loop_id, threading.get_ident())
        assert lt.run(loop_identity()) == (loop_id, threading.get_ident())
    finally:
        derived.close()
    assert lt.closed
