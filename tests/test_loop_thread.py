"""The loop behind the blocking Client: threads, nested loops, Ctrl-C, fork, shutdown."""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import CancelledError, ThreadPoolExecutor
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import pytest

from tests._forking import run_in_fork
from vpsbg_support import _loop_drive, _loop_thread
from vpsbg_support._loop_thread import DeadlockError, LoopClosedError, LoopThread
from vpsbg_support.errors import MAY_HAVE_REACHED_VPSBG, add_note

# A hang guard, not a performance assertion: a broken loop thread blocks forever.
HANG_GUARD = 20.0


async def loop_identity() -> tuple[int, int]:
    """Where the coroutine ran: the loop's id and the thread's id."""
    return id(asyncio.get_running_loop()), threading.get_ident()


async def echo(value: int) -> int:
    await asyncio.sleep(0)
    return value


class Resource:
    """Stands in for the AsyncClient: built on the loop, closed on the loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.closed_on: asyncio.AbstractEventLoop | None = None

    async def aclose(self) -> None:
        self.closed_on = asyncio.get_running_loop()


@pytest.fixture
def runner() -> Iterator[LoopThread[None]]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture(params=["driven", "handed-off"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with calls driven by the caller, then with every call handed off."""
    if request.param == "handed-off":
        monkeypatch.setattr(_loop_drive, "CALLER_DRIVES", False)
    return str(request.param)


@pytest.fixture
def handed_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every call takes the hand-off path (the tests of its own machinery)."""
    monkeypatch.setattr(_loop_drive, "CALLER_DRIVES", False)


def loop_thread_of(lt: LoopThread[Any]) -> threading.Thread:
    """The loop's own thread: found by a call from inside another event loop, which is always
    handed off to it (a plain call runs on the caller's thread)."""

    async def from_a_notebook() -> int:
        return lt.run(loop_identity())[1]

    ident = asyncio.run(from_a_notebook())
    return next(t for t in threading.enumerate() if t.ident == ident)


def test_sequential_calls_from_a_plain_thread_run_on_the_callers_thread(
    runner: LoopThread[None], monkeypatch: pytest.MonkeyPatch
) -> None:
    loops_own_thread = loop_thread_of(runner)
    loop_id, _ = runner.run(loop_identity())  # may take the loop back from its thread once

    def no_hand_off(*args: object) -> None:
        raise AssertionError("a call was handed off to the loop's thread")

    monkeypatch.setattr(_loop_thread, "_submit", no_hand_off)
    seen = {runner.run(loop_identity()) for _ in range(50)}

    assert seen == {(loop_id, threading.get_ident())}  # one loop, driven by this thread
    assert runner.run(echo(7)) == 7
    assert loops_own_thread.ident != threading.get_ident()


def test_with_hand_offs_pinned_a_plain_call_runs_on_the_loops_thread(
    runner: LoopThread[None], handed_off: None
) -> None:
    _, thread_id = runner.run(loop_identity())

    assert runner.run(echo(7)) == 7
    assert thread_id != threading.get_ident()


def test_loop_starts_lazily() -> None:
    lt = LoopThread(name="vpsbg-lazy-test")
    try:
        assert "vpsbg-lazy-test" not in {t.name for t in threading.enumerate()}
        lt.run(echo(1))
        assert "vpsbg-lazy-test" in {t.name for t in threading.enumerate()}
    finally:
        lt.close()


def test_sixteen_threads_share_one_loop(runner: LoopThread[None]) -> None:
    def work(worker: int) -> list[tuple[int, int]]:
        out = []
        for i in range(50):
            assert runner.run(echo(worker * 1000 + i)) == worker * 1000 + i
            out.append(runner.run(loop_identity()))
        return out

    with ThreadPoolExecutor(16) as pool:
        results = [pair for chunk in pool.map(work, range(16)) for pair in chunk]

    assert len(results) == 800
    assert len({loop_id for loop_id, _ in results}) == 1  # one loop for every caller


def test_call_from_inside_a_running_event_loop(runner: LoopThread[None]) -> None:
    plain_loop, _ = runner.run(loop_identity())  # the loop is left to this thread's next call

    async def notebook_cell() -> tuple[int, int, int, int]:
        outer = id(asyncio.get_running_loop())
        inner, thread = runner.run(loop_identity())
        return outer, inner, thread, runner.run(echo(3))

    outer, inner, thread, value = asyncio.run(notebook_cell())

    assert value == 3
    assert inner != outer
    assert inner == plain_loop  # the client's one loop, run by its own thread for the cell
    assert thread != threading.get_ident()
    assert runner.run(loop_identity()) == (plain_loop, threading.get_ident())


def test_exceptions_propagate_unchanged(runner: LoopThread[None]) -> None:
    class CustomError(Exception):
        def __init__(self, code: int) -> None:
            super().__init__(f"code {code}")
            self.code = code

    original = CustomError(423)

    async def fail() -> None:
        raise original

    with pytest.raises(CustomError) as info:
        runner.run(fail())

    assert info.value is original
    assert info.value.code == 423
    assert runner.run(echo(1)) == 1  # the loop survives a failed call


@contextmanager
def ctrl_c_when(started: threading.Event) -> Iterator[None]:
    """Deliver SIGINT to the main thread (as Ctrl-C does) once ``started`` is set."""
    assert threading.current_thread() is threading.main_thread()

    def press_ctrl_c() -> None:
        if started.wait(HANG_GUARD):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    presser = threading.Thread(target=press_ctrl_c)
    try:
        presser.start()
        yield
    finally:
        presser.join()
        signal.signal(signal.SIGINT, previous)


needs_signals = pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX signals")


async def long_call(
    started: threading.Event,
    cancelled: threading.Event,
    after_cancel: Callable[[], Awaitable[object]] | None = None,
    *,
    swallow: bool = False,
) -> str:
    """Sleep until cancelled; then record it, run ``after_cancel``, re-raise unless ``swallow``."""
    started.set()
    try:
        await asyncio.sleep(HANG_GUARD)
    except asyncio.CancelledError:
        cancelled.set()
        if after_cancel is not None:
            await after_cancel()
        if not swallow:
            raise
    return "finished anyway"


@needs_signals
def test_ctrl_c_cancels_the_inner_task_and_leaves_the_loop_usable(
    runner: LoopThread[None], path: str
) -> None:
    started, cancelled, cleaned_up = threading.Event(), threading.Event(), threading.Event()

    async def cleanup() -> None:
        await asyncio.sleep(0.05)  # takes a moment, like closing a response
        cleaned_up.set()

    with ctrl_c_when(started), pytest.raises(KeyboardInterrupt):
        runner.run(long_call(started, cancelled, cleanup))

    assert cancelled.is_set()
    assert cleaned_up.is_set()  # run() waited for the cancelled task before re-raising
    assert runner.run(echo(5)) == 5


@needs_signals
def test_ctrl_c_carries_the_notes_of_the_cancellation_on_both_paths(
    runner: LoopThread[None], path: str
) -> None:
    """The pipeline notes "may have reached VPSBG" on a POST's cancellation; the caller's
    KeyboardInterrupt must carry it, also on 3.10, which raises a fresh CancelledError from the
    coroutine's own to whoever reads the task's outcome."""
    started, cancelled = threading.Event(), threading.Event()

    async def post() -> None:
        started.set()
        try:
            await asyncio.sleep(HANG_GUARD)
        except asyncio.CancelledError as exc:
            cancelled.set()
            add_note(exc, MAY_HAVE_REACHED_VPSBG)
            raise

    with ctrl_c_when(started), pytest.raises(KeyboardInterrupt) as info:
        runner.run(post())

    assert cancelled.is_set()
    assert getattr(info.value, "__notes__", []) == [MAY_HAVE_REACHED_VPSBG]


@needs_signals
def test_ctrl_c_with_a_task_ignoring_cancellation_waits_a_bounded_time(
    runner: LoopThread[None], monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    monkeypatch.setattr(_loop_thread, "_CANCEL_GRACE", 0.05)
    started, ignored = threading.Event(), threading.Event()
    finish = asyncio.Event()  # the task keeps running after being cancelled, until this is set

    def hang_guard() -> None:  # releases the task if run() waits for it without bound
        released_by_guard.set()
        loop.call_soon_threadsafe(finish.set)

    loop, released_by_guard = runner.loop, threading.Event()
    guard = threading.Timer(HANG_GUARD, hang_guard)
    guard.start()
    try:
        with ctrl_c_when(started), pytest.raises(KeyboardInterrupt):
            runner.run(long_call(started, ignored, finish.wait, swallow=True))
    finally:
        guard.cancel()

    assert not released_by_guard.is_set()
    assert ignored.is_set()
    assert runner.run(echo(5)) == 5  # usable while the stubborn task is still running
    runner.loop.call_soon_threadsafe(finish.set)


def test_interrupt_between_submit_and_wait_still_cancels_the_task(
    runner: LoopThread[None], monkeypatch: pytest.MonkeyPatch, handed_off: None
) -> None:
    runner.run(echo(0))
    started, cancelled = threading.Event(), threading.Event()
    real_submit = _loop_thread._submit
    calls = 0

    def submit_then_interrupt(
        coro: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop
    ) -> _loop_thread._Waiter[Any]:
        nonlocal calls
        calls += 1
        waiter = real_submit(coro, loop)
        if calls == 1:  # Ctrl-C lands after the task is queued, before run() has its waiter
            assert started.wait(HANG_GUARD)
            raise KeyboardInterrupt
        return waiter

    monkeypatch.setattr(_loop_thread, "_submit", submit_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        runner.run(long_call(started, cancelled))

    assert cancelled.is_set()
    assert runner.run(echo(6)) == 6


def test_a_coroutine_cancelling_itself_raises_cancelled_error(runner: LoopThread[None]) -> None:
    async def gives_up() -> None:
        raise asyncio.CancelledError

    with pytest.raises(CancelledError):
        runner.run(gives_up())
    assert runner.run(echo(3)) == 3  # not taken for a close(): the client stays usable


def test_a_task_that_cannot_be_created_fails_the_call_instead_of_hanging(
    runner: LoopThread[None],
) -> None:
    def refuse(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> Any:
        raise RuntimeError("no tasks today")

    runner.run(echo(0))
    runner.loop.set_task_factory(refuse)  # type: ignore[arg-type]
    try:
        with pytest.raises(RuntimeError, match="no tasks today"):
            runner.run(echo(1))
    finally:
        runner.loop.set_task_factory(None)
    assert runner.run(echo(2)) == 2


def test_call_from_the_loop_thread_raises_instead_of_deadlocking(
    runner: LoopThread[None],
) -> None:
    async def callback_calling_blocking_api() -> int:
        return runner.run(echo(1))

    runner.run(echo(0))
    future = asyncio.run_coroutine_threadsafe(callback_calling_blocking_api(), runner.loop)

    with pytest.raises(DeadlockError, match="own event loop thread"):
        future.result(timeout=HANG_GUARD)
    assert issubclass(DeadlockError, RuntimeError)


def test_close_closes_the_resource_on_its_loop_and_joins_the_thread() -> None:
    lt = LoopThread(factory=Resource, aclose=Resource.aclose)
    resource = lt.resource()
    thread = loop_thread_of(lt)

    lt.close()
    lt.close()  # idempotent

    assert not thread.is_alive()
    assert resource.closed_on is resource.loop
    assert resource.loop.is_closed()
    assert lt.closed


def test_call_after_close_raises_a_clear_error(runner: LoopThread[None]) -> None:
    runner.close()
    coro = echo(1)

    with pytest.raises(LoopClosedError, match="closed"):
        runner.run(coro)
    assert (
        inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
    )  # consumed, so no "was never awaited" warning


def test_resource_is_built_on_the_loop() -> None:
    lt = LoopThread(factory=Resource, aclose=Resource.aclose)
    try:
        assert lt.resource().loop is lt.loop
        assert lt.resource() is lt.resource()
    finally:
        lt.close()


def test_failing_factory_raises_and_leaves_no_thread_running() -> None:
    def broken() -> Resource:
        raise ValueError("no token")

    lt = LoopThread(name="vpsbg-broken-factory", factory=broken, aclose=Resource.aclose)

    with pytest.raises(ValueError, match="no token"):
        lt.resource()
    assert "vpsbg-broken-factory" not in {t.name for t in threading.enumerate()}
    lt.close()


def test_garbage_collected_runner_stops_its_thread() -> None:
    lt = LoopThread(factory=Resource, aclose=Resource.aclose)
    resource = lt.resource()
    thread = loop_thread_of(lt)

    del lt
    gc.collect()

    assert not thread.is_alive()
    assert resource.closed_on is resource.loop


def test_iterate_pulls_items_from_an_async_generator(runner: LoopThread[None]) -> None:
    async def numbers() -> AsyncIterator[int]:
        for i in range(5):
            await asyncio.sleep(0)
            yield i

    assert list(runner.iterate(numbers())) == [0, 1, 2, 3, 4]


def test_iterate_closes_the_async_generator_on_break_and_when_dropped(
    runner: LoopThread[None],
) -> None:
    finalized = threading.Event()

    async def endless() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            await asyncio.sleep(0)  # async cleanup must run on the loop, not be skipped
            finalized.set()

    for item in runner.iterate(endless()):
        if item == 2:
            break

    assert finalized.is_set()
    finalized.clear()

    abandoned = runner.iterate(endless())
    assert next(abandoned) == 0
    del abandoned  # dropped mid-way, as a generator expression or a caught error leaves it
    gc.collect()

    assert finalized.is_set()


def test_iterate_propagates_errors_from_the_async_generator(runner: LoopThread[None]) -> None:
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise LookupError("page 2 failed")

    got = []
    with pytest.raises(LookupError, match="page 2"):
        for item in runner.iterate(broken()):
            got.append(item)
    assert got == [1]


class Tracked:
    """An async context manager that records what happened to it."""

    def __init__(self, suppress: bool = False) -> None:
        self.suppress = suppress
        self.events: list[object] = []

    async def __aenter__(self) -> str:
        self.events.append(("enter", id(asyncio.get_running_loop())))
        return "stream"

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self.events.append(("exit", exc_type))
        return self.suppress


def test_context_enters_and_exits_on_the_loop(runner: LoopThread[None]) -> None:
    acm = Tracked()

    with runner.context(acm) as value:
        assert value == "stream"

    assert acm.events == [("enter", id(runner.loop)), ("exit", None)]


def test_context_passes_exceptions_to_aexit(runner: LoopThread[None]) -> None:
    acm = Tracked()
    with pytest.raises(KeyError), runner.context(acm):
        raise KeyError("x")
    assert acm.events[-1] == ("exit", KeyError)

    suppressing = Tracked(suppress=True)
    with runner.context(suppressing):
        raise KeyError("swallowed by __aexit__")
    assert suppressing.events[-1] == ("exit", KeyError)


def test_ctrl_c_just_after_the_enter_finished_still_exits_the_async_context(
    runner: LoopThread[None], monkeypatch: pytest.MonkeyPatch, handed_off: None
) -> None:
    runner.run(echo(0))
    real_submit = _loop_thread._submit
    interrupted = False

    class LateInterrupt:
        """The enter completes on the loop; Ctrl-C lands before run() returns its value."""

        def __init__(self, inner: _loop_thread._Waiter[Any]) -> None:
            self.inner = inner

        def result(self) -> Any:
            nonlocal interrupted
            value = self.inner.result()
            if not interrupted:
                interrupted = True
                raise KeyboardInterrupt
            return value

    def submit(coro: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop) -> LateInterrupt:
        return LateInterrupt(real_submit(coro, loop))

    acm = Tracked()
    monkeypatch.setattr(_loop_thread, "_submit", submit)
    with pytest.raises(KeyboardInterrupt), runner.context(acm):
        pytest.fail("the with block must not run")

    assert acm.events == [("enter", id(runner.loop)), ("exit", KeyboardInterrupt)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked_child_gets_a_fresh_loop_and_resource() -> None:
    lt = LoopThread(factory=Resource, aclose=Resource.aclose)
    try:
        parent_loop_id, parent_thread = lt.run(loop_identity())
        parent_resource_id = id(lt.resource())

        def child() -> str:
            # Thread idents may repeat across processes; loop ids cannot (the parent's loop
            # object is kept alive in the child).
            child_loop_id, _ = lt.run(loop_identity())
            fresh = id(lt.resource()) != parent_resource_id
            report = f"{child_loop_id != parent_loop_id} {fresh} {lt.run(echo(42))}"
            lt.close()
            return report

        code, report = run_in_fork(child, timeout=HANG_GUARD)

        assert (code, report) == (0, "True True 42")
        assert lt.run(loop_identity()) == (parent_loop_id, parent_thread)  # parent unaffected
    finally:
        lt.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_while_another_thread_holds_the_start_lock() -> None:
    # A fork can copy the lock in its held state (here: a slow lazy start in another thread);
    # no thread of the child would ever release it.
    entered, release = threading.Event(), threading.Event()
    parent = os.getpid()

    def slow_factory() -> Resource:
        if os.getpid() == parent:
            entered.set()
            release.wait(HANG_GUARD)
        return Resource()

    lt = LoopThread(factory=slow_factory, aclose=Resource.aclose)
    starter = threading.Thread(target=lt.resource)
    starter.start()
    try:
        assert entered.wait(HANG_GUARD)
        code, report = run_in_fork(lambda: str(lt.run(echo(7))), timeout=HANG_GUARD)
    finally:
        release.set()
        starter.join()
        lt.close()

    assert (code, report) == (0, "7")


EXIT_SCRIPT = """
import aiohttp
from vpsbg_support._loop_thread import LoopThread

async def pending_forever():
    import asyncio
    asyncio.get_running_loop().create_task(asyncio.sleep(3600))

def factory():
    return aiohttp.ClientSession()

lt = LoopThread(factory=factory, aclose=aiohttp.ClientSession.close)
lt.resource()
lt.run(pending_forever())
print("done")
"""

# A daemon thread is blocked in a call when the interpreter exits.
EXIT_IN_FLIGHT_SCRIPT = """
import asyncio, threading
import aiohttp
from vpsbg_support._loop_thread import LoopThread

lt = LoopThread(factory=aiohttp.ClientSession, aclose=aiohttp.ClientSession.close)
lt.resource()
started = threading.Event()

async def long_call():
    started.set()
    await asyncio.sleep(3600)

threading.Thread(target=lt.run, args=(long_call(),), daemon=True).start()
started.wait()
print("done")
"""


@pytest.mark.parametrize("script", [EXIT_SCRIPT, EXIT_IN_FLIGHT_SCRIPT], ids=["idle", "in-flight"])
def test_unclosed_runner_exits_cleanly(script: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-W", "default", "-X", "dev", "-c", script],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"
    for complaint in ("Task was destroyed", "Unclosed", "Exception ignored", "Traceback"):
        assert complaint not in proc.stderr, proc.stderr


def test_close_cancels_calls_in_flight_and_they_raise_loop_closed_error() -> None:
    lt = LoopThread(factory=Resource, aclose=Resource.aclose)
    resource = lt.resource()
    started = threading.Semaphore(0)

    async def in_flight() -> None:
        started.release()
        await asyncio.sleep(HANG_GUARD)

    with ThreadPoolExecutor(8) as pool:
        calls = [pool.submit(lt.run, in_flight()) for _ in range(8)]
        for _ in calls:
            assert started.acquire(timeout=HANG_GUARD)
        lt.close()
        for call in calls:
            with pytest.raises(LoopClosedError, match="closed while this call was running") as e:
                call.result(timeout=HANG_GUARD)
            # It was running: its request may have reached the server (a purchase may exist).
            assert e.value.request_sent and "check the account's orders" in str(e.value)

    assert resource.closed_on is resource.loop
    with pytest.raises(LoopClosedError) as refused:
        lt.run(echo(0))
    assert not refused.value.request_sent  # refused before it started: nothing was sent


@pytest.mark.parametrize("attempt", range(10))
def test_calls_racing_close_from_many_threads_end_with_loop_closed_error(attempt: int) -> None:
    lt = LoopThread()
    lt.run(echo(0))
    warmed = threading.Barrier(17)

    def hammer() -> str:
        warmed.wait(HANG_GUARD)
        while True:
            try:
                lt.run(echo(1))
            except LoopClosedError:
                return "closed"

    with ThreadPoolExecutor(16) as pool:
        outcomes = [pool.submit(hammer) for _ in range(16)]
        warmed.wait(HANG_GUARD)
        for _ in range(attempt):  # vary where in the callers' cycle close() lands
            threading.Event().wait(0.001)
        lt.close()
        # never "Event loop is closed" nor a CancelledError, never a call left waiting forever
        assert [o.result(timeout=HANG_GUARD) for o in outcomes] == ["closed"] * 16


class SlowToClose(Resource):
    async def aclose(self) -> None:
        await asyncio.sleep(0.2)  # widens the window in which a second close() runs
        await super().aclose()


def test_concurrent_close_calls_all_return_after_the_shutdown() -> None:
    lt = LoopThread(factory=SlowToClose, aclose=SlowToClose.aclose)
    resource = lt.resource()
    thread = loop_thread_of(lt)
    together = threading.Barrier(3)

    def close() -> tuple[bool, bool]:
        together.wait(HANG_GUARD)
        lt.close()
        return thread.is_alive(), resource.closed_on is resource.loop

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: close(), range(3)))

    assert results == [(False, True)] * 3


def test_close_from_a_callback_on_the_loop_schedules_the_shutdown() -> None:
    lt = LoopThread(factory=Resource, aclose=Resource.aclose)
    resource = lt.resource()
    thread = loop_thread_of(lt)

    async def callback_closing_the_client() -> None:
        lt.close()  # returns at once instead of waiting for itself
        await asyncio.sleep(HANG_GUARD)

    with pytest.raises(LoopClosedError):
        lt.run(callback_closing_the_client())
    thread.join(HANG_GUARD)

    assert not thread.is_alive()
    assert resource.closed_on is resource.loop
    assert lt.closed


def test_close_racing_the_lazy_start_leaves_no_thread_running() -> None:
    entered, release = threading.Event(), threading.Event()

    def slow_factory() -> Resource:
        entered.set()
        release.wait(HANG_GUARD)
        return Resource()

    lt = LoopThread(name="vpsbg-start-vs-close", factory=slow_factory, aclose=Resource.aclose)
    starter = threading.Thread(target=lambda: lt.resource())
    starter.start()
    assert entered.wait(HANG_GUARD)
    closer = threading.Thread(target=lt.close)
    closer.start()
    while not lt.closed:  # close() has begun
        closer.join(0.01)
    release.set()
    closer.join(HANG_GUARD)
    starter.join(HANG_GUARD)

    assert not closer.is_alive()
    assert "vpsbg-start-vs-close" not in {t.name for t in threading.enumerate()}
    with pytest.raises(LoopClosedError):
        lt.run(echo(1))
