"""The browsable archive: ``index.html``, a page per ticket and per earlier version, tickets.csv.

Layout inside the archive folder::

    index.html                          every ticket: sortable, filterable (opens from file://)
    tickets.csv                         a row per ticket (see csv_index)
    html/ticket-<id>.html               a ticket's thread, attachments, earlier versions
    html/ticket-<id>-v<version>.html    an earlier version of a ticket, as archived then
    html/static/archive.css, .js        the pages' own stylesheet (print included) and script

Everything is rendered from the archive (``ArchiveReader``) and nothing else. Incremental: each
page carries a stamp, a hash of what it is rendered from (the ticket's version ids, its archived
files, the renderer's version); a page whose stamp is unchanged is neither rendered nor written
again, so a re-run after an export that changed ten tickets writes about ten pages. Every file
is written atomically and fsynced (see ``_write``), never through a symbolic link.

Message HTML is sanitised with nh3, the optional extra ``vpsbg-support[html]``
(:func:`sanitize_message`, :func:`require_nh3`); :func:`html_to_text` turns it into plain text
with the standard library alone (``tickets show``, the CSV).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path

import attrs

from vpsbg_support._version import __version__
from vpsbg_support.archive._folder import ArchiveFolder
from vpsbg_support.archive._htmltext import html_to_text
from vpsbg_support.archive._pages import (
    PAGES_DIR,
    STAMP_META,
    STATIC_DIR,
    index_page,
    ticket_page,
    ticket_page_name,
    version_page_name,
)
from vpsbg_support.archive._prepare import Prepared, Preparer
from vpsbg_support.archive._protocol import ArchivedAttachmentLike, ArchiveReader
from vpsbg_support.archive._sanitize import INSTALL_HINT, require_nh3, sanitize_message
from vpsbg_support.archive._write import PagesFolder, ParallelWriter, read_file, write_if_changed
from vpsbg_support.archive.csv_index import CSV_FILE, csv_bytes
from vpsbg_support.models import Ticket

__all__ = [
    "INDEX_FILE",
    "INSTALL_HINT",
    "HtmlSummary",
    "html_to_text",
    "render_html",
    "require_nh3",
    "sanitize_message",
]

INDEX_FILE = "index.html"
STATIC_FILES = ("archive.css", "archive.js")
#: Bump when the pages' markup changes in a way the package version does not capture.
PAGE_FORMAT = 1
_GENERATOR = f"vpsbg-support {__version__}"
_STAMP = re.compile(rb'<meta name="' + STAMP_META.encode() + rb'" content="([0-9a-f]+)">')
#: The stamp is within a page's first few hundred bytes.
_STAMP_WITHIN = 512
#: Tickets whose versions are read and pages rendered together (bounds the history in memory).
_BATCH = 256


@attrs.frozen(kw_only=True)
class HtmlSummary:
    """What :func:`render_html` did.

    Attributes:
        index: absolute path of ``index.html`` (``index.as_uri()`` opens in a browser).
        csv: absolute path of ``tickets.csv``.
        tickets: tickets in the index.
        pages_written: ticket and version pages rendered and written this time.
        pages_unchanged: pages whose stamp showed they were already up to date.
    """

    index: Path
    csv: Path
    tickets: int
    pages_written: int
    pages_unchanged: int


def render_html(archive: ArchiveReader) -> HtmlSummary:
    """Write (or bring up to date) the browsable archive and ``tickets.csv`` in its folder.

    Args:
        archive: the archive to render (``vpsbg_support.archive.Archive`` or any ArchiveReader).

    Returns:
        What was written.

    Raises:
        ImportError: nh3 is missing; the message says ``pip install 'vpsbg-support[html]'``.
        ExportError: a page could not be written: a symbolic link where the archive would
            write (never followed), a file where a folder should be, a full disk.
    """
    require_nh3()
    root = Path(archive.path)
    with ArchiveFolder(root, create=False) as folder:
        for name in STATIC_FILES:
            write_if_changed(folder, f"{STATIC_DIR}/{name}", _static_file(name))

        tickets = sorted(archive.tickets(), key=lambda t: t.id)
        files = _files_by_ticket(archive.attachments())
        stamps: list[str] = []
        written = 0
        with Preparer() as preparer:
            with PagesFolder(root, PAGES_DIR) as pages, ParallelWriter(pages) as writer:
                # A batch of tickets at a time: their history is in memory only that long. Stamps
                # are read, and pages written, on the writer's threads: file system calls wait on
                # the disk, not on the CPU. The batch's message bodies are sanitised on worker
                # processes while the previous batch's pages are assembled here.
                previous: tuple[list[_Page], Prepared] | None = None
                for start in range(0, len(tickets), _BATCH):
                    batch = tickets[start : start + _BATCH]
                    wanted = [page for t in batch for page in _pages_of(archive, t, files)]
                    found = writer.map(
                        lambda p: _stamp_in(pages.head(p.name, _STAMP_WITHIN)), wanted
                    )
                    stale = []
                    for page, stamp in zip(wanted, found, strict=True):
                        stamps.append(page.stamp)
                        if stamp != page.stamp:
                            stale.append(page)
                    current = (stale, preparer.sanitize(c for p in stale for c in p.contents))
                    if previous is not None:
                        written += _write_pages(writer, *previous)
                    previous = current
                if previous is not None:
                    written += _write_pages(writer, *previous)

            # The index and the CSV show the latest version of every ticket: when the index's
            # stamp (over every page's) is unchanged, neither has anything new to show.
            index_stamp = _stamp("index", [], stamps)
            index_head = read_file(root / INDEX_FILE, _STAMP_WITHIN)
            if _stamp_in(index_head) != index_stamp or read_file(root / CSV_FILE, 1) is None:
                write_if_changed(folder, CSV_FILE, csv_bytes(tickets, preparer.texts))
                listing = index_page(tickets, stamp=index_stamp, generator=_GENERATOR)
                write_if_changed(folder, INDEX_FILE, listing.encode("utf-8"))
    return HtmlSummary(
        index=root.absolute() / INDEX_FILE,
        csv=root.absolute() / CSV_FILE,
        tickets=len(tickets),
        pages_written=written,
        pages_unchanged=len(stamps) - written,
    )


@attrs.frozen
class _Page:
    """A page to bring up to date: its file name in ``html/``, its stamp, how to render it
    (given the sanitised message bodies at hand), and the message bodies it shows."""

    name: str
    stamp: str
    render: Callable[..., str]
    contents: tuple[str | None, ...]


def _write_pages(writer: ParallelWriter, stale: list[_Page], prepared: Prepared) -> int:
    """Render ``stale`` pages with the bodies the workers sanitised, queue them to be written."""
    sanitized = prepared.result()
    for page in stale:
        writer.submit(page.name, page.render(sanitized=sanitized).encode("utf-8"))
    return len(stale)


def _pages_of(
    archive: ArchiveReader,
    ticket: Ticket,
    files: Mapping[int, Mapping[int, ArchivedAttachmentLike]],
) -> Iterator[_Page]:
    """The latest page of a ticket and a page per earlier version."""
    history = archive.history(ticket.id)
    ticket_files = files.get(ticket.id, {})
    file_key = _files_key(ticket_files.values())
    fetched_at = history[-1].fetched_at if history else None
    yield _Page(
        ticket_page_name(ticket.id),
        (stamp := _stamp("ticket", [v.version_id for v in history], file_key)),
        functools.partial(
            ticket_page,
            ticket,
            fetched_at=fetched_at,
            stamp=stamp,
            files=ticket_files,
            earlier=history[:-1],
            generator=_GENERATOR,
        ),
        tuple(m.content for m in ticket.messages),
    )
    for version in history[:-1]:
        yield _Page(
            version_page_name(ticket.id, version.version_id),
            (stamp := _stamp("version", [version.version_id], file_key)),
            functools.partial(
                ticket_page,
                version.ticket,
                fetched_at=version.fetched_at,
                stamp=stamp,
                files=ticket_files,
                latest=False,
                generator=_GENERATOR,
            ),
            tuple(m.content for m in version.ticket.messages),
        )


def _files_by_ticket(
    files: Iterable[ArchivedAttachmentLike],
) -> dict[int, dict[int, ArchivedAttachmentLike]]:
    by_ticket: dict[int, dict[int, ArchivedAttachmentLike]] = defaultdict(dict)
    for stored in files:
        by_ticket[stored.ticket_id][stored.attachment_id] = stored
    return by_ticket


def _files_key(files: Iterable[ArchivedAttachmentLike]) -> list[tuple[int, str, int, str]]:
    return sorted((f.attachment_id, f.path, f.size, f.sha256) for f in files)


def _stamp(kind: str, version_ids: Sequence[int], sources: Sequence[object]) -> str:
    """A hash of everything a page is rendered from (besides the code: version and format)."""
    source = repr((PAGE_FORMAT, __version__, kind, list(version_ids), sources)).encode()
    return hashlib.sha256(source).hexdigest()[:32]


def _stamp_in(head: bytes | None) -> str | None:
    match = _STAMP.search(head) if head else None
    return match.group(1).decode() if match else None


def _static_file(name: str) -> bytes:
    return resources.files("vpsbg_support.archive").joinpath("static").joinpath(name).read_bytes()
