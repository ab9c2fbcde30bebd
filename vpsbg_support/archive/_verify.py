"""``verify``: every file the archive vouches for, hashed again from its bytes on disk."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import attrs

from vpsbg_support.archive._folder import ArchiveFolder
from vpsbg_support.archive._results import MANIFEST_FILE
from vpsbg_support.errors import ExportError


@attrs.frozen(kw_only=True)
class Problem:
    """A file whose bytes on disk are not what the archive recorded.

    Attributes:
        path: the file, relative to the archive folder (POSIX).
        kind: ``missing``, ``size``, ``sha256``, ``unreadable`` (a link, a folder, no access)
            or ``manifest`` (``manifest.json`` itself is not valid).
        message: one line saying what is wrong.
    """

    path: str
    kind: str
    message: str


def _expected(db: sqlite3.Connection, manifest: Any) -> dict[str, list[tuple[int, str, str]]]:
    """path -> [(size, sha256, who recorded it)]."""
    expected: dict[str, list[tuple[int, str, str]]] = {}
    for path, size, digest in db.execute("SELECT path, size, sha256 FROM attachments"):
        expected.setdefault(path, []).append((size, digest, "archive.sqlite"))
    if isinstance(manifest, dict):
        for entry in manifest.get("files") or []:
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                expected.setdefault(entry["path"], []).append(
                    (entry.get("size"), entry.get("sha256"), MANIFEST_FILE)  # type: ignore[arg-type]
                )
    return expected


def verify(folder: ArchiveFolder, db: sqlite3.Connection) -> list[Problem]:
    """Hash every file recorded in ``archive.sqlite`` or listed in ``manifest.json`` and report
    each that is missing or differs, by path (sorted)."""
    problems: list[Problem] = []
    manifest: Any = None
    if folder.lstat(MANIFEST_FILE) is not None:
        try:
            _, _, _ = folder.hash(MANIFEST_FILE)
            with open(folder.root / MANIFEST_FILE, "rb") as handle:
                manifest = json.loads(handle.read())
        except (OSError, ValueError, ExportError) as exc:
            problems.append(Problem(path=MANIFEST_FILE, kind="manifest", message=str(exc)))
    for path, wants in sorted(_expected(db, manifest).items()):
        if folder.lstat(path) is None:
            problems.append(Problem(path=path, kind="missing", message=f"{path}: missing"))
            continue
        try:
            size, digest, _ = folder.hash(path)
        except ExportError as exc:
            problems.append(Problem(path=path, kind="unreadable", message=exc.message))
            continue
        for want_size, want_digest, recorded_by in wants:
            if size != want_size:
                problems.append(
                    Problem(
                        path=path,
                        kind="size",
                        message=f"{path}: {size} bytes, {recorded_by} says {want_size}",
                    )
                )
                break
            if digest != want_digest:
                problems.append(
                    Problem(
                        path=path,
                        kind="sha256",
                        message=f"{path}: sha256 {digest[:12]}..., {recorded_by} says"
                        f" {str(want_digest)[:12]}...",
                    )
                )
                break
    return problems
