"""Fault injection for the fake: latency, error statuses, connection resets and truncated bodies."""

from __future__ import annotations

import random
import threading
from typing import Literal

import attrs

from vpsbg_support.testing._names import check_route_name

FaultKind = Literal["latency", "status", "reset", "truncate"]
FaultWhen = Literal["before_handler", "after_handler"]


@attrs.define(kw_only=True)
class Fault:
    """One configured fault; create it with :meth:`FaultInjector.add`.

    Attributes:
        kind: ``latency`` (sleep ``seconds``, then answer normally), ``status`` (answer ``status``
            with a JSON error body, or ``body``, instead of running the handler), ``reset``
            (abort the TCP connection without any response byte), ``truncate`` (send the headers
            with the full Content-Length, then only ``keep_fraction`` of the body, then close).
        route: one of :data:`~vpsbg_support.testing.ROUTE_NAMES` (e.g. ``"tickets.get"``) or
            ``None`` for every route, including unknown paths.
        probability: chance in [0, 1] that a matching request triggers it.
        times: how many times it may fire in all; ``None`` for no limit.
        status: the status a ``status`` fault answers with.
        retry_after: ``Retry-After`` header value sent with a ``status`` fault, if any.
        body: for ``status``: the exact body to send instead of the Laravel JSON error (e.g. a
            proxy's HTML error page); ``None`` for the JSON error.
        content_type: the Content-Type sent with ``body`` (default ``text/plain;
            charset=utf-8`` for a str, ``application/octet-stream`` for bytes).
        seconds: the delay of a ``latency`` fault.
        when: for ``reset``: ``after_handler`` (default: the handler ran, so its side effect
            happened, but the client never sees the answer) or ``before_handler``.
        keep_fraction: for ``truncate``: the share of the body that is sent.
        fired: how many times it has fired so far.
    """

    kind: FaultKind
    route: str | None = None
    probability: float = 1.0
    times: int | None = None
    status: int = 500
    retry_after: float | str | None = None
    body: str | bytes | None = None
    content_type: str | None = None
    seconds: float = 0.0
    when: FaultWhen = "after_handler"
    keep_fraction: float = 0.5
    fired: int = 0

    @property
    def phase(self) -> FaultWhen:
        """When the fault acts: only ``reset`` and ``truncate`` act after the handler."""
        if self.kind == "truncate" or (self.kind == "reset" and self.when == "after_handler"):
            return "after_handler"
        return "before_handler"

    @property
    def exhausted(self) -> bool:
        """True once it has fired ``times`` times."""
        return self.times is not None and self.fired >= self.times


class FaultInjector:
    """The configured faults of one fake server, safe to change from any thread.

    Args:
        seed: seeds the RNG that decides whether a fault with ``probability < 1`` fires.
    """

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._faults: list[Fault] = []

    def add(
        self,
        route: str | None = None,
        kind: FaultKind = "status",
        *,
        probability: float = 1.0,
        times: int | None = None,
        status: int = 500,
        retry_after: float | str | None = None,
        body: str | bytes | None = None,
        content_type: str | None = None,
        seconds: float = 0.0,
        when: FaultWhen = "after_handler",
        keep_fraction: float = 0.5,
    ) -> Fault:
        """Configure a fault; see :class:`Fault` for what each argument means.

        ``faults.add("plans.renew", "status", status=502, body="<html>Bad Gateway</html>",
        content_type="text/html")`` answers as a proxy in front of the API would. The keyword
        arguments (``probability``, ``times``, ``status``, ``retry_after``, ``body``,
        ``content_type``, ``seconds``, ``when``, ``keep_fraction``) are the :class:`Fault`
        attributes of the same name.

        Args:
            route: one of :data:`~vpsbg_support.testing.ROUTE_NAMES`, or ``None`` for all.
            kind: ``latency``, ``status``, ``reset`` or ``truncate``.

        Returns:
            The fault, whose ``fired`` counter tests may read.

        Raises:
            ValueError: for an unknown route name or kind, an out-of-range number, or
                ``body``/``content_type`` on a fault other than ``status``.
        """
        check_route_name(route)
        if kind not in ("latency", "status", "reset", "truncate"):
            raise ValueError(f"unknown fault kind {kind!r}")
        if not 0.0 <= probability <= 1.0 or not 0.0 <= keep_fraction < 1.0:
            raise ValueError("probability must be in [0, 1] and keep_fraction in [0, 1)")
        if (times is not None and times < 0) or seconds < 0 or not 100 <= status <= 599:
            raise ValueError("times and seconds must not be negative; status must be 100-599")
        if kind != "status" and (body is not None or content_type is not None):
            raise ValueError("body and content_type only apply to a 'status' fault")
        if content_type is not None and body is None:
            raise ValueError("content_type needs a body")
        fault = Fault(
            kind=kind,
            route=route,
            probability=probability,
            times=times,
            status=status,
            retry_after=retry_after,
            body=body,
            content_type=content_type,
            seconds=seconds,
            when=when,
            keep_fraction=keep_fraction,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        """Remove one configured fault (no error if it is already gone)."""
        with self._lock:
            self._faults = [f for f in self._faults if f is not fault]

    def clear(self) -> None:
        """Remove every configured fault."""
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        """The configured faults, in the order they were added (a new list)."""
        with self._lock:
            return list(self._faults)

    def fire(self, route: str | None, phase: FaultWhen) -> list[Fault]:
        """Decide which faults act on one request in one phase, and count them as fired.

        Every matching ``latency`` fault that fires is returned, followed by at most one
        terminal fault (status, reset or truncate): the first one that fires.

        Args:
            route: the request's route name, or ``None`` for an unknown path.
            phase: ``before_handler`` or ``after_handler``.

        Returns:
            The faults to apply, in order.
        """
        chosen: list[Fault] = []
        terminal = False
        with self._lock:
            for fault in self._faults:
                if fault.phase != phase or fault.exhausted:
                    continue
                if fault.route is not None and fault.route != route:
                    continue
                if terminal and fault.kind != "latency":
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    continue
                fault.fired += 1
                chosen.append(fault)
                terminal = terminal or fault.kind != "latency"
        chosen.sort(key=lambda f: f.kind != "latency")
        return chosen
