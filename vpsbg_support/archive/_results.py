"""What an export reports: its progress while it runs, its summary and failures at the end."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import attrs

from vpsbg_support._constants import ARCHIVE_ATTACHMENTS_DIR
from vpsbg_support.models import Attachment

TICKETS_FILE = "tickets.jsonl"
MANIFEST_FILE = "manifest.json"
ATTACHMENTS_DIR = ARCHIVE_ATTACHMENTS_DIR
LOCK_FILE = ".export.lock"
#: The hand-written journal of earlier versions, migrated into ``archive.sqlite``.
JOURNAL_FILE = ".export-journal.jsonl"
#: Version of the folder layout and manifest, written into the manifest.
FORMAT_VERSION = 2


def attachment_path(ticket_id: int, attachment: Attachment) -> str:
    """Where an attachment goes inside an export folder, as a relative POSIX path.

    Args:
        ticket_id: the ticket the attachment belongs to.
        attachment: the attachment (its id and name are used; the name is sanitised).

    Returns:
        ``attachments/<ticket_id>/<attachment_id>-<safe name>``.
    """
    from vpsbg_support import safe_filename  # at call time: the package imports this module

    name = safe_filename(f"{attachment.id}-{attachment.name}", f"{attachment.id}-attachment")
    return f"{ATTACHMENTS_DIR}/{ticket_id}/{name}"


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
        attachments_downloaded: attachment files downloaded in this run (again, for a file
            found damaged on disk).
        attachments_unchanged: attachment files already complete from an earlier run.
        bytes_downloaded: bytes of attachments downloaded in this run.
        failures: what could not be exported; a re-run retries it.
        started_at: when the run started (UTC).
        finished_at: when it finished (UTC).
        manifest: path of the manifest written, or None when the export is incomplete.
        run_id: the run's id in ``archive.sqlite`` (see ``Archive.runs()``).
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
    run_id: int = 0

    @property
    def seconds(self) -> float:
        """Wall-clock duration of the run, in seconds."""
        return (self.finished_at - self.started_at).total_seconds()


#: What ``progress=`` takes: a function called with an ExportProgress, on the event loop.
ProgressCallback = Callable[[ExportProgress], None]
