"""Seeded data for the fake: the catalog, generated tickets, deterministic attachment content."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from vpsbg_support._constants import CHUNK_SIZE
from vpsbg_support.testing._records import (
    Attachment,
    Department,
    Message,
    Plan,
    Service,
    Ticket,
    TicketStatus,
)

DEPARTMENTS: tuple[Department, ...] = (
    Department(1, "Billing", "billing"),
    Department(2, "Technical support", "tech-support"),
    Department(3, "Sales", "sales"),
)

SERVICES: tuple[Service, ...] = (
    Service(2747, "server", "ubuntu-16gb - 87.120.8.29"),
    Service(2904, "server", "ubuntu-2gb - 87.121.52.159"),
    Service(3120, "server", "debian-4gb - 87.121.53.12"),
    Service(418, "shared-hosting", "Web Hosting Pro - example-shop.bg"),
)

PLANS: tuple[Plan, ...] = (
    Plan("basic", "Basic", 10),
    Plan("professional", "Professional", 25),
    Plan("enterprise", "Enterprise", 62.5),
)

#: VAT multiplier applied to every price (documented examples use 1.2).
TAX_RATE = 1.2

# A fixed table, not ``mimetypes``: that one reads the host's /etc/mime.types, so the
# same seed could produce different data on different machines.
_MIME_BY_SUFFIX = {
    ".txt": "text/plain",
    ".log": "text/plain",
    ".csv": "text/csv",
    ".json": "application/json",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
    ".gz": "application/gzip",
}
_PRINTABLE = bytes(range(0x20, 0x7F)) + b"\n"
_TEXT_TABLE = bytes(_PRINTABLE[i % len(_PRINTABLE)] for i in range(256))

_EPOCH = datetime(2024, 1, 8, 9, 0, 0, tzinfo=timezone.utc)

_SUBJECTS = (
    "Server not reachable after reboot",
    "High load on {service}",
    "Invoice question for last month",
    "Cannot log in to the control panel",
    "Request for additional IPv4 address",
    "Backup restore needed",
    "Disk almost full on {service}",
    "Email delivery delayed",
    "Upgrade plan to more RAM",
    "SSL certificate renewal failed",
    "DNS records not propagating",
    "Refund for duplicate payment",
)
_CUSTOMER_LINES = (
    "Hello, since this morning {service} does not answer on SSH.",
    "I attached the log from the last hour, please have a look.",
    "The problem is back again, same symptoms as before.",
    "Could you please check what is going on? It is urgent for us.",
    "Thanks, that fixed it. One more question about the <b>backups</b>.",
    "I tried restarting the service but nothing changed.",
    "Please find the screenshot attached.",
    "Is there any maintenance planned this week?",
)
_STAFF_LINES = (
    "Hello, thank you for contacting us. We are looking into it.",
    "We restarted the network interface; please check again.",
    "The node was under maintenance, everything is back to normal now.",
    "Could you send us the output of <code>dmesg | tail -50</code>?",
    "We have applied the change you asked for.",
    "Your invoice has been corrected; the new one is in your client area.",
    "We cannot reproduce the issue on our side. Can you give more details?",
)
_ATTACHMENT_NAMES = (
    "syslog.txt",
    "error.log",
    "screenshot.png",
    "invoice.pdf",
    "photo.jpg",
    "config.json",
    "traffic.csv",
    "dump.zip",
)


def mime_type_for(name: str) -> str:
    """Return the MIME type the fake uses for a file name.

    Args:
        name: a file name; only its suffix matters (case-insensitive).

    Returns:
        The type from a fixed table, or ``application/octet-stream``.
    """
    dot = name.rfind(".")
    return _MIME_BY_SUFFIX.get(name[dot:].lower() if dot >= 0 else "", "application/octet-stream")


def generated_chunks(seed: int, attachment_id: int, size: int, mime_type: str) -> Iterator[bytes]:
    """Yield the deterministic content of a generated attachment, ``CHUNK_SIZE`` bytes at a time.

    Each chunk depends only on (seed, attachment id, chunk index), so huge contents are
    produced lazily and any chunk can be recomputed. Text types get printable bytes.

    Args:
        seed: the fake's seed.
        attachment_id: the attachment's id.
        size: total number of bytes to produce.
        mime_type: ``text/*`` makes the content printable ASCII with newlines.

    Yields:
        Chunks whose concatenation is exactly ``size`` bytes.
    """
    text = mime_type.startswith("text/")
    index = 0
    remaining = size
    while remaining > 0:
        length = min(CHUNK_SIZE, remaining)
        chunk = random.Random(f"{seed}:{attachment_id}:{index}").randbytes(length)
        yield chunk.translate(_TEXT_TABLE) if text else chunk
        remaining -= length
        index += 1


def generated_sha256(seed: int, attachment_id: int, size: int, mime_type: str) -> str:
    """Return the hex sha256 of :func:`generated_chunks` for the same arguments."""
    digest = hashlib.sha256()
    for chunk in generated_chunks(seed, attachment_id, size, mime_type):
        digest.update(chunk)
    return digest.hexdigest()


class IdCounter:
    """Hands out increasing ids, starting at ``start``."""

    def __init__(self, start: int) -> None:
        self._next = start

    def next(self) -> int:
        """Return a fresh id."""
        value = self._next
        self._next += 1
        return value


class TicketGenerator:
    """Builds realistic tickets from one ``random.Random(seed)``, so equal seeds give equal data."""

    def __init__(
        self, seed: int, ticket_ids: IdCounter, message_ids: IdCounter, attachment_ids: IdCounter
    ) -> None:
        self._rng = random.Random(seed)
        self._ticket_ids = ticket_ids
        self._message_ids = message_ids
        self._attachment_ids = attachment_ids

    def tickets(self, count: int) -> list[Ticket]:
        """Generate ``count`` tickets, created one after another (increasing ids and dates)."""
        clock = _EPOCH
        result = []
        for _ in range(count):
            clock += timedelta(seconds=self._rng.randint(600, 3 * 86400))
            result.append(self._ticket(clock))
        return result

    def _ticket(self, created_at: datetime) -> Ticket:
        rng = self._rng
        service = rng.choice((None, *SERVICES))
        label = service.label if service else "my server"
        ticket = Ticket(
            id=self._ticket_ids.next(),
            status="opened",
            subject=rng.choice(_SUBJECTS).format(service=label),
            department=rng.choice(DEPARTMENTS),
            service=service,
            created_at=created_at,
            updated_at=created_at,
        )
        moment = created_at
        for index in range(rng.randint(1, 20)):
            is_customer = index % 2 == 0
            lines = _CUSTOMER_LINES if is_customer else _STAFF_LINES
            content = " ".join(rng.sample(lines, rng.randint(1, 3))).format(service=label)
            message = Message(
                id=self._message_ids.next(),
                content=content,
                is_customer=is_customer,
                created_at=moment,
            )
            message.attachments.extend(self._attachments(ticket.id, message.id))
            ticket.messages.append(message)
            ticket.updated_at = moment
            moment += timedelta(seconds=rng.randint(60, 36 * 3600))
        ticket.status = self._status(ticket)
        return ticket

    def _status(self, ticket: Ticket) -> TicketStatus:
        if self._rng.random() < 0.3:
            return "resolved"
        if not ticket.messages[-1].is_customer:
            return "answered"
        return "opened" if len(ticket.messages) == 1 else "customer-reply"

    def _attachments(self, ticket_id: int, message_id: int) -> list[Attachment]:
        rng = self._rng
        if rng.random() >= 0.25:
            return []
        result = []
        for _ in range(rng.randint(1, 3)):
            name = rng.choice(_ATTACHMENT_NAMES)
            # Log-uniform from a few bytes to ~4 MiB: mostly small files, a few big ones.
            size = int(2 ** rng.uniform(3, 22))
            result.append(
                Attachment(
                    id=self._attachment_ids.next(),
                    ticket_id=ticket_id,
                    message_id=message_id,
                    name=name,
                    mime_type=mime_type_for(name),
                    size=size,
                )
            )
        return result
