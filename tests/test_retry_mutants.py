"""The retry decision and the rate budget at their edges: each test here failed against a mutant of
the code that every other test let pass (``make mutate``). They pin what users rely on: where a
limit is inclusive, which answers hold the other calls, and what a failure teaches the budget."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from vpsbg_support._retry import (
    FailureKind,
    RateBudget,
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
