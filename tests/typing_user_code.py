"""User-style code for the blocking Client, type-checked by ``mypy --strict`` (never executed)."""

from __future__ import annotations

from pathlib import Path

from vpsbg_support import Client
from vpsbg_support.models import Order, Ticket


def summary(token: str) -> list[str]:
    """What a README reader writes: get one ticket, walk them all, download, buy."""
    with Client(token=token) as client:
        t: Ticket = client.tickets.get(216)
        lines = [t.subject]
        for ticket in client.tickets.iter_all():
            print(ticket.subject)
            lines.append(ticket.subject)
        for message in t.messages:
            for attachment in message.attachments:
                saved: Path | None = client.tickets.download_attachment(t.id, attachment, "dl/")
                lines.append(str(saved))
        with client.tickets.stream_attachment(216, 5) as stream:
            size = sum(len(chunk) for chunk in stream.iter_chunks())
            lines.append(f"{stream.name}: {size}")
        order: Order = client.plans.renew(billing_cycle=12)
        lines.append(str(order))
        return lines
