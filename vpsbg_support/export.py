"""Bulk export: every ticket, message and attachment of an account into a folder, resumably.

Layout of an export folder::

    tickets.jsonl                     one line per ticket: its JSON text as the API sent it
    attachments/<ticket>/<id>-<name>  every attachment, byte for byte
    manifest.json                     counts, time, size and sha256 of every file (written last)
    .export-journal.jsonl             what is done so far: lets a re-run resume and skip work
    .export.lock                      held while an export runs into the folder

Each line of ``tickets.jsonl`` is the body of the ticket's response, byte for byte, except that
line breaks become spaces (between JSON tokens they are insignificant; inside strings they are
always escaped): numbers keep their spelling (``12.50``, ``1E2``, every digit), keys their order,
duplicates and all. A body sent in UTF-16/32 or with a byte order mark is re-encoded as UTF-8.

How it survives a crash: progress goes to the journal, one whole line per ``os.write``; a
re-run drops a torn last line. Attachments are written to a temporary file and renamed when
complete (and only when their size is the one the API announced). ``tickets.jsonl`` and
``manifest.json`` are replaced atomically at the end, the manifest last and only when nothing
failed, after removing the old one: a folder whose ``manifest.json`` exists holds a complete
export (while a re-run is going, the previous run's manifest still describes the previous
``tickets.jsonl`` and files, which stay in place until the re-run replaces them at its end).

Re-runs: every listed ticket already in the folder is checked (read again if its ``updated_at``
changed; missing attachment files fetched), whatever ``since`` says; ``since`` only limits which
tickets are added. The API gives ``updated_at`` to the second, so a change made in the same second
as the read that exported a ticket does not change it: such a copy is recorded as unsettled and
read again by the next run even if ``updated_at`` is the same (a body read again byte-identical
changes nothing; complete attachment files are kept). Unsettled means the second of
``updated_at`` did not end a full second before the earliest moment the server may have read the
ticket: the response's ``Date`` header less the time the request took here (the server's clock,
the one ``updated_at`` is on, so a skewed local clock does not matter). A response without
a usable ``Date`` is judged by this machine's clock when the request started, less 5 seconds for
the difference between the clocks. Journals of earlier versions count as settled, so resuming one
does not read everything again. A run that did not complete leaves its ``since`` in the journal,
and the next run exports at least that window too, so an interrupted full export is finished even
by a re-run with ``since``. Tickets the server no longer lists are kept (an archive does not lose
what it had) and counted in ``ExportSummary.tickets_not_listed``.

Memory: the tickets' JSON is not kept in memory; ``tickets.jsonl`` is streamed from the journal.
Per ticket, only its id, updated_at, message count and attachment list stay in memory (and the
ids of the few tickets whose copy is unsettled).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, TypeVar

import attrs

from vpsbg_support._client import AsyncClient
from vpsbg_support._convert import ConversionError, structure, unstructure
from vpsbg_support._filenames import safe_filename
from vpsbg_support._fs import flush_to_disk, fsync_folder, replacing
from vpsbg_support.errors import (
    AuthenticationError,
    InvalidParameterError,
    PermissionDeniedError,
    ResponseDecodeError,
    VPSBGError,
)
from vpsbg_support.models import Attachment, Ticket

__all__ = [
    "ATTACHMENTS_DIR",
    "MANIFEST_FILE",
    "TICKETS_FILE",
    "ExportFailure",
    "ExportProgress",
    "ExportSummary",
    "ProgressCallback",
    "attachment_path",
    "export_tickets",
]

TICKETS_FILE = "tickets.jsonl"
MANIFEST_FILE = "manifest.json"
ATTACHMENTS_DIR = "attachments"
JOURNAL_FILE = ".export-journal.jsonl"
LOCK_FILE = ".export.lock"
#: Version of the folder layout and manifest, written into the manifest.
FORMAT_VERSION = 1
#: The journal is fsynced at most this often (seconds): a crash of the process loses nothing
#: (the page cache survives it), a power cut loses at most this much work, which is redone.
_FSYNC_INTERVAL = 1.0
_HASH_CHUNK = 1024 * 1024
#: A ticket is settled when the second of its ``updated_at`` ended at least this long before
#: the earliest moment the server may have read it (``_served_at``): for the clock stamping
#: ``updated_at`` and the one stamping ``Date`` to differ by.
_SETTLE_MARGIN = timedelta(seconds=1)
#: Without a usable ``Date``, this machine's clock stands in for the server's, less this much for
#: the difference between the two clocks.
_CLOCK_MARGIN = timedelta(seconds=5)
_T = TypeVar("_T")


@attrs.frozen(kw_only=True)
class ExportFailure:
    """A ticket or attachment that could not be exported (after the client's retries).

    Attributes:
        ticket_id: the ticket concerned.
        attachment_id: the attachment, or None when the ticket itself failed.
        error: a one-line description of the last error.
    """

    ticket_id: int
    attachment_id: int | None
    error: str


@attrs.frozen(kw_only=True)
class ExportProgress:
    """Where a running export is, as passed to the ``progress`` callback.

    Attributes:
        listed: tickets found so far by listing (those matching ``since``).
        listing_done: True once every page was listed, so ``listed`` is the final total.
        done: tickets finished (fetched, unchanged or failed).
        failed: tickets with a failure (the ticket or one of its attachments).
        attachments: attachment files downloaded so far in this run.
        bytes: bytes of attachments downloaded so far in this run.
    """

    listed: int
    listing_done: bool
    done: int
    failed: int
    attachments: int
    bytes: int


@attrs.frozen(kw_only=True)
class ExportSummary:
    """The result of :func:`export_tickets`.

    Attributes:
        dest: the export folder.
        complete: True when nothing failed and ``manifest.json`` was written.
        tickets: tickets in ``tickets.jsonl`` (this run's and earlier runs').
        messages: messages of those tickets.
        attachments: attachment files of those tickets on disk (0 with ``attachments=False``).
        attachment_bytes: total size of those files.
        tickets_listed: tickets looked at: those the listing returned that match ``since``
            or are already in the folder.
        tickets_fetched: tickets read from the API in this run: new, changed, or read again
            because an earlier run read them in the second of their last update (a change in
            that same second would not show in ``updated_at``).
        tickets_unchanged: tickets skipped because an earlier run exported the same version.
        tickets_not_listed: tickets in the folder that the server no longer lists (deleted
            there, or no longer visible to the token); they are kept, never removed.
        attachments_downloaded: attachment files downloaded in this run.
        attachments_unchanged: attachment files already complete from an earlier run.
        bytes_downloaded: bytes of attachments downloaded in this run.
        failures: what could not be exported; a re-run retries it.
        started_at: when the run started (UTC).
        finished_at: when it finished (UTC).
        manifest: path of the manifest written, or None when the export is incomplete.
    """

    dest: Path
    complete: bool
    tickets: int
    messages: int
    attachments: int
    attachment_bytes: int
    tickets_listed: int
    tickets_fetched: int
    tickets_unchanged: int
    tickets_not_listed: int
    attachments_downloaded: int
    attachments_unchanged: int
    bytes_downloaded: int
    failures: tuple[ExportFailure, ...]
    started_at: datetime
    finished_at: datetime
    manifest: Path | None

    @property
    def seconds(self) -> float:
        """Wall-clock duration of the run, in seconds."""
        return (self.finished_at - self.started_at).total_seconds()


#: What ``progress=`` takes: a function called with an ExportProgress, on the event loop.
ProgressCallback = Callable[[ExportProgress], None]


def attachment_path(ticket_id: int, attachment: Attachment) -> str:
    """Where an attachment goes inside an export folder, as a relative POSIX path.

    Args:
        ticket_id: the ticket the attachment belongs to.
        attachment: the attachment (its id and name are used; the name is sanitised).

    Returns:
        ``attachments/<ticket_id>/<attachment_id>-<safe name>``.
    """
    name = safe_filename(f"{attachment.id}-{attachment.name}", f"{attachment.id}-attachment")
    return f"{ATTACHMENTS_DIR}/{ticket_id}/{name}"


async def export_tickets(
    client: AsyncClient,
    dest: str | os.PathLike[str],
    *,
    concurrency: int = 8,
    attachments: bool = True,
    since: datetime | date | None = None,
    progress: ProgressCallback | None = None,
    per_page: int | None = None,
) -> ExportSummary:
    """Export every ticket of the account, with its messages and attachments, into ``dest``.

    Lists every ticket (all pages), then reads each one with at most ``concurrency`` requests in
    flight. Re-running on the same folder resumes an interrupted run and is incremental: a ticket
    whose ``updated_at`` matches the exported version is not read again (unless that version was
    read within a second of its ``updated_at``, which the API gives to the second only), and
    complete attachment files are not downloaded again. A ticket or attachment that still fails
    after the client's retries (or whose file the system refuses to create) is reported in
    ``failures`` (the run goes on; ``manifest.json`` is then not written); run again to finish it.

    ``await export_tickets(client, "archive/", concurrency=16)``

    Args:
        client: the client to read with (its retry settings apply to every request).
        dest: the export folder, created if needed.
        concurrency: requests in flight at once, at least 1.
        attachments: download attachments (False: tickets only).
        since: add only tickets updated at or after this moment (a naive datetime or a date
            is taken as UTC); tickets exported earlier into ``dest`` are kept and kept up to
            date, and what an unfinished earlier run was exporting is finished.
        progress: called (on the event loop, so keep it quick) whenever a page is listed, a
            ticket is finished or an attachment downloaded.
        per_page: tickets per list request (the API's default when None).

    Returns:
        An ExportSummary; ``summary.complete`` is False when something failed.

    Raises:
        InvalidParameterError: a bad argument, or another export is running into ``dest``.
        AuthenticationError / PermissionDeniedError: the token was refused (nothing can work).
        APIStatusError / APIConnectionError: listing the tickets failed after retries; what was
            exported so far is kept for the next run.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidParameterError("concurrency", f"must be an integer >= 1, got {concurrency!r}")
    job = _ExportJob(
        client,
        Path(dest),
        concurrency=concurrency,
        attachments=attachments,
        since=_as_utc(since),
        progress=progress,
        per_page=per_page,
    )
    return await job.run()


def _as_utc(moment: datetime | date | None) -> datetime | None:
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        if not isinstance(moment, date):
            raise InvalidParameterError("since", f"expected a datetime, got {moment!r}")
        moment = datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _dump(value: Any) -> bytes:
    """One JSON line's bytes; deterministic, so the same value always gives the same line.

    ASCII only: a string the API sent with a lone surrogate escape (``"\\ud83d"``, legal JSON)
    has no UTF-8 form and stays an escape, instead of failing the encoding.
    """
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def _json_line(body: bytes) -> bytes:
    """A JSON body that parsed, as one line of UTF-8 with the same text and meaning.

    A JSON string cannot hold a raw CR or LF (they must be escaped; ``json.loads``, strict by
    default, refuses them), so in a UTF-8 body that parsed every CR and LF byte is whitespace
    between tokens and becomes a space; numbers, key order and
    duplicate keys stay exactly as sent. A body in another encoding JSON allows (UTF-16/32, a
    UTF-8 byte order mark) is first re-encoded as plain UTF-8, as a JSON line must be.
    """
    encoding = json.detect_encoding(body)
    if encoding != "utf-8":
        body = body.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
    return body.replace(b"\r", b" ").replace(b"\n", b" ").strip()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"


# --- on-disk state ----------------------------------------------------------------------------


_TICKET_PREFIX = b'{"ticket":'
_TICKET_SUFFIX = b"}\n"
_SUMMARY_PREFIX = b'{"summary":'

#: An attachment as a ticket record keeps it: (id, name, size). Plain tuples, not models: a
#: resumed 100k-ticket account holds hundreds of thousands of them.
_AttachmentInfo = tuple[int, str, int | None]


@attrs.frozen(kw_only=True)
class _TicketRecord:
    """An exported ticket: where its JSON is in the journal and what resuming needs from it.

    The JSON itself stays on disk (``offset``/``length`` in the journal), so that memory does not
    grow with the size of the account's tickets: only this summary is kept per ticket. Whether the
    copy is settled is kept by the journal (``_Journal.unsettled``), not here: few are not.
    """

    id: int
    offset: int
    length: int
    updated_at: datetime | None
    messages: int
    attachments: tuple[_AttachmentInfo, ...]

    def attachment_models(self) -> Iterator[Attachment]:
        """The attachments as the download code takes them (only what it uses is known)."""
        for aid, name, size in self.attachments:
            yield Attachment(id=aid, name=name, size=size)

    def summary_line(self, settled: bool = True) -> bytes:
        """The journal line written just before the ticket's line, so that a resume need not
        parse the ticket: ``length`` ties it to that line.

        Args:
            settled: False adds ``"settled": false`` (see ``_is_settled``); a settled ticket's
                line has no such key, like every line of earlier versions, which is read as
                settled.
        """
        summary: dict[str, Any] = {
            "id": self.id,
            "length": self.length,
            "updated_at": None if self.updated_at is None else unstructure(self.updated_at),
            "messages": self.messages,
            "attachments": [list(a) for a in self.attachments],
        }
        if not settled:
            summary["settled"] = False
        return _dump({"summary": summary}) + b"\n"


@attrs.frozen(kw_only=True)
class _FileRecord:
    """A complete attachment file: where it is, its size and digest."""

    attachment_id: int
    ticket_id: int
    path: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {
            "attachment_id": self.attachment_id,
            "ticket_id": self.ticket_id,
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
        }


class _Journal:
    """Append-only record of exported tickets and attachment files, one whole line per write.

    Four kinds of line: ``{"ticket": <raw JSON>}``, ``{"summary": {...}}``, ``{"file": {...}}``
    and ``{"run": {"since": ...}}``. A summary (what resuming needs of the ticket) is written in
    the same write as, and just before, its ticket line: a resume reads the small summary and only
    checks the ticket line's framing, instead of parsing every ticket. A ticket line without its
    summary (journals of earlier versions) is parsed in full. A summary carries
    ``"settled": false`` when its copy may miss a change (``_is_settled``). The run line is
    written when a run starts and dropped when a run completes, so that the next run knows which
    window an unfinished run was exporting and finishes it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tickets: dict[int, _TicketRecord] = {}
        #: Tickets whose copy may miss a change made in the second it was read (``_is_settled``):
        #: read again by the next run whatever their ``updated_at``. A set of the few, rather
        #: than a flag on every record, so that memory per ticket does not grow.
        self.unsettled: set[int] = set()
        self.files: dict[int, _FileRecord] = {}
        #: The ``since`` of each run that started and did not complete (None: everything).
        self.unfinished: list[datetime | None] = []
        self._fd: int | None = None
        self._size = 0
        self._synced_at = 0.0

    def load(self) -> None:
        """Read what earlier runs recorded; cut a torn last line so appends start clean."""
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 -- closed below
        except FileNotFoundError:
            return
        with handle:
            good_end = 0
            # A summary vouches only for the line right after it, and only if that line is a
            # complete ticket line of the length it announces.
            summary: tuple[_TicketRecord, bool] | None = None
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # a write cut short by a crash: dropped, and redone by this run
                if summary is not None and _is_ticket_line(line, summary[0].length):
                    self._put(*summary)
                    summary = None
                elif line.startswith(_SUMMARY_PREFIX):
                    summary = _parse_summary(line, good_end + len(line) + len(_TICKET_PREFIX))
                else:
                    summary = None
                    self._apply(line, good_end)  # a ticket line here is parsed in full
                good_end += len(line)
        if good_end != self.path.stat().st_size:
            os.truncate(self.path, good_end)
        self._size = good_end

    def _apply(self, line: bytes, offset: int) -> None:
        try:
            entry = json.loads(line)
            if "ticket" in entry:
                if not _is_ticket_line(line, None):
                    return  # not a line this module wrote: its bytes cannot be copied as is
                record = _ticket_record(
                    entry["ticket"],
                    offset + len(_TICKET_PREFIX),
                    len(line) - len(_TICKET_PREFIX) - len(_TICKET_SUFFIX),
                )
                self._put(record, True)  # earlier versions did not know: as they behaved
            elif "file" in entry:
                data = entry["file"]
                file = _FileRecord(
                    attachment_id=int(data["attachment_id"]),
                    ticket_id=int(data["ticket_id"]),
                    path=str(data["path"]),
                    size=int(data["size"]),
                    sha256=str(data["sha256"]),
                )
                self.files[file.attachment_id] = file
            elif "run" in entry:
                since = entry["run"]["since"]
                self.unfinished.append(None if since is None else _parse_timestamp(since))
        except (ValueError, TypeError, KeyError, AttributeError, ConversionError):
            # Garbage (e.g. zeros after a power cut) proves nothing was done: the work is redone.
            return

    def open(self) -> None:
        """Open the journal for appending."""
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def start_run(self, since: datetime | None) -> None:
        """Record that a run exporting tickets updated since ``since`` has started."""
        self._append(_run_line(since))

    def add_ticket(
        self, raw: Any, line: bytes | None = None, served_at: datetime | None = None
    ) -> _TicketRecord:
        """Record an exported ticket, given as the API returned it.

        Args:
            raw: the ticket's JSON, parsed: what resuming needs to know is taken from it.
            line: that JSON's text as the API sent it, made one line (``_json_line``); it is
                what is written. None: ``raw`` serialised.
            served_at: when the server produced that response (``_served_at``), to tell whether
                the copy is settled; None: settled.

        Raises:
            ConversionError: ``raw`` is not a ticket.
        """
        if line is None:
            line = _dump(raw)
        record = _ticket_record(raw, 0, len(line))
        settled = served_at is None or _is_settled(record.updated_at, served_at)
        summary = record.summary_line(settled)
        record = attrs.evolve(record, offset=self._size + len(summary) + len(_TICKET_PREFIX))
        # One write for both lines: a crash tears at most the tail, never leaves a ticket line
        # without its summary in the middle of the journal.
        self._append(summary + _TICKET_PREFIX + line + _TICKET_SUFFIX)
        self._put(record, settled)
        return record

    def _put(self, record: _TicketRecord, settled: bool) -> None:
        self.tickets[record.id] = record
        if settled:
            self.unsettled.discard(record.id)
        else:
            self.unsettled.add(record.id)

    def add_file(self, record: _FileRecord) -> None:
        """Record a complete attachment file."""
        self._append(_dump({"file": record.to_json()}) + b"\n")
        self.files[record.attachment_id] = record

    def _append(self, line: bytes) -> None:
        assert self._fd is not None, "journal not open"
        view = memoryview(line)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._size += len(line)
        now = time.monotonic()
        # At most once a second, so its cost (well under a millisecond on a local disk, more on
        # a network one) stays out of the per-ticket path; the page cache covers a process crash.
        if now - self._synced_at >= _FSYNC_INTERVAL:
            os.fsync(self._fd)
            self._synced_at = now

    def close(self) -> None:
        """Flush the journal to disk and close it."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def ticket_lines(self, source: int, ids: Iterable[int], wrap: bool) -> Iterator[bytes]:
        """The JSON lines of tickets ``ids``, read back from the journal open as ``source``.

        Args:
            source: a file descriptor of the journal as it is now (offsets refer to it).
            ids: the tickets, in the order wanted.
            wrap: give journal lines (each ticket line with its summary line before it) instead
                of bare ticket lines.
        """
        for tid in ids:
            record = self.tickets[tid]
            raw = os.pread(source, record.length, record.offset)
            if len(raw) != record.length:
                raise OSError(f"{self.path} is shorter than recorded; run the export again")
            if wrap:
                summary = record.summary_line(tid not in self.unsettled)
                yield summary + _TICKET_PREFIX + raw + _TICKET_SUFFIX
            else:
                yield raw + b"\n"

    def compacted(self, source: int, *, complete: bool, since: datetime | None) -> Iterator[bytes]:
        """The journal's minimal content: one line per ticket and per attachment file.

        Args:
            source: a file descriptor of the journal as it is now.
            complete: whether the run completed; if not, its ``since`` is kept for the next.
            since: the window of the run.
        """
        if not complete:
            yield _run_line(since)
        yield from self.ticket_lines(source, sorted(self.tickets), wrap=True)
        for aid in sorted(self.files):
            yield _dump({"file": self.files[aid].to_json()}) + b"\n"


def _ticket_record(raw: Any, offset: int, length: int) -> _TicketRecord:
    ticket = structure(raw, Ticket)  # raises ConversionError on a bad shape
    return _TicketRecord(
        id=ticket.id,
        offset=offset,
        length=length,
        updated_at=ticket.updated_at,
        messages=len(ticket.messages),
        attachments=tuple((a.id, a.name, a.size) for a in ticket.attachments),
    )


def _is_ticket_line(line: bytes, length: int | None) -> bool:
    """Whether ``line`` has the exact framing ``add_ticket`` writes (and, if given, a body of
    ``length`` bytes): only such a line's bytes can be copied into tickets.jsonl as they are."""
    framed = line.startswith(_TICKET_PREFIX) and line.endswith(_TICKET_SUFFIX)
    body = len(line) - len(_TICKET_PREFIX) - len(_TICKET_SUFFIX)
    return framed and (length is None or body == length)


def _parse_summary(line: bytes, offset: int) -> tuple[_TicketRecord, bool] | None:
    """The record a summary line describes, if its ticket is at ``offset``, and whether it is
    settled (a line without the key, as earlier versions wrote, is); None if malformed."""
    try:
        data = json.loads(line)["summary"]
        updated_at = data["updated_at"]
        attachments = tuple(
            (_strict_int(aid), _strict_str(name), None if size is None else _strict_int(size))
            for aid, name, size in data["attachments"]
        )
        settled = data.get("settled", True)
        if not isinstance(settled, bool):
            raise TypeError(f"expected a boolean, got {settled!r}")
        record = _TicketRecord(
            id=_strict_int(data["id"]),
            offset=offset,
            length=_strict_int(data["length"]),
            updated_at=None if updated_at is None else _parse_timestamp(updated_at),
            messages=_strict_int(data["messages"]),
            attachments=attachments,
        )
        return record, settled
    except (ValueError, TypeError, KeyError, AttributeError, ConversionError):
        # Garbage proves nothing: the ticket line after it, if any, is parsed in full.
        return None


def _strict_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _strict_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _served_at(
    date_header: str | None, requested_at: datetime, elapsed: timedelta = timedelta(0)
) -> datetime:
    """The earliest moment the server may have read what a response holds, on the server's
    clock (the one ``updated_at`` is on, so this machine's clock does not matter): its ``Date``
    header, which is stamped when the answer is sent, less ``elapsed``, the time the request
    took here (a slow server may read the ticket well before it answers). Without a usable
    ``Date``, this machine's clock when the request started, less ``_CLOCK_MARGIN`` for the
    difference between the clocks."""
    if date_header is not None:
        try:
            served = email.utils.parsedate_to_datetime(date_header)
        except (TypeError, ValueError, OverflowError):  # TypeError: Python 3.10's "unparsable"
            pass
        else:
            # RFC 9110 dates are GMT; only "-0000" parses as naive.
            if served.tzinfo is None:
                served = served.replace(tzinfo=timezone.utc)
            with contextlib.suppress(OverflowError):
                return served - elapsed
    return requested_at - _CLOCK_MARGIN


def _is_settled(updated_at: datetime | None, served_at: datetime) -> bool:
    """Whether a ticket read no earlier than ``served_at`` (see ``_served_at``) holds every
    change made up to its ``updated_at``, so that an unchanged ``updated_at`` proves an
    unchanged ticket.

    The API renders ``updated_at`` to the second (``.000000Z``): a change later in the same
    second keeps it as it was. So the read must come after that second ended, with
    ``_SETTLE_MARGIN`` to spare for the clock that stamps ``updated_at`` (the database's or
    PHP's) differing from the one that stamps ``Date`` (the web server's). With ``Date``
    12:00:10 and a quick answer, an ``updated_at`` of 12:00:07 is settled, one of 12:00:08 (its
    second ends 12:00:09, the margin takes the read back before that) is not. A ticket without
    ``updated_at`` is always read again anyway.
    """
    if updated_at is None:
        return True
    try:
        read_after = served_at - _SETTLE_MARGIN - timedelta(seconds=1)
    except OverflowError:  # a Date near year 1: nothing can be proven
        return False
    # Compared as "second began <= bound - 1 s", so an updated_at of 9999-12-31T23:59:59 does
    # not overflow.
    return updated_at.replace(microsecond=0) <= read_after


def _run_line(since: datetime | None) -> bytes:
    return _dump({"run": {"since": None if since is None else unstructure(since)}}) + b"\n"


def _parse_timestamp(text: str) -> datetime:
    return structure(text, datetime)  # the converter's datetimes are already aware UTC


def _widest(windows: Iterable[datetime | None]) -> datetime | None:
    """The ``since`` that covers every window: the earliest, None (everything) if any is None."""
    earliest: datetime | None = None
    for since in windows:
        if since is None:
            return None
        earliest = since if earliest is None else min(earliest, since)
    return earliest


def _write_atomically(path: Path, chunks: Iterable[bytes]) -> tuple[int, str]:
    """Write ``chunks`` to a temporary file beside ``path``, fsync it, rename it over ``path``.

    Returns:
        The size and hex sha256 of what was written.
    """
    digest = hashlib.sha256()
    size = 0
    with replacing(path, overwrite=True) as out:
        for chunk in chunks:
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        flush_to_disk(out)
    fsync_folder(path.parent)
    return size, digest.hexdigest()


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


class _FolderLock:
    """An exclusive lock on the export folder, released by the OS if the process dies."""

    def __init__(self, folder: Path) -> None:
        self._path = folder / LOCK_FILE
        self._handle: IO[bytes] | None = None

    def acquire(self) -> None:
        handle = open(self._path, "ab")  # noqa: SIM115 -- closed by release()
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock; one export per folder is on the caller
            self._handle = handle
            return
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise InvalidParameterError(
                "dest", f"another export is running into {self._path.parent}"
            ) from None
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file releases the flock
            self._handle = None


# --- the job ----------------------------------------------------------------------------------


class _ExportJob:
    """One run of :func:`export_tickets`: list, fetch and download with a pool of workers."""

    def __init__(
        self,
        client: AsyncClient,
        dest: Path,
        *,
        concurrency: int,
        attachments: bool,
        since: datetime | None,
        progress: ProgressCallback | None,
        per_page: int | None,
    ) -> None:
        self.client = client
        self.dest = dest
        self.concurrency = concurrency
        self.with_attachments = attachments
        self.since = since
        self.progress = progress
        self.per_page = per_page
        self.journal = _Journal(dest / JOURNAL_FILE)
        self.failures: list[ExportFailure] = []
        self.failed_tickets: set[int] = set()
        self.started_at = _now()
        self.seen: set[int] = set()
        self.listed = 0
        self.listing_done = False
        self.done = 0
        self.fetched = 0
        self.unchanged = 0
        self.downloaded = 0
        self.files_unchanged = 0
        self.bytes = 0

    async def run(self) -> ExportSummary:
        self.dest.mkdir(parents=True, exist_ok=True)
        lock = _FolderLock(self.dest)
        lock.acquire()
        try:
            await _in_thread(self._prepare)
            self.journal.open()
            try:
                self.journal.start_run(self.since)
                await self._pump()
            finally:
                self.journal.close()
            return await _in_thread(self._finish)
        finally:
            lock.release()

    def _prepare(self) -> None:
        self.journal.load()
        # What an unfinished run was exporting is finished by this one, whatever its ``since``.
        self.since = _widest([self.since, *self.journal.unfinished])
        # Temporary files a killed run left behind (downloads, tickets.jsonl, the journal's
        # compaction, the manifest): never part of the export.
        for pattern in (".*.part", f"{ATTACHMENTS_DIR}/*/.*.part"):
            for leftover in self.dest.glob(pattern):
                with contextlib.suppress(OSError):
                    leftover.unlink()

    # -- the pipeline: one lister feeding a pool of workers --------------------------------

    async def _pump(self) -> None:
        # Bounded: the lister waits while the workers are busy, so memory and tasks stay
        # constant however many tickets the account has.
        queue: asyncio.Queue[Ticket | None] = asyncio.Queue(maxsize=self.concurrency * 4)
        tasks = [asyncio.create_task(self._list(queue))]
        tasks += [asyncio.create_task(self._work(queue)) for _ in range(self.concurrency)]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                error = None if task.cancelled() else task.exception()
                if error is not None:
                    raise error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _list(self, queue: asyncio.Queue[Ticket | None]) -> None:
        async for listed in self.client.tickets.iter_all(per_page=self.per_page):
            self.seen.add(listed.id)
            updated = listed.updated_at
            # A ticket already in the folder is always looked at, whatever ``since``: if it
            # changed it is read again, and missing attachment files are fetched (no request
            # when all is in place). ``since`` only limits which new tickets are added.
            if (
                self.since is not None
                and updated is not None
                and updated < self.since
                and listed.id not in self.journal.tickets
            ):
                continue
            self.listed += 1
            await queue.put(listed)
            self._report()
        self.listing_done = True
        self._report()
        for _ in range(self.concurrency):
            await queue.put(None)

    async def _work(self, queue: asyncio.Queue[Ticket | None]) -> None:
        while (listed := await queue.get()) is not None:
            await self._export_ticket(listed)
            self.done += 1
            self._report()

    async def _export_ticket(self, listed: Ticket) -> None:
        known = self.journal.tickets.get(listed.id)
        if (
            known is not None
            and listed.updated_at is not None
            and known.updated_at == listed.updated_at
            # Read in the second of its update: a change in that second does not show.
            and listed.id not in self.journal.unsettled
        ):
            self.unchanged += 1
            record = known
        else:
            try:
                record = await self._fetch(listed.id)
            except VPSBGError as exc:
                self._fail(listed.id, None, exc)
                return
            self.fetched += 1
        if self.with_attachments:
            for attachment in record.attachment_models():
                try:
                    await self._download(record.id, attachment)
                except VPSBGError as exc:
                    self._fail(record.id, attachment.id, exc)

    def _fail(self, ticket_id: int, attachment_id: int | None, exc: VPSBGError | OSError) -> None:
        if isinstance(exc, AuthenticationError | PermissionDeniedError):
            raise exc  # a refused token fails every request: stop the whole run
        self.failures.append(
            ExportFailure(ticket_id=ticket_id, attachment_id=attachment_id, error=_one_line(exc))
        )
        self.failed_tickets.add(ticket_id)

    async def _fetch(self, ticket_id: int) -> _TicketRecord:
        """Read one ticket and journal its JSON as the API sent it (every key the models do not
        know, numbers spelled as sent); it is parsed only for what resuming needs.

        Raises:
            ResponseDecodeError: the body is not JSON, or not a ticket.
        """
        requested_at = _now()
        raw = await self.client.tickets.with_raw_response.get(ticket_id)
        served_at = _served_at(
            raw.headers.get("Date"), requested_at, timedelta(seconds=raw.elapsed)
        )
        try:
            return self.journal.add_ticket(raw.json(), _json_line(raw.content), served_at)
        except ConversionError as exc:
            raise ResponseDecodeError(
                f"Could not read the Ticket in the response to {raw.method} {raw.url}: {exc}",
                status=raw.status_code,
                body=raw.content,
                method=raw.method,
                url=raw.url,
            ) from None

    async def _download(self, ticket_id: int, attachment: Attachment) -> None:
        relative = attachment_path(ticket_id, attachment)
        target = self.dest / relative
        known = self.journal.files.get(attachment.id)
        if known is not None and known.path == relative and _file_size(target) == known.size:
            self.files_unchanged += 1
            return
        try:
            # download_attachment starts a cut download over itself, within the client's retries.
            await self.client.tickets.download_attachment(
                ticket_id, attachment, target, overwrite=True
            )
            size, sha256 = await asyncio.to_thread(_hash_file, target)
        except OSError as exc:
            # A file the system refuses (a ticket id too long for a folder name, a full disk):
            # this attachment fails and the run goes on. Only the file: a journal write that
            # fails below still stops the run, as the journal would no longer match its offsets.
            self._fail(ticket_id, attachment.id, exc)
            return
        self.journal.add_file(
            _FileRecord(
                attachment_id=attachment.id,
                ticket_id=ticket_id,
                path=relative,
                size=size,
                sha256=sha256,
            )
        )
        self.downloaded += 1
        self.bytes += size
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(
                ExportProgress(
                    listed=self.listed,
                    listing_done=self.listing_done,
                    done=self.done,
                    failed=len(self.failed_tickets),
                    attachments=self.downloaded,
                    bytes=self.bytes,
                )
            )

    # -- the end: tickets.jsonl, then (only when complete) the manifest --------------------

    def _finish(self) -> ExportSummary:
        manifest_path = self.dest / MANIFEST_FILE
        # First, so that no crash below can leave an old manifest beside new files.
        with contextlib.suppress(FileNotFoundError):
            manifest_path.unlink()
        complete = not self.failures
        ids = sorted(self.journal.tickets)
        tickets = [self.journal.tickets[tid] for tid in ids]
        # Streamed from the journal, ticket by ticket: memory does not grow with the account.
        source = os.open(self.journal.path, os.O_RDONLY)
        try:
            size, sha256 = _write_atomically(
                self.dest / TICKETS_FILE, self.journal.ticket_lines(source, ids, wrap=False)
            )
            _write_atomically(
                self.journal.path,
                self.journal.compacted(source, complete=complete, since=self.since),
            )
        finally:
            os.close(source)
        files: list[dict[str, Any]] = [{"path": TICKETS_FILE, "size": size, "sha256": sha256}]
        if self.with_attachments:
            for record in tickets:
                for attachment in record.attachment_models():
                    file = self.journal.files.get(attachment.id)
                    if file is not None and file.path == attachment_path(record.id, attachment):
                        files.append(file.to_json())
        attachment_files = files[1:]
        finished_at = _now()
        counts = {
            "tickets": len(tickets),
            "messages": sum(record.messages for record in tickets),
            "attachments": len(attachment_files),
            "attachment_bytes": sum(f["size"] for f in attachment_files),
        }
        if complete:
            manifest = {
                "format": FORMAT_VERSION,
                "exported_at": unstructure(finished_at),
                "started_at": unstructure(self.started_at),
                "base_url": self.client.base_url,
                "since": unstructure(self.since) if self.since is not None else None,
                "attachments_included": self.with_attachments,
                "counts": counts,
                "files": files,
            }
            _write_atomically(manifest_path, [json.dumps(manifest, indent=2).encode() + b"\n"])
        return ExportSummary(
            dest=self.dest,
            complete=complete,
            tickets=counts["tickets"],
            messages=counts["messages"],
            attachments=counts["attachments"],
            attachment_bytes=counts["attachment_bytes"],
            tickets_listed=self.listed,
            tickets_fetched=self.fetched,
            tickets_unchanged=self.unchanged,
            tickets_not_listed=len(self.journal.tickets.keys() - self.seen),
            attachments_downloaded=self.downloaded,
            attachments_unchanged=self.files_unchanged,
            bytes_downloaded=self.bytes,
            failures=tuple(self.failures),
            started_at=self.started_at,
            finished_at=finished_at,
            manifest=manifest_path if complete else None,
        )


async def _in_thread(work: Callable[[], _T]) -> _T:
    """Run blocking file work in a thread; on cancellation, wait for it to end first.

    A thread cannot be stopped: returning early would release the folder lock while it still
    writes into the folder.
    """
    future = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise
