"""Full-text search over the archive's ``ticket_text`` (FTS5): subjects and messages as text."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import attrs

from vpsbg_support.archive._times import parse_stamp
from vpsbg_support.errors import InvalidParameterError


@attrs.frozen(kw_only=True)
class SearchHit:
    """A ticket matching a search, best first.

    Attributes:
        ticket_id: the ticket.
        subject: its subject.
        updated_at: when it last changed (its latest archived version), if known.
        snippet: the best matching passage, matches in ``[`` ``]``.
        rank: FTS5's bm25 rank (lower is better).
    """

    ticket_id: int
    subject: str
    updated_at: datetime | None
    snippet: str
    rank: float


def fts_query(text: str) -> str:
    """A user's words as an FTS5 query: every word must appear (each quoted, so that ``-``,
    ``:`` or ``*`` in them are text, not syntax); a trailing ``*`` keeps prefix matching."""
    terms = []
    for word in text.split():
        prefix = word.endswith("*") and len(word) > 1
        core = word[:-1] if prefix else word
        terms.append('"' + core.replace('"', '""') + '"' + ("*" if prefix else ""))
    if not terms:
        raise InvalidParameterError("query", "give at least one word to search for")
    return " ".join(terms)


def search(db: sqlite3.Connection, query: str, limit: int) -> list[SearchHit]:
    """Ranked hits for ``query`` (see :func:`fts_query`), at most ``limit``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidParameterError("limit", f"must be an integer >= 1, got {limit!r}")
    rows = db.execute(
        "SELECT s.rowid, s.subject, t.updated_at,"
        " snippet(ticket_text, -1, '[', ']', '...', 12), s.rank"
        " FROM ticket_text s LEFT JOIN tickets t ON t.id = s.rowid"
        " WHERE ticket_text MATCH ? ORDER BY s.rank LIMIT ?",
        (fts_query(query), limit),
    )
    return [
        SearchHit(
            ticket_id=tid,
            subject=subject,
            updated_at=parse_stamp(updated),
            snippet=" ".join(snippet.split()),
            rank=rank,
        )
        for tid, subject, updated, snippet, rank in rows
    ]
