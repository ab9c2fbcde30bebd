"""The fake's in-memory account: tickets, attachments, support plan and orders, behind one lock."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Literal

from vpsbg_support.testing._data import (
    DEPARTMENTS,
    PLANS,
    SERVICES,
    TAX_RATE,
    IdCounter,
    TicketGenerator,
    generated_chunks,
    generated_sha256,
    mime_type_for,
)
from vpsbg_support.testing._records import (
    Attachment,
    Cancellation,
    Department,
    Message,
    Order,
    Plan,
    PlanStatus,
    Service,
    Ticket,
    UploadedFile,
)

#: ``attachment_bytes`` refuses bigger attachments: use ``attachment_chunks`` for those.
MAX_IN_MEMORY_ATTACHMENT = 64 * 1024 * 1024

_DAYS_PER_MONTH = 30

#: ``seconds``: times as the real API renders them (``...T11:57:57.000000Z``); ``microseconds``:
#: distinct, strictly increasing times, for tests that need two changes in one second told apart.
TimestampPrecision = Literal["seconds", "microseconds"]


class FakeAPIError(Exception):
    """A request the fake refuses; rendered as ``{"message", "errors"?}`` with ``status``.

    Attributes:
        status: the HTTP status to answer with.
        message: the ``message`` of the JSON body.
        errors: Laravel-style ``{field: [messages]}``, or ``None`` to leave ``errors`` out.
    """

    def __init__(
        self, status: int, message: str, errors: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


def not_found(what: str) -> FakeAPIError:
    """Return the 404 error for a missing ``what`` (e.g. ``"Ticket"``)."""
    return FakeAPIError(404, f"{what} not found.")


def unprocessable(field: str, message: str) -> FakeAPIError:
    """Return a 422 error carrying one field error, in Laravel's shape."""
    return FakeAPIError(422, message, {field: [message]})


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class FakeState:
    """Everything the fake API serves, mutated by its handlers and inspectable by tests.

    Every public method takes ``lock`` (a re-entrant lock), so a test thread may read or change
    the state while the server runs on another thread. Hold ``lock`` yourself to read several
    records consistently.

    Args:
        seed: seeds the generated tickets and generated attachment content.
        tickets: how many tickets to generate.
        active_plan: key of the account's current support plan, or ``None`` for none.
        clock: returns "now" (aware UTC); defaults to the real time.
        timestamp_precision: ``"seconds"`` (default) truncates every new time to the second, as
            the real API does, so two changes in the same second get the same ``updated_at``;
            times never go backwards. ``"microseconds"`` keeps the fraction and makes successive
            times strictly increasing, so ``updated_at`` moves on every change.
        settle_orders_after: seconds after which a new order settles by itself (as if paid,
            or ``settle_orders_as``), seen by the next read; ``None`` (default) leaves orders
            ``awaiting_payment`` until :meth:`settle_order`.
        settle_orders_as: the status orders settle to by themselves (default ``"paid"``).

    Raises:
        ValueError: when ``active_plan`` is not a known plan key, or for an unknown precision.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        tickets: int = 0,
        active_plan: str | None = "basic",
        clock: Callable[[], datetime] | None = None,
        timestamp_precision: TimestampPrecision = "seconds",
        settle_orders_after: float | None = None,
        settle_orders_as: str = "paid",
    ) -> None:
        if settle_orders_after is not None and settle_orders_after < 0:
            raise ValueError("settle_orders_after must not be negative")
        self.settle_orders_after = settle_orders_after
        self.settle_orders_as = settle_orders_as
        if timestamp_precision not in ("seconds", "microseconds"):
            raise ValueError(
                "timestamp_precision must be 'seconds' or 'microseconds', "
                f"not {timestamp_precision!r}"
            )
        self.timestamp_precision: TimestampPrecision = timestamp_precision
        self.lock = threading.RLock()
        self.seed = seed
        self.departments: tuple[Department, ...] = DEPARTMENTS
        self.services: tuple[Service, ...] = SERVICES
        self.plans: tuple[Plan, ...] = PLANS
        self._clock = clock or _utcnow
        self._last_now: datetime | None = None
        self._ticket_ids = IdCounter(1001)
        self._message_ids = IdCounter(50001)
        self._attachment_ids = IdCounter(9001)
        self._order_ids = IdCounter(200001)
        self._invoice_ids = IdCounter(8001)
        self._subscription_ids = IdCounter(501)
        generator = TicketGenerator(seed, self._ticket_ids, self._message_ids, self._attachment_ids)
        self._tickets: dict[int, Ticket] = {t.id: t for t in generator.tickets(tickets)}
        self._attachments: dict[int, Attachment] = {
            a.id: a for t in self._tickets.values() for m in t.messages for a in m.attachments
        }
        self._sha256_cache: dict[int, str] = {}
        self._orders: list[Order] = []
        self._cancellations: list[Cancellation] = []
        if active_plan is not None and all(p.key != active_plan for p in self.plans):
            raise ValueError(f"unknown plan {active_plan!r}")
        self.active_plan: str | None = active_plan
        self.plan_status: PlanStatus | None = "active" if active_plan else None
        self._subscription_id = self._subscription_ids.next()
        self._paid_until = self.now() + timedelta(days=_DAYS_PER_MONTH)

    # -- lookups ---------------------------------------------------------------------------

    def now(self) -> datetime:
        """Return the current time at ``timestamp_precision``: never earlier than a time returned
        before, and strictly later than it at ``"microseconds"``."""
        with self.lock:
            now = self._clock()
            last = self._last_now
            if self.timestamp_precision == "seconds":
                now = now.replace(microsecond=0)
                if last is not None and now < last:
                    now = last
            elif last is not None and now <= last:
                now = last + timedelta(microseconds=1)
            self._last_now = now
            return now

    @property
    def tickets(self) -> list[Ticket]:
        """All tickets, newest (highest id) first; a new list, the records themselves."""
        with self.lock:
            return sorted(self._tickets.values(), key=lambda t: t.id, reverse=True)

    @property
    def orders(self) -> list[Order]:
        """Every order placed so far, oldest first (a new list)."""
        with self.lock:
            self._settle_due_orders()
            return list(self._orders)

    def order(self, order_id: int) -> Order:
        """Return an order (settled first if ``settle_orders_after`` says it is time).

        Raises:
            FakeAPIError: 404 when there is no such order.
        """
        with self.lock:
            self._settle_due_orders()
            found = next((o for o in self._orders if o.id == order_id), None)
            if found is None:
                raise not_found("Order")
            return found

    def settle_order(self, order_id: int, status: str = "paid") -> Order:
        """Play the payment side: give an order its final status (``paid`` sets its
        ``payment_date``; ``cancelled``, or any status, is set as given).

        Raises:
            FakeAPIError: 404 when there is no such order.
        """
        with self.lock:
            found = self.order(order_id)
            self._settle(found, status)
            return found

    def _settle(self, order: Order, status: str) -> None:
        order.status = status
        order.settle_at = None
        if status == "paid":
            order.payment_date = self.now()

    def _settle_due_orders(self) -> None:
        moment = time.monotonic()
        for order in self._orders:
            if order.settle_at is not None and order.settle_at <= moment:
                self._settle(order, self.settle_orders_as)

    @property
    def cancellations(self) -> list[Cancellation]:
        """Every cancellation request received so far, oldest first (a new list of the records,
        whose ``withdrawn_at`` an undo sets)."""
        with self.lock:
            return list(self._cancellations)

    def ticket(self, ticket_id: int) -> Ticket:
        """Return a ticket.

        Raises:
            FakeAPIError: 404 when there is no such ticket.
        """
        with self.lock:
            try:
                return self._tickets[ticket_id]
            except KeyError:
                raise not_found("Ticket") from None

    def department(self, department_id: int) -> Department | None:
        """Return the department with that id, or ``None``."""
        return next((d for d in self.departments if d.id == department_id), None)

    def service(self, service_id: int) -> Service | None:
        """Return the service with that id, or ``None``."""
        return next((s for s in self.services if s.id == service_id), None)

    def plan(self, key: str) -> Plan:
        """Return the plan with that key.

        Raises:
            FakeAPIError: 422 when no plan has that key.
        """
        found = next((p for p in self.plans if p.key == key), None)
        if found is None:
            raise unprocessable("plan", "The selected plan is invalid.")
        return found

    def attachment(self, attachment_id: int, ticket_id: int | None = None) -> Attachment:
        """Return an attachment, checking it belongs to ``ticket_id`` when one is given.

        Raises:
            FakeAPIError: 404 when there is no such attachment on that ticket.
        """
        with self.lock:
            found = self._attachments.get(attachment_id)
            if found is None or (ticket_id is not None and found.ticket_id != ticket_id):
                raise not_found("Attachment")
            return found

    # -- attachment content ----------------------------------------------------------------

    def attachment_chunks(self, attachment_id: int) -> Iterator[bytes]:
        """Yield the bytes the download route serves for an attachment, in 64 KiB chunks.

        Kept bytes are served as they are; otherwise (generated attachments, and uploads
        received with ``keep_upload_bytes=False``) the content is generated from the seed and
        the attachment id, with the recorded size.

        Raises:
            FakeAPIError: 404 when there is no such attachment.
        """
        found = self.attachment(attachment_id)
        if found.content is not None:
            view = memoryview(found.content)
            for start in range(0, len(view), 64 * 1024):
                yield bytes(view[start : start + 64 * 1024])
            return
        yield from generated_chunks(self.seed, found.id, found.size, found.mime_type)

    def attachment_bytes(self, attachment_id: int) -> bytes:
        """Return the whole content the download route serves for an attachment.

        Raises:
            FakeAPIError: 404 when there is no such attachment.
            ValueError: when it is larger than 64 MiB (iterate ``attachment_chunks`` instead).
        """
        found = self.attachment(attachment_id)
        if found.size > MAX_IN_MEMORY_ATTACHMENT:
            raise ValueError(f"attachment {attachment_id} is {found.size} bytes: stream it")
        return b"".join(self.attachment_chunks(attachment_id))

    def attachment_sha256(self, attachment_id: int) -> str:
        """Return the hex sha256 of the content the download route serves (cached).

        Raises:
            FakeAPIError: 404 when there is no such attachment.
        """
        found = self.attachment(attachment_id)
        with self.lock:
            cached = self._sha256_cache.get(attachment_id)
        if cached is None:
            if found.content is not None:
                cached = hashlib.sha256(found.content).hexdigest()
            else:
                cached = generated_sha256(self.seed, found.id, found.size, found.mime_type)
            with self.lock:
                self._sha256_cache[attachment_id] = cached
        return cached

    def add_attachment(
        self,
        ticket_id: int,
        *,
        name: str,
        content: bytes | None = None,
        size: int | None = None,
        mime_type: str | None = None,
    ) -> Attachment:
        """Attach a file to a ticket's last message (a staff message is added if it has none).

        The name is stored verbatim, so tests can serve hostile names (``"../../etc/passwd"``).

        Args:
            ticket_id: the ticket.
            name: the file name the API reports and the download's Content-Disposition carries.
            content: the exact bytes to serve; or leave it out and give ``size``.
            size: bytes of deterministic generated content (e.g. 256 MiB without using memory).
            mime_type: defaults to a guess from ``name``.

        Returns:
            The new attachment (its ``id`` is what the download route takes).

        Raises:
            ValueError: unless exactly one of ``content`` and ``size`` is given.
            FakeAPIError: 404 when there is no such ticket.
        """
        if (content is None) == (size is None):
            raise ValueError("give exactly one of content= and size=")
        with self.lock:
            ticket = self.ticket(ticket_id)
            if not ticket.messages:
                self._append_message(ticket, "Please see the attached file.", False, ())
            message = ticket.messages[-1]
            attachment = Attachment(
                id=self._attachment_ids.next(),
                ticket_id=ticket.id,
                message_id=message.id,
                name=name,
                mime_type=mime_type or mime_type_for(name),
                size=len(content) if content is not None else (size or 0),
                content=content,
            )
            message.attachments.append(attachment)
            self._attachments[attachment.id] = attachment
            return attachment

    # -- ticket changes --------------------------------------------------------------------

    def create_ticket(
        self,
        *,
        department_id: int,
        subject: str,
        message: str,
        service_id: int | None = None,
        attachments: Iterable[UploadedFile] = (),
    ) -> Ticket:
        """Open a ticket with a first customer message, as ``POST /support/tickets`` does.

        Raises:
            FakeAPIError: 422 for an unknown department or service.
        """
        department = self.department(department_id)
        if department is None:
            raise unprocessable("department_id", "The selected department id is invalid.")
        service = None
        if service_id is not None:
            service = self.service(service_id)
            if service is None:
                raise unprocessable("service_id", "The selected service id is invalid.")
        with self.lock:
            now = self.now()
            ticket = Ticket(
                id=self._ticket_ids.next(),
                status="opened",
                subject=subject,
                department=department,
                service=service,
                created_at=now,
                updated_at=now,
            )
            self._tickets[ticket.id] = ticket
            self._append_message(ticket, message, True, attachments)
            return ticket

    def reply(
        self,
        ticket_id: int,
        message: str,
        attachments: Iterable[UploadedFile] = (),
        *,
        is_customer: bool = True,
    ) -> Ticket:
        """Append a message to a ticket; a customer reply sets status ``customer-reply``.

        ``customer-reply``, ``answered`` and ``resolved`` are the fake's own status names: the
        API documents only ``opened``.

        Args:
            ticket_id: the ticket.
            message: the message content.
            attachments: files received with the message.
            is_customer: False to simulate a staff answer (status becomes ``answered``).

        Returns:
            The updated ticket.

        Raises:
            FakeAPIError: 404 when there is no such ticket.
        """
        with self.lock:
            ticket = self.ticket(ticket_id)
            self._append_message(ticket, message, is_customer, attachments)
            ticket.status = "customer-reply" if is_customer else "answered"
            return ticket

    def set_status(self, ticket_id: int, status: str) -> Ticket:
        """Play support's side: give a ticket any status (``updated_at`` moves) and return it.

        Raises:
            FakeAPIError: 404 when there is no such ticket.
        """
        with self.lock:
            ticket = self.ticket(ticket_id)
            ticket.status = status
            ticket.updated_at = self.now()
            return ticket

    def resolve(self, ticket_id: int) -> Ticket:
        """Mark a ticket ``resolved`` (the fake's status name; idempotent) and return it.

        Raises:
            FakeAPIError: 404 when there is no such ticket.
        """
        with self.lock:
            ticket = self.ticket(ticket_id)
            ticket.status = "resolved"
            ticket.updated_at = self.now()
            return ticket

    def _append_message(
        self, ticket: Ticket, content: str, is_customer: bool, uploads: Iterable[UploadedFile]
    ) -> Message:
        now = self.now()
        message = Message(
            id=self._message_ids.next(), content=content, is_customer=is_customer, created_at=now
        )
        for upload in uploads:
            attachment = Attachment(
                id=self._attachment_ids.next(),
                ticket_id=ticket.id,
                message_id=message.id,
                name=upload.name,
                mime_type=upload.mime_type,
                size=upload.size,
                content=upload.content,
                upload_sha256=upload.sha256,
            )
            message.attachments.append(attachment)
            self._attachments[attachment.id] = attachment
        ticket.messages.append(message)
        ticket.updated_at = now
        return message

    # -- support plan ----------------------------------------------------------------------

    def plan_status_of(self, key: str) -> str:
        """Return a plan's ``status`` as the plans list shows it: the account's plan is
        ``active`` (or ``cancel_requested``), every other plan ``available``."""
        with self.lock:
            if key == self.active_plan and self.plan_status is not None:
                return self.plan_status
            return "available"

    def purchase(self, plan: str, billing_cycle: int) -> Order:
        """Buy a plan for ``billing_cycle`` months; it becomes the account's active plan.

        Raises:
            FakeAPIError: 422 for an unknown plan key.
        """
        chosen = self.plan(plan)
        with self.lock:
            now = self.now()
            self.active_plan = chosen.key
            self.plan_status = "active"
            self._subscription_id = self._subscription_ids.next()
            start = int(now.timestamp())
            self._paid_until = now + timedelta(days=_DAYS_PER_MONTH * billing_cycle)
            return self._order("new-service", chosen, billing_cycle, start)

    def renew(self, billing_cycle: int) -> Order:
        """Order ``billing_cycle`` more months of the active plan.

        Raises:
            FakeAPIError: 422 when the account has no support plan.
        """
        with self.lock:
            if self.active_plan is None:
                raise unprocessable("plan", "There is no active support plan to renew.")
            start = int(self._paid_until.timestamp())
            self._paid_until += timedelta(days=_DAYS_PER_MONTH * billing_cycle)
            return self._order("renew-service", self.plan(self.active_plan), billing_cycle, start)

    def cancel(
        self, reason: str | None = None, now: bool = False, *, with_order: bool = False
    ) -> Cancellation:
        """Request cancellation of the active plan (``now=True`` drops it at once).

        Args:
            reason: the reason given, kept in the returned record.
            now: cancel at once instead of at the end of the paid period.
            with_order: also place an Order (type ``custom``, amount 0) for the answer.

        Returns:
            The cancellation, also appended to :attr:`cancellations`.

        Raises:
            FakeAPIError: 422 when there is no active plan or a cancellation is pending.
        """
        with self.lock:
            if self.active_plan is None:
                raise unprocessable("plan", "There is no active support plan to cancel.")
            if self.plan_status == "cancel_requested":
                raise unprocessable("plan", "A cancellation is already pending.")
            plan = self.plan(self.active_plan)
            moment = self.now()
            cancellation = Cancellation(
                plan_key=plan.key, reason=reason, now=now, requested_at=moment
            )
            if with_order:
                cancellation.order = self._order("custom", plan, None, int(moment.timestamp()))
            self._cancellations.append(cancellation)
            if now:
                self.active_plan = None
                self.plan_status = None
            else:
                self.plan_status = "cancel_requested"
            return cancellation

    def undo_cancel(self) -> Cancellation:
        """Withdraw the pending cancellation: the plan is ``active`` again.

        Returns:
            The withdrawn cancellation, its ``withdrawn_at`` set.

        Raises:
            FakeAPIError: 422 when no cancellation is pending.
        """
        with self.lock:
            if self.active_plan is None or self.plan_status != "cancel_requested":
                raise unprocessable("plan", "There is no pending cancellation to undo.")
            # Only a cancel without ``now`` leaves one pending, and it is the latest one.
            pending = next(
                (c for c in reversed(self._cancellations) if not c.now and c.withdrawn_at is None),
                None,
            )
            if pending is None:
                # Seeded by setting ``plan_status``: no request was received, none is recorded.
                assert self.active_plan is not None
                pending = Cancellation(
                    plan_key=self.active_plan, reason=None, now=False, requested_at=self.now()
                )
            pending.withdrawn_at = self.now()
            self.plan_status = "active"
            return pending

    def _order(self, kind: str, plan: Plan, billing_cycle: int | None, start: int) -> Order:
        now = self.now()
        amount = plan.price * billing_cycle if billing_cycle else 0
        order = Order(
            id=self._order_ids.next(),
            invoice_id=self._invoice_ids.next(),
            type=kind,
            plan_key=plan.key,
            billing_cycle=billing_cycle,
            amount=amount,
            amount_with_vat=round(amount * TAX_RATE, 2),
            tax_rate=TAX_RATE,
            status="awaiting_payment",
            created_at=now,
            due_at=now + timedelta(days=7),
            period_from=start,
            period_to=int(self._paid_until.timestamp()),
            subscription_id=self._subscription_id,
        )
        if self.settle_orders_after is not None and kind != "custom":
            order.settle_at = time.monotonic() + self.settle_orders_after
        self._orders.append(order)
        return order
