"""What the search index holds of a ticket: its messages as plain text (the same text
``tickets show`` and the CSV index print)."""

from __future__ import annotations

from collections.abc import Iterable

from vpsbg_support.archive._htmltext import html_to_text
from vpsbg_support.models import Ticket


def messages_text(ticket: Ticket) -> str:
    """Every message of a ticket as plain text, one after another, attachment names included."""
    parts: list[str] = []
    for message in ticket.messages:
        if message.content:
            parts.append(html_to_text(message.content))
        parts.extend(_names(message.attachments))
    return "\n\n".join(part for part in parts if part)


def _names(attachments: Iterable[object]) -> Iterable[str]:
    for attachment in attachments:
        name = getattr(attachment, "name", None)
        if isinstance(name, str):
            yield name
