"""The retry policy as pure decisions: what is retried, what never is, and how long we wait."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from vpsbg_support._retry import (
    FailureKind,
    RetryPolicy,
    backoff_delay,
    decide,
    parse_retry_after,
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
