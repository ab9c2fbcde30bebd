"""One table of every endpoint the library calls: method, path, body encoding, documented or not.

VPSBG documents only some support routes (see the README's routes table). Where the docs give no
path, the path below is this library's choice, marked ``documented=False``, so a correction is one
line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal
from urllib.parse import quote

import attrs

from vpsbg_support._constants import IDEMPOTENT_METHODS

BodyKind = Literal["none", "json", "multipart"]


@attrs.frozen
class Route:
    """One endpoint: how to call it and whether VPSBG's docs show its path."""

    name: str
    method: Literal["GET", "POST", "PUT", "DELETE"]
    path: str
    body: BodyKind = "none"
    documented: bool = True

    @property
    def idempotent(self) -> bool:
        """True when sending the request twice has the same effect as sending it once."""
        return method_is_idempotent(self.method)

    def format_path(self, params: Mapping[str, int | str] | None = None) -> str:
        """Fill the path template; ids are URL-quoted so ``"../x"`` cannot change the route."""
        if params:
            for value in params.values():
                # An int (what check_id returns) needs no quoting: the common case skips quote().
                if type(value) is not int:
                    params = {
                        k: v if type(v) is int else quote(str(v), safe="")
                        for k, v in params.items()
                    }
                    break
        return self.path.format_map(params or {})


def method_is_idempotent(method: str | None) -> bool:
    """Whether sending ``method`` twice has the same effect as once (the one definition)."""
    return method is not None and method.upper() in IDEMPOTENT_METHODS


TICKETS_LIST = Route("tickets.list", "GET", "/support/tickets", documented=False)
TICKETS_DEPARTMENTS = Route("tickets.departments", "GET", "/support/departments", documented=False)
TICKETS_SERVICES = Route("tickets.services", "GET", "/support/services", documented=False)
TICKETS_GET = Route("tickets.get", "GET", "/support/tickets/{ticket_id}")
TICKETS_CREATE = Route("tickets.create", "POST", "/support/tickets", body="multipart")
TICKETS_REPLY = Route(
    "tickets.reply", "POST", "/support/tickets/{ticket_id}/messages", body="multipart"
)
TICKETS_RESOLVE = Route(
    "tickets.resolve", "PUT", "/support/tickets/{ticket_id}/resolve", documented=False
)
TICKETS_ATTACHMENT = Route(
    "tickets.download_attachment",
    "GET",
    "/support/tickets/{ticket_id}/attachments/{attachment_id}",
    documented=False,
)
PLANS_LIST = Route("plans.list", "GET", "/support/plans", documented=False)
PLANS_PURCHASE = Route("plans.purchase", "POST", "/support", body="json")
PLANS_RENEW = Route("plans.renew", "POST", "/support/renew", body="json")
PLANS_CANCEL = Route("plans.cancel", "POST", "/support/cancel", body="json", documented=False)
PLANS_UNDO_CANCEL = Route("plans.undo_cancel", "DELETE", "/support/cancel", documented=False)
ORDERS_LIST = Route("orders.list", "GET", "/orders")
ORDERS_GET = Route("orders.get", "GET", "/orders/{order_id}")

ROUTES: tuple[Route, ...] = (
    TICKETS_LIST,
    TICKETS_DEPARTMENTS,
    TICKETS_SERVICES,
    TICKETS_GET,
    TICKETS_CREATE,
    TICKETS_REPLY,
    TICKETS_RESOLVE,
    TICKETS_ATTACHMENT,
    PLANS_LIST,
    PLANS_PURCHASE,
    PLANS_RENEW,
    PLANS_CANCEL,
    PLANS_UNDO_CANCEL,
    ORDERS_LIST,
    ORDERS_GET,
)
