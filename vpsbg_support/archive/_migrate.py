"""An export folder written by earlier versions (``.export-journal.jsonl`` + ``manifest.json``)
becomes an ``archive.sqlite``, nothing lost, on the first run of this version.

Every ticket line of the journal is recorded as a version (an uncompacted journal may hold
several of one ticket: each distinct one is kept), with its ``settled`` flag; every file line
as an attachment row whose hash is not yet trusted (no recorded file status: the next run hashes
the file again before any manifest names it); every ``run`` line (a run that did not complete)
as an unfinished run whose window the next run finishes. The source is the old manifest's
``base_url``. The journal is left in place and no longer read.
"""

from __future__ import annotations

import json
import stat
from datetime import datetime, timezone
from typing import Any

from vpsbg_support.archive._api import parse_ticket
from vpsbg_support.archive._folder import ArchiveFolder
from vpsbg_support.archive._results import JOURNAL_FILE, MANIFEST_FILE, attachment_path
from vpsbg_support.archive._store import FileRow, KnownTicket, Store, WantedFile
from vpsbg_support.archive._text import messages_text
from vpsbg_support.archive._times import stamp
from vpsbg_support.errors import ExportError

_TICKET_PREFIX = b'{"ticket":'
_TICKET_SUFFIX = b"}\n"
_SUMMARY_PREFIX = b'{"summary":'


def _read(folder: ArchiveFolder, name: str) -> bytes | None:
    """A file's bytes; None when missing or not a regular file (a link is never followed)."""
    found = folder.lstat(name)
    if found is None or not stat.S_ISREG(found.st_mode):
        return None
    with open(folder.root / name, "rb") as handle:
        return handle.read()


def migrate_journal(folder: ArchiveFolder, store: Store) -> bool:
    """Fill a new, empty store from the journal and manifest of an earlier version, if any.

    Returns:
        Whether there was anything to migrate.

    Raises:
        ExportError: the journal cannot be read.
    """
    try:
        journal = _read(folder, JOURNAL_FILE)
        manifest_bytes = None if journal is None else _read(folder, MANIFEST_FILE)
    except OSError as exc:
        shown = str(folder.root / JOURNAL_FILE)
        raise ExportError(f"{shown}: {exc.strerror}", path=shown) from None
    if journal is None:
        return False
    manifest = _manifest(manifest_bytes)
    now = stamp(datetime.now(timezone.utc))
    source = manifest.get("base_url") if isinstance(manifest.get("base_url"), str) else None
    if source is not None:
        store.set_meta("source", source)
    store.set_meta("migrated_from", JOURNAL_FILE)
    run_id = store.start_run(
        started_at=str(manifest.get("started_at") or now),
        source=source or "",
        since=None,
        attachments=True,
        migrated=True,
    )
    known: dict[int, KnownTicket] = {}
    files: dict[tuple[int, int], dict[str, Any]] = {}
    windows: list[str | None] = []
    settled = True
    for line in journal.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break  # a write cut short by a crash: redone by the next run
        if line.startswith(_SUMMARY_PREFIX):
            settled = _summary_settled(line)
            continue
        if line.startswith(_TICKET_PREFIX) and line.endswith(_TICKET_SUFFIX):
            raw = line[len(_TICKET_PREFIX) : -len(_TICKET_SUFFIX)]
            _add_ticket(store, run_id, raw, settled, known, now)
        else:
            _other_line(line, files, windows)
        settled = True
    for entry in files.values():
        _add_file(store, entry, run_id, now)
    complete = bool(manifest) and not windows
    store.finish_run(
        run_id,
        finished_at=str(manifest.get("exported_at") or now),
        complete=complete,
        fetched=len(known),
    )
    for since in windows:
        unfinished = store.start_run(
            started_at=now, source=source or "", since=since, attachments=True
        )
        store.finish_run(unfinished, finished_at=now, complete=False)
    store.commit()
    return True


def _manifest(data: bytes | None) -> dict[str, Any]:
    if data is None:
        return {}
    try:
        manifest = json.loads(data)
    except ValueError:
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _summary_settled(line: bytes) -> bool:
    try:
        value = json.loads(line)["summary"].get("settled", True)
    except (ValueError, TypeError, KeyError, AttributeError):
        return True
    return value if isinstance(value, bool) else True


def _add_ticket(
    store: Store, run_id: int, raw: bytes, settled: bool, known: dict[int, KnownTicket], at: str
) -> None:
    try:
        ticket = parse_ticket(json.loads(raw))
    except (ValueError, RecursionError):
        return  # garbage (e.g. zeros after a power cut) proves nothing: the next run redoes it
    updated = None if ticket.updated_at is None else stamp(ticket.updated_at)
    wanted = [
        WantedFile(attachment_id=a.id, name=a.name, path=attachment_path(ticket.id, a), size=a.size)
        for a in ticket.attachments
    ]
    previous = known.get(ticket.id)
    store.add_version(
        ticket_id=ticket.id,
        raw=raw,
        updated_at=updated,
        fetched_at=at,
        settled=settled,
        run_id=run_id,
        subject=ticket.subject,
        status=ticket.status,
        messages=len(ticket.messages),
        files=wanted,
        text=messages_text(ticket),
        known=previous,
    )
    known[ticket.id] = KnownTicket(
        updated_at=updated,
        settled=settled,
        sha256=store.latest_sha256(ticket.id),
        messages=len(ticket.messages),
        status=ticket.status,
    )


def _other_line(
    line: bytes, files: dict[tuple[int, int], dict[str, Any]], windows: list[str | None]
) -> None:
    try:
        entry = json.loads(line)
        if "file" in entry:
            data = entry["file"]
            key = (int(data["ticket_id"]), int(data["attachment_id"]))
            files[key] = {
                "ticket_id": key[0],
                "attachment_id": key[1],
                "path": str(data["path"]),
                "size": int(data["size"]),
                "sha256": str(data["sha256"]),
            }
        elif "run" in entry:
            since = entry["run"]["since"]
            windows.append(None if since is None else str(since))
    except (ValueError, TypeError, KeyError, AttributeError):
        return


def _add_file(store: Store, entry: dict[str, Any], run_id: int, at: str) -> None:
    path = entry["path"]
    name = path.rsplit("/", 1)[-1].split("-", 1)[-1]
    row = FileRow(
        ticket_id=entry["ticket_id"],
        attachment_id=entry["attachment_id"],
        path=path,
        size=entry["size"],
        sha256=entry["sha256"],
        stat=None,  # not trusted until hashed again
    )
    store.put_file(row, name=name, downloaded_at=at, run_id=run_id)
