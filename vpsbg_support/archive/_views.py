"""``tickets.jsonl`` and ``manifest.json``, written from ``archive.sqlite``.

``tickets.jsonl`` holds the latest version of each ticket, one line each, in ticket id order:
the body as the API sent it, except that line breaks become spaces (between JSON tokens they are
insignificant; inside strings they are always escaped) and a body in UTF-16/32 or with a byte
order mark is re-encoded as UTF-8. The manifest is removed first and written last, only when
the run is complete, each file atomically and fsynced: a folder whose ``manifest.json`` exists
holds a complete export. Every sha256 in the manifest was computed from the file's bytes on
disk, by this run or by an earlier one whose hash still holds (same size, mtime and inode as
when hashed); any other file is hashed again here.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from vpsbg_support.archive._folder import ArchiveFolder, identity, same_file
from vpsbg_support.archive._results import FORMAT_VERSION, MANIFEST_FILE, TICKETS_FILE
from vpsbg_support.archive._store import FileRow, Store
from vpsbg_support.errors import ExportError


def json_line(body: bytes) -> bytes:
    """A JSON body that parsed, as one line of UTF-8 with the same text and meaning.

    A JSON string cannot hold a raw CR or LF, so in a UTF-8 body that parsed every CR and LF
    byte is whitespace between tokens and becomes a space; numbers, key order and duplicate
    keys stay exactly as sent. A body in another encoding JSON allows (UTF-16/32, a UTF-8 byte
    order mark) is first re-encoded as plain UTF-8, as a JSON line must be.
    """
    encoding = json.detect_encoding(body)
    if encoding != "utf-8":
        body = body.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
    return body.replace(b"\r", b" ").replace(b"\n", b" ").strip()


@attrs.frozen(kw_only=True)
class Views:
    """What was written: the counts, and the files the manifest lists (or would list)."""

    tickets: int
    messages: int
    attachments: int
    attachment_bytes: int
    files: tuple[dict[str, Any], ...]
    #: files whose bytes on disk no longer match their recorded sha256 (left out, and forgotten
    #: so that the next run downloads them again)
    damaged: tuple[str, ...]


def write_tickets(folder: ArchiveFolder, store: Store) -> dict[str, Any]:
    """Write ``tickets.jsonl`` from the store; its manifest entry, hashed from disk.

    Not written again when no ticket changed since it was and the file keeps the size, mtime and
    inode it had when hashed (a 20,000-ticket account re-run with nothing new is spared
    rewriting and re-reading some 50 MB).
    """
    count, top, total = store.db.execute(
        "SELECT COUNT(*), COALESCE(MAX(version_id), 0), COALESCE(SUM(version_id), 0) FROM tickets"
    ).fetchone()
    state = f"{count}:{top}:{total}"  # version ids only grow: any new version changes it
    recorded = _recorded(store.meta(_TICKETS_META))
    if (
        recorded is not None
        and recorded["state"] == state
        and same_file(_stat(recorded["stat"]), folder.lstat(TICKETS_FILE))
    ):
        return {"path": TICKETS_FILE, "size": recorded["size"], "sha256": recorded["sha256"]}
    rows = store.db.execute(
        "SELECT v.raw FROM tickets t JOIN ticket_versions v ON v.id = t.version_id ORDER BY t.id"
    )
    folder.write(TICKETS_FILE, (json_line(raw) + b"\n" for (raw,) in rows))
    size, digest, status = folder.hash(TICKETS_FILE)
    record = {"state": state, "size": size, "sha256": digest, "stat": list(identity(status))}
    store.set_meta(_TICKETS_META, json.dumps(record))
    store.commit()
    return {"path": TICKETS_FILE, "size": size, "sha256": digest}


_TICKETS_META = "tickets_jsonl"


def _stat(value: Any) -> tuple[int, int, int] | None:
    if isinstance(value, list) and len(value) == 3 and all(type(v) is int for v in value):
        return (value[0], value[1], value[2])
    return None


def _recorded(text: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    ok = isinstance(value, dict) and {"state", "size", "sha256", "stat"} <= value.keys()
    return value if ok else None


def checked_files(folder: ArchiveFolder, store: Store) -> tuple[list[FileRow], list[str]]:
    """The attachment files the latest versions name, each checked against the disk: trusted
    when unchanged since hashed, else hashed again. Returns the good ones and the damaged."""
    rows = store.db.execute(
        "SELECT a.ticket_id, a.attachment_id, a.path, a.size, a.sha256, a.stat_size,"
        " a.stat_mtime_ns, a.stat_inode FROM ticket_files f JOIN attachments a"
        " ON a.ticket_id = f.ticket_id AND a.attachment_id = f.attachment_id AND a.path = f.path"
        " ORDER BY a.ticket_id, a.attachment_id"
    ).fetchall()
    good: list[FileRow] = []
    damaged: list[str] = []
    for tid, aid, path, size, digest, ssize, mtime, inode in rows:
        row = FileRow(
            ticket_id=tid,
            attachment_id=aid,
            path=path,
            size=size,
            sha256=digest,
            stat=None if ssize is None else (ssize, mtime, inode),
        )
        found = folder.lstat(path)
        if same_file(row.stat, found):
            good.append(row)
            continue
        try:
            now_size, now_digest, now_stat = folder.hash(path)
        except ExportError:
            now_size, now_digest, now_stat = -1, "", None
        if now_stat is not None and (now_size, now_digest) == (size, digest):
            fresh = attrs.evolve(row, stat=identity(now_stat))
            store.put_file(fresh, name="", downloaded_at=None, run_id=None)
            good.append(fresh)
        else:
            store.execute(
                "DELETE FROM attachments WHERE ticket_id = ? AND attachment_id = ?", (tid, aid)
            )
            damaged.append(path)
    store.commit()
    return good, damaged


def write_views(
    folder: ArchiveFolder,
    store: Store,
    *,
    complete: bool,
    with_attachments: bool,
    manifest: dict[str, Any],
) -> Views:
    """Write ``tickets.jsonl``, then (when ``complete`` and no file is damaged) the manifest.

    Args:
        folder: the archive folder.
        store: its store, up to date.
        complete: whether the run completed; the manifest is written only then.
        with_attachments: list attachment files in the manifest.
        manifest: the manifest's other keys (times, source...).
    """
    folder.remove(MANIFEST_FILE)  # first: no crash below leaves an old manifest by new files
    entries = [write_tickets(folder, store)]
    good, damaged = checked_files(folder, store) if with_attachments else ([], [])
    entries += [
        {
            "attachment_id": row.attachment_id,
            "ticket_id": row.ticket_id,
            "path": row.path,
            "size": row.size,
            "sha256": row.sha256,
        }
        for row in good
    ]
    tickets, messages = store.db.execute(
        "SELECT COUNT(*), COALESCE(SUM(v.messages), 0) FROM tickets t"
        " JOIN ticket_versions v ON v.id = t.version_id"
    ).fetchone()
    views = Views(
        tickets=tickets,
        messages=messages,
        attachments=len(good),
        attachment_bytes=sum(row.size for row in good),
        files=tuple(entries),
        damaged=tuple(damaged),
    )
    if complete and not damaged:
        counts = {
            "tickets": views.tickets,
            "messages": views.messages,
            "attachments": views.attachments,
            "attachment_bytes": views.attachment_bytes,
        }
        body = {"format": FORMAT_VERSION, **manifest, "counts": counts, "files": entries}
        folder.write(MANIFEST_FILE, [json.dumps(body, indent=2).encode() + b"\n"])
    return views
