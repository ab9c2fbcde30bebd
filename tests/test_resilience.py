"""Retries, rate limits, timeouts and proxies, proven against the fake server's fault injection.

Every test reads the fake's request record: a retry that "worked" but sent a purchase twice, or a
limiter that "worked" but let 40 requests collect a 429, fails here.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from vpsbg_support import AsyncClient, errors
from vpsbg_support._ratelimit import RateLimiter
from vpsbg_support._retry import RetryPolicy
from vpsbg_support.testing import FakeVPSBG

#: Fast backoff so retries cost milliseconds, and enough retries for 30% faults.
FAST = RetryPolicy(max_retries=10, initial_delay=0.001, max_delay=0.005)
TICKET = 1003  # a ticket of FakeVPSBG(seed=3, tickets=5)
ATTACHMENT = 9007  # an attachment of TICKET (about 1 MB)


@pytest.fixture
async def fake() -> AsyncIterator[FakeVPSBG]:
    async with FakeVPSBG(seed=3, tickets=5, fault_seed=7) as server:
        yield server


def client_for(fake: FakeVPSBG, policy: RetryPolicy = FAST, **options: Any) -> AsyncClient:
    return AsyncClient(fake.token, base_url=fake.url, retry_policy=policy, **options)


def orders(fake: FakeVPSBG) -> int:
    return len(fake.state.orders)


# --- GET routes under 30% faults -----------------------------------------------------------

GetCall = Callable[[AsyncClient, Path], Awaitable[object]]

GET_CALLS: dict[str, GetCall] = {
    "tickets.list": lambda c, _: c.tickets.list(per_page=2),
    "tickets.departments": lambda c, _: c.tickets.departments(),
    "tickets.services": lambda c, _: c.tickets.services(),
    "tickets.get": lambda c, _: c.tickets.get(TICKET),
    "tickets.download_attachment": lambda c, d: c.tickets.download_attachment(
        TICKET, ATTACHMENT, d / "out.bin", overwrite=True
    ),
    "plans.list": lambda c, _: c.plans.list(),
}


@pytest.mark.parametrize("route", sorted(GET_CALLS))
async def test_every_get_route_succeeds_under_30_percent_faults(
    fake: FakeVPSBG, route: str, tmp_path: Path
) -> None:
    # Five kinds at 7% each: about 30% of requests fail one way or another.
    injected = [
        fake.faults.add(route, "status", probability=0.07, status=500),
        fake.faults.add(route, "status", probability=0.07, status=502),
        fake.faults.add(route, "status", probability=0.07, status=503),
        fake.faults.add(route, "status", probability=0.07, status=429, retry_after="0"),
        fake.faults.add(route, "reset", probability=0.07),
    ]
    calls = 25
    async with client_for(fake) as client:
        results = [await GET_CALLS[route](client, tmp_path) for _ in range(calls)]
    fired = sum(f.fired for f in injected)
    assert fired >= 5, "the seeded faults must actually fire for this test to mean anything"
    # Every fault cost exactly one extra request, and every call ended in a success.
    assert fake.count(route) == calls + fired
    assert fake.count(route, status=200) == calls
    if route == "tickets.download_attachment":
        data = (tmp_path / "out.bin").read_bytes()
        assert hashlib.sha256(data).hexdigest() == fake.state.attachment_sha256(ATTACHMENT)
    else:
        assert all(r == results[0] for r in results)


# --- POST routes: never twice ---------------------------------------------------------------

PostCall = Callable[[AsyncClient], Awaitable[object]]
SideEffect = Callable[[FakeVPSBG], int]

POST_CASES: dict[str, tuple[PostCall, SideEffect]] = {
    "tickets.create": (
        lambda c: c.tickets.create(department_id=2, subject="Disk full", message="Please help"),
        lambda f: len(f.state.tickets),
    ),
    "tickets.reply": (
        lambda c: c.tickets.reply(TICKET, message="Any news on this?"),
        lambda f: len(f.state.ticket(TICKET).messages),
    ),
    "plans.purchase": (lambda c: c.plans.purchase(plan="professional", billing_cycle=12), orders),
    "plans.renew": (lambda c: c.plans.renew(billing_cycle=3), orders),
    "plans.cancel": (
        lambda c: c.plans.cancel(reason="Too expensive"),
        lambda f: len(f.state.cancellations),
    ),
}


@pytest.mark.parametrize("route", sorted(POST_CASES))
async def test_post_reset_after_the_server_acted_is_not_resent(fake: FakeVPSBG, route: str) -> None:
    call, effect = POST_CASES[route]
    before = effect(fake)
    fake.faults.add(route, "reset", when="after_handler", times=1)
    async with client_for(fake) as client:
        with pytest.raises(errors.APIConnectionError) as info:
            await call(client)
    assert fake.count(route) == 1
    assert effect(fake) == before + 1  # the server did act, once
    err = info.value
    assert err.request_sent is True and err.method == "POST"
    assert "check" in str(err) and "before trying again" in str(err)


@pytest.mark.parametrize("route", sorted(POST_CASES))
async def test_post_429_is_retried_and_acts_once(fake: FakeVPSBG, route: str) -> None:
    call, effect = POST_CASES[route]
    before = effect(fake)
    fake.faults.add(route, "status", status=429, retry_after="0", times=1)
    async with client_for(fake) as client:
        await call(client)
    assert fake.count(route) == 2 and fake.count(route, status=429) == 1
    assert effect(fake) == before + 1


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
@pytest.mark.parametrize("route", ["tickets.create", "plans.purchase"])
async def test_post_5xx_is_not_retried(fake: FakeVPSBG, route: str, status: int) -> None:
    call, _ = POST_CASES[route]
    fake.faults.add(route, "status", status=status, times=1)
    async with client_for(fake) as client:
        with pytest.raises(errors.APIStatusError) as info:
            await call(client)
    assert fake.count(route) == 1
    assert info.value.status == status and info.value.request_sent is True
    if status >= 500:
        assert "before trying again" in str(info.value)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _counting_session() -> tuple[aiohttp.ClientSession, list[str]]:
    attempts: list[str] = []

    async def on_start(_: Any, __: Any, params: aiohttp.TraceRequestStartParams) -> None:
        attempts.append(params.method)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    return aiohttp.ClientSession(trace_configs=[trace]), attempts


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_connection_refused_is_retried_even_for_post(method: str) -> None:
    session, attempts = await _counting_session()
    policy = RetryPolicy(max_retries=3, initial_delay=0.001, max_delay=0.001)
    base = f"http://127.0.0.1:{_closed_port()}/v1"
    async with session, AsyncClient("t", base_url=base, retry_policy=policy, session=session) as c:
        with pytest.raises(errors.APIConnectionError) as info:
            if method == "POST":
                await c.plans.renew(billing_cycle=1)
            else:
                await c.plans.list()
    assert attempts == [method] * 4
    assert info.value.request_sent is False
    assert "before trying again" not in str(info.value)


async def test_put_resolve_is_retried_after_a_reset_once_the_server_acted(
    fake: FakeVPSBG,
) -> None:
    fault = fake.faults.add("tickets.resolve", "reset", when="after_handler", times=1)
    async with client_for(fake) as client:
        ticket = await client.tickets.resolve(TICKET)
    assert fault.fired == 1 and fake.count("tickets.resolve") == 2
    assert ticket is not None and ticket.status == "resolved"


async def test_delete_undo_cancel_is_retried_after_a_reset(fake: FakeVPSBG) -> None:
    fault = fake.faults.add("plans.undo_cancel", "reset", when="before_handler", times=1)
    async with client_for(fake) as client:
        await client.plans.cancel()
        answer = await client.plans.undo_cancel()
    assert fault.fired == 1 and fake.count("plans.undo_cancel") == 2
    assert answer is None and fake.state.plan_status == "active"  # 204, as the routes table says


async def test_undo_cancel_whose_answer_was_lost_is_not_reported_as_failed(
    fake: FakeVPSBG, caplog: pytest.LogCaptureFixture
) -> None:
    # The server withdrew the cancellation, then the connection dropped; the retry is told
    # "no pending cancellation" (422). That is the state the caller asked for.
    # Two resets: aiohttp re-sends a DELETE once by itself after the first (unseen by the
    # policy); the second failure is the client's to retry.
    fault = fake.faults.add("plans.undo_cancel", "reset", when="after_handler", times=2)
    async with client_for(fake) as client:
        await client.plans.cancel()
        with caplog.at_level(logging.WARNING, logger="vpsbg_support"):
            assert await client.plans.undo_cancel() is None
        assert fault.fired == 2 and fake.count("plans.undo_cancel") == 3
        assert fake.state.plan_status == "active"
        assert "no cancellation is pending" in caplog.text
        # Without a lost answer, nothing pending is still an error the caller hears about.
        with pytest.raises(errors.UnprocessableEntityError) as info:
            await client.plans.undo_cancel()
        assert not info.value.replayed


async def test_a_retry_after_a_rate_limit_is_not_a_replay(fake: FakeVPSBG) -> None:
    # A 429 says the server did not act: the 422 that follows is the real answer.
    fake.faults.add("plans.undo_cancel", "status", status=429, times=1)
    async with client_for(fake) as client:
        with pytest.raises(errors.UnprocessableEntityError) as info:
            await client.plans.undo_cancel()  # nothing is pending
    assert not info.value.replayed and fake.count("plans.undo_cancel") == 2


# --- uploads on retry -----------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_retried_upload_sends_every_file_whole_again(fake: FakeVPSBG, tmp_path: Path) -> None:
    on_disk = tmp_path / "dmesg.log"
    on_disk.write_bytes(bytes(range(256)) * 1200)  # 300 KiB: several chunks
    handle_bytes = b"x" * 5 + b"y" * 150_000
    handle = io.BytesIO(handle_bytes)
    handle.seek(5)  # the file is sent from where the caller left it, on every attempt
    raw = b"\x00\xff" * 1000
    fake.faults.add("tickets.create", "status", status=429, retry_after="0", times=1)
    async with client_for(fake) as client:
        ticket = await client.tickets.create(
            department_id=2,
            subject="Kernel panic",
            message="Logs attached.",
            attachments=[on_disk, ("trace.bin", handle), ("raw.bin", raw)],
        )
    assert fake.count("tickets.create") == 2
    stored = fake.state.ticket(ticket.id).messages[0].attachments
    assert [(a.name, a.size, a.upload_sha256) for a in stored] == [
        ("dmesg.log", 307_200, _sha(on_disk.read_bytes())),
        ("trace.bin", 150_000, _sha(handle_bytes[5:])),
        ("raw.bin", 2000, _sha(raw)),
    ]
    assert not handle.closed  # the caller's file is theirs to close


async def _chunks() -> AsyncIterator[bytes]:
    for _ in range(4):
        yield b"z" * 1000


async def test_async_iterable_upload_is_not_replayed_after_429(fake: FakeVPSBG) -> None:
    fake.faults.add("tickets.reply", "status", status=429, retry_after="0", times=1)
    async with client_for(fake) as client:
        with pytest.raises(errors.RateLimitError):
            await client.tickets.reply(
                TICKET, message="Streamed log", attachments=[("s.log", _chunks())]
            )
    assert fake.count("tickets.reply") == 1


async def test_async_iterable_upload_reset_reports_request_sent(fake: FakeVPSBG) -> None:
    before = len(fake.state.ticket(TICKET).messages)
    fake.faults.add("tickets.reply", "reset", times=1)
    async with client_for(fake) as client:
        with pytest.raises(errors.APIConnectionError) as info:
            await client.tickets.reply(
                TICKET, message="Streamed log", attachments=[("s.log", _chunks())]
            )
    assert info.value.request_sent is True
    assert fake.count("tickets.reply") == 1
    assert len(fake.state.ticket(TICKET).messages) == before + 1


# --- Retry-After cap, raise mode, sleep budget, per-call retries ---------------------------


async def test_retry_after_over_the_cap_raises_at_once_and_holds_later_calls(
    fake: FakeVPSBG,
) -> None:
    fake.faults.add("plans.list", "status", status=429, retry_after=120, times=1)
    async with client_for(fake) as client:
        with pytest.raises(errors.RateLimitError) as info:
            await asyncio.wait_for(client.plans.list(), 5)
        assert info.value.retry_after == 120.0 and info.value.request_sent is True
        assert fake.count("plans.list") == 1
        # The whole client now knows it must wait 2 minutes: it refuses instead of sleeping,
        # and sends nothing.
        with pytest.raises(errors.RateLimitError) as later:
            await asyncio.wait_for(client.tickets.get(TICKET), 5)
    assert later.value.request_sent is False
    assert later.value.retry_after is not None and 100 < later.value.retry_after <= 120
    assert "not sent" in str(later.value)
    assert fake.count("tickets.get") == 0


async def test_retry_after_as_an_http_date(fake: FakeVPSBG) -> None:
    now = datetime.now(timezone.utc)
    past = format_datetime(now - timedelta(hours=1), usegmt=True)
    future = format_datetime(now + timedelta(hours=1), usegmt=True)
    fake.faults.add("plans.renew", "status", status=429, retry_after=past, times=1)
    fake.faults.add("plans.list", "status", status=429, retry_after=future, times=1)
    async with client_for(fake) as client:
        await client.plans.renew(billing_cycle=1)  # a date already passed: retry at once
        with pytest.raises(errors.RateLimitError) as info:
            await asyncio.wait_for(client.plans.list(), 5)
    assert fake.count("plans.renew") == 2 and fake.count("plans.list") == 1
    assert info.value.retry_after is not None and 3500 < info.value.retry_after <= 3600


async def test_raise_on_rate_limit_mode_raises_instead_of_sleeping(fake: FakeVPSBG) -> None:
    fake.faults.add("tickets.get", "status", status=429, retry_after="0", times=1)
    fake.faults.add("plans.list", "status", status=503, times=1)
    policy = RetryPolicy(max_retries=5, initial_delay=0.001, raise_on_rate_limit=True)
    async with client_for(fake, policy) as client:
        with pytest.raises(errors.RateLimitError):
            await client.tickets.get(TICKET)
        await client.plans.list()  # other transient failures are still retried
    assert fake.count("tickets.get") == 1 and fake.count("plans.list") == 2


async def test_raise_on_rate_limit_constructor_option(fake: FakeVPSBG) -> None:
    fake.faults.add("tickets.get", "status", status=429, retry_after="0", times=1)
    async with AsyncClient(fake.token, base_url=fake.url, raise_on_rate_limit=True) as client:
        with pytest.raises(errors.RateLimitError):
            await client.tickets.get(TICKET)
    assert fake.count("tickets.get") == 1


async def test_sleep_budget_stops_retrying_when_spent(fake: FakeVPSBG) -> None:
    fake.faults.add("tickets.get", "status", status=503)
    policy = RetryPolicy(max_retries=50, initial_delay=0.02, max_delay=0.02, sleep_budget=0.05)
    async with client_for(fake, policy) as client:
        with pytest.raises(errors.InternalServerError):
            await client.tickets.get(TICKET)
    assert 2 <= fake.count("tickets.get") < 51


async def test_sleep_budget_refuses_a_longer_retry_after(fake: FakeVPSBG) -> None:
    fake.faults.add("tickets.get", "status", status=429, retry_after="1", times=1)
    async with AsyncClient(fake.token, base_url=fake.url, sleep_budget=0.5) as client:
        with pytest.raises(errors.RateLimitError) as info:
            await client.tickets.get(TICKET)
    assert info.value.retry_after == 1.0 and fake.count("tickets.get") == 1


async def test_max_retries_per_client_and_per_call(fake: FakeVPSBG) -> None:
    fake.faults.add("tickets.get", "status", status=503, times=100)
    async with client_for(fake) as client:
        with pytest.raises(errors.InternalServerError):
            await client.with_options(max_retries=0).tickets.get(TICKET)
        assert fake.count("tickets.get") == 1
        with pytest.raises(errors.InternalServerError):
            await client.with_options(max_retries=2).tickets.get(TICKET)
        assert fake.count("tickets.get") == 4
        with pytest.raises(errors.InternalServerError):
            await client.tickets.get(TICKET)
        assert fake.count("tickets.get") == 4 + 11
        assert client.max_retries == 10


def test_retry_policy_and_its_parts_are_exclusive() -> None:
    with pytest.raises(ValueError, match="either retry_policy"):
        AsyncClient("t", max_retries=5, retry_policy=FAST)
    assert AsyncClient("t", retry_policy=FAST).retry_policy is FAST


# --- the client-wide limiter ----------------------------------------------------------------


async def test_concurrent_bulk_job_does_not_cause_a_429_storm() -> None:
    async with FakeVPSBG(seed=3, tickets=5, rate_limit=30, rate_limit_window=1.0) as fake:
        async with client_for(fake) as client:
            results = await asyncio.gather(*(client.tickets.get(TICKET) for _ in range(50)))
        assert len(results) == 50
        assert fake.count("tickets.get", status=200) == 50
        # Without the shared budget 20 of the 50 collect a 429 in the first second alone.
        assert fake.count("tickets.get", status=429) <= 2


async def test_limiter_wakes_waiting_tasks_when_an_answer_arrives() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    await limiter.acquire()  # the probe
    second = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    assert not second.done()  # nothing known yet: it waits for the probe's answer
    limiter.release(200, {"X-RateLimit-Remaining": "1"})
    assert await asyncio.wait_for(second, 1) == 0.0
    third = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    assert not third.done()  # budget spent and one request in flight
    limiter.release(429, {"Retry-After": "0", "X-RateLimit-Remaining": "0"})
    assert await asyncio.wait_for(third, 1) == 0.0
    assert limiter.budget.in_flight == 1


async def test_limiter_lets_the_caller_refuse_a_retry_after_wait() -> None:
    limiter = RateLimiter(clock=lambda: 100.0)
    await limiter.acquire()
    limiter.release(429, {"Retry-After": "30"})
    waits: list[float] = []

    def refuse(delay: float) -> None:
        waits.append(delay)
        raise RuntimeError("too long")

    with pytest.raises(RuntimeError):
        await limiter.acquire(refuse)
    assert waits == [30.0] and limiter.budget.in_flight == 0


# --- timeouts -------------------------------------------------------------------------------


def test_default_timeouts_and_per_call_override() -> None:
    client = AsyncClient("t")
    assert client.timeout.total == 60 and client.timeout.connect == 10
    fast = client.with_options(timeout=0.5)
    assert fast.timeout.total == 0.5 and fast.timeout.connect == 0.5
    assert client.timeout.total == 60  # the original is untouched
    with pytest.raises(ValueError):
        client.with_options(timeout=0)


async def test_get_timeout_is_retried_then_raised(fake: FakeVPSBG) -> None:
    fault = fake.faults.add("tickets.get", "latency", seconds=0.3)
    policy = RetryPolicy(max_retries=2, initial_delay=0.001)
    async with client_for(fake, policy) as client:
        with pytest.raises(errors.APITimeoutError) as info:
            await client.with_options(timeout=0.05).tickets.get(TICKET)
    assert fault.fired == 3
    assert info.value.request_sent is True
    assert "before trying again" not in str(info.value)  # a GET is safe to repeat


async def test_post_timeout_is_not_retried(fake: FakeVPSBG) -> None:
    fault = fake.faults.add("plans.renew", "latency", seconds=0.3)
    async with client_for(fake) as client:
        with pytest.raises(errors.APITimeoutError) as info:
            await client.with_options(timeout=0.05).plans.renew(billing_cycle=1)
    assert fault.fired == 1
    assert info.value.request_sent is True and "before trying again" in str(info.value)


# --- logging --------------------------------------------------------------------------------


async def test_debug_log_has_method_path_status_attempt_and_elapsed(
    fake: FakeVPSBG, caplog: pytest.LogCaptureFixture
) -> None:
    fake.faults.add("tickets.get", "status", status=503, times=1)
    caplog.set_level(logging.DEBUG, logger="vpsbg_support")
    async with client_for(fake) as client:
        await client.tickets.get(TICKET)
    lines = [r.getMessage() for r in caplog.records if r.name == "vpsbg_support"]
    path = f"/v1/support/tickets/{TICKET}"
    took = r"\d+\.\d{3}s"
    assert any(
        re.fullmatch(rf"GET {path} -> 503 \(attempt 1, {took}, request id -\)", x) for x in lines
    )
    assert any(re.fullmatch(rf"GET {path}: retrying in {took} \(HTTP 503\)", x) for x in lines)
    assert any(
        re.fullmatch(rf"GET {path} -> 200 \(attempt 2, {took}, request id -\)", x) for x in lines
    )


# --- proxies and user sessions --------------------------------------------------------------


@pytest.mark.parametrize("trust_env", [True, False])
async def test_trust_env_routes_through_the_environment_proxy(
    fake: FakeVPSBG, monkeypatch: pytest.MonkeyPatch, trust_env: bool
) -> None:
    # The fake answers absolute-form requests, so it can stand in for an HTTP proxy.
    proxy = fake.url.rsplit("/v1", 1)[0]
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("http_proxy", proxy)
    base = "http://api.vpsbg.invalid/v1"
    policy = RetryPolicy(max_retries=0)
    async with AsyncClient(
        fake.token, base_url=base, trust_env=trust_env, retry_policy=policy
    ) as c:
        if trust_env:
            assert [p.key for p in await c.plans.list()] == ["basic", "professional", "enterprise"]
        else:
            with pytest.raises(errors.APIConnectionError) as info:
                await c.plans.list()
            assert info.value.request_sent is False
    assert fake.count("plans.list") == (1 if trust_env else 0)


async def test_a_user_session_is_used_and_left_open(fake: FakeVPSBG) -> None:
    session, attempts = await _counting_session()
    async with session:
        async with AsyncClient(fake.token, base_url=fake.url, session=session) as client:
            await client.plans.list()
        assert attempts == ["GET"] and not session.closed
