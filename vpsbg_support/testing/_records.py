"""The fake server's in-memory records: what it stores, before any JSON rendering."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import attrs

#: Only ``opened`` is documented; the other three are the fake's invention (the real values are
#: unknown), so code under test should treat a status as an open string.
TicketStatus = Literal["opened", "answered", "customer-reply", "resolved"]
PlanStatus = Literal["active", "cancel_requested"]


@attrs.frozen
class Department:
    """A support department a ticket is filed under.

    Attributes:
        id: the ``department_id`` sent on create.
        name: human-readable name.
        slug: what a ticket's ``department`` field carries.
    """

    id: int
    name: str
    slug: str


@attrs.frozen
class Service:
    """A customer service a ticket may refer to (``service_id``/``service_type`` on create)."""

    id: int
    type: str
    label: str


@attrs.frozen
class Plan:
    """A support plan offered for purchase; ``price`` is per month, without VAT."""

    key: str
    name: str
    price: float


@attrs.define(kw_only=True)
class Attachment:
    """A file attached to a ticket message.

    Attributes:
        id: globally unique attachment id (the download route's ``attachment_id``).
        ticket_id: the ticket the attachment belongs to.
        message_id: the message it is attached to.
        name: file name exactly as uploaded or configured (may be hostile on purpose).
        mime_type: served as ``mimeType`` and as the download's Content-Type.
        size: size in bytes of the content the download serves.
        content: the bytes, when kept; ``None`` for generated content (deterministic from
            the fake's seed and ``id``) and for uploads received with ``keep_upload_bytes=False``.
        upload_sha256: hex sha256 of the uploaded bytes, for attachments received over HTTP.
    """

    id: int
    ticket_id: int
    message_id: int
    name: str
    mime_type: str
    size: int
    content: bytes | None = None
    upload_sha256: str | None = None


@attrs.define(kw_only=True)
class Message:
    """One message of a ticket, written by the customer or by support staff."""

    id: int
    content: str
    is_customer: bool
    created_at: datetime
    attachments: list[Attachment] = attrs.field(factory=list)


@attrs.define(kw_only=True)
class Ticket:
    """A support ticket with its messages, oldest message first."""

    id: int
    status: str  # one of TicketStatus, or any string given to ``FakeState.set_status``
    subject: str
    department: Department
    service: Service | None
    created_at: datetime
    updated_at: datetime
    messages: list[Message] = attrs.field(factory=list)


@attrs.define(kw_only=True)
class Order:
    """An order placed by a support-plan call (purchase, renew; cancel only when the fake is
    told to answer cancel with an Order).

    Attributes:
        type: the Order ``type``: ``new-service`` (purchase), ``renew-service`` (renew),
            ``custom`` (cancel), all documented values.
        plan_key: the plan the order concerns.
        billing_cycle: months bought; ``None`` for a cancellation.
        amount: total without VAT; ``amount_with_vat`` applies ``tax_rate``.
        period_from, period_to: the period the order covers, as epoch seconds.
        payment_date: when it was settled as paid (``settle_order``), else ``None``.
        settle_at: the ``time.monotonic()`` at which it settles by itself (the fake's
            ``settle_orders_after``), or ``None``.
    """

    id: int
    invoice_id: int
    type: str
    plan_key: str
    billing_cycle: int | None
    amount: float
    amount_with_vat: float
    tax_rate: float
    status: str
    created_at: datetime
    due_at: datetime
    period_from: int
    period_to: int
    subscription_id: int
    payment_date: datetime | None = None
    settle_at: float | None = None


@attrs.define(kw_only=True)
class Cancellation:
    """One request to cancel the support plan, as received by ``POST /support/cancel``.

    Attributes:
        plan_key: the plan it cancels.
        reason: the ``reason`` the client sent, or ``None``.
        now: True for an immediate cancellation (the plan is dropped at once).
        requested_at: when it was received.
        withdrawn_at: when ``DELETE /support/cancel`` withdrew it, or ``None``.
        order: the Order the fake answered with, when told to (``cancel_returns_204=False``).
    """

    plan_key: str
    reason: str | None
    now: bool
    requested_at: datetime
    withdrawn_at: datetime | None = None
    order: Order | None = None


@attrs.frozen(kw_only=True)
class UploadedFile:
    """One ``attachments[]`` part as received: name, type, size, digest, and bytes when kept.

    In :attr:`RecordedRequest.files <vpsbg_support.testing.RecordedRequest.files>` ``content``
    is always ``None``: the request log keeps what was sent, not the bytes.
    """

    name: str
    mime_type: str
    size: int
    sha256: str
    content: bytes | None = None
