"""``vpsbg-support export DIR``: archive every ticket and attachment, with a progress bar."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import IO, Any

from vpsbg_support import AsyncClient
from vpsbg_support import _constants as C
from vpsbg_support.archive import ExportProgress, ExportSummary, export_tickets
from vpsbg_support.cli import html
from vpsbg_support.cli._app import EXIT_OK, EXIT_PARTIAL, Output
from vpsbg_support.cli._format import size
from vpsbg_support.cli._options import MOMENT_FORMAT, Commands, moment, page_size, positive_int


class _ProgressBar:
    """A one-line progress bar on stderr, redrawn at most ten times a second; silent off a tty."""

    WIDTH = 24

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._enabled = stream.isatty()
        self._drawn_at = 0.0
        self._drawn = False

    def __call__(self, event: ExportProgress) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._drawn_at < 0.1 and not (event.listing_done and event.done == event.listed):
            return
        self._drawn_at = now
        total = max(event.listed, 1)
        filled = int(self.WIDTH * event.done / total) if event.listing_done else 0
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        of = f"{event.listed}" if event.listing_done else f"{event.listed}+"
        failed = f"  {event.failed} failed" if event.failed else ""
        self._stream.write(
            f"\rexport [{bar}] {event.done}/{of} tickets  {event.attachments} files"
            f"  {size(event.bytes)}{failed}\x1b[K"
        )
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()


def _summary_json(summary: ExportSummary) -> dict[str, Any]:
    return {
        "dest": str(summary.dest),
        "complete": summary.complete,
        "manifest": str(summary.manifest) if summary.manifest else None,
        "tickets": summary.tickets,
        "messages": summary.messages,
        "attachments": summary.attachments,
        "attachment_bytes": summary.attachment_bytes,
        "tickets_listed": summary.tickets_listed,
        "tickets_fetched": summary.tickets_fetched,
        "tickets_unchanged": summary.tickets_unchanged,
        "tickets_not_listed": summary.tickets_not_listed,
        "attachments_downloaded": summary.attachments_downloaded,
        "attachments_unchanged": summary.attachments_unchanged,
        "bytes_downloaded": summary.bytes_downloaded,
        "seconds": round(summary.seconds, 3),
        "failures": [
            {"ticket_id": f.ticket_id, "attachment_id": f.attachment_id, "error": f.error}
            for f in summary.failures
        ],
    }


def _summary_text(summary: ExportSummary) -> str:
    # An incomplete export says so first: "Exported 40 tickets" would read as done.
    status = "Exported" if summary.complete else "INCOMPLETE export: so far"
    lines = [
        f"{status} {summary.tickets} tickets ({summary.messages} messages) and"
        f" {summary.attachments} attachments ({size(summary.attachment_bytes)}) to"
        f" {summary.dest} in {summary.seconds:.1f} s.",
        f"  this run: {summary.tickets_fetched} tickets fetched,"
        f" {summary.tickets_unchanged} unchanged; {summary.attachments_downloaded} attachments"
        f" downloaded ({size(summary.bytes_downloaded)}), {summary.attachments_unchanged}"
        " already complete.",
    ]
    if summary.tickets_not_listed:
        lines.append(
            f"  kept {summary.tickets_not_listed} exported ticket(s) the server no longer lists."
        )
    if summary.manifest is not None:
        lines.append(f"  manifest: {summary.manifest}")
    else:
        lines.append(
            f"  {len(summary.failures)} failure(s); run the same command again to finish"
            " (no manifest.json until then):"
        )
        for failure in summary.failures[:10]:
            where = f"ticket {failure.ticket_id}"
            if failure.attachment_id is not None:
                where += f" attachment {failure.attachment_id}"
            lines.append(f"  {where}: {failure.error}")
        if len(summary.failures) > 10:
            lines.append(f"  ... and {len(summary.failures) - 10} more")
    return "\n".join(lines)


async def _export(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    if args.html:
        html.check_html_extra()  # before exporting anything: say how to install nh3 now
    bar = _ProgressBar(sys.stderr)
    try:
        summary = await export_tickets(
            client,
            args.dest,
            concurrency=args.concurrency,
            attachments=not args.no_attachments,
            since=args.since,
            progress=bar,
            per_page=args.per_page,
            allow_other_source=args.allow_other_source,
            # The demo's fake listens on a new port each run; its account is always the same.
            source=C.DEMO_SOURCE if args.demo else None,
        )
    finally:
        bar.close()
    data, text = _summary_json(summary), _summary_text(summary)
    if args.html:
        # What was archived, even by an incomplete run, is worth browsing.
        pages = await asyncio.to_thread(html.render, args.dest)
        data["html"] = html.summary_json(pages)
        text += "\n" + html.summary_text(pages)
    out.emit(data, lambda: text)
    return EXIT_OK if summary.complete else EXIT_PARTIAL


def register(commands: Commands) -> None:
    """Add the ``export`` command."""
    export = commands.add("export", _export, "archive every ticket and attachment")
    # --demo serves more tickets here than for other commands: enough to show the speed.
    export.set_defaults(demo_tickets=C.DEMO_EXPORT_TICKETS, demo_live=False)
    export.add_argument("dest", help="export folder (re-run on it to resume or update)")
    # Ctrl-C leaves the export resumable: the one thing to say is how to finish it.
    export.set_defaults(interrupted="interrupted; run the same command again to finish the export")
    export.add_argument(
        "--concurrency",
        type=positive_int,
        default=C.EXPORT_CONCURRENCY,
        metavar="N",
        help="requests at once (default: %(default)s)",
    )
    export.add_argument(
        "--since",
        type=moment,
        metavar="WHEN",
        help=f"only tickets updated since WHEN: {MOMENT_FORMAT}; a time without a zone is UTC",
    )
    export.add_argument("--no-attachments", action="store_true", help="tickets only")
    export.add_argument(
        "--per-page",
        type=page_size,
        metavar="N",
        help=f"tickets per list request, 1-{C.MAX_PER_PAGE} (default: the API's)",
    )
    export.add_argument(
        "--allow-other-source",
        action="store_true",
        help="export into an archive written from another --base-url (refused otherwise)",
    )
    export.add_argument(
        "--html",
        action="store_true",
        help="then write index.html, a page per ticket and tickets.csv (vpsbg-support[html])",
    )
