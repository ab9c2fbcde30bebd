"""``vpsbg-support archive verify|log|search DIR``: an export folder, read offline (no token)."""

from __future__ import annotations

import argparse
from typing import Any

from vpsbg_support.archive import Archive, Change, Problem, SearchHit
from vpsbg_support.cli._app import EXIT_ERROR, EXIT_OK, Output
from vpsbg_support.cli._options import Commands, moment, positive_int
from vpsbg_support.cli.html import register_html


def _verify(args: argparse.Namespace, out: Output) -> int:
    with Archive(args.dir) as archive:
        problems = archive.verify()
        files = len(archive.attachments())

    def text() -> str:
        if not problems:
            return f"OK: every file of {args.dir} matches archive.sqlite and manifest.json."
        lines = [f"{p.kind:<10} {p.message}" for p in problems]
        lines.append(f"{len(problems)} problem(s); run the export again to repair them.")
        return "\n".join(lines)

    out.emit(
        {"ok": not problems, "files": files, "problems": [_problem(p) for p in problems]}, text
    )
    return EXIT_OK if not problems else EXIT_ERROR


def _problem(problem: Problem) -> dict[str, Any]:
    return {"path": problem.path, "kind": problem.kind, "message": problem.message}


def _log(args: argparse.Namespace, out: Output) -> int:
    with Archive(args.dir) as archive:
        changes = archive.changes(since=args.since)

    def text() -> str:
        if not changes:
            return "No changes recorded" + (" since then." if args.since else ".")
        lines = []
        run = None
        for change in changes:
            if change.run_id != run:
                run = change.run_id
                lines.append(f"run {run}  {change.at:%Y-%m-%d %H:%M:%S} UTC")
            detail = f" ({change.detail})" if change.detail else ""
            lines.append(
                f"  #{change.ticket_id:<8} {change.kind:<9} {change.subject or ''}{detail}"
            )
        return "\n".join(lines)

    out.emit([_change(c) for c in changes], text)
    return EXIT_OK


def _change(change: Change) -> dict[str, Any]:
    return {
        "run_id": change.run_id,
        "ticket_id": change.ticket_id,
        "kind": change.kind,
        "detail": change.detail,
        "at": change.at.isoformat(),
        "subject": change.subject,
    }


def _search(args: argparse.Namespace, out: Output) -> int:
    with Archive(args.dir) as archive:
        hits = archive.search(args.query, limit=args.limit)

    def text() -> str:
        if not hits:
            return f"No ticket matches {args.query!r}."
        lines = []
        for hit in hits:
            when = f"{hit.updated_at:%Y-%m-%d}" if hit.updated_at else "?"
            lines.append(f"#{hit.ticket_id}  {when}  {hit.subject}")
            lines.append(f"    {hit.snippet}")
        return "\n".join(lines)

    out.emit([_hit(h) for h in hits], text)
    return EXIT_OK


def _hit(hit: SearchHit) -> dict[str, Any]:
    return {
        "ticket_id": hit.ticket_id,
        "subject": hit.subject,
        "updated_at": None if hit.updated_at is None else hit.updated_at.isoformat(),
        "snippet": hit.snippet,
        "rank": hit.rank,
    }


def register(commands: Commands) -> None:
    """Add the ``archive`` command group (offline: no token, no network)."""
    archive = commands.group(
        "archive", "read an export folder offline: verify, log, search, html", dest="archive_action"
    )
    verify = archive.add_offline(
        "verify", _verify, "hash every file again; list each problem (exit 1 if any)"
    )
    verify.add_argument("dir", help="the export folder")
    log = archive.add_offline("log", _log, "what each export run saw change")
    log.add_argument("dir", help="the export folder")
    log.add_argument("--since", type=moment, help="only changes seen since DATE")
    search = archive.add_offline("search", _search, "full-text search of subjects and messages")
    search.add_argument("dir", help="the export folder")
    search.add_argument("query", help='words that must all appear, e.g. "disk full"')
    search.add_argument("--limit", type=positive_int, default=20, help="hits at most (20)")
    register_html(archive)
