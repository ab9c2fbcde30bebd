"""A small in-memory ArchiveReader for the HTML/CSV tests, and the exports they render.

``StandInArchive`` holds ticket versions and archived files the way the archive's read
interface presents them; ``from_export`` fills one from a real export folder (tickets.jsonl and
attachments/ written by ``export_tickets`` against FakeVPSBG).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from vpsbg_support._convert import structure
from vpsbg_support.archive import ArchivedAttachment, TicketVersion
from vpsbg_support.export import TICKETS_FILE, attachment_path
from vpsbg_support.models import Attachment, Ticket

ARCHIVED_AT = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)


class StandInArchive:
    """Implements ``ArchiveReader`` over versions and files added by the test."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._versions: dict[int, list[TicketVersion]] = {}
        self._files: dict[tuple[int, int], ArchivedAttachment] = {}
        self._next_version = 1

    def add(self, body: Any, *, fetched_at: datetime = ARCHIVED_AT, run_id: int = 1) -> Ticket:
        """Store a ticket version from its JSON body (a dict or the raw bytes)."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        ticket = structure(json.loads(raw), Ticket)
        version = TicketVersion(
            ticket=ticket,
            raw=raw,
            updated_at=ticket.updated_at,
            fetched_at=fetched_at,
            run_id=run_id,
            version_id=self._next_version,
        )
        self._next_version += 1
        self._versions.setdefault(ticket.id, []).append(version)
        return ticket

    def add_file(self, ticket_id: int, attachment: Attachment, data: bytes) -> ArchivedAttachment:
        """Write an attachment's bytes where the export puts them and record the file."""
        relative = attachment_path(ticket_id, attachment)
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return self._record(ticket_id, attachment, relative, data)

    def _record(
        self, ticket_id: int, attachment: Attachment, relative: str, data: bytes
    ) -> ArchivedAttachment:
        stored = ArchivedAttachment(
            ticket_id=ticket_id,
            attachment_id=attachment.id,
            name=attachment.name,
            path=relative,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            downloaded_at=ARCHIVED_AT,
        )
        self._files[(ticket_id, attachment.id)] = stored
        return stored

    @classmethod
    def from_export(cls, folder: Path, earlier: Iterable[bytes] = ()) -> StandInArchive:
        """Every ticket of an export folder, with the attachment files it holds, after the
        ``earlier`` versions (tickets.jsonl lines an earlier export wrote)."""
        archive = cls(folder)
        for line in earlier:
            archive.add(line)
        for line in (folder / TICKETS_FILE).read_bytes().splitlines():
            ticket = archive.add(line, fetched_at=ARCHIVED_AT + timedelta(seconds=1))
            for attachment in ticket.attachments:
                relative = attachment_path(ticket.id, attachment)
                if (folder / relative).is_file():
                    archive._record(
                        ticket.id, attachment, relative, (folder / relative).read_bytes()
                    )
        return archive

    # The ArchiveReader interface.
    def tickets(self) -> list[Ticket]:
        return [self._versions[i][-1].ticket for i in sorted(self._versions)]

    def ticket(self, ticket_id: int) -> Ticket:
        return self._versions[ticket_id][-1].ticket

    def history(self, ticket_id: int) -> list[TicketVersion]:
        return list(self._versions.get(ticket_id, []))

    def attachments(self, ticket_id: int | None = None) -> list[ArchivedAttachment]:
        return [f for (t, _), f in sorted(self._files.items()) if ticket_id in (None, t)]
