"""Ticket models: tickets, their messages and attachments, departments and related services.

Required fields are the ones the client cannot work without: ``Ticket.id``, ``Ticket.status``,
``Ticket.subject``, ``Attachment.id``, ``Attachment.name``, ``Department.id``, ``Department.name``
and ``RelatedService.id``. Everything else is optional and defaults to ``None`` (or an empty tuple
for lists), because the documented examples drift from the documented schema: messages without
``id`` or ``created_at``, tickets without a service, list items without messages.

Every model keeps the keys it does not know in ``extra``, exactly as received. Wire names and
aliases (``mimeType``, ``message``, ``from_customer``, ``service``, ``key``) are handled by the one
converter in ``vpsbg_support._convert``; these classes only hold values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from vpsbg_support.models._wire import WireModel

__all__ = ["Attachment", "Department", "RelatedService", "Ticket", "TicketMessage"]


@attrs.frozen(kw_only=True)
class Attachment(WireModel):
    """A file attached to a ticket message.

    Attributes:
        id: attachment id, used to download the file.
        name: file name as stored by VPSBG (not sanitised; downloads sanitise it).
        size: size in bytes, when given.
        mime_type: MIME type (wire ``mimeType``, also read from ``mime_type``).
        extra: keys the library does not know, exactly as received.
    """

    id: int
    name: str
    size: int | None = None
    mime_type: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class TicketMessage(WireModel):
    """One message in a ticket's conversation.

    Attributes:
        id: message id; ``None`` when the API leaves it out (seen in a documented example).
        content: the message body, possibly HTML (wire ``content``, also read from ``message``).
        is_customer: True when the customer wrote it, False for support staff (wire
            ``is_customer``, also read from ``from_customer``); ``None`` when not given.
        created_at: when it was written (aware, UTC), if given.
        attachments: the files attached to this message, in order.
        user: the author's display name, if given.
        extra: keys the library does not know, exactly as received.
    """

    id: int | None = None
    content: str | None = None
    is_customer: bool | None = None
    created_at: datetime | None = None
    attachments: tuple[Attachment, ...] = ()
    user: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class Ticket(WireModel):
    """A support ticket with its conversation.

    Attributes:
        id: ticket id.
        status: ticket status, an open string (only ``"opened"`` is documented).
        subject: the subject line.
        created_at: when the ticket was opened (aware, UTC), if given.
        updated_at: when it last changed (aware, UTC), if given.
        department: the department slug, e.g. ``"tech-support"``.
        service_label: human-readable label of the related service (wire ``service_label``,
            falling back to ``service``).
        service_type: kind of related service, an open string (``"server"``,
            ``"shared-hosting"``, ...).
        service_id: id of the related service, if any.
        messages: the conversation in order; empty when the response leaves it out (lists).
        user: the ticket owner's display name, if given.
        extra: keys the library does not know, exactly as received.
    """

    id: int
    status: str
    subject: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    department: str | None = None
    service_label: str | None = None
    service_type: str | None = None
    service_id: int | None = None
    messages: tuple[TicketMessage, ...] = ()
    user: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)

    @property
    def attachments(self) -> tuple[Attachment, ...]:
        """Every attachment of every message, in conversation order.

        Returns:
            The attachments, oldest message first.
        """
        return tuple(a for message in self.messages for a in message.attachments)


@attrs.frozen(kw_only=True)
class Department(WireModel):
    """A support department a ticket can be opened in.

    Attributes:
        id: the ``department_id`` to send when opening a ticket.
        name: display name.
        slug: the slug tickets carry in ``Ticket.department`` (wire ``slug``, also read from
            ``key``), if given.
        extra: keys the library does not know, exactly as received.
    """

    id: int
    name: str
    slug: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class RelatedService(WireModel):
    """A service of the account that a ticket can refer to.

    Attributes:
        id: the ``service_id`` to send when opening a ticket.
        type: the ``service_type`` to send, an open string (``"server"``, ``"hosting"``, ...).
        label: human-readable label.
        extra: keys the library does not know, exactly as received.
    """

    id: int
    type: str | None = None
    label: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
