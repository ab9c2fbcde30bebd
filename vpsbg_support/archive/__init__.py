"""The archive: every ticket, every version of it, and every attachment, in one folder.

Layout of an archive folder::

    archive.sqlite                    the truth: runs, ticket versions, files, changes, search
    tickets.jsonl                     the latest version of each ticket, as the API sent it
    attachments/<ticket>/<id>-<name>  every attachment, byte for byte
    manifest.json                     counts, times, size and sha256 of every file (written last)
    .export.lock                      held while an export runs into the folder

``export_tickets`` writes it; ``Archive`` reads it (offline, no token).
"""

from vpsbg_support.archive._job import export_tickets
from vpsbg_support.archive._reader import Archive, ArchivedAttachment, Change, Run, TicketVersion
from vpsbg_support.archive._results import (
    ATTACHMENTS_DIR,
    MANIFEST_FILE,
    TICKETS_FILE,
    ExportFailure,
    ExportProgress,
    ExportSummary,
    ProgressCallback,
    attachment_path,
)
from vpsbg_support.archive._search import SearchHit
from vpsbg_support.archive._store import DB_FILE
from vpsbg_support.archive._verify import Problem

__all__ = [
    "ATTACHMENTS_DIR",
    "DB_FILE",
    "MANIFEST_FILE",
    "TICKETS_FILE",
    "Archive",
    "ArchivedAttachment",
    "Change",
    "ExportFailure",
    "ExportProgress",
    "ExportSummary",
    "Problem",
    "ProgressCallback",
    "Run",
    "SearchHit",
    "TicketVersion",
    "attachment_path",
    "export_tickets",
]
