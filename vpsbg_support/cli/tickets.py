"""``vpsbg-support tickets ...``: list, show, open, reply, resolve, download, watch;
departments, services."""

from __future__ import annotations

import argparse
import asyncio
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vpsbg_support import AsyncClient
from vpsbg_support import _constants as C
from vpsbg_support.cli._app import EXIT_OK, EXIT_VALIDATION, CLIExit, Output, fail
from vpsbg_support.cli._format import as_json, size, table, when
from vpsbg_support.cli._options import Commands, page_size, positive_int, seconds
from vpsbg_support.errors import InvalidParameterError, NotFoundError
from vpsbg_support.export import attachment_path
from vpsbg_support.models import (
    Attachment,
    CustomerReplied,
    Department,
    Page,
    RelatedService,
    StatusChanged,
    SupportReplied,
    Ticket,
    TicketEvent,
)


def _ticket_rows(tickets: Sequence[Ticket]) -> str:
    if not tickets:
        return "No tickets."
    rows = [("ID", "STATUS", "UPDATED", "SUBJECT")]
    rows += [(str(t.id), t.status, when(t.updated_at), t.subject) for t in tickets]
    return table(rows)


def _listed_tickets(tickets: Sequence[Ticket]) -> list[dict[str, Any]]:
    """Tickets as ``--json`` lists them: a list answer usually leaves messages out, and
    ``"messages": []`` would read as "no messages", so the key goes when there are none."""
    data: list[dict[str, Any]] = as_json(list(tickets))
    for item in data:
        if not item.get("messages"):
            item.pop("messages", None)
    return data


def _departments_text(departments: Sequence[Department]) -> str:
    if not departments:
        return "No departments."
    rows = [("ID", "NAME", "SLUG")]
    rows += [(str(d.id), d.name, d.slug or "-") for d in departments]
    return table(rows)


def _services_text(services: Sequence[RelatedService]) -> str:
    if not services:
        return "No services."
    rows = [("ID", "TYPE", "NAME")]
    rows += [(str(s.id), s.type or "-", s.label or "-") for s in services]
    return table(rows)


def _ticket_text(ticket: Ticket) -> str:
    from vpsbg_support.archive.html import html_to_text  # only when a ticket is shown

    lines = [f"#{ticket.id} [{ticket.status}] {ticket.subject}"]
    about = [f"department: {ticket.department or '-'}"]
    if ticket.service_label:
        about.append(f"service: {ticket.service_label}")
    lines.append("  ".join(about))
    lines.append(f"created {when(ticket.created_at)}  updated {when(ticket.updated_at)}")
    for message in ticket.messages:
        author = {True: "customer", False: "support", None: "unknown"}[message.is_customer]
        lines += ["", f"--- {author}, {when(message.created_at)}"]
        lines.append(html_to_text(message.content or ""))
        for attachment in message.attachments:
            lines.append(
                f"  attachment {attachment.id}: {attachment.name} ({size(attachment.size)})"
            )
    return "\n".join(lines)


def _message(args: argparse.Namespace) -> str:
    text: str = args.message
    return sys.stdin.read() if text == "-" else text


def _listing(tickets: Sequence[Ticket], page: Page[Ticket] | None) -> dict[str, Any]:
    """What ``--json tickets list`` prints: the tickets and where they stand among the pages
    (``--all``: every ticket, one "page" with nothing after it)."""
    if page is None:
        paging = {"page": None, "last_page": None, "per_page": None, "total": len(tickets)}
    else:
        paging = {
            "page": page.current_page,
            "last_page": page.last_page,
            "per_page": page.per_page,
            "total": page.total,
        }
    has_next = page is not None and page.has_next
    return {"items": _listed_tickets(tickets), **paging, "has_next": has_next}


async def _list(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    if args.all:
        tickets = [t async for t in client.tickets.iter_all(per_page=args.per_page)]
        out.emit(_listing(tickets, None), lambda: _ticket_rows(tickets))
        return EXIT_OK
    page = await client.tickets.list(page=args.page, per_page=args.per_page)
    out.emit(_listing(page.items, page), lambda: _ticket_rows(page.items))
    if page.has_next:
        # On stderr: stdout stays the tickets alone, for a pipe or --json.
        number = page.current_page or args.page or 1
        of = f" of {page.last_page}" if page.last_page is not None else ", more follow"
        sys.stderr.write(f"page {number}{of} (use --page / --all)\n")
    return EXIT_OK


async def _departments(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    departments = await client.tickets.departments()
    out.emit(as_json(departments), lambda: _departments_text(departments))
    return EXIT_OK


async def _services(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    services = await client.tickets.services()
    out.emit(as_json(services), lambda: _services_text(services))
    return EXIT_OK


async def _show(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    ticket = await client.tickets.get(args.ticket_id)
    out.emit(as_json(ticket), lambda: _ticket_text(ticket))
    return EXIT_OK


async def _create(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    ticket = await client.tickets.create(
        department_id=args.department,
        subject=args.subject,
        message=_message(args),
        attachments=args.attach,
        service_id=args.service_id,
        service_type=args.service_type,
    )
    out.emit(as_json(ticket), lambda: f"Opened ticket #{ticket.id}: {ticket.subject}")
    return EXIT_OK


async def _reply(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    ticket = await client.tickets.reply(
        args.ticket_id, message=_message(args), attachments=args.attach
    )
    out.emit(
        as_json(ticket),
        lambda: f"Replied to ticket #{ticket.id} ({len(ticket.messages)} messages now).",
    )
    return EXIT_OK


async def _resolve(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    ticket = await client.tickets.resolve(args.ticket_id, refresh=True)
    data = as_json(ticket) if ticket is not None else {"id": args.ticket_id}
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


async def _download(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    ticket = await client.tickets.get(args.ticket_id)
    wanted = ticket.attachments
    if args.attachment_id is not None:
        wanted = tuple(a for a in wanted if a.id == args.attachment_id)
        if not wanted:
            raise NotFoundError(
                f"ticket {ticket.id} has no attachment {args.attachment_id}", status=404
            )
    plan: list[tuple[Attachment, str, Path, bool]] = []
    conflicts: list[str] = []
    for attachment in wanted:
        # "<id>-<name>", one file or all: names repeat (two "screenshot.png" in a ticket, a
        # "log.txt" in every ticket), ids do not, so a file of the right size under this name
        # can only be this attachment from an earlier run, and is skipped. The path is the
        # target itself, so the server's own name for the file cannot put it elsewhere.
        target = os.path.join(args.output, Path(attachment_path(ticket.id, attachment)).name)
        expected = Path(target)
        there = None if args.overwrite else _already_there(expected, attachment)
        if there is False:
            # Kept, and reported at the end: the other attachments are still downloaded.
            differs = (
                ""
                if attachment.size is None
                else f" and is not the {attachment.size}-byte attachment"
            )
            conflicts.append(
                f"{expected.resolve()} already exists{differs}; pass --overwrite to replace it"
            )
            continue
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
                conflicts.append(exc.message.replace("overwrite=True", "--overwrite"))
                continue
            assert written is not None  # a path target always gives a path
            path = written
        results.append({"attachment_id": attachment.id, "path": str(path), "skipped": skip})
    if results or not conflicts:
        out.emit(results, lambda: _download_text(ticket, results))
    # One error line per file kept, after everything else was downloaded: exit 4 as any refusal.
    for conflict in conflicts[:-1]:
        fail(conflict, EXIT_VALIDATION)
    if conflicts:
        raise CLIExit(conflicts[-1], EXIT_VALIDATION)
    return EXIT_OK


def _download_text(ticket: Ticket, results: Sequence[dict[str, Any]]) -> str:
    if not results:
        return f"Ticket #{ticket.id} has no attachments."
    lines = []
    for item in results:
        note = "  (skipped: already there, same size)" if item["skipped"] else ""
        lines.append(f"{item['path']}{note}")
    return "\n".join(lines)


def _event_json(event: TicketEvent) -> dict[str, Any]:
    """One ``--json`` line of ``tickets watch``: the kind, the ticket in brief, what changed."""
    ticket = event.ticket
    data: dict[str, Any] = {
        "event": event.kind,
        "ticket_id": ticket.id,
        "subject": ticket.subject,
        "status": ticket.status,
    }
    if isinstance(event, SupportReplied | CustomerReplied):
        data["message"] = as_json(event.message)
    elif isinstance(event, StatusChanged):
        data["old"], data["new"] = event.old, event.new
    data["cursor"] = event.cursor
    return data


def _event_text(event: TicketEvent) -> str:
    ticket = event.ticket
    head = f"#{ticket.id} {ticket.subject}"
    if isinstance(event, SupportReplied | CustomerReplied):
        who = "support" if isinstance(event, SupportReplied) else "customer"
        content = " ".join((event.message.content or "").split())
        return f"{head}: {who} replied: {content[:200]}"
    if isinstance(event, StatusChanged):
        return f"{head}: status {event.old} -> {event.new}"
    return f"{head}: opened ({ticket.status})"


async def _watch(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    cursor: str | None = args.cursor
    try:
        async for event in client.tickets.watch(interval=args.interval, cursor=cursor):
            out.line(_event_json(event), lambda e=event: _event_text(e))  # type: ignore[misc]
            cursor = event.cursor
    except (asyncio.CancelledError, KeyboardInterrupt):
        if cursor is not None and not args.json:  # with --json every line has its cursor
            sys.stderr.write(f"resume with: --cursor {cursor}\n")
        raise
    raise AssertionError("unreachable")  # pragma: no cover -- watch never ends by itself


ATTACH_HELP = "a file to attach; repeat for more (--attach a.log --attach b.png)"


def register(commands: Commands) -> None:
    """Add the ``tickets`` group and its actions."""
    tickets = commands.group(
        "tickets",
        "list, show, open, reply, resolve, download, watch; departments, services",
        dest="tickets_command",
    )
    listing = tickets.add("list", _list, "list tickets (one page, or --all)")
    listing.add_argument("--page", type=positive_int, help="page number (default: 1)")
    listing.add_argument(
        "--per-page",
        type=page_size,
        metavar="N",
        help=f"tickets per page, 1-{C.MAX_PER_PAGE} (default: the API's)",
    )
    listing.add_argument("--all", action="store_true", help="every page")
    show = tickets.add("show", _show, "show a ticket and its messages")
    show.add_argument("ticket_id", type=positive_int)
    tickets.add(
        "departments",
        _departments,
        "list the departments (their ids are what create --department takes)",
    )
    tickets.add(
        "services",
        _services,
        "list the services a ticket can be about (create --service-id/--service-type)",
    )
    create = tickets.add("create", _create, "open a ticket")
    create.add_argument(
        "--department",
        type=positive_int,
        required=True,
        help="department id (see: tickets departments)",
    )
    create.add_argument("--subject", required=True)
    create.add_argument("--message", required=True, help="the message ('-': read stdin)")
    create.add_argument("--attach", action="append", default=[], metavar="FILE", help=ATTACH_HELP)
    create.add_argument("--service-id", type=positive_int, help="(see: tickets services)")
    create.add_argument("--service-type", help="(see: tickets services)")
    reply = tickets.add("reply", _reply, "reply to a ticket")
    reply.add_argument("ticket_id", type=positive_int)
    reply.add_argument("--message", required=True, help="the message ('-': read stdin)")
    reply.add_argument("--attach", action="append", default=[], metavar="FILE", help=ATTACH_HELP)
    watch = tickets.add(
        "watch",
        _watch,
        "print ticket events as they happen (new tickets, replies, status changes) until Ctrl-C",
    )
    watch.add_argument(
        "--interval",
        type=seconds,
        default=C.WATCH_INTERVAL,
        help=f"seconds between polls, at least ({C.WATCH_INTERVAL:g}; grows while quiet)",
    )
    watch.add_argument("--cursor", help="resume after the event that carried this cursor")
    resolve = tickets.add("resolve", _resolve, "mark a ticket resolved")
    resolve.add_argument("ticket_id", type=positive_int)
    download = tickets.add("download", _download, "download a ticket's attachments")
    download.add_argument("ticket_id", type=positive_int)
    download.add_argument("attachment_id", type=positive_int, nargs="?", help="(default: all)")
    download.add_argument("--output", "-o", default=".", help="folder to write to (.)")
    download.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing files (files are named <attachment id>-<name>; by default one"
        " already there with the attachment's size is skipped, a different one refused)",
    )
