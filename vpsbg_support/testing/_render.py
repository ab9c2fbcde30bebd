"""The one place that turns the fake's records into the API's JSON shapes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from yarl import URL

from vpsbg_support.testing._data import TAX_RATE
from vpsbg_support.testing._records import (
    Attachment,
    Department,
    Message,
    Order,
    Plan,
    Service,
    Ticket,
)
from vpsbg_support.testing._state import TimestampPrecision

JSONObject = dict[str, Any]


#: ``schema``: tickets as the documented schema (§2.1) spells them. ``documented``: as the docs'
#: own examples do (``message``/``from_customer`` in messages, which lack ``id`` and
#: ``created_at``; a top-level ``user``; ``service`` for ``service_label``; ``mime_type``).
WireStyle = Literal["schema", "documented"]

#: The top-level ``user`` of the documented Get-a-ticket example.
DOCUMENTED_USER = "john doe"


def timestamp(moment: datetime, precision: TimestampPrecision = "seconds") -> str:
    """Format an aware UTC datetime as the API does: ``2024-08-02T11:57:57.000000Z``.

    Args:
        moment: the time.
        precision: ``seconds`` writes a zero fraction whatever ``moment`` holds, as the real
            API does; ``microseconds`` writes the fraction.
    """
    if precision == "seconds":
        moment = moment.replace(microsecond=0)
    # isoformat() rather than strftime("%Y"), which glibc does not zero-pad before 1000.
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def money(value: float) -> float | int:
    """Return a JSON number for an amount: integral amounts as ints (``15``, not ``15.0``)."""
    rounded = round(value, 2)
    return int(rounded) if float(rounded).is_integer() else rounded


class Renderer:
    """Renders tickets and orders in one wire style and timestamp precision.

    Args:
        wire_style: ``schema`` or ``documented`` (see :data:`WireStyle`).
        timestamp_precision: how timestamps are written (see :func:`timestamp`).

    Raises:
        ValueError: for an unknown style.
    """

    def __init__(
        self,
        *,
        wire_style: WireStyle = "schema",
        timestamp_precision: TimestampPrecision = "seconds",
    ) -> None:
        if wire_style not in ("schema", "documented"):
            raise ValueError(f"wire_style must be 'schema' or 'documented', not {wire_style!r}")
        self.documented = wire_style == "documented"
        self.precision: TimestampPrecision = timestamp_precision

    def timestamp(self, moment: datetime) -> str:
        """Format a time at this renderer's precision."""
        return timestamp(moment, self.precision)

    def attachment(self, record: Attachment) -> JSONObject:
        """Render an Attachment (§2.3): camelCase ``mimeType``, or ``mime_type`` (documented)."""
        key = "mime_type" if self.documented else "mimeType"
        return {"id": record.id, "name": record.name, "size": record.size, key: record.mime_type}

    def message(self, record: Message) -> JSONObject:
        """Render a TicketMessage (§2.2), or as the Get-a-ticket example does (§6 item 4)."""
        attachments = [self.attachment(a) for a in record.attachments]
        if self.documented:
            return {
                "message": record.content,
                "from_customer": record.is_customer,
                "attachments": attachments,
            }
        return {
            "id": record.id,
            "content": record.content,
            "is_customer": record.is_customer,
            "created_at": self.timestamp(record.created_at),
            "attachments": attachments,
        }

    def ticket(
        self, record: Ticket, *, with_messages: bool = True, reply_answer: bool = False
    ) -> JSONObject:
        """Render a Ticket (§2.1); list items leave ``messages`` out.

        Args:
            record: the ticket.
            with_messages: include ``messages`` (False for list items).
            reply_answer: the answer to a reply, which in the documented style has no
                ``service_id``/``service_type`` (§6 item 1).
        """
        service = record.service
        body: JSONObject = {
            "id": record.id,
            "status": record.status,
            "subject": record.subject,
            "created_at": self.timestamp(record.created_at),
            "updated_at": self.timestamp(record.updated_at),
        }
        if self.documented:
            body["user"] = DOCUMENTED_USER
        body["department"] = record.department.slug
        body["service" if self.documented else "service_label"] = service.label if service else None
        if not (self.documented and reply_answer):
            body["service_type"] = service.type if service else None
            body["service_id"] = service.id if service else None
        if with_messages:
            body["messages"] = [self.message(m) for m in record.messages]
        return body

    def order(self, record: Order) -> JSONObject:
        """Render an Order (§2.4) with one proforma invoice and one service line."""
        amount = money(record.amount)
        with_vat = money(record.amount_with_vat)
        cycle = record.billing_cycle
        label = {
            "new-service": "Support plan",
            "renew-service": "Renewal: Support plan",
        }.get(record.type, "Cancellation: Support plan")
        created_at = self.timestamp(record.created_at)
        return {
            "id": record.id,
            "tax_rate": record.tax_rate,
            "amount": amount,
            "amount_with_vat": with_vat,
            "amount_from_balance": 0,
            "payment_method": "balance",
            "status": record.status,
            "type": record.type,
            "auto_pay": True,
            "promo_applicable": True,
            "created_at": created_at,
            "due_at": self.timestamp(record.due_at),
            "payment_date": self.timestamp(record.payment_date) if record.payment_date else None,
            "invoices": [
                {
                    "id": record.invoice_id,
                    "invoice_number": f"{record.id:010d}",
                    "created_at": created_at,
                    "amount": amount,
                    "amount_with_vat": with_vat,
                    "type": "proform",
                    "order_ids": [record.id],
                }
            ],
            "promo": None,
            "payment_information": None,
            "services": [
                {
                    "label": f"{label} {record.plan_key.title()}",
                    "sublabel": None,
                    "period_from": record.period_from,
                    "period_to": record.period_to,
                    "is_period_changeable": cycle is not None,
                    "service_id": record.subscription_id,
                    "service_billing_cycle": cycle,
                    "service_minimum_billing_cycle": 1 if cycle is not None else None,
                    "service_type": "support-plan",
                    "amount": amount,
                    "amount_with_vat": with_vat,
                    "amount_sublabel": "",
                    "promo": None,
                }
            ],
        }

    def order_list_item(self, record: Order) -> JSONObject:
        """Render an Order as ``GET /orders`` lists it: without invoices and service lines."""
        full = self.order(record)
        return {k: v for k, v in full.items() if k not in ("invoices", "services")}


def department(record: Department) -> JSONObject:
    """Render a department: ``{id, name, slug}``."""
    return {"id": record.id, "name": record.name, "slug": record.slug}


def service(record: Service) -> JSONObject:
    """Render a related service: ``{id, type, label}``."""
    return {"id": record.id, "type": record.type, "label": record.label}


def plan(record: Plan, status: str) -> JSONObject:
    """Render a support plan with its price per month, with and without VAT."""
    return {
        "key": record.key,
        "name": record.name,
        "price": money(record.price),
        "price_with_vat": money(record.price * TAX_RATE),
        "status": status,
    }


def error(message: str, errors: dict[str, list[str]] | None = None) -> JSONObject:
    """Render an error body in Laravel's shape (``errors`` only when there are field errors)."""
    body: JSONObject = {"message": message}
    if errors is not None:
        body["errors"] = errors
    return body


def envelope(
    items: Sequence[JSONObject],
    *,
    total: int,
    page: int,
    per_page: int,
    path: URL,
    keep_per_page: bool,
) -> JSONObject:
    """Wrap one page of items in Laravel's paginator envelope ``{data, links, meta}``.

    Args:
        items: the items of this page.
        total: number of items over all pages.
        page: the 1-based page number served.
        per_page: the page size used.
        path: the absolute URL of the list, without query.
        keep_per_page: carry ``per_page`` in the page links (as ``withQueryString()`` does),
            so following ``links.next`` keeps the page size the caller asked for.
    """
    last_page = max(1, math.ceil(total / per_page))

    def link(number: int) -> str:
        query = {"page": str(number)}
        if keep_per_page:
            query["per_page"] = str(per_page)
        return str(path.with_query(query))

    first_index = (page - 1) * per_page
    meta_links = [
        {"url": link(page - 1) if page > 1 else None, "label": "&laquo; Previous", "active": False}
    ]
    meta_links += [
        {"url": link(n), "label": str(n), "active": n == page} for n in range(1, last_page + 1)
    ]
    meta_links.append(
        {
            "url": link(page + 1) if page < last_page else None,
            "label": "Next &raquo;",
            "active": False,
        }
    )
    return {
        "data": list(items),
        "links": {
            "first": link(1),
            "last": link(last_page),
            "prev": link(page - 1) if page > 1 else None,
            "next": link(page + 1) if page < last_page else None,
        },
        "meta": {
            "current_page": page,
            "from": first_index + 1 if items else None,
            "last_page": last_page,
            "links": meta_links,
            "path": str(path),
            "per_page": per_page,
            "to": first_index + len(items) if items else None,
            "total": total,
        },
    }
