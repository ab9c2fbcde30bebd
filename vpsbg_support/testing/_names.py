"""The route names the fake's inspection and fault APIs take, checked so a typo fails loudly."""

from __future__ import annotations

from typing import Literal

from vpsbg_support._routes import ROUTES

#: Every route name ``FakeVPSBG.count``, ``Fault.route`` and ``RecordedRequest.route`` use.
RouteName = Literal[
    "tickets.list",
    "tickets.departments",
    "tickets.services",
    "tickets.get",
    "tickets.create",
    "tickets.reply",
    "tickets.resolve",
    "tickets.download_attachment",
    "plans.list",
    "plans.purchase",
    "plans.renew",
    "plans.cancel",
    "plans.undo_cancel",
    "orders.list",
    "orders.get",
]

#: The same names as a tuple, in the order of the client's route table.
ROUTE_NAMES: tuple[str, ...] = tuple(route.name for route in ROUTES)


def check_route_name(route: str | None) -> None:
    """Refuse a route name the fake does not serve (``None``, "any route", is accepted).

    Args:
        route: a route name such as ``"plans.renew"``, or ``None``.

    Raises:
        ValueError: for an unknown name; the message lists the valid ones.
    """
    if route is not None and route not in ROUTE_NAMES:
        raise ValueError(f"unknown route name {route!r}; valid names: {', '.join(ROUTE_NAMES)}")
