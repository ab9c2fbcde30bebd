"""Client-wide pacing from the server's rate-limit headers: RateBudget (pure state) and the
limiter that shares it between concurrent calls."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone

import attrs
from multidict import istr

from vpsbg_support import _constants as C
from vpsbg_support._retry import parse_retry_after

__all__ = ["RateBudget", "RateLimitSnapshot", "RateLimiter"]


# Case-insensitive names: aiohttp's headers find an istr without folding its case on every call.
_LIMIT = istr("X-RateLimit-Limit")
_RESET = istr("X-RateLimit-Reset")
_REMAINING = istr("X-RateLimit-Remaining")
_RETRY_AFTER = istr("Retry-After")


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


class RateBudget:
    """The client-wide rate-limit bookkeeping, as pure state driven by an explicit clock.

    The server tells us how many requests are left (``X-RateLimit-Remaining``) and, once we are
    over, how long to wait (``Retry-After``). Concurrent tasks share one budget: a request is sent
    only while the last known remaining count, minus the requests sent since, is positive. When the
    budget is spent, one request at a time probes the server (its answer refreshes the budget, or a
    429 tells everyone how long to wait), so a bulk job causes about one 429 per window instead of
    one per task. Until the first answer says whether the server sends these headers at all, one
    request probes alone.
    """

    def __init__(self, max_shared_wait: float = C.MAX_RETRY_AFTER) -> None:
        #: A Retry-After holds the other calls for at most this many seconds; then one asks
        #: the server again (a day-long or far-future wait must not lock the client).
        self.max_shared_wait = max_shared_wait
        #: Clock time before which the server asked for nothing to be sent (a Retry-After).
        self.not_before = 0.0
        #: Clock time until which that wait is believed: at most ``max_shared_wait`` after it
        #: was told; then one request asks the server again.
        self.held_until = 0.0
        #: Requests we may still send, as far as we know; None when nothing is known.
        self.remaining: int | None = None
        #: Whether the server sends X-RateLimit-Remaining: None until an answer says.
        self.tracked: bool | None = None
        #: Requests sent and not answered yet.
        self.in_flight = 0
        #: The last ``X-RateLimit-Limit`` and ``X-RateLimit-Reset`` (epoch seconds) the server
        #: sent, for :class:`RateLimitSnapshot` only.
        self.limit: int | None = None
        self.reset_epoch: int | None = None

    def ask(self, now: float) -> float | None:
        """Ask to send one request at clock time ``now``.

        Returns:
            ``0.0``: go; a slot is reserved, call :meth:`done` once answered (or failed).
            A positive number: sleep that many seconds (a Retry-After), then ask again.
            ``None``: wait until an in-flight request is answered, then ask again.
        """
        if now < self.held_until:
            return self.not_before - now
        if self.remaining is None:
            if self.tracked is False or self.in_flight == 0:
                self.in_flight += 1
                return 0.0
            return None
        if self.remaining > 0 or self.in_flight == 0:
            self.remaining = max(0, self.remaining - 1)
            self.in_flight += 1
            return 0.0
        return None

    def done(self, now: float, status: int | None, headers: Mapping[str, str]) -> None:
        """Record the answer to a request :meth:`ask` let through (``status`` None: no answer)."""
        self.in_flight = max(0, self.in_flight - 1)
        if status is None:
            return
        if status in (429, 503):
            retry_after = parse_retry_after(headers.get(_RETRY_AFTER))
            if retry_after is not None:
                self.not_before = max(self.not_before, now + retry_after)
                held = now + min(retry_after, self.max_shared_wait)
                self.held_until = max(self.held_until, held)
        self.limit = _int_header(headers, _LIMIT) or self.limit
        self.reset_epoch = _int_header(headers, _RESET) or self.reset_epoch
        left = _int_header(headers, _REMAINING)
        if left is None:
            if status == 429:
                self.remaining = 0  # over the limit: probe one at a time until told otherwise
                return
            if self.tracked is None:
                self.tracked = False
            if not self.tracked:
                self.remaining = None
            return
        self.tracked = True
        # Requests still in flight may not be counted in this answer yet: assume they are not.
        self.remaining = max(0, left - self.in_flight)
        if status == 429:
            self.remaining = 0


@attrs.frozen(kw_only=True)
class RateLimitSnapshot:
    """What a client knows of its rate limit, at one moment (``client.rate_limit``).

    Attributes:
        remaining: requests the client may still send before the server's limit, as far as
            it knows: the last ``X-RateLimit-Remaining``, less the requests sent since; None
            before the first answer or when the server does not say.
        limit: the last ``X-RateLimit-Limit`` the server sent, or None.
        resets_at: when sending may go on (aware, UTC): the end of a ``Retry-After`` wait the
            client is honouring, else the last ``X-RateLimit-Reset``; None when unknown.
        server_sends_headers: True once an answer carried ``X-RateLimit-Remaining``, False
            once one did not, None before the first answer.
        in_flight: requests sent and not answered yet.
    """

    remaining: int | None
    limit: int | None
    resets_at: datetime | None
    server_sends_headers: bool | None
    in_flight: int


class RateLimiter:
    """Client-wide pacing from the server's rate-limit headers, shared by all concurrent tasks.

    The bookkeeping is :class:`RateBudget`; this adds the waiting. After a 429 (or 503) with
    ``Retry-After`` every task waits until that moment (at most ``max_shared_wait``); once
    ``X-RateLimit-Remaining`` is spent, tasks wait for answers to the requests in flight and then
    probe one at a time, instead of each collecting its own 429.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_shared_wait: float = C.MAX_RETRY_AFTER,
    ) -> None:
        self._clock = clock
        self._budget = RateBudget(max_shared_wait)
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def budget(self) -> RateBudget:
        """The shared bookkeeping (for inspection)."""
        return self._budget

    def snapshot(self) -> RateLimitSnapshot:
        """What is known now, with clock times turned into UTC datetimes."""
        budget = self._budget
        now = self._clock()
        resets_at = None
        if budget.not_before > now:
            resets_at = datetime.now(timezone.utc) + timedelta(seconds=budget.not_before - now)
        elif budget.reset_epoch is not None:
            with contextlib.suppress(ValueError, OverflowError, OSError):  # a hostile number
                resets_at = datetime.fromtimestamp(budget.reset_epoch, timezone.utc)
        return RateLimitSnapshot(
            remaining=budget.remaining,
            limit=budget.limit,
            resets_at=resets_at,
            server_sends_headers=budget.tracked,
            in_flight=budget.in_flight,
        )

    def try_acquire(self) -> bool:
        """Reserve a request slot now if one is free (no waiting); pair with :meth:`release`.

        Returns:
            True when reserved; False when the caller must :meth:`acquire` (and wait).
        """
        return self._budget.ask(self._clock()) == 0.0

    async def acquire(self, before_sleep: Callable[[float], None] | None = None) -> float:
        """Wait until a request may be sent and reserve it; pair with :meth:`release`.

        Args:
            before_sleep: called with the seconds about to be slept for a ``Retry-After``; it may
                raise to refuse the wait (the reservation is then not taken).

        Returns:
            The seconds slept for ``Retry-After`` waits.
        """
        slept = 0.0
        while True:
            delay = self._budget.ask(self._clock())
            if delay == 0.0:
                return slept
            if delay is None:
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                finally:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
                continue
            if before_sleep is not None:
                before_sleep(delay)
            await asyncio.sleep(delay)
            slept += delay

    def release(self, status: int | None, headers: Mapping[str, str] | None = None) -> None:
        """Record the answer (``status`` None: the request failed) and wake waiting tasks."""
        self._budget.done(self._clock(), status, headers or {})
        if self._waiters:  # mostly none: no new list per call then
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
