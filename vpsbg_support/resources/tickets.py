"""``client.tickets``: list, read, open, reply to and resolve tickets; move their attachments."""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import attrs

from vpsbg_support import _constants as C
from vpsbg_support import _routes as R
from vpsbg_support import _settle
from vpsbg_support._filenames import filename_from_headers
from vpsbg_support._fs import (
    DownloadTarget,
    check_dest,
    final_path,
    is_folder_target,
    write_atomically,
)
from vpsbg_support._http import BodyStream
from vpsbg_support._pipeline import Response
from vpsbg_support._polling import Backoff, poll
from vpsbg_support._uploads import AttachmentInput, Multipart, normalize_uploads
from vpsbg_support._validate import check_id, check_int, check_seconds, check_text
from vpsbg_support.models import (
    Attachment,
    Department,
    Page,
    RelatedService,
    Ticket,
    TicketEvent,
    TicketMessage,
)
from vpsbg_support.resources import _watch
from vpsbg_support.resources._base import AsyncResource, raw_twin, received

T = TypeVar("T")


@attrs.define(kw_only=True)
class AttachmentStream:
    """An attachment being downloaded: its metadata, and its bytes as they arrive.

    Attributes:
        name: the file name the server gave (``Content-Disposition``, else the Attachment's
            name when one was passed), unsanitised: sanitise it (see ``safe_filename``) before
            using it as a path. The token never appears in it.
        size: the body's size in bytes when known (``Content-Length`` of an uncompressed body,
            else the ``size`` of the Attachment passed), or None. The bytes received are checked
            against both, as they arrive.
        content_type: the ``Content-Type`` the server sent.
    """

    name: str | None
    size: int | None
    content_type: str | None
    _body: BodyStream = attrs.field(repr=False, alias="body")
    _expected: tuple[int | None, ...] = attrs.field(default=(), repr=False, alias="expected")

    async def iter_chunks(self, chunk_size: int = C.CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Yield the body in chunks of at most ``chunk_size`` bytes; the body can be read once.

        Reading stops as soon as more bytes arrive than the announced size.

        Args:
            chunk_size: the largest chunk to yield, in bytes.

        Yields:
            The body's bytes, in order.

        Raises:
            InvalidParameterError: ``chunk_size`` is not a positive integer.
            DownloadError: the body ended early, passed or differs from the announced size,
                or was already read.
        """
        check_int("chunk_size", chunk_size)
        chunk = b""
        try:
            async for chunk in self._body.chunks(chunk_size, expected=self._expected):
                yield chunk
        except BaseException:
            chunk = b""  # the server's bytes stay out of this frame's locals in a traceback
            raise


def _attachment_stream(response: Response, known: Attachment | None) -> AttachmentStream:
    """The stream of a 2xx attachment response (``known``: the Attachment passed, if any)."""
    assert response.stream is not None
    known_size = known.size if known else None
    body_size = response.stream.size
    return AttachmentStream(
        name=filename_from_headers(response.headers) or (known.name if known else None),
        size=known_size if body_size is None else body_size,
        content_type=response.headers.get("Content-Type"),
        body=response.stream,
        expected=(known_size,),
    )


class AsyncTickets(AsyncResource):
    """Support tickets of the account.

    Reads (GET) and resolve (PUT) are retried on transient failures; create and reply (POST) are
    never re-sent once they may have reached the server, so a reply is never posted twice.
    """

    async def list(self, page: int | None = None, per_page: int | None = None) -> Page[Ticket]:
        """One page of tickets. Tickets in a list may come without their messages.

        Args:
            page: the page number, from 1 (the API's default when None).
            per_page: tickets per page (the API's default when None).

        Returns:
            A Page of Tickets with the paging information the API sent.

        Raises:
            InvalidParameterError: ``page`` or ``per_page`` is not a positive integer.
            APIStatusError / APIConnectionError / ResponseDecodeError: the call failed.
        """
        params: dict[str, int] = {}
        if page is not None:
            params["page"] = check_int("page", page)
        if per_page is not None:
            params["per_page"] = check_int("per_page", per_page)
        response = await self._request(R.TICKETS_LIST, params=params)
        return self._structure_page(response, Ticket)

    async def _read_at(
        self, route: R.Route, read: Callable[[Any], T], **kwargs: Any
    ) -> tuple[T, datetime]:
        """A request's answer, read by ``read``, and the earliest moment the server may have
        read what it answers (watch's same-second judgement needs the ``Date`` header)."""
        requested_at = datetime.now(timezone.utc)
        started = time.monotonic()
        response = await self._request(route, **kwargs)
        elapsed = time.monotonic() - started
        served = _settle.served_at(response.headers.get("Date"), requested_at, elapsed)
        return read(response), served

    async def iter_all(self, per_page: int | None = None) -> AsyncIterator[Ticket]:
        """Every ticket of the account, following the pages one after another.

        A ticket that moves to a later page while iterating (because a new one was opened) is
        yielded once only. A bare-array answer (no paging information) is one page. Iteration
        stops at ``meta.last_page``, or after a few pages in a row that bring no new ticket, so a
        server that keeps sending a ``next`` link for the same page cannot make it loop forever
        (while a whole page of tickets opened meanwhile does not end it early).

        Args:
            per_page: tickets per page request (the API's default when None).

        Yields:
            Tickets, as the list endpoint returns them (possibly without messages).

        Raises:
            InvalidParameterError: ``per_page`` is not a positive integer.
            APIStatusError / APIConnectionError / ResponseDecodeError: a page request failed.
        """
        async for ticket, _ in self._walk(per_page):
            yield ticket

    async def _walk(self, per_page: int | None) -> AsyncIterator[tuple[Ticket, datetime]]:
        """Every ticket once, each with when the server may have read its page (iter_all's)."""
        if per_page is not None:
            check_int("per_page", per_page)
        seen: set[int] = set()
        page_number = 1
        stale_pages = 0
        while True:
            params = (
                {"page": page_number}
                if per_page is None
                else {"page": page_number, "per_page": per_page}
            )
            page, served = await self._read_at(
                R.TICKETS_LIST, lambda r: self._structure_page(r, Ticket), params=params
            )
            fresh = [ticket for ticket in page.items if ticket.id not in seen]
            for ticket in fresh:
                seen.add(ticket.id)
                yield ticket, served
            stale_pages = 0 if fresh else stale_pages + 1
            if not page.items or not page.has_next or stale_pages >= C.MAX_STALE_PAGES:
                return
            if page.last_page is not None and page_number >= page.last_page:
                return
            page_number += 1

    async def watch(
        self,
        interval: float = C.WATCH_INTERVAL,
        cursor: str | None = None,
        *,
        max_interval: float | None = None,
        per_page: int | None = C.WATCH_PER_PAGE,
    ) -> AsyncIterator[TicketEvent]:
        """Yield ticket events as they happen, forever: tickets opened, replies, status changes.

        ``async for event in client.tickets.watch(cursor=saved): ...; saved = event.cursor``

        Without ``cursor`` it starts from now: what exists is recorded, not reported (take a
        cursor for now with :meth:`watch_cursor` to report what happens before the first
        event, even across a restart). With the ``cursor`` of an event it resumes right after
        that event: every change since is reported once, even several in the same second
        (``updated_at`` has one-second resolution) and while tickets move between pages. A
        ticket opened and answered while stopped gives TicketOpened, then the reply; replies
        come before the status change they caused. Each poll lists the tickets (one request
        for up to ``per_page`` tickets) and reads in full only those whose list entry changed
        (or changed within the second of the last read). While nothing changes the pause
        grows from ``interval`` (a floor) to ``max_interval`` (default four times
        ``interval``); a rate limit waits for its ``Retry-After``, and every request goes
        through the client's rate limiter, shared with the client's other calls. Connection
        failures and 5xx answers the client's retries did not overcome are logged and polled
        again; any other error ends the iteration (resume with the last cursor).

        Args:
            interval: the shortest pause between polls, in seconds.
            cursor: an event's ``cursor``, to resume after it; None starts from now.
            max_interval: the longest pause the backoff grows to, in seconds.
            per_page: tickets per list request (None: the API's default page size).

        Yields:
            TicketOpened, SupportReplied, CustomerReplied and StatusChanged events, each with
            the ticket as read and the cursor to resume after it.

        Raises:
            InvalidParameterError: a bad ``interval``, ``max_interval``, ``per_page`` or
                ``cursor``.
            AuthenticationError / PermissionDeniedError / APIStatusError / ResponseDecodeError:
                a failure a poll cannot ride out.
        """
        backoff = Backoff.checked(interval, max_interval)
        state = None if cursor is None else _watch.WatchState.decode(cursor)
        if per_page is not None:
            check_int("per_page", per_page)
        async for event in _watch.watch(
            lambda: self._walk(per_page), self._read_ticket, state, backoff
        ):
            yield event

    async def watch_cursor(self, per_page: int | None = C.WATCH_PER_PAGE) -> str:
        """A cursor for now: ``watch(cursor=...)`` from it reports every change made after
        this call, however late the watch starts. Persist it before the first event arrives.

        Args:
            per_page: tickets per list request (None: the API's default page size).

        Returns:
            The cursor (an opaque string).

        Raises:
            InvalidParameterError: ``per_page`` is not a positive integer.
            APIStatusError / APIConnectionError / ResponseDecodeError: a read failed.
        """
        if per_page is not None:
            check_int("per_page", per_page)
        state = await _watch.starting_point(lambda: self._walk(per_page), self._read_ticket)
        return state.encode()

    async def _read_ticket(self, ticket_id: int) -> tuple[Ticket, datetime]:
        return await self._read_at(
            R.TICKETS_GET,
            lambda r: self._structure(r, Ticket),
            path_params={"ticket_id": ticket_id},
        )

    async def wait_for_reply(
        self,
        ticket_id: int | str,
        *,
        timeout: float | None = None,
        interval: float = C.WAIT_REPLY_INTERVAL,
        max_interval: float | None = None,
    ) -> TicketMessage:
        """Wait for support to answer a ticket: the first staff message added after the call.

        ``message = await client.tickets.wait_for_reply(ticket.id, timeout=3600)``

        Reads the ticket now, then every ``interval`` seconds or more (growing up to
        ``max_interval`` while nothing changes), counting messages, so two messages in the same
        second are told apart. A message whose ``is_customer`` is not True counts as support's.

        Args:
            ticket_id: the ticket's id.
            timeout: seconds to wait in all; None waits for as long as it takes.
            interval: the shortest pause between reads, in seconds.
            max_interval: the longest pause the backoff grows to, in seconds.

        Returns:
            The support message.

        Raises:
            WaitTimeoutError: ``timeout`` passed first; ``.last`` holds the Ticket last read.
            InvalidParameterError: a bad id or number of seconds.
            NotFoundError: no such ticket.
            APIStatusError / ResponseDecodeError: a failure that polling cannot ride out.
        """
        tid = check_id("ticket_id", ticket_id)
        if timeout is not None:
            timeout = check_seconds("timeout", timeout)
        backoff = Backoff.checked(interval, max_interval)
        known: builtins.list[int] = []

        def check(ticket: Ticket) -> TicketMessage | None:
            if not known:
                known.append(len(ticket.messages))
                return None
            new = ticket.messages[known[0] :]
            return next((m for m in new if m.is_customer is not True), None)

        return await poll(
            lambda: self.get(tid),
            check,
            key=lambda ticket: (len(ticket.messages), ticket.status),
            backoff=backoff,
            timeout=timeout,
            what=f"waiting for a reply on ticket {tid}",
        )

    async def departments(self) -> builtins.list[Department]:
        """The support departments; their ids are what :meth:`create` takes as ``department_id``.

        Returns:
            The departments, in the order the API gave them.

        Raises:
            APIStatusError / APIConnectionError / ResponseDecodeError: the call failed.
        """
        response = await self._request(R.TICKETS_DEPARTMENTS)
        return list(self._structure_page(response, Department).items)

    async def services(self) -> builtins.list[RelatedService]:
        """The account's services a ticket can be about (``service_id`` + ``service_type``).

        Returns:
            The services, in the order the API gave them.

        Raises:
            APIStatusError / APIConnectionError / ResponseDecodeError: the call failed.
        """
        response = await self._request(R.TICKETS_SERVICES)
        return list(self._structure_page(response, RelatedService).items)

    async def get(self, ticket_id: int | str) -> Ticket:
        """One ticket with all its messages and their attachments.

        Args:
            ticket_id: the ticket's id.

        Returns:
            The Ticket, every message with its attachments.

        Raises:
            InvalidParameterError: ``ticket_id`` is not a positive integer.
            NotFoundError: no such ticket.
            APIStatusError / APIConnectionError / ResponseDecodeError: the call failed.
        """
        tid = check_id("ticket_id", ticket_id)
        response = await self._request(R.TICKETS_GET, path_params={"ticket_id": tid})
        return self._structure(response, Ticket)

    @property
    def with_raw_response(self) -> AsyncTicketsWithRawResponse:
        """The same calls, each answering a :class:`~vpsbg_support.responses.RawResponse`
        (status, headers, body, request id, retries) whose ``parse()`` is the usual result.

        ``raw = await client.tickets.with_raw_response.get(216)``
        """
        return AsyncTicketsWithRawResponse(self)

    async def create(
        self,
        *,
        department_id: int,
        subject: str,
        message: str,
        attachments: Iterable[AttachmentInput] = (),
        service_id: int | None = None,
        service_type: str | None = None,
    ) -> Ticket:
        """Open a ticket. Sent once: never re-sent after it may have reached the server.

        Args:
            department_id: the department's id (see :meth:`departments`).
            subject: 3 to 255 characters.
            message: at least 5 characters; HTML is accepted.
            attachments: files to attach: paths, ``(name, bytes)``, ``(name, str)`` (text,
                sent UTF-8 encoded), ``(name, content, type)``, binary file objects or
                ``(name, async iterable of bytes)``; streamed from disk.
            service_id: the related service's id (see :meth:`services`).
            service_type: the related service's type, e.g. ``"server"`` or ``"hosting"``.

        Returns:
            The new Ticket.

        Raises:
            InvalidParameterError: a local check failed (the ``field`` says which); nothing sent.
            UnprocessableEntityError: the API rejected the input (``.errors`` per field).
            APIStatusError / APIConnectionError: the call failed; ``request_sent`` tells whether
                the ticket may exist anyway.
        """
        dept = check_id("department_id", department_id)
        fields: list[tuple[str, str]] = [
            ("department_id", str(dept)),
            (
                "subject",
                check_text("subject", subject, minimum=C.SUBJECT_MIN, maximum=C.SUBJECT_MAX),
            ),
            ("message", check_text("message", message, minimum=C.MESSAGE_MIN)),
        ]
        if service_id is not None:
            fields.append(("service_id", str(check_id("service_id", service_id))))
        if service_type is not None:
            fields.append(("service_type", check_text("service_type", service_type, minimum=1)))
        body = Multipart(fields, normalize_uploads(attachments))
        response = await self._request(R.TICKETS_CREATE, multipart=body)
        return self._structure(response, Ticket)

    async def reply(
        self,
        ticket_id: int | str,
        *,
        message: str,
        attachments: Iterable[AttachmentInput] = (),
    ) -> Ticket:
        """Add a message (and files) to a ticket. Sent once, like :meth:`create`.

        Args:
            ticket_id: the ticket's id.
            message: at least 5 characters; HTML is accepted.
            attachments: files to attach, as for :meth:`create`.

        Returns:
            The whole updated Ticket.

        Raises:
            InvalidParameterError: a local check failed; nothing was sent.
            NotFoundError: no such ticket.
            APIStatusError / APIConnectionError: as for :meth:`create`.
        """
        tid = check_id("ticket_id", ticket_id)
        fields = [("message", check_text("message", message, minimum=C.MESSAGE_MIN))]
        body = Multipart(fields, normalize_uploads(attachments))
        response = await self._request(
            R.TICKETS_REPLY, path_params={"ticket_id": tid}, multipart=body
        )
        return self._structure(response, Ticket)

    async def resolve(self, ticket_id: int | str, *, refresh: bool = False) -> Ticket | None:
        """Mark a ticket as resolved.

        Args:
            ticket_id: the ticket's id.
            refresh: when the API answers 204 without a body, read the ticket back.

        Returns:
            The Ticket when the API returns it (or ``refresh`` is set), else None.

        Raises:
            InvalidParameterError: ``ticket_id`` is not a positive integer.
            NotFoundError: no such ticket.
            APIStatusError / APIConnectionError / ResponseDecodeError: the call failed.
        """
        tid = check_id("ticket_id", ticket_id)
        response = await self._request(R.TICKETS_RESOLVE, path_params={"ticket_id": tid})
        ticket = self._structure_optional(response, Ticket)
        if ticket is None and refresh:
            return await self.get(tid)
        return ticket

    @asynccontextmanager
    async def stream_attachment(
        self, ticket_id: int | str, attachment_id: int | str | Attachment
    ) -> AsyncIterator[AttachmentStream]:
        """Open an attachment for streaming, for piping its bytes elsewhere.

        ``async with client.tickets.stream_attachment(216, 5) as s:``
        ``async for chunk in s.iter_chunks(): ...``

        Args:
            ticket_id: the ticket's id.
            attachment_id: the attachment's id, or the Attachment itself (its name is the
                fallback name and its size is checked against the bytes received).

        Yields:
            An AttachmentStream with name, size, content_type and ``iter_chunks()``.

        Raises:
            InvalidParameterError: an id is not a positive integer.
            NotFoundError: no such ticket or attachment.
            DownloadError: (while iterating) the body was cut short.
        """
        tid, aid, known = _attachment_ids(ticket_id, attachment_id)
        async with self._transport.stream(
            R.TICKETS_ATTACHMENT, path_params={"ticket_id": tid, "attachment_id": aid}
        ) as response:
            yield _attachment_stream(received(response), known)

    async def download_attachment(
        self,
        ticket_id: int | str,
        attachment_id: int | str | Attachment,
        dest: DownloadTarget,
        *,
        overwrite: bool = False,
    ) -> Path | None:
        """Download an attachment, streamed in constant memory.

        ``dest`` is a folder (an existing one, or a path ending in ``/``, created): the file is
        named from the server's ``Content-Disposition`` (or the attachment's name), sanitised
        so it always lands inside the folder. Or a file path. Either way the bytes go to a
        temporary file beside the target, renamed into place only when complete, of the
        announced size and synced to disk. Or a writable binary file object, written as the
        bytes arrive (on failure it holds what arrived before; it is not closed).

        Args:
            ticket_id: the ticket's id.
            attachment_id: the attachment's id, or the Attachment (its name and size are used).
            dest: a folder, a file path, or a writable binary file object.
            overwrite: replace an existing file instead of raising.

        Returns:
            The path written, or None when ``dest`` was a file object.

        Raises:
            InvalidParameterError: ``dest`` is unusable, or the target exists and ``overwrite``
                is False (for a file path, checked before anything is sent).
            NotFoundError: no such ticket or attachment.
            DownloadError: the body was cut short or differs from the announced size, again
                after the client's retries (a path target is downloaded again from the start,
                a file object is not); no file is left behind.
        """
        check_dest(dest)
        aid = attachment_id.id if isinstance(attachment_id, Attachment) else attachment_id
        fallback = f"attachment-{aid}"
        if isinstance(dest, str | os.PathLike) and not is_folder_target(dest):
            # A file path does not depend on the answer: refuse an existing one before asking.
            final_path(dest, None, fallback, overwrite=overwrite)
        if not isinstance(dest, str | os.PathLike):
            # A caller's file keeps what arrived before a failure: never write it twice.
            async with self.stream_attachment(ticket_id, attachment_id) as stream:
                async for chunk in stream.iter_chunks():
                    dest.write(chunk)
            return None
        tid, aid, known = _attachment_ids(ticket_id, attachment_id)
        path = dest

        async def write(response: Response) -> Path:
            # Called again after a body cut short: nothing of the failed try is left on disk.
            stream = _attachment_stream(received(response), known)
            target = final_path(path, stream.name, fallback, overwrite=overwrite)
            await write_atomically(stream.iter_chunks(), target, overwrite=overwrite)
            return target

        return await self._transport.download(
            R.TICKETS_ATTACHMENT, write, path_params={"ticket_id": tid, "attachment_id": aid}
        )


class AsyncTicketsWithRawResponse:
    """``client.tickets.with_raw_response``: every ticket call, answering a RawResponse whose
    ``parse()`` is what the plain call returns."""

    def __init__(self, tickets: AsyncTickets) -> None:
        self.list = raw_twin(tickets.list)
        self.departments = raw_twin(tickets.departments)
        self.services = raw_twin(tickets.services)
        self.get = raw_twin(tickets.get)
        self.watch_cursor = raw_twin(tickets.watch_cursor)
        self.wait_for_reply = raw_twin(tickets.wait_for_reply)
        self.create = raw_twin(tickets.create)
        self.reply = raw_twin(tickets.reply)
        self.resolve = raw_twin(tickets.resolve)
        self.download_attachment = raw_twin(tickets.download_attachment)


def _attachment_ids(
    ticket_id: int | str, attachment_id: int | str | Attachment
) -> tuple[int, int, Attachment | None]:
    tid = check_id("ticket_id", ticket_id)
    known = attachment_id if isinstance(attachment_id, Attachment) else None
    aid = check_id("attachment_id", known.id if known else attachment_id)
    return tid, aid, known


__all__: Sequence[str] = ["AsyncTickets", "AsyncTicketsWithRawResponse", "AttachmentStream"]
