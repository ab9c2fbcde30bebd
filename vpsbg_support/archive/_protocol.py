"""What the HTML and CSV views read from an archive: a read-only Protocol, nothing more.

``vpsbg_support.archive.Archive`` implements it; the views depend on this shape only, so they
render any archive-like object (a test's stand-in included) and never touch SQLite themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from vpsbg_support.models import Ticket

__all__ = ["ArchiveReader", "ArchivedAttachmentLike", "TicketVersionLike"]


class TicketVersionLike(Protocol):
    """One stored version of a ticket, as the archive read it at one time."""

    @property
    def ticket(self) -> Ticket:
        """The ticket as it was then."""

    @property
    def raw(self) -> bytes:
        """The response body it was read from."""

    @property
    def updated_at(self) -> datetime | None:
        """The ticket's ``updated_at`` in that version."""

    @property
    def fetched_at(self) -> datetime:
        """When the archive read it."""

    @property
    def run_id(self) -> int:
        """The export run that read it."""

    @property
    def version_id(self) -> int:
        """The version's id, unique in the archive and increasing with time."""


class ArchivedAttachmentLike(Protocol):
    """An attachment file stored in the archive folder."""

    @property
    def ticket_id(self) -> int:
        """The ticket it belongs to."""

    @property
    def attachment_id(self) -> int:
        """Its attachment id."""

    @property
    def name(self) -> str:
        """Its name as VPSBG gave it."""

    @property
    def path(self) -> str:
        """Where the file is: a POSIX path relative to the archive folder."""

    @property
    def size(self) -> int:
        """Its size in bytes, as written."""

    @property
    def sha256(self) -> str:
        """The hex sha256 of its bytes."""

    @property
    def downloaded_at(self) -> datetime:
        """When it was downloaded."""


class ArchiveReader(Protocol):
    """The read-only view of an archive the HTML and CSV renderers need.

    Return types are ``Sequence`` (covariant) so an archive returning ``list[TicketVersion]``
    matches.
    """

    @property
    def path(self) -> Path:
        """The archive folder."""

    def tickets(self) -> Sequence[Ticket]:
        """The latest version of every ticket, by id."""

    def ticket(self, ticket_id: int) -> Ticket:
        """The latest version of one ticket."""

    def history(self, ticket_id: int) -> Sequence[TicketVersionLike]:
        """Every stored version of a ticket, oldest first."""

    def attachments(self, ticket_id: int | None = None) -> Sequence[ArchivedAttachmentLike]:
        """The archived attachment files, of one ticket or of all."""
