"""tickets.watch(): typed events, exact resume by cursor, same-second changes, polite polling."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web

from vpsbg_support import (
    AsyncClient,
    Client,
    CustomerReplied,
    InvalidParameterError,
    RetryPolicy,
    StatusChanged,
    SupportReplied,
    Ticket,
    TicketEvent,
    TicketMessage,
    TicketOpened,
)
from vpsbg_support._polling import Backoff
from vpsbg_support._settle import is_settled, served_at
from vpsbg_support.resources._watch import WatchState
from vpsbg_support.testing import FakeVPSBG

FAST = {"interval": 0.05, "max_interval": 0.1}


def describe(event: TicketEvent) -> tuple[object, ...]:
    """An event as a comparable tuple, without its cursor."""
    if isinstance(event, StatusChanged):
        return ("status", event.ticket.id, event.old, event.new)
    if isinstance(event, SupportReplied | CustomerReplied):
        return (event.kind, event.ticket.id, event.message.content)
    return ("opened", event.ticket.id, event.ticket.subject)


class Watcher:
    """Runs ``client.tickets.watch`` in a task, collecting its events."""

    def __init__(self, client: AsyncClient, **options: object) -> None:
        self.events: list[TicketEvent] = []
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._run(client, options))

    async def _run(self, client: AsyncClient, options: dict[str, object]) -> None:
        async for event in client.tickets.watch(**options):  # type: ignore[arg-type]
            self.events.append(event)
            self._arrived.set()

    async def until(self, count: int, timeout: float = 10.0) -> list[TicketEvent]:
        """Wait until ``count`` events arrived in all; return them."""
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            if self._task.done():
                self._task.result()
            self._arrived.clear()
            left = deadline - time.monotonic()
            assert left > 0, f"only {[describe(e) for e in self.events]}"
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)
        return self.events

    async def quiet(self, seconds: float = 2.5) -> list[TicketEvent]:
        """Let it run ``seconds`` more (past the settling of same-second reads), then stop."""
        await asyncio.sleep(seconds)
        await self.stop()
        return self.events

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@pytest.fixture
async def fake() -> AsyncIterator[FakeVPSBG]:
    async with FakeVPSBG(seed=3, tickets=6) as server:
        yield server


@pytest.fixture
async def client(fake: FakeVPSBG) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(fake.token, base_url=fake.url) as c:
        yield c


async def started(client: AsyncClient, fake: FakeVPSBG, **options: object) -> Watcher:
    """A watcher whose first poll (the baseline) is done."""
    before = fake.count("tickets.list")
    watcher = Watcher(client, **{**FAST, **options})
    for _ in range(500):
        if fake.count("tickets.list") > before:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    return watcher


async def test_each_event_kind_and_nothing_for_what_exists(
    client: AsyncClient, fake: FakeVPSBG
) -> None:
    watcher = await started(client, fake)
    old = fake.state.tickets[-1].id
    was = fake.state.ticket(old).status
    opened = fake.state.create_ticket(department_id=2, subject="Disk full", message="Help me!")
    [first] = await watcher.until(1)
    assert isinstance(first, TicketOpened)
    assert (first.ticket.id, first.ticket.subject) == (opened.id, "Disk full")
    assert isinstance(first.cursor, str) and first.cursor

    fake.state.reply(opened.id, "We are on it.", is_customer=False)
    fake.state.reply(old, "Any news on this?")
    fake.state.set_status(old, "on-hold")
    events = await watcher.quiet()
    got = [describe(e) for e in events[1:]]
    # Per ticket, in the order they happened; a reply before the status change it caused.
    assert [e for e in got if e[1] == opened.id] == [
        ("support_replied", opened.id, "We are on it."),
        ("status", opened.id, "opened", "answered"),
    ]
    assert [e for e in got if e[1] == old] == [
        ("customer_replied", old, "Any news on this?"),
        ("status", old, was, "on-hold"),
    ]
    assert len(got) == 4
    [reply] = [e for e in events if isinstance(e, SupportReplied)]
    assert isinstance(reply, SupportReplied)
    assert isinstance(reply.message, TicketMessage) and reply.message.is_customer is False
    assert isinstance(reply.ticket, Ticket) and reply.ticket.messages[-1] == reply.message


async def test_resume_by_cursor_yields_changes_made_while_stopped_exactly_once(
    client: AsyncClient, fake: FakeVPSBG
) -> None:
    watcher = await started(client, fake)
    ticket = fake.state.create_ticket(department_id=1, subject="Invoice", message="Wrong VAT.")
    [opened] = await watcher.until(1)
    await watcher.stop()

    # While nobody watches: a reply, a new ticket, a status change, a web-panel message.
    fake.state.reply(ticket.id, "Fixed, see the new invoice.", is_customer=False)
    newer = fake.state.create_ticket(department_id=2, subject="Reboot", message="Please reboot.")
    fake.state.reply(newer.id, "Rebooted.", is_customer=False)
    fake.state.resolve(ticket.id)
    expected = [
        ("support_replied", ticket.id, "Fixed, see the new invoice."),
        ("status", ticket.id, "opened", "resolved"),
        ("opened", newer.id, "Reboot"),
        ("support_replied", newer.id, "Rebooted."),
    ]

    resumed = Watcher(client, cursor=opened.cursor, **FAST)
    events = await resumed.until(4)
    events = await resumed.quiet()
    assert [describe(e) for e in events] == expected

    # From the cursor of any one of them, exactly the rest, once.
    for index in range(len(expected)):
        again = Watcher(client, cursor=events[index].cursor, **FAST)
        if index + 1 < len(expected):
            await again.until(len(expected) - index - 1)
        rest = await again.quiet(0.5)
        assert [describe(e) for e in rest] == expected[index + 1 :], index


async def test_same_second_changes_are_each_seen_once(client: AsyncClient, fake: FakeVPSBG) -> None:
    assert fake.state.timestamp_precision == "seconds"
    watcher = await started(client, fake)
    ticket = fake.state.tickets[0]
    for attempt in range(3):
        # Start early in a second, so both changes (and the read between them) share it.
        await asyncio.sleep(1 - datetime.now(timezone.utc).microsecond / 1e6 + 0.02)
        seen = len(watcher.events)
        fake.state.reply(ticket.id, f"first {attempt}", is_customer=False)
        first_at = fake.state.ticket(ticket.id).updated_at
        await watcher.until(seen + 1)  # read while the second still runs
        fake.state.reply(ticket.id, f"second {attempt}", is_customer=False)
        if fake.state.ticket(ticket.id).updated_at == first_at:
            break
    else:
        pytest.skip("the machine was too slow to make two changes in one second")
    events = await watcher.quiet()
    replies = [describe(e) for e in events if isinstance(e, SupportReplied)]
    assert replies.count(("support_replied", ticket.id, f"second {attempt}")) == 1
    assert replies.count(("support_replied", ticket.id, f"first {attempt}")) == 1


def test_a_read_within_the_second_of_updated_at_is_not_settled() -> None:
    """The state alone: a ticket read in the second of its updated_at is read again."""
    at = datetime(2026, 1, 1, 12, 0, 5, tzinfo=timezone.utc)
    one = TicketMessage(id=1, content="first", is_customer=True, created_at=at)
    two = TicketMessage(id=2, content="again", is_customer=True, created_at=at)
    ticket = Ticket(id=7, status="opened", subject="s", updated_at=at, messages=(one,))
    state = WatchState()
    assert state.note_listed(ticket, served=at + timedelta(milliseconds=300))  # must read
    state.note_read(ticket, served=at + timedelta(milliseconds=400))
    same_second = Ticket(id=7, status="opened", subject="s", updated_at=at, messages=(one, two))
    assert state.needs_read(same_second)  # unchanged list entry, yet read again
    events = list(state.changes(same_second, served=at + timedelta(seconds=3)))
    assert [describe(e) for e in events] == [("customer_replied", 7, "again")]
    assert not state.needs_read(same_second)  # settled now: the list entry suffices
    assert is_settled(at, at + timedelta(seconds=2)) and not is_settled(
        at, at + timedelta(seconds=1.5)
    )


async def test_tickets_moving_between_pages_are_neither_lost_nor_repeated(
    client: AsyncClient, fake: FakeVPSBG
) -> None:
    watcher = await started(client, fake, per_page=2)
    oldest = fake.state.tickets[-1].id  # on the last page
    # Each page read is slow, and tickets are opened while a pass walks the pages: the
    # newest-first list shifts under it.
    fake.faults.add("tickets.list", "latency", seconds=0.05)
    expected: list[tuple[object, ...]] = []
    for n in range(4):
        new = fake.state.create_ticket(department_id=2, subject=f"New {n}", message="Hello there")
        expected.append(("opened", new.id, f"New {n}"))
        fake.state.reply(oldest, f"Still broken {n}")
        expected.append(("customer_replied", oldest, f"Still broken {n}"))
        await asyncio.sleep(0.07)
    events = await watcher.quiet(3.0)
    got = [describe(e) for e in events if not isinstance(e, StatusChanged)]
    assert sorted(got, key=str) == sorted(expected, key=str)
    assert len(got) == len(set(got))


async def test_one_list_request_per_quiet_poll_and_backoff(
    client: AsyncClient, fake: FakeVPSBG
) -> None:
    watcher = await started(client, fake, interval=0.05, max_interval=0.4)
    fake.clear_requests()
    await asyncio.sleep(1.5)
    await watcher.stop()
    assert fake.count("tickets.get") == 0  # nothing changed: no ticket read in full
    lists = fake.count("tickets.list")
    # 6 tickets fit one page: one list request per poll. At a steady 0.05 s that is ~30
    # polls; growing to 0.4 s it is under a dozen.
    assert 3 <= lists <= 12, lists


def test_backoff_grows_while_quiet_and_returns_to_the_floor() -> None:
    backoff = Backoff(1.0, 4.0)
    quiet = [backoff.after_poll(changed=False) for _ in range(6)]
    assert quiet == [1.0, 1.5, 2.25, 3.375, 4.0, 4.0]
    assert backoff.after_poll(changed=True) == 1.0
    assert backoff.after_failure(retry_after=30.0) == 30.0  # a Retry-After beats the ceiling
    with pytest.raises(InvalidParameterError):
        Backoff.checked(0, None)
    with pytest.raises(InvalidParameterError):
        Backoff.checked(5, 1)


async def test_rate_limits_are_waited_out_and_shared_with_other_calls() -> None:
    fake = FakeVPSBG(seed=1, tickets=3, rate_limit=4, rate_limit_window=1.0)
    # The watch sees each 429 (raise_on_rate_limit); the client's other calls, through a view
    # sharing its connection pool and rate limiter, wait theirs out as usual.
    async with fake, AsyncClient(fake.token, base_url=fake.url, raise_on_rate_limit=True) as c:
        patient = c.with_options(retry_policy=RetryPolicy(max_retries=5))
        watcher = Watcher(c, interval=0.01, max_interval=0.02)
        await asyncio.sleep(0.3)
        for _ in range(3):
            await patient.tickets.get(fake.state.tickets[0].id)
        await asyncio.sleep(2.0)
        await watcher.stop()
        refused = fake.count("tickets.list", status=429)
        answered = fake.count("tickets.list", status=200)
    # At 0.01 s a poll, ~230 list requests in 2.3 s if Retry-After were ignored; the limit
    # allows 4 a second, shared with the three reads. Each 429 is waited out: they stay few.
    assert answered <= 12, answered
    assert refused <= 4, refused


async def test_bad_cursor_is_refused_before_any_request(
    client: AsyncClient, fake: FakeVPSBG
) -> None:
    for cursor in ("not-a-cursor", "", "é", "eJyrVipTslIqU6oFAB1kBFk"):
        with pytest.raises(InvalidParameterError, match="cursor"):
            async for _ in client.tickets.watch(cursor=cursor):
                pass
    assert fake.count("tickets.list") == 0


def test_cursor_stays_compact_for_a_big_account() -> None:
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    statuses = ("resolved", "answered", "opened")
    state = WatchState()
    for n in range(300):
        listed = Ticket(
            id=1000 + n * 3,
            status=statuses[n % 3 if n % 10 == 0 else 0],
            subject="s",
            updated_at=at + timedelta(seconds=n * 3607),
        )
        state.note_listed(listed, served=at + timedelta(days=3650))
    cursor = state.encode()
    assert len(cursor) < 4000, len(cursor)
    assert WatchState.decode(cursor).tickets == state.tickets


def test_blocking_client_watch_is_an_iterator() -> None:
    with (
        FakeVPSBG(seed=2, tickets=2).run_in_thread() as fake,
        Client(fake.token, base_url=fake.url) as client,
    ):
        events = client.tickets.watch(interval=0.05)
        opener = _later(
            0.4,
            lambda: fake.state.create_ticket(
                department_id=3, subject="Quote", message="How much for 10 VPS?"
            ),
        )
        first = next(events)
        events.close()
        opener.join()
    assert isinstance(first, TicketOpened) and first.ticket.subject == "Quote"


def _later(seconds: float, action: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(seconds), action()), daemon=True)
    thread.start()
    return thread


async def test_wait_for_reply_returns_the_support_message(
    client: AsyncClient, fake: FakeVPSBG
) -> None:
    ticket = fake.state.create_ticket(department_id=2, subject="Slow disk", message="IO is slow")

    async def support_answers() -> None:
        await asyncio.sleep(0.2)
        fake.state.reply(ticket.id, "Another customer message")
        await asyncio.sleep(0.1)
        fake.state.reply(ticket.id, "Moved you to a faster node.", is_customer=False)

    answering = asyncio.create_task(support_answers())
    message = await client.tickets.wait_for_reply(ticket.id, timeout=5, interval=0.05)
    await answering
    assert message.content == "Moved you to a faster node." and message.is_customer is False


async def test_wait_for_reply_times_out(client: AsyncClient, fake: FakeVPSBG) -> None:
    from vpsbg_support import WaitTimeoutError

    ticket = fake.state.tickets[0]
    started_at = time.monotonic()
    with pytest.raises(WaitTimeoutError) as info:
        await client.tickets.wait_for_reply(ticket.id, timeout=0.3, interval=0.05)
    assert time.monotonic() - started_at < 1.5
    assert isinstance(info.value, TimeoutError) and info.value.last.id == ticket.id


async def test_a_cursor_for_now_reports_what_happens_before_the_watch_starts(
    client: AsyncClient, fake: FakeVPSBG
) -> None:
    cursor = await client.tickets.watch_cursor()
    ticket = fake.state.create_ticket(department_id=2, subject="Early bird", message="Hello!!")
    watcher = Watcher(client, cursor=cursor, **FAST)
    events = await watcher.until(1)
    events = await watcher.quiet(0.3)
    assert [describe(e) for e in events] == [("opened", ticket.id, "Early bird")]


async def test_a_ticket_changed_just_before_the_start_is_not_reported_but_its_next_reply_is(
    fake: FakeVPSBG,
) -> None:
    # The start's list read is within the second of this ticket's updated_at: the watch reads
    # it in full (its message count) instead of trusting updated_at. A first poll that fails
    # with a 503 the client does not retry is ridden out.
    fake.faults.add("tickets.list", "status", status=503, times=1)
    ticket = fake.state.create_ticket(department_id=2, subject="Just now", message="Hello!!")
    async with AsyncClient(fake.token, base_url=fake.url, max_retries=0) as client:
        watcher = Watcher(client, interval=0.05, max_interval=0.1)
        for _ in range(300):
            if fake.count("tickets.get"):
                break
            await asyncio.sleep(0.01)
        fake.state.reply(ticket.id, "Same second, maybe", is_customer=False)
        events = await watcher.until(1)
        events = await watcher.quiet()
    assert fake.count("tickets.list", status=503) == 1
    assert [describe(e) for e in events if not isinstance(e, StatusChanged)] == [
        ("support_replied", ticket.id, "Same second, maybe")
    ]


def test_served_at_falls_back_to_this_clock_less_a_margin() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    margin = now - timedelta(seconds=5)
    assert served_at(None, now, 0.1) == margin
    assert served_at("not a date", now, 0.1) == margin
    assert served_at("Thu, 01 Jan 2026 12:00:10 GMT", now, 0.5) == now + timedelta(seconds=9.5)
    assert served_at("Thu, 01 Jan 2026 12:00:10 -0000", now, 0) == now + timedelta(seconds=10)
    assert not is_settled(None, now)
    assert not is_settled(now, datetime.min.replace(tzinfo=timezone.utc))


@pytest.mark.parametrize(
    "payload",
    [
        {"v": 2, "s": [], "t": []},
        {"v": 1, "s": [1], "t": []},
        {"v": 1, "s": ["opened"], "t": [[0, None, 0, None, 1]]},
        {"v": 1, "s": ["opened"], "t": [[5, "x", 0, None, 1]]},
        {"v": 1, "s": ["opened"], "t": [[5, None, 0, -1, 1]]},
        {"v": 1, "s": ["opened"], "t": [[5, None, "0", None, 1]]},
        {"v": 1, "s": ["opened"], "t": [[5, None, 3, None, 1]]},
        {"v": 1, "s": ["opened"]},
        [1, 2],
    ],
)
def test_a_forged_cursor_is_refused(payload: object) -> None:
    packed = zlib.compress(json.dumps(payload).encode())
    cursor = base64.urlsafe_b64encode(packed).decode().rstrip("=")
    with pytest.raises(InvalidParameterError, match="cursor"):
        WatchState.decode(cursor)
    with pytest.raises(InvalidParameterError, match="cursor"):
        WatchState.decode(cursor[:-6])  # truncated
    with pytest.raises(InvalidParameterError, match="cursor"):
        WatchState.decode(12)


class _NoClocks(FakeVPSBG):
    """A server that sends no ``Date`` header and no ``updated_at``: nothing to judge by."""

    def make_app(self) -> web.Application:
        app = super().make_app()

        @web.middleware
        async def strip(request: web.Request, handler: Any) -> web.StreamResponse:
            response = await handler(request)
            if isinstance(response, web.Response) and response.body:
                data = json.loads(response.body)  # type: ignore[arg-type]
                for item in data.get("data", [data]) if isinstance(data, dict) else []:
                    item.pop("updated_at", None)
                response.body = json.dumps(data).encode()
            return response

        async def no_date(request: web.Request, response: web.StreamResponse) -> None:
            response.headers.popall("Date", None)

        app.middlewares.append(strip)
        app.on_response_prepare.append(no_date)
        return app


async def test_a_server_without_date_or_updated_at_still_gives_each_event_once() -> None:
    async with (
        _NoClocks(seed=5, tickets=3) as fake,
        AsyncClient(fake.token, base_url=fake.url) as client,
    ):
        watcher = await started(client, fake)
        ticket = fake.state.tickets[0]
        fake.state.reply(ticket.id, "First answer", is_customer=False)
        await watcher.until(1)
        fake.state.reply(ticket.id, "Second answer", is_customer=False)
        events = await watcher.quiet(1.0)
        # Nothing proves a ticket unchanged: each poll reads every ticket in full.
        assert fake.count("tickets.get") >= 3 * (fake.count("tickets.list") - 1)
    replies = [describe(e) for e in events if isinstance(e, SupportReplied)]
    assert replies == [
        ("support_replied", ticket.id, "First answer"),
        ("support_replied", ticket.id, "Second answer"),
    ]
