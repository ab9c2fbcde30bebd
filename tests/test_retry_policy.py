"""The retry policy as pure decisions: what is retried, what never is, and how long we wait."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from vpsbg_support._ratelimit import RateBudget
from vpsbg_support._retry import (
    FailureKind,
    RetryPolicy,
    backoff_delay,
    decide,
    parse_retry_after,
    refuse_wait,
)

POLICY = RetryPolicy(max_retries=3)


def one() -> float:
    return 1.0


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_idempotent_methods_retry_transient_statuses(method: str, status: int) -> None:
    d = decide(method=method, attempt=0, policy=POLICY, kind=FailureKind.STATUS, status=status)
    assert d.retry


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 423, 501])
def test_non_transient_statuses_are_final(status: int) -> None:
    d = decide(method="GET", attempt=0, policy=POLICY, kind=FailureKind.STATUS, status=status)
    assert not d.retry


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_post_is_never_retried_after_a_5xx_or_408(status: int) -> None:
    d = decide(method="POST", attempt=0, policy=POLICY, kind=FailureKind.STATUS, status=status)
    assert not d.retry and "non-idempotent" in d.reason


def test_post_is_retried_on_429() -> None:
    d = decide(
        method="POST", attempt=0, policy=POLICY, kind=FailureKind.STATUS, status=429, retry_after=2
    )
    assert d.retry and d.delay == 2


def test_post_is_never_retried_after_an_ambiguous_failure() -> None:
    d = decide(method="POST", attempt=0, policy=POLICY, kind=FailureKind.AMBIGUOUS)
    assert not d.retry and "never re-sent" in d.reason


def test_post_is_retried_when_it_never_left() -> None:
    assert decide(method="POST", attempt=0, policy=POLICY, kind=FailureKind.NOT_SENT).retry


def test_get_is_retried_after_an_ambiguous_failure() -> None:
    assert decide(method="GET", attempt=0, policy=POLICY, kind=FailureKind.AMBIGUOUS).retry


def test_retries_are_bounded() -> None:
    assert decide(method="GET", attempt=2, policy=POLICY, kind=FailureKind.AMBIGUOUS).retry
    assert not decide(method="GET", attempt=3, policy=POLICY, kind=FailureKind.AMBIGUOUS).retry
    zero = RetryPolicy(max_retries=0)
    assert not decide(method="GET", attempt=0, policy=zero, kind=FailureKind.NOT_SENT).retry


def test_unreplayable_body_is_only_retried_when_never_sent() -> None:
    common = {"method": "PUT", "attempt": 0, "policy": POLICY, "replayable": False}
    assert not decide(kind=FailureKind.AMBIGUOUS, **common).retry  # type: ignore[arg-type]
    assert decide(kind=FailureKind.NOT_SENT, **common).retry  # type: ignore[arg-type]


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=4.0)
    assert [backoff_delay(a, policy, rand=one) for a in range(6)] == [0.5, 1, 2, 4, 4, 4]
    assert backoff_delay(3, policy, rand=lambda: 0.25) == 1.0
    assert backoff_delay(10_000, policy, rand=one) == 4.0


def test_retry_after_over_the_cap_is_not_slept() -> None:
    policy = RetryPolicy(max_retry_after=30)
    d = decide(
        method="GET", attempt=0, policy=policy, kind=FailureKind.STATUS, status=429, retry_after=31
    )
    assert not d.retry and "Retry-After" in d.reason


def test_sleep_budget_limits_total_waiting() -> None:
    policy = RetryPolicy(max_retries=10, sleep_budget=5.0)
    d = decide(
        method="GET",
        attempt=1,
        policy=policy,
        kind=FailureKind.STATUS,
        status=429,
        retry_after=2,
        slept=3.5,
    )
    assert not d.retry and "budget" in d.reason


def test_raise_on_rate_limit_mode() -> None:
    policy = RetryPolicy(raise_on_rate_limit=True)
    d = decide(method="GET", attempt=0, policy=policy, kind=FailureKind.STATUS, status=429)
    assert not d.retry
    # Other transient failures are still retried in that mode.
    assert decide(method="GET", attempt=0, policy=policy, kind=FailureKind.STATUS, status=503).retry


def test_parse_retry_after_seconds_and_dates() -> None:
    now = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(later, now=now) == 90.0
    earlier = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(earlier, now=now) == 0.0
    for junk in (None, "", "soon", "nan", "inf", "Wed, 99 Foo 2026"):
        assert parse_retry_after(junk) is None


def test_policy_rejects_negative_settings() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(initial_delay=-1)


def test_retry_after_as_http_date_is_honoured_by_decide() -> None:
    now = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)
    header = format_datetime(now + timedelta(seconds=7), usegmt=True)
    wait = parse_retry_after(header, now=now)
    d = decide(
        method="POST",
        attempt=0,
        policy=POLICY,
        kind=FailureKind.STATUS,
        status=429,
        retry_after=wait,
    )
    assert d.retry and d.delay == 7.0


def test_retry_after_ignores_backoff_jitter() -> None:
    d = decide(
        method="GET",
        attempt=5,
        policy=RetryPolicy(max_retries=9),
        kind=FailureKind.STATUS,
        status=503,
        retry_after=0.25,
        rand=one,
    )
    assert d.delay == 0.25


def test_jitter_is_drawn_from_the_whole_interval() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=100.0)
    assert backoff_delay(2, policy, rand=lambda: 0.0) == 0.0
    assert backoff_delay(2, policy, rand=lambda: 0.5) == 2.0


def test_policy_rejects_negative_retry_after_cap() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_retry_after=-1)


# --- RateBudget: the limiter's bookkeeping, driven by an explicit clock ---------------------

LIMITED = {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "3"}


def test_first_request_probes_alone_until_the_server_says_more() -> None:
    b = RateBudget()
    assert b.ask(0.0) == 0.0
    assert b.ask(0.0) is None  # nothing known yet: wait for the probe's answer
    b.done(0.1, 200, LIMITED)
    assert b.remaining == 3
    assert [b.ask(0.1) for _ in range(4)] == [0.0, 0.0, 0.0, None]


def test_a_server_without_rate_limit_headers_is_not_throttled() -> None:
    b = RateBudget()
    assert b.ask(0.0) == 0.0
    b.done(0.1, 200, {})
    assert b.tracked is False
    assert all(b.ask(0.1) == 0.0 for _ in range(100))
    assert b.in_flight == 100


def test_answers_count_requests_still_in_flight_as_unseen() -> None:
    b = RateBudget()
    b.ask(0.0)
    b.done(0.0, 200, {"X-RateLimit-Remaining": "10"})
    for _ in range(4):
        assert b.ask(0.0) == 0.0
    # The server saw one of the four: 9 left; three more are still out there.
    b.done(0.0, 200, {"X-RateLimit-Remaining": "9"})
    assert b.remaining == 6


def test_spent_budget_waits_for_answers_then_probes_one_at_a_time() -> None:
    b = RateBudget()
    b.ask(0.0)
    b.done(0.0, 200, {"X-RateLimit-Remaining": "1"})
    assert b.ask(0.0) == 0.0
    assert b.ask(0.0) is None  # one in flight, nothing left
    b.done(0.0, 200, {"X-RateLimit-Remaining": "0"})
    assert b.ask(0.0) == 0.0  # nothing in flight: one probe goes
    assert b.ask(0.0) is None


def test_429_with_retry_after_holds_everyone_until_then() -> None:
    b = RateBudget()
    b.ask(10.0)
    b.done(10.0, 429, {"Retry-After": "2", "X-RateLimit-Remaining": "0"})
    assert b.ask(10.5) == 1.5
    assert b.ask(11.9) == pytest.approx(0.1)
    assert b.ask(12.0) == 0.0  # the probe
    assert b.ask(12.0) is None
    b.done(12.1, 200, {"X-RateLimit-Remaining": "59"})
    assert b.ask(12.1) == 0.0


def test_429_without_headers_probes_then_recovers() -> None:
    b = RateBudget()
    b.ask(0.0)
    b.done(0.0, 200, {})
    b.ask(0.0)
    b.done(0.0, 429, {})
    assert b.ask(0.0) == 0.0 and b.ask(0.0) is None
    b.done(0.1, 200, {})  # an untracked server answered normally again: no throttling
    assert b.ask(0.1) == 0.0 and b.ask(0.1) == 0.0


def test_retry_after_as_date_on_503_and_failures_without_answer() -> None:
    b = RateBudget()
    b.ask(0.0)
    b.done(0.0, None, {})  # connection failed: frees the slot, learns nothing
    assert b.in_flight == 0 and b.remaining is None
    b.ask(0.0)
    b.done(0.0, 503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})  # in the past
    assert b.ask(0.0) == 0.0


def test_refuse_wait_applies_the_same_limits_to_the_shared_limiter() -> None:
    assert refuse_wait(RetryPolicy(), 2.0, 0.0) == ""
    assert "raise_on_rate_limit" in refuse_wait(RetryPolicy(raise_on_rate_limit=True), 0.1, 0.0)
    assert "max_retry_after" in refuse_wait(RetryPolicy(max_retry_after=30), 31.0, 0.0)
    assert "sleep budget" in refuse_wait(RetryPolicy(sleep_budget=5.0), 2.0, 3.5)
    assert refuse_wait(RetryPolicy(sleep_budget=5.0), 2.0, 3.0) == ""
