"""The retry policy, as pure functions: should this attempt be retried, and how long to wait.

The rule that matters most is for money: a POST (create, reply, purchase, renew, cancel) is retried
only when it provably never reached the server, or on 429 (the server refused it before acting).
After an ambiguous failure (a timeout or reset once the body was sent, any 5xx) it is never re-sent.
"""

from __future__ import annotations

import email.utils
import enum
import random
from collections.abc import Callable
from datetime import datetime, timezone

import attrs

from vpsbg_support import _constants as C
from vpsbg_support._routes import method_is_idempotent

__all__ = [
    "Decision",
    "FailureKind",
    "RetryPolicy",
    "backoff_delay",
    "decide",
    "parse_retry_after",
    "refuse_wait",
]


class FailureKind(enum.Enum):
    """How an attempt failed, as far as retrying is concerned."""

    #: The request never reached the server (refused, DNS, connect timeout).
    NOT_SENT = "not_sent"
    #: The request may have reached the server (reset or timeout after sending).
    AMBIGUOUS = "ambiguous"
    #: The server answered with an HTTP status.
    STATUS = "status"
    #: The answer is final whatever the method: a body too large or corrupt.
    FINAL = "final"


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How a client retries.

    Attributes:
        max_retries: retries after the first attempt (0 disables retrying).
        initial_delay: the cap of the first backoff, in seconds; it doubles each attempt.
        max_delay: the cap of any single backoff, in seconds.
        max_retry_after: a server-requested wait (Retry-After) longer than this is not slept
            through: the RateLimitError is raised instead.
        sleep_budget: total seconds one call may spend sleeping between attempts (None: no cap),
            for batch jobs that prefer failing fast to waiting (zenpy's ``ratelimit_budget``).
        raise_on_rate_limit: raise RateLimitError at once on 429 instead of sleeping.
    """

    max_retries: int = C.DEFAULT_MAX_RETRIES
    initial_delay: float = C.INITIAL_RETRY_DELAY
    max_delay: float = C.MAX_RETRY_DELAY
    max_retry_after: float = C.MAX_RETRY_AFTER
    sleep_budget: float | None = None
    raise_on_rate_limit: bool = False

    def __attrs_post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.initial_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("retry delays must be >= 0")
        if self.sleep_budget is not None and self.sleep_budget < 0:
            raise ValueError("sleep_budget must be >= 0")


@attrs.frozen
class Decision:
    """What :func:`decide` chose: retry after ``delay`` seconds, or give up (``reason``)."""

    retry: bool
    delay: float = 0.0
    reason: str = ""


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent
    or unreadable. A date in the past gives 0."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            return None
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are GMT; "-0000" (no zone known) parses naive: read it as UTC.
        when = when.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    return max(0.0, (when - current).total_seconds())


def backoff_delay(
    attempt: int,
    policy: RetryPolicy,
    *,
    rand: Callable[[], float] = random.random,
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(max_delay, initial * 2**attempt)].

    ``attempt`` counts from 0 for the first retry.
    """
    ceiling = min(policy.max_delay, policy.initial_delay * (2 ** min(attempt, 32)))
    return float(ceiling * rand())


def decide(
    *,
    method: str,
    attempt: int,
    policy: RetryPolicy,
    kind: FailureKind,
    status: int | None = None,
    retry_after: float | None = None,
    replayable: bool = True,
    slept: float = 0.0,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """Decide whether the failed attempt number ``attempt`` (0 = the first) is retried.

    Args:
        method: the HTTP method.
        attempt: how many retries were already made for this call.
        policy: the client's (or the call's) policy.
        kind: how the attempt failed.
        status: the HTTP status when ``kind`` is STATUS.
        retry_after: seconds from a Retry-After header, when present.
        replayable: False when the body cannot be sent again (a consumed async iterable).
        slept: seconds already slept between earlier attempts of this call.
        rand: source of jitter (injectable for tests).

    Returns:
        A Decision; ``retry=False`` carries the reason in ``reason``.
    """
    if kind is FailureKind.FINAL:
        return Decision(False, reason="the answer cannot be read; asking again would not help")
    if attempt >= policy.max_retries:
        return Decision(False, reason="retries exhausted")
    if not replayable and kind is not FailureKind.NOT_SENT:
        return Decision(False, reason="the request body cannot be replayed")
    idempotent = method_is_idempotent(method)
    if kind is FailureKind.NOT_SENT:
        pass
    elif kind is FailureKind.AMBIGUOUS:
        if not idempotent:
            return Decision(False, reason="request may have reached the server; never re-sent")
    else:
        if status is None or status not in C.RETRYABLE_STATUSES:
            return Decision(False, reason=f"status {status} is not retryable")
        if status == 429:
            if policy.raise_on_rate_limit:
                return Decision(False, reason="rate limited and raise_on_rate_limit is set")
        elif not idempotent:
            return Decision(False, reason=f"status {status} on a non-idempotent request")
    if retry_after is not None and kind is FailureKind.STATUS:
        if retry_after > policy.max_retry_after:
            return Decision(False, reason="Retry-After exceeds max_retry_after")
        delay = retry_after
    else:
        delay = backoff_delay(attempt, policy, rand=rand)
    if policy.sleep_budget is not None and slept + delay > policy.sleep_budget:
        return Decision(False, reason="sleep budget exhausted")
    return Decision(True, delay=delay)


def refuse_wait(policy: RetryPolicy, delay: float, slept: float) -> str:
    """Why a wait the server asked for (a Retry-After another request received) must not be
    slept through before sending: "" when it may.

    Args:
        policy: the call's policy.
        delay: seconds the client-wide limiter would sleep.
        slept: seconds this call already slept.

    Returns:
        The reason to raise RateLimitError instead, or "" to wait.
    """
    if policy.raise_on_rate_limit:
        return "raise_on_rate_limit is set"
    if delay > policy.max_retry_after:
        return f"that exceeds this call's max_retry_after ({policy.max_retry_after:g}s)"
    if policy.sleep_budget is not None and slept + delay > policy.sleep_budget:
        return f"that exceeds the sleep budget ({policy.sleep_budget:g}s)"
    return ""
