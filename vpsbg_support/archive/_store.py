"""``archive.sqlite`` written during an export: batched transactions, one writer.

The schema and its migrations are in ``_schema``.

Durability (see ``_schema``): WAL with ``synchronous=NORMAL`` while a run works, and one
durable commit (``commit_durably``) before the views are written. Commits are batched
(``ARCHIVE_COMMIT_INTERVAL``); a killed process loses nothing committed. An attachment's row
is committed only after its file was renamed into place and fsynced, so a row never names a
file that is not complete on disk.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import attrs

from vpsbg_support import _constants as C
from vpsbg_support.archive._schema import DB_FILE, connect
from vpsbg_support.errors import ExportError


def sql_text(text: str | None) -> str | None:
    """``text`` as SQLite can store it: a lone surrogate (legal in JSON, not in UTF-8) becomes
    U+FFFD."""
    if text is None:
        return None
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


@attrs.frozen(kw_only=True)
class KnownTicket:
    """What a run needs to know of an archived ticket to decide whether to read it again."""

    updated_at: str | None
    settled: bool
    sha256: str
    messages: int
    status: str | None


@attrs.frozen(kw_only=True)
class WantedFile:
    """An attachment a ticket's latest version names, and where its file goes."""

    attachment_id: int
    name: str
    path: str
    size: int | None


@attrs.frozen(kw_only=True)
class FileRow:
    """An attachment file as recorded: where, what, and its status when it was hashed."""

    ticket_id: int
    attachment_id: int
    path: str
    size: int
    sha256: str
    stat: tuple[int, int, int] | None


class Store:
    """Writing ``archive.sqlite`` during an export: batched transactions, one writer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = connect(path, readonly=False)
        self._committed_at = time.monotonic()
        self._in_transaction = False

    def close(self) -> None:
        """Commit what is pending and close."""
        self.commit()
        self.db.close()

    # -- transactions ------------------------------------------------------------------------

    def _begin(self) -> None:
        if not self._in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self._in_transaction = True

    def commit(self) -> None:
        """Commit now (on disk when this returns)."""
        if self._in_transaction:
            self._wrap(lambda: self.db.execute("COMMIT"))
            self._in_transaction = False
        self._committed_at = time.monotonic()

    def commit_durably(self) -> None:
        """Commit, and wait until everything committed so far is on disk (``synchronous=FULL``
        for this commit; the views written next must not describe rows a power cut loses)."""
        self.commit()
        self.db.execute("PRAGMA synchronous=FULL")
        try:
            # A write of its own, so that this commit syncs the log with all before it.
            self.execute("UPDATE meta SET value = value WHERE key = 'source'")
            self.commit()
        finally:
            self.db.execute("PRAGMA synchronous=NORMAL")

    def rollback(self) -> None:
        """Drop what is not committed."""
        if self._in_transaction:
            self.db.execute("ROLLBACK")
            self._in_transaction = False

    def maybe_commit(self) -> None:
        """Commit if the last commit is older than ``ARCHIVE_COMMIT_INTERVAL``."""
        if time.monotonic() - self._committed_at >= C.ARCHIVE_COMMIT_INTERVAL:
            self.commit()

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        """Run a statement inside the current batch."""
        self._begin()
        cursor: sqlite3.Cursor = self._wrap(lambda: self.db.execute(sql, params))
        return cursor

    def _wrap(self, work: Any) -> Any:
        try:
            return work()
        except sqlite3.Error as exc:
            raise ExportError(f"{self.path}: {exc}", path=str(self.path)) from None

    # -- meta ---------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        """A value of the ``meta`` table."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a value of the ``meta`` table."""
        self.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- runs ---------------------------------------------------------------------------------

    def start_run(
        self,
        *,
        started_at: str,
        source: str,
        since: str | None,
        attachments: bool,
        migrated: bool = False,
    ) -> int:
        """Record a run's start; returns its id (committed at once)."""
        cursor = self.execute(
            "INSERT INTO runs (started_at, source, since, attachments, migrated)"
            " VALUES (?, ?, ?, ?, ?)",
            (started_at, source, since, int(attachments), int(migrated)),
        )
        self.commit()
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def finish_run(self, run_id: int, *, finished_at: str, complete: bool, **counts: int) -> None:
        """Record a run's end and its counts."""
        assignments = "".join(f", {name} = ?" for name in counts)
        self.execute(
            f"UPDATE runs SET finished_at = ?, complete = ?{assignments} WHERE id = ?",
            (finished_at, int(complete), *counts.values(), run_id),
        )
        self.commit()

    def forget_run(self, run_id: int) -> None:
        """Remove a run that changed nothing (refused before its first write)."""
        self.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        self.commit()

    def unfinished_windows(self) -> list[str | None]:
        """The ``since`` of every run since the last complete one that did not complete."""
        rows = self.db.execute(
            "SELECT since FROM runs WHERE complete = 0 AND migrated = 0 AND id >"
            " COALESCE((SELECT MAX(id) FROM runs WHERE complete = 1), 0)"
        ).fetchall()
        return [row[0] for row in rows]

    # -- tickets ------------------------------------------------------------------------------

    def ticket_states(self) -> dict[int, tuple[str | None, bool]]:
        """Every archived ticket's ``updated_at`` and whether its copy is settled: all a
        re-run needs up front (plain tuples: 20,000 tickets load in milliseconds)."""
        rows = self.db.execute("SELECT id, updated_at, settled FROM tickets")
        return {tid: (updated, bool(settled)) for tid, updated, settled in rows}

    def known_ticket(self, ticket_id: int) -> KnownTicket | None:
        """What recording a new version of an archived ticket compares with."""
        row = self.db.execute(
            "SELECT t.updated_at, t.settled, v.sha256, v.messages, v.status"
            " FROM tickets t JOIN ticket_versions v ON v.id = t.version_id WHERE t.id = ?",
            (ticket_id,),
        ).fetchone()
        if row is None:
            return None
        updated, settled, digest, messages, status = row
        return KnownTicket(
            updated_at=updated,
            settled=bool(settled),
            sha256=digest,
            messages=messages,
            status=status,
        )

    def ticket_files(self, ticket_id: int) -> list[WantedFile]:
        """The attachments a ticket's latest version names."""
        rows = self.db.execute(
            "SELECT attachment_id, name, path, size FROM ticket_files WHERE ticket_id = ?"
            " ORDER BY attachment_id",
            (ticket_id,),
        )
        return [
            WantedFile(attachment_id=aid, name=name, path=path, size=size)
            for aid, name, path, size in rows
        ]

    def latest_sha256(self, ticket_id: int) -> str:
        """The sha256 of a ticket's latest version's body."""
        row = self.execute(
            "SELECT v.sha256 FROM tickets t JOIN ticket_versions v ON v.id = t.version_id"
            " WHERE t.id = ?",
            (ticket_id,),
        ).fetchone()
        return str(row[0]) if row else ""

    def add_version(
        self,
        *,
        ticket_id: int,
        raw: bytes,
        updated_at: str | None,
        fetched_at: str,
        settled: bool,
        run_id: int,
        subject: str | None,
        status: str | None,
        messages: int,
        files: list[WantedFile],
        text: str,
        known: KnownTicket | None,
    ) -> bool:
        """Record a ticket as read; a body identical to the latest version only updates
        whether it is settled. Returns True when it is a new version."""
        digest = hashlib.sha256(raw).hexdigest()
        if known is not None and known.sha256 == digest:
            self.execute(
                "UPDATE tickets SET settled = ?, updated_at = ?, gone_run = NULL WHERE id = ?",
                (int(settled), updated_at, ticket_id),
            )
            return False
        cursor = self.execute(
            "INSERT INTO ticket_versions (ticket_id, raw, sha256, updated_at, fetched_at,"
            " settled, run_id, subject, status, messages) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ticket_id,
                raw,
                digest,
                updated_at,
                fetched_at,
                int(settled),
                run_id,
                sql_text(subject),
                sql_text(status),
                messages,
            ),
        )
        self.execute(
            "INSERT OR REPLACE INTO tickets (id, version_id, updated_at, settled, gone_run)"
            " VALUES (?, ?, ?, ?, NULL)",
            (ticket_id, cursor.lastrowid, updated_at, int(settled)),
        )
        self.execute("DELETE FROM ticket_files WHERE ticket_id = ?", (ticket_id,))
        for file in files:
            self.execute(
                "INSERT OR REPLACE INTO ticket_files (ticket_id, attachment_id, name, path, size)"
                " VALUES (?, ?, ?, ?, ?)",
                (ticket_id, file.attachment_id, sql_text(file.name), file.path, file.size),
            )
        self.execute("DELETE FROM ticket_text WHERE rowid = ?", (ticket_id,))
        self.execute(
            "INSERT INTO ticket_text (rowid, subject, body) VALUES (?, ?, ?)",
            (ticket_id, sql_text(subject) or "", sql_text(text) or ""),
        )
        self._record_changes(run_id, ticket_id, fetched_at, known, status, messages)
        return True

    def _record_changes(
        self,
        run_id: int,
        ticket_id: int,
        at: str,
        known: KnownTicket | None,
        status: str | None,
        messages: int,
    ) -> None:
        found: list[tuple[str, str | None]] = []
        if known is None:
            found.append(("new", None))
        else:
            if messages > known.messages:
                added = messages - known.messages
                found.append(("messages", f"{added} new message{'s' if added > 1 else ''}"))
            if status != known.status:
                found.append(("status", f"{known.status} -> {status}"))
            if not found:
                found.append(("edited", None))
        for kind, detail in found:
            self.add_change(run_id, ticket_id, kind, detail, at)

    def add_change(
        self, run_id: int, ticket_id: int, kind: str, detail: str | None, at: str
    ) -> None:
        """Record one change seen by a run."""
        self.execute(
            "INSERT INTO changes (run_id, ticket_id, kind, detail, at) VALUES (?, ?, ?, ?, ?)",
            (run_id, ticket_id, kind, sql_text(detail), at),
        )

    def mark_gone(self, run_id: int, ids: list[int], at: str) -> None:
        """Record tickets the listing no longer shows (once, until they are listed again)."""
        for tid in ids:
            row = self.db.execute("SELECT gone_run FROM tickets WHERE id = ?", (tid,)).fetchone()
            if row is not None and row[0] is None:
                self.execute("UPDATE tickets SET gone_run = ? WHERE id = ?", (run_id, tid))
                self.add_change(run_id, tid, "gone", "no longer listed by the server", at)

    def mark_listed(self, ids: list[int]) -> None:
        """Tickets listed again after being gone."""
        for tid in ids:
            self.execute(
                "UPDATE tickets SET gone_run = NULL WHERE id = ? AND gone_run IS NOT NULL", (tid,)
            )

    # -- attachments --------------------------------------------------------------------------

    def files(self, ticket_id: int) -> dict[int, FileRow]:
        """A ticket's recorded attachment files, by attachment id."""
        rows = self.db.execute(
            "SELECT attachment_id, path, size, sha256, stat_size, stat_mtime_ns, stat_inode"
            " FROM attachments WHERE ticket_id = ?",
            (ticket_id,),
        )
        return {
            aid: FileRow(
                ticket_id=ticket_id,
                attachment_id=aid,
                path=path,
                size=size,
                sha256=digest,
                stat=None if ssize is None else (ssize, mtime, inode),
            )
            for aid, path, size, digest, ssize, mtime, inode in rows
        }

    def put_file(
        self,
        row: FileRow,
        *,
        name: str,
        downloaded_at: str | None,
        run_id: int | None,
    ) -> None:
        """Record a file on disk (its hash just computed), or refresh its status."""
        stat = row.stat or (None, None, None)
        if downloaded_at is None:
            self.execute(
                "UPDATE attachments SET stat_size = ?, stat_mtime_ns = ?, stat_inode = ?,"
                " sha256 = ?, size = ? WHERE ticket_id = ? AND attachment_id = ?",
                (*stat, row.sha256, row.size, row.ticket_id, row.attachment_id),
            )
            return
        self.execute("DELETE FROM attachments WHERE path = ?", (row.path,))
        self.execute(
            "INSERT OR REPLACE INTO attachments (ticket_id, attachment_id, name, path, size,"
            " sha256, downloaded_at, run_id, stat_size, stat_mtime_ns, stat_inode)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.ticket_id,
                row.attachment_id,
                sql_text(name),
                row.path,
                row.size,
                row.sha256,
                downloaded_at,
                run_id,
                *stat,
            ),
        )


__all__ = ["DB_FILE", "FileRow", "KnownTicket", "Store", "WantedFile", "connect", "sql_text"]
