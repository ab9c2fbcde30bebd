"""The ``vpsbg-support`` command: bulk export, tickets and support plans from a shell.

Exit status: 0 success, 1 any other error, or a question answered "no" (nothing was sent), or
stdout closed early (``| head``: a quiet exit), 2 bad usage (a bad option value, an unusable
``--base-url``, ``--demo`` with ``--token``/``--base-url``, or a confirmation needed with no
terminal to ask on and no ``--yes``), 3 authentication (no, wrong or read-only token), 4 invalid
input (checked locally or refused by the API with 422/400, or a download that would replace a
different file), 5 not found, 6 network (connection, timeout, download cut short), 7 an export
that finished with failures (run it again to complete it), 130 interrupted (Ctrl-C; an export
is left resumable).

``--json`` prints one JSON document on stdout, with the library's field names: ``tickets list``
an array of tickets (without ``messages`` when the list answer did not carry them),
``tickets show|create|reply|resolve`` a ticket (``resolve``: ``{"id": N}`` when the API answers
without one), ``tickets departments|services`` an array of them, ``tickets download`` an array
of ``{"attachment_id", "path", "skipped"}``, ``plans list`` an array of plans, ``plans
purchase|renew|cancel|undo-cancel`` an order (``null`` when the API answers without one),
``export`` the summary (the keys of ``_summary_json``). Errors are never JSON, with ``--json``
too: one plain-text line on stderr, ``vpsbg-support: error: ...``, and the exit status above.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import stat
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from vpsbg_support import _constants as C
from vpsbg_support._client import AsyncClient, token_is_plausible
from vpsbg_support._convert import ConversionError, structure, unstructure
from vpsbg_support._version import __version__
from vpsbg_support.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    DownloadError,
    InvalidParameterError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableEntityError,
    VPSBGError,
)
from vpsbg_support.export import ExportProgress, ExportSummary, attachment_path, export_tickets
from vpsbg_support.models import Attachment, Department, Order, RelatedService, SupportPlan, Ticket

__all__ = [
    "EXIT_ABORTED",
    "EXIT_AUTH",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_NETWORK",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "EXIT_VALIDATION",
    "exit_code_for",
    "main",
]

PROG = "vpsbg-support"
EXIT_OK = 0
EXIT_ERROR = 1
#: A question answered "no": nothing was sent. The same status as other errors, as most tools do.
EXIT_ABORTED = EXIT_ERROR
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_VALIDATION = 4
EXIT_NOT_FOUND = 5
EXIT_NETWORK = 6
EXIT_PARTIAL = 7
EXIT_INTERRUPTED = 130

Handler = Callable[[AsyncClient, argparse.Namespace, "_Output"], Awaitable[int]]


class _Exit(Exception):
    """An error the CLI words itself, for the command line (``--overwrite``, not a parameter)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class _StdoutClosed(Exception):
    """Whoever read stdout has gone (``| head``): nothing left to say, and nobody to say it to."""


def exit_code_for(exc: BaseException) -> int:
    """The exit status for an error.

    Args:
        exc: the error that ended the command.

    Returns:
        3 auth, 4 validation, 5 not found, 6 network, 1 anything else.
    """
    if isinstance(exc, ConfigurationError | AuthenticationError | PermissionDeniedError):
        return EXIT_AUTH
    if isinstance(exc, InvalidParameterError | UnprocessableEntityError | BadRequestError):
        return EXIT_VALIDATION
    if isinstance(exc, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, APIConnectionError | DownloadError):
        return EXIT_NETWORK
    return EXIT_ERROR


def _describe(exc: BaseException) -> str:
    """One line for an error: the library's message, plus the API's field errors on a 422 when
    they say more than the message (Laravel's message repeats the first of them)."""
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, UnprocessableEntityError) and exc.errors:
        fields = []
        for field, messages in exc.errors.items():
            news = [m for m in messages if m not in text]
            if news:
                fields.append(f"{field}: {' '.join(news)}")
        if fields:
            text = f"{text} ({'; '.join(fields)})"
    elif isinstance(exc, OSError) and exc.filename is not None:
        # "/proc/nope: No such file or directory", as mkdir or cp would say it.
        where = os.fsdecode(exc.filename)
        if exc.filename2 is not None:
            where += f" -> {os.fsdecode(exc.filename2)}"
        text = f"{where}: {exc.strerror or exc.__class__.__name__}"
    elif not isinstance(exc, VPSBGError):
        text = f"{exc.__class__.__name__}: {text}"
    return " ".join(text.split())


# --- output -----------------------------------------------------------------------------------


class _Output:
    """Where results go: stdout as text for people, or one JSON document with ``--json``."""

    def __init__(self, as_json: bool, out: IO[str] | None = None) -> None:
        self.as_json = as_json
        # Looked up now, not at import: whoever redirected sys.stdout meanwhile gets the output.
        self._out = out if out is not None else sys.stdout

    def emit(self, data: Any, text: Callable[[], str]) -> None:
        try:
            if self.as_json:
                json.dump(data, self._out, indent=2, ensure_ascii=False, default=str)
                self._out.write("\n")
            else:
                self._out.write(text().rstrip("\n") + "\n")
            self._out.flush()
        except BrokenPipeError:
            raise _StdoutClosed from None


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "-"


def _size(count: int | None) -> str:
    if count is None:
        return "?"
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _table(rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned on the widest cell; the last column is left ragged."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [f"{cell:<{width}}" for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)


def _ticket_rows(tickets: Sequence[Ticket]) -> str:
    if not tickets:
        return "No tickets."
    rows = [("ID", "STATUS", "UPDATED", "SUBJECT")]
    rows += [(str(t.id), t.status, _when(t.updated_at), t.subject) for t in tickets]
    return _table(rows)


def _listed_tickets(tickets: Sequence[Ticket]) -> list[dict[str, Any]]:
    """Tickets as ``--json`` lists them: a list answer usually leaves messages out, and
    ``"messages": []`` would read as "no messages", so the key goes when there are none."""
    data: list[dict[str, Any]] = unstructure(list(tickets))
    for item in data:
        if not item.get("messages"):
            item.pop("messages", None)
    return data


def _departments_text(departments: Sequence[Department]) -> str:
    if not departments:
        return "No departments."
    rows = [("ID", "NAME", "SLUG")]
    rows += [(str(d.id), d.name, d.slug or "-") for d in departments]
    return _table(rows)


def _services_text(services: Sequence[RelatedService]) -> str:
    if not services:
        return "No services."
    rows = [("ID", "TYPE", "NAME")]
    rows += [(str(s.id), s.type or "-", s.label or "-") for s in services]
    return _table(rows)


def _ticket_text(ticket: Ticket) -> str:
    lines = [f"#{ticket.id} [{ticket.status}] {ticket.subject}"]
    about = [f"department: {ticket.department or '-'}"]
    if ticket.service_label:
        about.append(f"service: {ticket.service_label}")
    lines.append("  ".join(about))
    lines.append(f"created {_when(ticket.created_at)}  updated {_when(ticket.updated_at)}")
    for message in ticket.messages:
        author = {True: "customer", False: "support", None: "unknown"}[message.is_customer]
        lines += ["", f"--- {author}, {_when(message.created_at)}"]
        lines.append(message.content or "")
        for attachment in message.attachments:
            lines.append(
                f"  attachment {attachment.id}: {attachment.name} ({_size(attachment.size)})"
            )
    return "\n".join(lines)


def _order_text(order: Order | None, done: str) -> str:
    if order is None:
        return f"{done}."
    amount = f"{order.amount} ({order.amount_with_vat} with VAT)"
    return f"{done}: order {order.id} ({order.type or 'order'}), {amount}, status {order.status}."


def _plans_text(plans: Sequence[SupportPlan]) -> str:
    rows = [("PLAN", "NAME", "PRICE/MONTH", "STATUS")]
    rows += [(p.key, p.name or "-", str(p.price or "-"), p.status or "-") for p in plans]
    return _table(rows)


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
            f"  {_size(event.bytes)}{failed}\x1b[K"
        )
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()


# --- confirmation -----------------------------------------------------------------------------


COSTS_MONEY = "This creates an order that costs money."


def _confirm(args: argparse.Namespace, action: str, consequence: str) -> None:
    """Ask before an action on the account's plan, unless ``--yes``.

    Args:
        args: the parsed arguments (``yes``).
        action: what is about to be done, e.g. "Renew the support plan for 3 month(s)".
        consequence: what it means for the account, in one sentence.

    Raises:
        _Exit: declined (1: nothing was sent), or no terminal to ask on (2: pass ``--yes``).
    """
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise _Exit(f"{action}: pass --yes to confirm (no terminal to ask on)", EXIT_USAGE)
    sys.stderr.write(f"{action}. {consequence} Proceed? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise _Exit("aborted, nothing was sent", EXIT_ABORTED)


# --- commands ---------------------------------------------------------------------------------


def _message(args: argparse.Namespace) -> str:
    text: str = args.message
    return sys.stdin.read() if text == "-" else text


async def _tickets_list(client: AsyncClient, args: argparse.Namespace, out: _Output) -> int:
    if args.all:
        tickets = [t async for t in client.tickets.iter_all(per_page=args.per_page)]
        out.emit(_listed_tickets(tickets), lambda: _ticket_rows(tickets))
        return EXIT_OK
    page = await client.tickets.list(page=args.page, per_page=args.per_page)
    out.emit(_listed_tickets(page.items), lambda: _ticket_rows(page.items))
    if page.has_next:
        # On stderr: stdout stays the tickets alone, for a pipe or --json.
        number = page.current_page or args.page or 1
        of = f" of {page.last_page}" if page.last_page is not None else ", more follow"
        sys.stderr.write(f"page {number}{of} (use --page / --all)\n")
    return EXIT_OK


async def _tickets_departments(client: AsyncClient, args: argparse.Namespace, out: _Output) -> int:
    departments = await client.tickets.departments()
    out.emit(unstructure(departments), lambda: _departments_text(departments))
    return EXIT_OK


async def _tickets_services(client: AsyncClient, args: argparse.Namespace, out: _Output) -> int:
    services = await client.tickets.services()
    out.emit(unstructure(services), lambda: _services_text(services))
    return EXIT_OK


async def _tickets_show(client: AsyncClient, args: argparse.Namespace, out: _Output) -> int:
    ticket = await client.tickets.get(args.ticket_id)
    out.emit(unstructure(ticket), lambda: _ticket_text(ticket))
    return EXIT_OK


async def _tickets_create(client: AsyncClient, args: argparse.Namespace, out: _Output) -> int:
    ticket = await client.tickets.create(
        department_id=args.department,
        subject=args.subject,
        message=_message(args),
        attachments=args.attach,
        service_id=args.service_id,
        service_type=args.service_type,
    )
    out.emit(unstructure(ticket), lambda: f"Opened ticket #{ticket.id}: {ticket.subject}")
    return EXIT_OK


async def _tickets_reply(client: AsyncClient, args: argparse.Namespace, out: _Output) -> int:
    ticket = await client.tickets.reply(
        args.ticket_id, message=_message(args), attachments=args.attach
    )
    out.emit(
        unstructure(ticket),
        lambda: f"Replied to ticket #{ticket.id} ({len(ticket.messages)} messages now).",
    )
    return EXIT_OK


async def _tickets_resolve(client: AsyncClient, args: argparse.Namespace, out: _Output) -> int:
    ticket = await client.tickets.resolve(args.ticket_id, refresh=True)
    data = unstructure(ticket) if ticket is not None else {"id": args.ticket_id}
    out.emit(data, lambda: f"Ticket #{args.ticket_id} resolved.")
    return EXIT_OK


def _already_there(path: Path, attachment: Attachment) -> bool | None:
    """Whether ``path`` already holds this attachment (a regular file of its size): None when
    there is nothing at ``path``, False when something else is there."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return None
    same_size = attachment.size is not None and found.st_size == attachment.size
    return stat.S_ISREG(found.st_mode) and same_size


async def _tickets_download(client: AsyncClient, args: argparse.Namespace, out: _Output) -> int:
    ticket = await client.tickets.get(args.ticket_id)
    wanted = ticket.attachments
    if args.attachment_id is not None:
        wanted = tuple(a for a in wanted if a.id == args.attachment_id)
        if not wanted:
            raise NotFoundError(
                f"ticket {ticket.id} has no attachment {args.attachment_id}", status=404
            )
    plan: list[tuple[Attachment, str, Path, bool]] = []
    for attachment in wanted:
        # "<id>-<name>", one file or all: names repeat (two "screenshot.png" in a ticket, a
        # "log.txt" in every ticket), ids do not, so a file of the right size under this name
        # can only be this attachment from an earlier run, and is skipped. The path is the
        # target itself, so the server's own name for the file cannot put it elsewhere.
        target = os.path.join(args.output, Path(attachment_path(ticket.id, attachment)).name)
        expected = Path(target)
        there = None if args.overwrite else _already_there(expected, attachment)
        if there is False:
            # Refused before any download: a re-run never leaves half the files replaced.
            differs = (
                ""
                if attachment.size is None
                else f" and is not the {attachment.size}-byte attachment"
            )
            raise _Exit(
                f"{expected.resolve()} already exists{differs}; pass --overwrite to replace it",
                EXIT_VALIDATION,
            )
        plan.append((attachment, target, expected, bool(there)))
    results: list[dict[str, Any]] = []
    for attachment, target, expected, skip in plan:
        if skip:
            path = expected.resolve()
        else:
            try:
                written = await client.tickets.download_attachment(
                    ticket.id, attachment, target, overwrite=args.overwrite
                )
            except InvalidParameterError as exc:
                # E.g. the server named the file otherwise than the ticket did and that name is
                # taken: the library's advice (overwrite=True) is for Python callers.
                message = exc.message.replace("overwrite=True", "--overwrite")
                raise _Exit(message, EXIT_VALIDATION) from None
            assert written is not None  # a path target always gives a path
            path = written
        results.append({"attachment_id": attachment.id, "path": str(path), "skipped": skip})
    out.emit(results, lambda: _download_text(ticket, results))
    return EXIT_OK


def _download_text(ticket: Ticket, results: Sequence[dict[str, Any]]) -> str:
    if not results:
        return f"Ticket #{ticket.id} has no attachments."
    lines = []
    for item in results:
        note = "  (skipped: already there, same size)" if item["skipped"] else ""
        lines.append(f"{item['path']}{note}")
    return "\n".join(lines)


async def _plans_list(client: AsyncClient, args: argparse.Namespace, out: _Output) -> int:
    plans = await client.plans.list()
    out.emit(unstructure(plans), lambda: _plans_text(plans))
    return EXIT_OK


async def _plans_purchase(client: AsyncClient, args: argparse.Namespace, out: _Output) -> int:
    _confirm(
        args,
        f"Purchase support plan {args.plan!r} for {args.billing_cycle} month(s)",
        COSTS_MONEY,
    )
    order = await client.plans.purchase(plan=args.plan, billing_cycle=args.billing_cycle)
    out.emit(unstructure(order), lambda: _order_text(order, "Purchased"))
    return EXIT_OK


async def _plans_renew(client: AsyncClient, args: argparse.Namespace, out: _Output) -> int:
    _confirm(args, f"Renew the support plan for {args.billing_cycle} month(s)", COSTS_MONEY)
    order = await client.plans.renew(billing_cycle=args.billing_cycle)
    out.emit(unstructure(order), lambda: _order_text(order, "Renewed"))
    return EXIT_OK


async def _plans_cancel(client: AsyncClient, args: argparse.Namespace, out: _Output) -> int:
    if args.now:
        _confirm(
            args,
            "Cancel the support plan now",
            "The plan ends at once, not at the end of the paid period.",
        )
    else:
        _confirm(
            args,
            "Cancel the support plan at the end of the paid period",
            "The plan stays until the paid period ends, then ends.",
        )
    order = await client.plans.cancel(reason=args.reason, now=args.now)
    out.emit(unstructure(order), lambda: _order_text(order, "Cancellation requested"))
    return EXIT_OK


async def _plans_undo_cancel(client: AsyncClient, args: argparse.Namespace, out: _Output) -> int:
    order = await client.plans.undo_cancel()
    out.emit(unstructure(order), lambda: _order_text(order, "Cancellation withdrawn"))
    return EXIT_OK


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
    lines = [
        f"Exported {summary.tickets} tickets ({summary.messages} messages) and"
        f" {summary.attachments} attachments ({_size(summary.attachment_bytes)}) to"
        f" {summary.dest} in {summary.seconds:.1f} s.",
        f"  this run: {summary.tickets_fetched} tickets fetched,"
        f" {summary.tickets_unchanged} unchanged; {summary.attachments_downloaded} attachments"
        f" downloaded ({_size(summary.bytes_downloaded)}), {summary.attachments_unchanged}"
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
            f"INCOMPLETE: {len(summary.failures)} failure(s); run the same command again to"
            " finish (no manifest.json until then):"
        )
        for failure in summary.failures[:10]:
            where = f"ticket {failure.ticket_id}"
            if failure.attachment_id is not None:
                where += f" attachment {failure.attachment_id}"
            lines.append(f"  {where}: {failure.error}")
        if len(summary.failures) > 10:
            lines.append(f"  ... and {len(summary.failures) - 10} more")
    return "\n".join(lines)


async def _export(client: AsyncClient, args: argparse.Namespace, out: _Output) -> int:
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
        )
    finally:
        bar.close()
    out.emit(_summary_json(summary), lambda: _summary_text(summary))
    return EXIT_OK if summary.complete else EXIT_PARTIAL


# --- arguments --------------------------------------------------------------------------------


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An option type: a whole number of at least ``minimum``, else a usage error (exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_positive_int = _whole_number(1)
_retries = _whole_number(0)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text}")
    return value


def _moment(text: str) -> datetime:
    try:
        return structure(text, datetime)
    except ConversionError:
        raise argparse.ArgumentTypeError(
            f"expected a date (2024-05-01) or an ISO time (2024-05-01T12:00:00Z), got {text!r}"
        ) from None


def _common_options() -> argparse.ArgumentParser:
    """Options accepted before or after the command; SUPPRESS keeps a later one from resetting
    an earlier one to its default."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection and output")
    s = argparse.SUPPRESS
    group.add_argument("--token", default=s, help=f"API token (default: ${C.ENV_TOKEN})")
    group.add_argument(
        "--base-url", default=s, help=f"API root (default: ${C.ENV_BASE_URL} or the real API)"
    )
    group.add_argument("--json", action="store_true", default=s, help="machine-readable output")
    group.add_argument(
        "--yes", "-y", action="store_true", default=s, help="do not ask before money actions"
    )
    group.add_argument(
        "--demo",
        action="store_true",
        default=s,
        help="run against an embedded fake API with seeded data (no token needed; not with"
        " --token or --base-url)",
    )
    group.add_argument("--timeout", type=_seconds, default=s, help="seconds per request (60)")
    group.add_argument(
        "--max-retries", type=_retries, default=s, help="retries of a failed read (default 2)"
    )
    group.add_argument("--verbose", "-v", action="store_true", default=s, help="log requests")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``vpsbg-support``.

    Returns:
        The parser; each command sets ``handler`` on the parsed namespace.
    """
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=[common],
        description="VPSBG support from the command line: export, tickets and support plans.",
        epilog="Exit status: 0 ok, 1 error (also: a question answered no, nothing was sent),"
        " 2 usage, 3 auth, 4 invalid input, 5 not found, 6 network, 7 export incomplete,"
        " 130 interrupted. Errors are one plain-text line on stderr, with --json too.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(group: Any, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(
            name, parents=[common], help=help_text, description=help_text
        )
        sub.set_defaults(handler=handler)
        return sub

    export = command(commands, "export", _export, "archive every ticket and attachment")
    export.add_argument("dest", help="export folder (re-run on it to resume or update)")
    export.add_argument("--concurrency", type=_positive_int, default=8, help="requests at once")
    export.add_argument("--since", type=_moment, help="only tickets updated since DATE")
    export.add_argument("--no-attachments", action="store_true", help="tickets only")
    export.add_argument("--per-page", type=_positive_int, help="tickets per list request")

    tickets = commands.add_parser(
        "tickets", help="list, show, open, reply, resolve, download; departments, services"
    )
    tickets_cmds = tickets.add_subparsers(dest="tickets_command", required=True, metavar="ACTION")
    listing = command(tickets_cmds, "list", _tickets_list, "list tickets (one page, or --all)")
    listing.add_argument("--page", type=_positive_int, help="page number (1)")
    listing.add_argument("--per-page", type=_positive_int, help="tickets per page")
    listing.add_argument("--all", action="store_true", help="every page")
    show = command(tickets_cmds, "show", _tickets_show, "show a ticket and its messages")
    show.add_argument("ticket_id", type=_positive_int)
    command(
        tickets_cmds,
        "departments",
        _tickets_departments,
        "list the departments (their ids are what create --department takes)",
    )
    command(
        tickets_cmds,
        "services",
        _tickets_services,
        "list the services a ticket can be about (create --service-id/--service-type)",
    )
    create = command(tickets_cmds, "create", _tickets_create, "open a ticket")
    create.add_argument(
        "--department",
        type=_positive_int,
        required=True,
        help="department id (see: tickets departments)",
    )
    create.add_argument("--subject", required=True)
    create.add_argument("--message", required=True, help="the message ('-': read stdin)")
    create.add_argument("--attach", action="append", default=[], metavar="FILE")
    create.add_argument("--service-id", type=_positive_int, help="(see: tickets services)")
    create.add_argument("--service-type", help="(see: tickets services)")
    reply = command(tickets_cmds, "reply", _tickets_reply, "reply to a ticket")
    reply.add_argument("ticket_id", type=_positive_int)
    reply.add_argument("--message", required=True, help="the message ('-': read stdin)")
    reply.add_argument("--attach", action="append", default=[], metavar="FILE")
    resolve = command(tickets_cmds, "resolve", _tickets_resolve, "mark a ticket resolved")
    resolve.add_argument("ticket_id", type=_positive_int)
    download = command(
        tickets_cmds, "download", _tickets_download, "download a ticket's attachments"
    )
    download.add_argument("ticket_id", type=_positive_int)
    download.add_argument("attachment_id", type=_positive_int, nargs="?", help="(default: all)")
    download.add_argument("--output", "-o", default=".", help="folder to write to (.)")
    download.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing files (files are named <attachment id>-<name>; by default one"
        " already there with the attachment's size is skipped, a different one refused)",
    )

    plans = commands.add_parser("plans", help="list, purchase, renew, cancel, undo-cancel")
    plans_cmds = plans.add_subparsers(dest="plans_command", required=True, metavar="ACTION")
    command(plans_cmds, "list", _plans_list, "list the support plans")
    purchase = command(plans_cmds, "purchase", _plans_purchase, "buy a support plan (costs money)")
    purchase.add_argument("plan", help="plan key, e.g. professional")
    purchase.add_argument("--billing-cycle", type=_positive_int, required=True, help="months")
    renew = command(plans_cmds, "renew", _plans_renew, "renew the support plan (costs money)")
    renew.add_argument("--billing-cycle", type=_positive_int, required=True, help="months")
    cancel = command(
        plans_cmds, "cancel", _plans_cancel, "cancel the support plan (at the paid period's end)"
    )
    cancel.add_argument("--reason")
    cancel.add_argument("--now", action="store_true", help="at once, not at the period's end")
    command(
        plans_cmds,
        "undo-cancel",
        _plans_undo_cancel,
        "withdraw a pending cancellation (the plan is kept)",
    )
    return parser


# --- running ----------------------------------------------------------------------------------


async def _run(args: argparse.Namespace) -> int:
    async with contextlib.AsyncExitStack() as stack:
        # An empty --token (``--token "$T"`` with T unset) falls back to VPSBG_API_TOKEN, as
        # no --token does.
        token: str | None = args.token or None
        base_url: str | None = args.base_url
        if args.demo:
            from vpsbg_support.demo import DEMO_EXPORT_TICKETS, DEMO_TICKETS, demo_server

            size = DEMO_EXPORT_TICKETS if args.handler is _export else DEMO_TICKETS
            fake = await stack.enter_async_context(demo_server(size))
            token, base_url = fake.token, fake.url
        options: dict[str, Any] = {}
        if args.timeout is not None:
            options["timeout"] = args.timeout
        if args.max_retries is not None:
            options["max_retries"] = args.max_retries
        try:
            client = AsyncClient(token, base_url=base_url, **options)
        except ConfigurationError as exc:
            given = (token or os.environ.get(C.ENV_TOKEN) or "").strip()
            if not given:
                # The library's message is for Python callers: say it the CLI's way.
                raise _Exit(NO_TOKEN, EXIT_AUTH) from None
            # A mangled token is a wrong token (3), as exit_code_for says; else the URL (2).
            code = EXIT_USAGE if token_is_plausible(given) else EXIT_AUTH
            raise _Exit(_describe(exc), code) from None
        client = await stack.enter_async_context(client)
        handler: Handler = args.handler
        return await handler(client, args, _Output(args.json))
    raise AssertionError("unreachable")  # pragma: no cover -- for mypy: the stack may swallow


NO_TOKEN = (
    f"no API token: pass --token TOKEN or set {C.ENV_TOKEN} (create one in the VPSBG client area"
    " under your user name -> API tokens), or try --demo"
)


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vpsbg-support`` (the console script).

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status (see the module docstring).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("token", "base_url", "timeout", "max_retries"):
        if not hasattr(args, name):
            setattr(args, name, None)
    for flag in ("json", "yes", "demo", "verbose"):
        if not hasattr(args, flag):
            setattr(args, flag, False)
    if args.demo and (args.token is not None or args.base_url is not None):
        # Ignoring them would show the demo's data to someone who asked for their account.
        parser.error("--demo runs against an embedded fake API: drop --token and --base-url")
    if args.verbose:
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
        logging.getLogger(C.LOGGER_NAME).setLevel(logging.DEBUG)
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except _StdoutClosed:
        # What Python's docs advise: point stdout at devnull so the flush at exit cannot fail
        # again, and leave without a word (the reader of a `| head` asked for no more).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_ERROR
    except _Exit as exc:
        return _fail(str(exc), exc.code)
    except VPSBGError as exc:
        return _fail(_describe(exc), exit_code_for(exc))
    except ValueError as exc:  # a value the client refuses that the options did not catch
        return _fail(_describe(exc), EXIT_VALIDATION)
    except OSError as exc:  # e.g. the export folder cannot be written
        return _fail(_describe(exc), EXIT_ERROR)
    except Exception as exc:
        return _fail(f"unexpected {_describe(exc)}", EXIT_ERROR)


if __name__ == "__main__":
    raise SystemExit(main())
