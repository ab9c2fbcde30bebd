"""The retry decision and the rate budget at their edges: each test here failed against a mutant of
the code that every other test let pass (``make mutate``). They pin what users rely on: where a
limit is inclusive, which answers hold the other calls, and what a failure teaches the budget."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

import pytest

from vpsbg_support._ratelimit import RateBudget, RateLimiter
from vpsbg_support._retry import (
    FailureKind,
    RetryPolicy,
    backoff_delay,
    decide,
    parse_retry_after,
    refuse_wait,
)

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)


def one() -> float:
    return 1.0


# --- RetryPolicy ------------------------------------------------------------------------------


def test_policy_rejects_a_negative_max_delay() -> None:
    with pytest.raises(ValueError, match="delays"):
        RetryPolicy(max_delay=-0.5)


def test_policy_accepts_zero_and_fractional_delays() -> None:
    # Zero is how tests and batch jobs say "do not wait"; it must not be refused as negative.
    RetryPolicy(max_retries=0, initial_delay=0, max_delay=0, max_retry_after=0)
    RetryPolicy(initial_delay=0.5, max_delay=0.5, max_retry_after=0.5)


# --- decide: the limits are inclusive ---------------------------------------------------------


def status_decision(policy: RetryPolicy, **kw: object) -> bool:
    d = decide(method="GET", attempt=0, policy=policy, kind=FailureKind.STATUS, **kw)  # type: ignore[arg-type]
    return d.retry


def test_a_retry_after_equal_to_max_retry_after_is_slept() -> None:
    policy = RetryPolicy(max_retry_after=30)
    assert status_decision(policy, status=429, retry_after=30.0)
    assert not status_decision(policy, status=429, retry_after=30.001)


def test_a_wait_that_exactly_spends_the_sleep_budget_is_allowed() -> None:
    policy = RetryPolicy(sleep_budget=5.0)
    assert status_decision(policy, status=503, retry_after=2.0, slept=3.0)
    assert not status_decision(policy, status=503, retry_after=2.0, slept=3.001)
    # A call that has not slept yet starts from an empty budget.
    assert status_decision(RetryPolicy(sleep_budget=2.0), status=503, retry_after=2.0)


def test_refuse_wait_limits_are_inclusive_too() -> None:
    assert refuse_wait(RetryPolicy(max_retry_after=30), 30.0, 0.0) == ""
    assert refuse_wait(RetryPolicy(sleep_budget=5.0), 2.0, 3.0) == ""


def test_a_decision_to_give_up_carries_no_wait() -> None:
    d = decide(method="GET", attempt=3, policy=RetryPolicy(max_retries=3), kind=FailureKind.STATUS)
    assert not d.retry and d.delay == 0.0 and d.reason


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "get"])
def test_every_idempotent_method_is_retried_after_an_ambiguous_failure(method: str) -> None:
    d = decide(method=method, attempt=0, policy=RetryPolicy(), kind=FailureKind.AMBIGUOUS)
    assert d.retry


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_other_methods_are_not(method: str) -> None:
    d = decide(method=method, attempt=0, policy=RetryPolicy(), kind=FailureKind.AMBIGUOUS)
    assert not d.retry


def test_a_huge_attempt_number_gives_a_finite_backoff_quickly() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=float("inf"))
    assert backoff_delay(10**9, policy, rand=one) == backoff_delay(40, policy, rand=one)


# --- parse_retry_after: HTTP dates and time zones ---------------------------------------------


def test_an_http_date_with_an_offset_is_not_read_as_utc() -> None:
    # 14:00:30 at UTC+2 is 12:00:30 UTC: 30 seconds from NOW, not two hours.
    assert parse_retry_after("Tue, 24 Nov 2026 14:00:30 +0200", now=NOW) == 30.0
    assert parse_retry_after("Tue, 24 Nov 2026 07:00:30 -0500", now=NOW) == 30.0


def test_an_http_date_without_a_zone_is_read_as_utc() -> None:
    # RFC 5322's "-0000" means "UTC, zone unknown": Python parses it as a naive datetime.
    assert parse_retry_after("Tue, 24 Nov 2026 12:00:30 -0000", now=NOW) == 30.0


def test_retry_after_uses_the_current_time_when_none_is_given() -> None:
    assert parse_retry_after("Tue, 24 Nov 2099 12:00:30 GMT") > 3600 * 24 * 365 * 70  # type: ignore[operator]


# --- RateBudget: what each answer teaches the shared budget ------------------------------------

LEFT = "X-RateLimit-Remaining"


def tracked_budget(left: int) -> RateBudget:
    b = RateBudget()
    assert b.ask(0.0) == 0.0
    b.done(0.0, 200, {LEFT: str(left)})
    return b


def test_a_503_retry_after_holds_every_other_call() -> None:
    b = RateBudget()
    b.ask(100.0)
    b.done(100.0, 503, {"Retry-After": "2"})
    assert b.ask(101.0) == 1.0
    assert b.ask(102.0) == 0.0


def test_a_503_retry_after_date_in_the_future_holds_every_other_call() -> None:
    b = RateBudget()
    b.ask(0.0)
    b.done(0.0, 503, {"Retry-After": "Tue, 24 Nov 2099 12:00:00 GMT"})
    assert b.ask(0.0) > 3600  # type: ignore[operator]


def test_other_statuses_with_retry_after_hold_nobody() -> None:
    b = RateBudget()
    b.ask(0.0)
    b.done(0.0, 500, {"Retry-After": "60"})
    assert b.ask(0.0) == 0.0


def test_a_connection_failure_teaches_the_budget_nothing() -> None:
    b = RateBudget()
    assert b.ask(0.0) == 0.0
    b.done(0.0, None, {})
    # Still unknown whether the server sends rate-limit headers: one request probes alone.
    assert b.tracked is None
    assert b.ask(0.0) == 0.0
    assert b.ask(0.0) is None


def test_a_429_without_headers_stops_others_while_requests_are_in_flight() -> None:
    b = tracked_budget(5)
    assert b.ask(0.0) == 0.0 and b.ask(0.0) == 0.0
    b.done(0.0, 429, {})
    assert b.ask(0.0) is None  # one request still out: wait for its answer
    b.done(0.0, 200, {LEFT: "0"})
    assert b.ask(0.0) == 0.0  # nothing in flight: one probe


def test_a_429_claiming_requests_left_is_still_a_429() -> None:
    b = tracked_budget(5)
    assert b.ask(0.0) == 0.0 and b.ask(0.0) == 0.0
    b.done(0.0, 429, {LEFT: "5"})
    assert b.remaining == 0
    assert b.ask(0.0) is None


def test_a_server_that_sent_rate_limit_headers_stays_throttled_on_an_answer_without_them() -> None:
    b = tracked_budget(1)
    assert b.tracked is True
    assert b.ask(0.0) == 0.0
    b.done(0.0, 502, {})  # a proxy's error page, without the API's headers
    assert b.remaining == 0
    assert b.ask(0.0) == 0.0  # the probe
    assert b.ask(0.0) is None


def test_requests_in_flight_never_make_the_budget_look_bigger() -> None:
    b = tracked_budget(10)
    for _ in range(3):
        assert b.ask(0.0) == 0.0
    b.done(0.0, 200, {LEFT: "0"})  # two still in flight, nothing left
    assert b.remaining == 0
    assert b.ask(0.0) is None


def test_policy_sleep_budget_may_be_zero_or_fractional_but_not_negative() -> None:
    RetryPolicy(sleep_budget=0)
    RetryPolicy(sleep_budget=0.5)
    with pytest.raises(ValueError, match="sleep_budget"):
        RetryPolicy(sleep_budget=-1)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_final_failure_is_never_retried(method: str) -> None:
    policy = RetryPolicy()
    d = decide(method=method, attempt=0, policy=policy, kind=FailureKind.FINAL)
    assert not d.retry and d.reason
    # Whatever status came with it (a 502 whose error body cannot be decoded).
    d = decide(method=method, attempt=0, policy=policy, kind=FailureKind.FINAL, status=502)
    assert not d.retry


def test_a_retry_after_counts_from_when_it_was_told_even_at_clock_zero() -> None:
    b = RateBudget()
    b.ask(0.0)
    b.done(0.0, 503, {"Retry-After": "0.5"})
    assert b.ask(0.25) == 0.25
    assert b.ask(0.5) == 0.0  # the wait is over at its last instant, not after it


def test_a_long_retry_after_holds_other_calls_for_max_shared_wait_at_most() -> None:
    b = RateBudget(max_shared_wait=60.0)
    b.ask(1000.0)
    b.done(1000.0, 429, {"Retry-After": "86400"})
    # Within the window, others are told the whole wait (and refuse it, or sleep it)...
    assert b.ask(1030.0) == 86400 - 30
    assert b.ask(1059.9) == pytest.approx(86400 - 59.9)
    # ...after it, one call asks the server again instead of the client staying locked.
    assert b.ask(1060.0) == 0.0
    assert b.ask(1060.0) is None  # probing alone until that one is answered


def test_a_junk_remaining_header_is_ignored() -> None:
    b = RateBudget()
    b.ask(0.0)
    b.done(0.0, 200, {LEFT: "lots"})
    assert b.tracked is False and b.remaining is None


# --- RateLimiter: the waiting around the budget -----------------------------------------------


async def test_the_limiter_sleeps_a_shared_retry_after_and_reports_it() -> None:
    limiter = RateLimiter()
    assert await limiter.acquire() == 0.0
    limiter.release(503, {"Retry-After": "0.2"})
    asked: list[float] = []
    started = time.monotonic()
    slept = await limiter.acquire(asked.append)
    assert time.monotonic() - started >= 0.15
    assert slept == pytest.approx(0.2, abs=0.05)
    assert len(asked) == 1 and asked[0] == pytest.approx(0.2, abs=0.05)


async def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    limiter = RateLimiter()
    await limiter.acquire()  # the probe: everyone else waits for its answer
    waiting = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert limiter._waiters == []
    limiter.release(200, {})
    assert await limiter.acquire() == 0.0


# -- client.rate_limit: what the budget remembers of the server's headers ------------------------


def test_the_budget_keeps_the_last_limit_and_reset_a_server_sent() -> None:
    budget = RateBudget()
    budget.ask(0.0)
    budget.done(0.0, 200, {"X-RateLimit-Limit": "60", "X-RateLimit-Reset": "1767225600"})
    assert (budget.limit, budget.reset_epoch) == (60, 1767225600)
    budget.ask(1.0)
    budget.done(1.0, 200, {"X-RateLimit-Remaining": "5"})  # an answer without them
    assert (budget.limit, budget.reset_epoch) == (60, 1767225600)
    budget.ask(2.0)
    budget.done(2.0, 200, {"X-RateLimit-Limit": "120", "X-RateLimit-Reset": "1767229200"})
    assert (budget.limit, budget.reset_epoch) == (120, 1767229200)


def test_a_snapshot_reports_the_budget_and_when_sending_may_go_on() -> None:
    clock = [100.0]
    limiter = RateLimiter(clock=lambda: clock[0])
    empty = limiter.snapshot()
    assert (empty.remaining, empty.limit, empty.resets_at) == (None, None, None)
    assert empty.server_sends_headers is None and empty.in_flight == 0

    limiter.budget.ask(100.0)
    limiter.budget.done(
        100.0,
        200,
        {
            "X-RateLimit-Remaining": "7",
            "X-RateLimit-Limit": "60",
            "X-RateLimit-Reset": "1767225600",
        },
    )
    limiter.budget.ask(100.0)  # one request in flight
    told = limiter.snapshot()
    assert (told.remaining, told.limit, told.in_flight) == (6, 60, 1)
    assert told.server_sends_headers is True
    assert told.resets_at == datetime(2026, 1, 1, tzinfo=timezone.utc)

    # A Retry-After being honoured wins over the header: sending goes on when the wait ends.
    limiter.budget.done(100.0, 429, {"Retry-After": "30"})
    before = datetime.now(timezone.utc)
    waiting = limiter.snapshot()
    assert waiting.resets_at is not None
    assert abs((waiting.resets_at - before).total_seconds() - 30) < 1
    clock[0] = 131.0  # the wait is over: the header's reset time again
    assert limiter.snapshot().resets_at == datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_a_hostile_reset_header_gives_no_reset_time() -> None:
    limiter = RateLimiter(clock=lambda: 0.0)
    limiter.budget.ask(0.0)
    limiter.budget.done(0.0, 200, {"X-RateLimit-Reset": str(10**30)})
    assert limiter.snapshot().resets_at is None
