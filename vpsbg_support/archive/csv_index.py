"""``tickets.csv``: a row per ticket for spreadsheets, the first message as plain text.

Encoding: UTF-8 with a byte order mark, rows ending in CRLF (RFC 4180). Without the BOM, Excel
opens a CSV in the machine's legacy code page and turns every non-ASCII letter (Cyrillic
subjects, names with diacritics) into mojibake; with it, Excel, LibreOffice, Numbers and
Python's ``encoding="utf-8-sig"`` all read it right.

Formula injection: a spreadsheet runs a cell starting with ``=``, ``+``, ``-`` or ``@`` (and,
in some, a tab or carriage return) as a formula, and a ticket's subject or message is text a
stranger may have written. Such text cells get a leading ``'``, which spreadsheets show as
text and hide; numbers and dates are written as they are (they never start that way).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path

from vpsbg_support.archive._folder import ArchiveFolder
from vpsbg_support.archive._htmltext import html_to_text
from vpsbg_support.archive._pages import iso_8601
from vpsbg_support.archive._protocol import ArchiveReader
from vpsbg_support.archive._write import write_if_changed
from vpsbg_support.models import Ticket

__all__ = ["CSV_COLUMNS", "CSV_FILE", "csv_bytes", "neutralize_formula", "write_tickets_csv"]

CSV_FILE = "tickets.csv"
CSV_COLUMNS = (
    "id",
    "subject",
    "status",
    "department",
    "service",
    "service_type",
    "service_id",
    "owner",
    "created_at",
    "updated_at",
    "messages",
    "attachments",
    "first_message",
)
#: What a spreadsheet may read as the start of a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralize_formula(text: str) -> str:
    """Keep a text cell from being run as a spreadsheet formula.

    Args:
        text: the cell's text.

    Returns:
        ``text``, with ``'`` in front when it starts like a formula.
    """
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_bytes(
    tickets: Sequence[Ticket],
    to_text: Callable[[list[str]], list[str]] | None = None,
) -> bytes:
    """Render the CSV index of ``tickets`` (see the module's docstring for the format).

    Args:
        tickets: the tickets, in the order the rows should have.
        to_text: turns a list of message bodies into plain text, in order (the HTML view
            spreads that over worker processes); :func:`html_to_text` of each by default.

    Returns:
        The file's bytes: UTF-8 with BOM, CRLF line ends.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    firsts = [(t.messages[0].content or "") if t.messages else "" for t in tickets]
    texts = to_text(firsts) if to_text else [html_to_text(first) for first in firsts]
    for ticket, first in zip(tickets, texts, strict=True):
        writer.writerow(
            (
                ticket.id,
                neutralize_formula(ticket.subject),
                neutralize_formula(ticket.status),
                neutralize_formula(ticket.department or ""),
                neutralize_formula(ticket.service_label or ""),
                neutralize_formula(ticket.service_type or ""),
                "" if ticket.service_id is None else ticket.service_id,
                neutralize_formula(ticket.user or ""),
                iso_8601(ticket.created_at) if ticket.created_at else "",
                iso_8601(ticket.updated_at) if ticket.updated_at else "",
                len(ticket.messages),
                sum(len(message.attachments) for message in ticket.messages),
                neutralize_formula(first),
            )
        )
    return buffer.getvalue().encode("utf-8-sig")


def write_tickets_csv(archive: ArchiveReader) -> Path:
    """Write ``tickets.csv`` into the archive folder (atomically; unchanged bytes are left alone).

    Args:
        archive: the archive to read.

    Returns:
        The CSV file's path.

    Raises:
        ExportError: it could not be written (a symbolic link in the way, a full disk).
    """
    root = Path(archive.path)
    with ArchiveFolder(root, create=False) as folder:
        write_if_changed(folder, CSV_FILE, csv_bytes(archive.tickets()))
    return root / CSV_FILE
