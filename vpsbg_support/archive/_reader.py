"""``Archive``: an export folder opened read-only, through its ``archive.sqlite``."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import date, datetime, timezone
from pathlib import Path
from types import TracebackType

import attrs

from vpsbg_support import _constants as C
from vpsbg_support.archive._api import parse_ticket
from vpsbg_support.archive._folder import ArchiveFolder
from vpsbg_support.archive._results import JOURNAL_FILE
from vpsbg_support.archive._search import SearchHit, search
from vpsbg_support.archive._store import DB_FILE, connect
from vpsbg_support.archive._times import as_utc, parse_stamp, stamp
from vpsbg_support.archive._verify import Problem, verify
from vpsbg_support.errors import InvalidParameterError
from vpsbg_support.models import Ticket


@attrs.frozen(kw_only=True)
class TicketVersion:
    """One distinct version of a ticket, as it was fetched.

    Attributes:
        ticket: the version, parsed.
        raw: its body, byte for byte as the API sent it.
        updated_at: its ``updated_at``, if any.
        fetched_at: when the export read it.
        run_id: the run that read it.
        version_id: its row in ``ticket_versions``.
    """

    ticket: Ticket
    raw: bytes
    updated_at: datetime | None
    fetched_at: datetime
    run_id: int
    version_id: int


@attrs.frozen(kw_only=True)
class ArchivedAttachment:
    """An attachment file in the archive.

    Attributes:
        ticket_id: its ticket.
        attachment_id: its id (two tickets may name the same id: two files).
        name: the name the API gave it.
        path: the file, relative to the archive folder (POSIX).
        size: its size in bytes.
        sha256: the hex sha256 of its bytes, computed from the file on disk.
        downloaded_at: when it was downloaded.
    """

    ticket_id: int
    attachment_id: int
    name: str
    path: str
    size: int
    sha256: str
    downloaded_at: datetime


@attrs.frozen(kw_only=True)
class Change:
    """Something a run saw change.

    Attributes:
        run_id: the run.
        ticket_id: the ticket.
        kind: ``new`` (first seen), ``messages`` (new messages), ``status`` (its status
            changed), ``edited`` (another change) or ``gone`` (no longer listed).
        detail: e.g. ``"2 new messages"`` or ``"opened -> closed"``.
        at: when the run saw it.
        subject: the ticket's subject (latest version).
    """

    run_id: int
    ticket_id: int
    kind: str
    detail: str | None
    at: datetime
    subject: str | None


@attrs.frozen(kw_only=True)
class Run:
    """One export run into the archive.

    Attributes:
        id: its id.
        started_at: when it started.
        finished_at: when it ended (None: killed, or still running).
        source: the API's base URL it read from.
        complete: whether it wrote a manifest.
        fetched: tickets it read.
        downloaded: attachment files it downloaded.
        failures: what it could not export.
        migrated: whether it is the import of an archive of an earlier version.
    """

    id: int
    started_at: datetime
    finished_at: datetime | None
    source: str
    complete: bool
    fetched: int
    downloaded: int
    failures: int
    migrated: bool


class Archive:
    """An export folder, read-only: its tickets, their history, attachments, search, verify.

    ``with Archive("archive/") as archive: archive.search("disk full")``

    Args:
        path: the export folder (holding ``archive.sqlite``).

    Raises:
        InvalidParameterError: no archive there, or one written by an earlier version not yet
            migrated (any export into it migrates it).
        ExportError: ``archive.sqlite`` cannot be read.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        database = self.path / DB_FILE
        if not database.is_file() or database.is_symlink():
            hint = (
                " (an export of an earlier version: run the export once to migrate it)"
                if (self.path / JOURNAL_FILE).exists()
                else ""
            )
            raise InvalidParameterError("path", f"{self.path}: no {DB_FILE} here{hint}")
        self._db: sqlite3.Connection = connect(database, readonly=True)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def source(self) -> str | None:
        """The API base URL the archive was exported from."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'source'").fetchone()
        return None if row is None else str(row[0])

    def tickets(self) -> list[Ticket]:
        """The latest version of every archived ticket, by id."""
        rows = self._db.execute(
            "SELECT v.raw FROM tickets t JOIN ticket_versions v ON v.id = t.version_id"
            " ORDER BY t.id"
        )
        return [parse_ticket(json.loads(raw)) for (raw,) in rows]

    def ticket(self, ticket_id: int) -> Ticket:
        """The latest version of one ticket.

        Raises:
            InvalidParameterError: the archive has no such ticket.
        """
        row = self._db.execute(
            "SELECT v.raw FROM tickets t JOIN ticket_versions v ON v.id = t.version_id"
            " WHERE t.id = ?",
            (ticket_id,),
        ).fetchone()
        if row is None:
            raise InvalidParameterError(
                "ticket_id", f"{ticket_id} is not in the archive {self.path}"
            )
        return parse_ticket(json.loads(row[0]))

    def history(self, ticket_id: int) -> list[TicketVersion]:
        """Every distinct version of a ticket, oldest first (empty if never archived)."""
        rows = self._db.execute(
            "SELECT id, raw, updated_at, fetched_at, run_id FROM ticket_versions"
            " WHERE ticket_id = ? ORDER BY id",
            (ticket_id,),
        )
        return [
            TicketVersion(
                ticket=parse_ticket(json.loads(raw)),
                raw=bytes(raw),
                updated_at=parse_stamp(updated),
                fetched_at=parse_stamp(fetched) or datetime.min.replace(tzinfo=timezone.utc),
                run_id=run_id,
                version_id=vid,
            )
            for vid, raw, updated, fetched, run_id in rows
        ]

    def attachments(self, ticket_id: int | None = None) -> list[ArchivedAttachment]:
        """The attachment files on record (of one ticket, or all), by ticket and id."""
        sql = (
            "SELECT ticket_id, attachment_id, name, path, size, sha256, downloaded_at"
            " FROM attachments"
        )
        params: tuple[int, ...] = ()
        if ticket_id is not None:
            sql += " WHERE ticket_id = ?"
            params = (ticket_id,)
        rows = self._db.execute(sql + " ORDER BY ticket_id, attachment_id", params)
        return [
            ArchivedAttachment(
                ticket_id=tid,
                attachment_id=aid,
                name=name,
                path=path,
                size=size,
                sha256=digest,
                downloaded_at=parse_stamp(at) or datetime.min.replace(tzinfo=timezone.utc),
            )
            for tid, aid, name, path, size, digest, at in rows
        ]

    def search(self, query: str, limit: int = C.ARCHIVE_SEARCH_LIMIT) -> list[SearchHit]:
        """Tickets whose subject or messages contain every word of ``query``, best first.

        Raises:
            InvalidParameterError: an empty query or a bad limit.
        """
        return search(self._db, query, limit)

    def changes(self, since: datetime | date | None = None) -> list[Change]:
        """What the runs saw change, oldest first; only since ``since`` when given (a date or
        a naive datetime is UTC)."""
        sql = (
            "SELECT c.run_id, c.ticket_id, c.kind, c.detail, c.at, v.subject FROM changes c"
            " LEFT JOIN tickets t ON t.id = c.ticket_id"
            " LEFT JOIN ticket_versions v ON v.id = t.version_id"
        )
        params: tuple[str, ...] = ()
        if since is not None:
            sql += " WHERE c.at >= ?"
            params = (stamp(as_utc(since) or datetime.min),)
        rows = self._db.execute(sql + " ORDER BY c.id", params)
        return [
            Change(
                run_id=run_id,
                ticket_id=tid,
                kind=kind,
                detail=detail,
                at=parse_stamp(at) or datetime.min.replace(tzinfo=timezone.utc),
                subject=subject,
            )
            for run_id, tid, kind, detail, at, subject in rows
        ]

    def runs(self) -> list[Run]:
        """Every run into the archive, oldest first."""
        rows = self._db.execute(
            "SELECT id, started_at, finished_at, source, complete, fetched, downloaded,"
            " failures, migrated FROM runs ORDER BY id"
        )
        return [
            Run(
                id=rid,
                started_at=parse_stamp(started) or datetime.min.replace(tzinfo=timezone.utc),
                finished_at=parse_stamp(finished),
                source=source,
                complete=bool(complete),
                fetched=fetched,
                downloaded=downloaded,
                failures=failures,
                migrated=bool(migrated),
            )
            for (
                rid,
                started,
                finished,
                source,
                complete,
                fetched,
                downloaded,
                failures,
                migrated,
            ) in rows
        ]

    def verify(self) -> list[Problem]:
        """Hash every recorded file again from disk; each missing or differing file is a
        Problem (empty: all good)."""
        with ArchiveFolder(self.path, create=False) as folder:
            return verify(folder, self._db)
