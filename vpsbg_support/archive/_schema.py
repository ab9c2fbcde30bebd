"""The schema of ``archive.sqlite`` and its numbered migrations.

Schema (version 1; ``PRAGMA user_version`` holds the version, migrations are numbered)::

    meta(key PRIMARY KEY, value)            source (the API's base URL), created_at
    runs(id, started_at, finished_at, source, since, attachments, complete,
         listed, fetched, unchanged, downloaded, bytes, failures, migrated)
    ticket_versions(id, ticket_id, raw, sha256, updated_at, fetched_at, settled, run_id,
                    subject, status, messages)
                                             every distinct body of every ticket ever fetched,
                                             byte for byte as received
    tickets(id PRIMARY KEY, version_id, updated_at, settled, gone_run)
                                             the latest version of each ticket
    ticket_files(ticket_id, attachment_id, name, path, size)
                                             the attachments the latest version names
    attachments(ticket_id, attachment_id, name, path UNIQUE, size, sha256, downloaded_at,
                run_id, stat_size, stat_mtime_ns, stat_inode)
                                             files on disk: the stat_* columns are the file's
                                             status when its sha256 was computed
    changes(id, run_id, ticket_id, kind, detail, at)
                                             new, messages, status, edited, gone
    ticket_text USING fts5(subject, body)   rowid = ticket id: the latest version as text

Connections: the writer uses WAL (readers never block the export, nor it them) with
``synchronous=NORMAL`` while a run works: a commit does not wait for the disk, so the event loop
is never held by an fsync (that cost a tenth of the export's throughput); a killed process
loses nothing committed, a power cut at most the last commits, and never consistency. Rows only
ever lag the files they name (a file is fsynced and renamed before its row is written), so
what is lost is redone by the next run. The run's last commit, before the views are written
from the database, is made with ``synchronous=FULL`` (``Store.commit_durably``). Readers open
``mode=ro``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from vpsbg_support.errors import ExportError

DB_FILE = "archive.sqlite"

#: Numbered migrations: MIGRATIONS[n] takes a database at version n to n + 1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        source TEXT NOT NULL,
        since TEXT,
        attachments INTEGER NOT NULL,
        complete INTEGER NOT NULL DEFAULT 0,
        listed INTEGER NOT NULL DEFAULT 0,
        fetched INTEGER NOT NULL DEFAULT 0,
        unchanged INTEGER NOT NULL DEFAULT 0,
        downloaded INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        migrated INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE ticket_versions (
        id INTEGER PRIMARY KEY,
        ticket_id INTEGER NOT NULL,
        raw BLOB NOT NULL,
        sha256 TEXT NOT NULL,
        updated_at TEXT,
        fetched_at TEXT NOT NULL,
        settled INTEGER NOT NULL,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        subject TEXT,
        status TEXT,
        messages INTEGER NOT NULL
    );
    CREATE INDEX ticket_versions_by_ticket ON ticket_versions (ticket_id, id);
    CREATE TABLE tickets (
        id INTEGER PRIMARY KEY,
        version_id INTEGER NOT NULL REFERENCES ticket_versions (id),
        updated_at TEXT,
        settled INTEGER NOT NULL,
        gone_run INTEGER
    );
    CREATE TABLE ticket_files (
        ticket_id INTEGER NOT NULL,
        attachment_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        size INTEGER,
        PRIMARY KEY (ticket_id, attachment_id)
    );
    CREATE TABLE attachments (
        ticket_id INTEGER NOT NULL,
        attachment_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        path TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        downloaded_at TEXT NOT NULL,
        run_id INTEGER REFERENCES runs (id),
        stat_size INTEGER,
        stat_mtime_ns INTEGER,
        stat_inode INTEGER,
        PRIMARY KEY (ticket_id, attachment_id)
    );
    CREATE TABLE changes (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        ticket_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT,
        at TEXT NOT NULL
    );
    CREATE INDEX changes_by_run ON changes (run_id);
    CREATE VIRTUAL TABLE ticket_text USING fts5 (
        subject, body, tokenize = 'unicode61 remove_diacritics 2'
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """A connection to ``archive.sqlite``, migrated to the current schema unless read-only.

    Raises:
        ExportError: the file cannot be opened, is not a database, or is newer than this code.
    """
    try:
        if readonly:
            db = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
        else:
            # One thread at a time uses it (the export's file work runs in a thread it awaits).
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=10000")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.close()
            raise ExportError(
                f"{path}: written by a newer version (schema {version}); upgrade vpsbg-support",
                path=str(path),
            )
        if not readonly:
            migrate(db, version)
        return db
    except sqlite3.Error as exc:
        raise ExportError(f"{path}: {exc}", path=str(path)) from None


def migrate(db: sqlite3.Connection, version: int) -> None:
    """Apply the migrations after ``version``, each in its own transaction."""
    for number in range(version, SCHEMA_VERSION):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[number]):
                db.execute(statement)
            db.execute(f"PRAGMA user_version={number + 1}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # a failed statement may have rolled it back already
                db.execute("ROLLBACK")
            raise


def _statements(script: str) -> Iterator[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
