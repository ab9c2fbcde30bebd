"""User-style code for the blocking Client, type-checked by ``mypy --strict`` (never executed).

It follows the README's blocking examples; ``assert_type`` pins the exact types a user gets, so a
generated signature that drifts to ``Any`` or to an async type fails the type check.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from typing_extensions import assert_type

from vpsbg_support import (
    APIConnectionError,
    APIStatusError,
    AsyncClient,
    Client,
    InvalidParameterError,
    OrderCancelledError,
    StatusChanged,
    SupportReplied,
    SyncAttachmentStream,
    TicketEvent,
    TicketMessage,
    WaitTimeoutError,
)
from vpsbg_support.export import ExportSummary
from vpsbg_support.models import Order, Page, SupportPlan, Ticket
from vpsbg_support.responses import RawResponse
from vpsbg_support.testing import FakeVPSBG, FakeVPSBGThread


def summary(token: str) -> list[str]:
    """What a README reader writes: get one ticket, walk them all, download, buy."""
    with Client(token=token) as client:
        assert_type(client, Client)
        t: Ticket = client.tickets.get(216)
        lines = [t.subject]
        assert_type(client.tickets.iter_all(), Iterator[Ticket])
        for ticket in client.tickets.iter_all():
            print(ticket.subject)
            lines.append(ticket.subject)
        for message in t.messages:
            for attachment in message.attachments:
                saved: Path | None = client.tickets.download_attachment(t.id, attachment, "dl/")
                lines.append(str(saved))
        streaming = client.tickets.stream_attachment(216, 5)
        assert_type(streaming, AbstractContextManager[SyncAttachmentStream])
        with streaming as stream:
            size = sum(len(chunk) for chunk in stream.iter_chunks())
            lines.append(f"{stream.name}: {size}")
        order: Order = client.plans.renew(billing_cycle=12)
        lines.append(str(order))
        return lines


def quickstart() -> None:
    """The README's blocking quickstart: token from the environment."""
    with Client() as client:
        page = client.tickets.list(per_page=5)
        assert_type(page, Page[Ticket])
        ticket = client.tickets.get(page.items[0].id)
        for attachment in ticket.attachments:
            path = client.tickets.download_attachment(ticket.id, attachment, f"dl/{attachment.id}/")
            assert_type(path, Path | None)
        assert_type(client.plans.list(), list[SupportPlan])
        assert_type(client.plans.cancel(reason="moving"), Order | None)
    assert_type(client.closed, bool)


def export_and_errors() -> ExportSummary:
    """Export as a Client method, and the README's error handling."""
    with Client() as client:
        try:
            client.plans.renew(billing_cycle=2)
        except InvalidParameterError as exc:
            print("not sent:", exc.field, exc.message)
        try:
            client.plans.renew(billing_cycle=1)
        except (APIConnectionError, APIStatusError) as exc:
            if exc.request_sent:
                print("may have gone through")
            raise
        return client.export_tickets("support-archive", concurrency=4, attachments=False)


def against_the_fake() -> None:
    """The README's testing example: a positional token and the fake's URL."""
    with (
        FakeVPSBGThread(FakeVPSBG(seed=1, tickets=5)) as fake,
        Client(fake.token, base_url=fake.url, max_retries=0) as client,
    ):
        created = client.tickets.create(department_id=2, subject="Hello", message="Testing 1 2 3")
        assert_type(created, Ticket)


def raw_responses(token: str) -> Ticket:
    """``with_raw_response``: the raw twin of a call parses to that call's type, on both clients."""
    with Client(token) as client:
        raw = client.tickets.with_raw_response.get(216)
        assert_type(raw, RawResponse[Ticket])
        assert_type(raw.parse(), Ticket)
        assert_type(raw.request_id, str | None)
        assert_type(client.plans.with_raw_response.cancel(now=True).parse(), Order | None)
        saved = client.tickets.with_raw_response.download_attachment(216, 5, "dl/")
        assert_type(saved.parse(), Path | None)
        return raw.parse()


async def raw_responses_async(token: str) -> Page[Ticket]:
    """The same on AsyncClient."""
    async with AsyncClient(token) as client:
        raw = await client.tickets.with_raw_response.get(216)
        assert_type(raw.parse(), Ticket)
        listed = await client.tickets.with_raw_response.list(page=2)
        assert_type(listed.parse(), Page[Ticket])
        assert_type((await client.plans.with_raw_response.renew(billing_cycle=1)).parse(), Order)
        return listed.parse()


def live(token: str) -> str | None:
    """What the README's live section writes: watch with pattern matching, wait for orders."""
    with Client(token=token) as client:
        assert_type(client.tickets.watch(interval=30), Iterator[TicketEvent])
        for event in client.tickets.watch(cursor=client.tickets.watch_cursor()):
            match event:
                case SupportReplied(ticket=t, message=m):
                    assert_type(m, TicketMessage)
                    return f"{t.id}: {m.content}"
                case StatusChanged(old=old, new=new):
                    assert_type(old, str)
                    return new
            assert_type(event.cursor, str)
        assert_type(client.tickets.wait_for_reply(1, timeout=60), TicketMessage)
        assert_type(client.orders.list(status="paid"), Page[Order])
        try:
            order = client.orders.wait(7801, until={"paid"}, timeout=600)
        except (OrderCancelledError, WaitTimeoutError):
            return None
        assert_type(order, Order)
        return order.status
