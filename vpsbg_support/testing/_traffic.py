"""What the fake remembers about its traffic: the request log and the per-minute rate limit."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from vpsbg_support.testing._records import UploadedFile


@attrs.frozen(kw_only=True)
class RecordedRequest:
    """One request the fake received (never its headers, so never the token).

    The body is recorded when a route read it: ``fields`` for a form, ``json`` for a JSON body,
    ``files`` for uploads. A request refused or faulted before its handler ran (401, 403, 429,
    a ``status`` or ``before_handler`` ``reset`` fault) has none of them.

    Attributes:
        method: HTTP method.
        path: URL path, e.g. ``/v1/support/tickets/1001``.
        route: one of :data:`~vpsbg_support.testing.ROUTE_NAMES` (``"tickets.get"``), or
            ``None`` for a path no route serves.
        status: the status sent, or ``None`` when a ``reset`` fault dropped the connection.
        body_size: request body size in bytes (Content-Length, or the bytes read when chunked).
        query: the query parameters.
        fault: the kind of the terminal fault that acted on it (``"status"``, ``"reset"``,
            ``"truncate"``), ``"latency"`` when only delayed, or ``None``.
        fields: the text fields of a multipart or urlencoded body (create: ``subject``,
            ``service_type``...; reply: ``message``), exactly as sent.
        json: the parsed JSON body (purchase, renew, cancel: e.g. ``{"reason": ..., "now":
            false}``), or ``None``.
        files: the uploaded files' names, content types, sizes and sha256 digests, in the
            order sent (``content`` is always ``None``).
    """

    method: str
    path: str
    route: str | None
    status: int | None
    body_size: int
    query: Mapping[str, str]
    fault: str | None = None
    fields: Mapping[str, str] = attrs.field(factory=dict)
    json: Any = None
    files: tuple[UploadedFile, ...] = ()


class RequestLog:
    """A thread-safe, append-only list of :class:`RecordedRequest`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[RecordedRequest] = []

    def append(self, entry: RecordedRequest) -> None:
        """Record one request."""
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[RecordedRequest]:
        """Return the recorded requests, oldest first (a new list)."""
        with self._lock:
            return list(self._entries)

    def count(self, route: str | None, *, status: int | None = None) -> int:
        """Count recorded requests for a route name (``None``: unknown paths), optionally
        only those answered with ``status``."""
        with self._lock:
            return sum(
                1
                for e in self._entries
                if e.route == route and (status is None or e.status == status)
            )

    def clear(self) -> None:
        """Forget every recorded request."""
        with self._lock:
            self._entries.clear()


@attrs.frozen
class RateDecision:
    """The rate limiter's answer for one request: headers to send, and whether to refuse it."""

    limit: int
    remaining: int
    retry_after: int | None

    @property
    def allowed(self) -> bool:
        """False when the request must be answered 429."""
        return self.retry_after is None


class RateLimiter:
    """A sliding-window limit of ``limit`` requests per ``window`` seconds, like Laravel's throttle.

    Args:
        limit: requests allowed per window; change it any time through the attribute.
        window: window length in seconds (60 for "per minute").
        clock: monotonic time source, replaceable in tests.
    """

    def __init__(
        self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._hits: deque[float] = deque()

    def hit(self) -> RateDecision:
        """Count one request and decide whether it is within the limit."""
        with self._lock:
            now = self._clock()
            while self._hits and self._hits[0] <= now - self.window:
                self._hits.popleft()
            if len(self._hits) >= self.limit:
                wait = self._hits[0] + self.window - now if self._hits else self.window
                return RateDecision(self.limit, 0, max(1, math.ceil(wait)))
            self._hits.append(now)
            return RateDecision(self.limit, self.limit - len(self._hits), None)
