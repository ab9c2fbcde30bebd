"""Ticket events that ``client.tickets.watch()`` yields: a ticket opened, a reply, a status change.

Every event carries the ticket as read when the change was seen (with all its messages) and a
``cursor``: an opaque string to persist and pass back as ``watch(cursor=...)`` to resume right
after this event, with nothing lost or repeated.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from vpsbg_support.models.tickets import Ticket, TicketMessage

__all__ = ["CustomerReplied", "StatusChanged", "SupportReplied", "TicketEvent", "TicketOpened"]


@attrs.frozen(kw_only=True)
class TicketOpened:
    """A ticket that did not exist before appeared (opened here, in the web panel or by staff).

    Attributes:
        ticket: the new ticket, with its first message.
        cursor: resume ``watch`` after this event with it.
    """

    kind: ClassVar[str] = "ticket_opened"
    ticket: Ticket
    cursor: str = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class SupportReplied:
    """Support staff added a message to a ticket (a message whose ``is_customer`` is not True).

    Attributes:
        ticket: the ticket, with every message.
        message: the new message.
        cursor: resume ``watch`` after this event with it.
    """

    kind: ClassVar[str] = "support_replied"
    ticket: Ticket
    message: TicketMessage
    cursor: str = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class CustomerReplied:
    """The account's own side added a message (``is_customer`` True): this client, another
    script, or the web panel.

    Attributes:
        ticket: the ticket, with every message.
        message: the new message.
        cursor: resume ``watch`` after this event with it.
    """

    kind: ClassVar[str] = "customer_replied"
    ticket: Ticket
    message: TicketMessage
    cursor: str = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class StatusChanged:
    """A ticket's status changed (statuses are open strings: only ``opened`` is documented).

    Attributes:
        ticket: the ticket, in its new status.
        old: the status before.
        new: the status now (``ticket.status``).
        cursor: resume ``watch`` after this event with it.
    """

    kind: ClassVar[str] = "status_changed"
    ticket: Ticket
    old: str
    new: str
    cursor: str = attrs.field(repr=False)


#: Any event ``watch`` yields.
TicketEvent = TicketOpened | SupportReplied | CustomerReplied | StatusChanged
