"""The archive's HTML pages as strings: the index, a ticket's page, an earlier version's page.

Pure functions of their inputs (no clock, no file system): the same ticket renders to the same
bytes, which is what lets :mod:`vpsbg_support.archive.html` skip unchanged pages. Every value
from the API is escaped; message bodies go through :func:`sanitize_message`. Every page carries
a Content-Security-Policy that allows only the archive's own stylesheet, script (index only) and
images, so a rule the sanitiser missed still runs and loads nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from html import escape
from urllib.parse import quote

from vpsbg_support.archive._protocol import ArchivedAttachmentLike, TicketVersionLike
from vpsbg_support.archive._sanitize import sanitize_message
from vpsbg_support.models import Attachment, Ticket, TicketMessage

__all__ = [
    "INDEX_CSP",
    "PAGE_CSP",
    "STAMP_META",
    "index_page",
    "iso_8601",
    "ticket_page",
    "ticket_page_name",
    "version_page_name",
]

#: Folder (inside the archive folder) of the ticket pages and the static files.
PAGES_DIR = "html"
STATIC_DIR = f"{PAGES_DIR}/static"
#: The index may run the archive's own script (sorting, filtering); nothing else may run.
INDEX_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'"
)
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'"
)
#: The meta tag carrying a page's stamp: what it was rendered from (see html.py).
STAMP_META = "vpsbg-archive-stamp"
_THUMBNAIL_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_THUMBNAIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
_AUTHOR = {True: ("customer", "Customer"), False: ("support", "Support"), None: ("unknown", "?")}


def ticket_page_name(ticket_id: int) -> str:
    """The file name of a ticket's page inside ``html/``."""
    return f"ticket-{ticket_id}.html"


def version_page_name(ticket_id: int, version_id: int) -> str:
    """The file name of an earlier version's page inside ``html/``."""
    return f"ticket-{ticket_id}-v{version_id}.html"


def index_page(tickets: Sequence[Ticket], *, stamp: str, generator: str) -> str:
    """The index: one sortable, filterable table row per ticket.

    Args:
        tickets: the latest version of every ticket.
        stamp: what the index is rendered from, written into it (see html.py).
        generator: the program and version to name in the page.

    Returns:
        The page's HTML.
    """
    rows = "".join(_index_row(ticket) for ticket in tickets)
    statuses = sorted({ticket.status for ticket in tickets})
    options = "".join(f'<option value="{escape(s)}">{escape(s)}</option>' for s in statuses)
    count = len(tickets)
    body = f"""<header><h1>Support tickets</h1>
<p class="summary"><span id="shown">{count}</span> of {count} tickets \
\u00b7 <a href="tickets.csv">tickets.csv</a></p>
<form id="controls" class="controls" hidden>
<label>Filter <input type="search" id="filter" placeholder="subject, id, service\u2026" \
autocomplete="off"></label>
<label>Status <select id="status"><option value="">any</option>{options}</select></label>
</form></header>
<main><table id="tickets" class="tickets">
<thead><tr>{_headers()}</tr></thead>
<tbody>
{rows}</tbody></table></main>
<footer>Written by {escape(generator)} from archive.sqlite.</footer>"""
    return _document(
        "Support tickets",
        body,
        csp=INDEX_CSP,
        static=f"{STATIC_DIR}/",
        script=True,
        kind="index",
        stamp=stamp,
    )


def _headers() -> str:
    columns = (
        ("id", "number", "ID"),
        ("subject", "text", "Subject"),
        ("status", "text", "Status"),
        ("department", "text", "Department"),
        ("service", "text", "Service"),
        ("created", "text", "Created"),
        ("updated", "text", "Updated"),
        ("messages", "number", "Messages"),
        ("attachments", "number", "Attachments"),
    )
    return "".join(
        f'<th scope="col" data-key="{key}" data-type="{kind}">'
        f'<button type="button">{label}</button></th>'
        for key, kind, label in columns
    )


def _index_row(ticket: Ticket) -> str:
    href = f"{PAGES_DIR}/{ticket_page_name(ticket.id)}"
    return (
        f'<tr data-status="{escape(ticket.status)}">'
        f'<td class="num">{ticket.id}</td>'
        f'<td><a href="{href}">{escape(ticket.subject)}</a></td>'
        f'<td><span class="status">{escape(ticket.status)}</span></td>'
        f"<td>{escape(ticket.department or '')}</td>"
        f"<td>{escape(ticket.service_label or '')}</td>"
        f"<td>{_time(ticket.created_at)}</td>"
        f"<td>{_time(ticket.updated_at)}</td>"
        f'<td class="num">{len(ticket.messages)}</td>'
        f'<td class="num">{sum(len(m.attachments) for m in ticket.messages)}</td>'
        "</tr>\n"
    )


def ticket_page(
    ticket: Ticket,
    *,
    fetched_at: datetime | None,
    stamp: str,
    files: Mapping[int, ArchivedAttachmentLike],
    earlier: Sequence[TicketVersionLike] = (),
    latest: bool = True,
    generator: str,
    sanitized: Mapping[str, str] | None = None,
) -> str:
    """A ticket's page: its details, the thread in order, attachments, earlier versions.

    Args:
        ticket: the ticket as the page shows it (the latest version, or an earlier one).
        fetched_at: when the archive read that version.
        stamp: what the page is rendered from, written into it (see html.py).
        files: the archived attachment files of the ticket, by attachment id.
        earlier: the earlier versions to link to (only on the latest version's page).
        latest: False for an earlier version's page: it says so and links to the latest.
        generator: the program and version to name in the page.
        sanitized: message bodies already sanitised (by body); others are sanitised here.

    Returns:
        The page's HTML.
    """
    prepared = sanitized or {}
    messages = "".join(_message(m, files, prepared) for m in ticket.messages)
    shown = {a.id for m in ticket.messages for a in m.attachments}
    others = [f for attachment_id, f in sorted(files.items()) if attachment_id not in shown]
    notice = ""
    if not latest:
        notice = (
            '<p class="notice">An earlier version of this ticket, as archived at '
            f"{_time(fetched_at)}. "
            f'<a href="{ticket_page_name(ticket.id)}">The latest version</a></p>\n'
        )
    body = f"""<header><nav><a href="../index.html">\u2190 All tickets</a></nav>
<h1><span class="id">#{ticket.id}</span> {escape(ticket.subject)}</h1>
{notice}{_details(ticket, fetched_at)}</header>
<main><h2>Messages ({len(ticket.messages)})</h2>
<ol class="thread">
{messages}</ol>
{_other_files(others)}{_versions(ticket.id, earlier)}</main>
<footer>Written by {escape(generator)} from archive.sqlite.</footer>"""
    title = f"#{ticket.id} {ticket.subject}"
    return _document(title, body, csp=PAGE_CSP, static="static/", stamp=stamp, kind="ticket")


def _details(ticket: Ticket, fetched_at: datetime | None) -> str:
    service = ticket.service_label or ""
    if ticket.service_type or ticket.service_id is not None:
        kind = " ".join(str(p) for p in (ticket.service_type, ticket.service_id) if p is not None)
        service = f"{service} ({kind})" if service else kind
    fields = (
        ("Status", f'<span class="status">{escape(ticket.status)}</span>'),
        ("Department", escape(ticket.department or "")),
        ("Service", escape(service)),
        ("Owner", escape(ticket.user or "")),
        ("Created", _time(ticket.created_at)),
        ("Updated", _time(ticket.updated_at)),
        ("Archived", _time(fetched_at)),
    )
    items = "".join(f"<dt>{name}</dt><dd>{value or '-'}</dd>" for name, value in fields)
    return f'<dl class="details">{items}</dl>\n'


def _message(
    message: TicketMessage,
    files: Mapping[int, ArchivedAttachmentLike],
    sanitized: Mapping[str, str],
) -> str:
    kind, label = _AUTHOR[message.is_customer]
    anchor = f' id="m{message.id}"' if message.id is not None else ""
    author = f' <span class="author">{escape(message.user)}</span>' if message.user else ""
    attachments = ""
    if message.attachments:
        items = "".join(_attachment(a, files.get(a.id)) for a in message.attachments)
        attachments = f'<ul class="attachments">{items}</ul>'
    content = message.content
    body = sanitized.get(content) if content else None
    if body is None:
        body = sanitize_message(content)
    return (
        f'<li class="message {kind}"{anchor}><article>'
        f'<header><span class="who">{label}</span>{author} {_time(message.created_at)}</header>'
        f'<div class="body">{body}</div>{attachments}'
        "</article></li>\n"
    )


def _attachment(attachment: Attachment, stored: ArchivedAttachmentLike | None) -> str:
    name = escape(attachment.name)
    href = _file_href(stored)
    if stored is None or href is None:
        size = _size(attachment.size) if attachment.size is not None else "size unknown"
        return f'<li class="missing">{name} <span class="size">({size}; not archived)</span></li>'
    thumbnail = ""
    if _is_image(attachment, stored):
        thumbnail = (
            f'<a class="thumb" href="{href}"><img src="{href}" alt="{name}" loading="lazy"></a>'
        )
    return (
        f'<li><a class="file" href="{href}">{name}</a> '
        f'<span class="size">({_size(stored.size)})</span>{thumbnail}</li>'
    )


def _other_files(files: Iterable[ArchivedAttachmentLike]) -> str:
    items = []
    for stored in files:
        href = _file_href(stored)
        if href is not None:
            items.append(
                f'<li><a class="file" href="{href}">{escape(stored.name)}</a> '
                f'<span class="size">({_size(stored.size)})</span></li>'
            )
    if not items:
        return ""
    return (
        "<section><h2>Other archived files</h2>"
        "<p>Attached to messages this version no longer lists.</p>"
        f'<ul class="attachments">{"".join(items)}</ul></section>\n'
    )


def _versions(ticket_id: int, earlier: Sequence[TicketVersionLike]) -> str:
    if not earlier:
        return ""
    items = "".join(
        f'<li><a href="{version_page_name(ticket_id, v.version_id)}">Archived '
        f"{_time(v.fetched_at)}</a> \u00b7 updated {_time(v.updated_at)}</li>"
        for v in reversed(earlier)
    )
    return (
        f'<section class="versions"><h2>Earlier versions ({len(earlier)})</h2>'
        f"<ul>{items}</ul></section>\n"
    )


def _file_href(stored: ArchivedAttachmentLike | None) -> str | None:
    """The link from a page in ``html/`` to an archived file, or None for a path that would
    leave the archive folder (absolute, ``..``, a drive or a backslash)."""
    if stored is None:
        return None
    path = stored.path
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or ":" in parts[0] or ".." in parts:
        return None
    return "../" + quote(path, safe="/")


def _is_image(attachment: Attachment, stored: ArchivedAttachmentLike) -> bool:
    if attachment.mime_type is not None:
        return attachment.mime_type.lower() in _THUMBNAIL_TYPES
    return stored.path.lower().endswith(_THUMBNAIL_SUFFIXES)


def _time(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    # Shown to the second (what the API gives); the attribute keeps any fraction.
    full = iso_8601(moment)
    shown = iso_8601(moment.replace(microsecond=0)) if moment.microsecond else full
    return f'<time datetime="{full}">{shown}</time>'


def iso_8601(moment: datetime) -> str:
    """A moment in ISO 8601 with its zone: ``2024-08-02T11:57:57Z`` for UTC (the API's zone),
    ``+02:00`` and the like otherwise; a naive moment (never from the API) has no zone to show.
    """
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _size(size: int) -> str:
    """Bytes as a person reads them, the exact count kept: ``1.4 KiB, 1,426 bytes``."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}, {size:,} bytes"


def _document(
    title: str,
    body: str,
    *,
    csp: str,
    static: str,
    kind: str,
    script: bool = False,
    stamp: str = "",
) -> str:
    stamp_meta = f'<meta name="{STAMP_META}" content="{stamp}">\n' if stamp else ""
    script_tag = f'<script src="{static}archive.js" defer></script>\n' if script else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
{stamp_meta}<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="stylesheet" href="{static}archive.css">
{script_tag}</head>
<body class="{kind}">
{body}
</body></html>
"""
