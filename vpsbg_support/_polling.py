"""Polite polling: how long to pause between polls, which failures a poll rides out, deadlines.

Shared by ``tickets.watch``, ``tickets.wait_for_reply`` and ``orders.wait``. The pause starts at
the ``interval`` asked for (a floor, never undercut), grows while nothing changes, returns to the
floor when something does, and stretches to a server's ``Retry-After`` on a rate limit. Every
request still goes through the client's own rate limiter, so a poll shares the client's budget
with whatever else the client is doing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs

from vpsbg_support import _constants as C
from vpsbg_support._validate import check_seconds
from vpsbg_support.errors import (
    APIConnectionError,
    InternalServerError,
    RateLimitError,
    VPSBGError,
    WaitTimeoutError,
)

logger = logging.getLogger(C.LOGGER_NAME)

T = TypeVar("T")
R = TypeVar("R")


@attrs.define
class Backoff:
    """The pause before the next poll: ``interval`` after a change, growing by ``factor`` up to
    ``max_interval`` while nothing changes. Pure state, no clock: tested without sleeping.

    Attributes:
        interval: the floor, in seconds.
        max_interval: the ceiling of the growth (a ``Retry-After`` may still ask for longer).
        factor: the growth per quiet poll.
    """

    interval: float
    max_interval: float
    factor: float = C.POLL_BACKOFF_FACTOR
    _next: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.max_interval = max(self.max_interval, self.interval)
        self._next = self.interval

    @classmethod
    def checked(cls, interval: object, max_interval: object | None) -> Backoff:
        """Validate user-given seconds and build the backoff (``max_interval`` None: default).

        Raises:
            InvalidParameterError: a value is not a finite number of seconds, or is too small.
        """
        floor = check_seconds("interval", interval, minimum=C.POLL_MIN_INTERVAL)
        if max_interval is None:
            ceiling = floor * C.POLL_MAX_BACKOFF
        else:
            ceiling = check_seconds("max_interval", max_interval, minimum=floor)
        return cls(floor, ceiling)

    def after_poll(self, *, changed: bool) -> float:
        """The pause after a poll that did (or did not) see a change."""
        if changed:
            self._next = self.interval
        delay = self._next
        self._next = min(delay * self.factor, self.max_interval)
        return delay

    def after_failure(self, retry_after: float | None = None) -> float:
        """The pause after a rate limit or a transient failure: at least ``retry_after``."""
        delay = max(self._next, retry_after or 0.0)
        self._next = min(self._next * self.factor, self.max_interval)
        return delay


def rides_out(exc: BaseException) -> bool:
    """Whether a poll should wait and try again after ``exc`` rather than end: a rate limit,
    a connection failure or a 5xx the client's own retries did not overcome."""
    return isinstance(exc, RateLimitError | APIConnectionError | InternalServerError)


def failure_pause(backoff: Backoff, exc: VPSBGError, what: str) -> float:
    """The pause after a failure :func:`rides_out` accepts, logged at WARNING."""
    retry_after = exc.retry_after if isinstance(exc, RateLimitError) else None
    delay = backoff.after_failure(retry_after)
    logger.warning("%s: %s; polling again in %.1f s", what, exc, delay)
    return delay


class Deadline:
    """A time limit on a wait, on the monotonic clock; ``None`` seconds never expires."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left (``inf`` without a limit, 0 once expired)."""
        if self._end is None:
            return math.inf
        return max(0.0, self._end - time.monotonic())


async def poll(
    fetch: Callable[[], Awaitable[T]],
    check: Callable[[T], R | None],
    *,
    key: Callable[[T], object],
    backoff: Backoff,
    timeout: float | None,
    what: str,
) -> R:
    """Call ``fetch`` until ``check`` returns something other than None, and return that.

    ``key`` tells a change (the pause returns to the floor) from a quiet poll (it grows). A
    rate limit or transient failure waits and polls again; the last poll is made when the
    deadline is reached, never after it.

    Raises:
        WaitTimeoutError: ``timeout`` seconds passed; ``last`` holds what the last poll saw.
        Whatever ``check`` raises, and API errors :func:`rides_out` does not accept.
    """
    deadline = Deadline(timeout)
    last: T | None = None
    previous: object = None
    while True:
        try:
            current = await fetch()
        except VPSBGError as exc:
            if not rides_out(exc):
                raise
            delay = failure_pause(backoff, exc, what)
        else:
            last = current
            result = check(current)
            if result is not None:
                return result
            marker = key(current)
            delay = backoff.after_poll(changed=marker != previous)
            previous = marker
        left = deadline.remaining()
        if left <= 0:
            raise WaitTimeoutError(
                f"{what}: still waiting after {timeout:g} s", timeout=timeout or 0.0, last=last
            )
        await asyncio.sleep(min(delay, left))
