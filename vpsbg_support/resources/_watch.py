"""What ``tickets.watch`` knows between polls, and how a fresh read of a ticket becomes events.

Per ticket it keeps what the last read showed: ``updated_at``, status, the message count (when a
full read gave it) and whether that read was *settled*. The API gives ``updated_at`` to the
second, so a change later in the same second as a read leaves ``updated_at`` as it was: a read is
settled only when the server made it after that second ended (judged on the server's own clock,
from the ``Date`` header), and a ticket last read unsettled is read again on the next poll. A
ticket whose list entry shows the same ``updated_at`` and status as a settled read is unchanged:
one list request per poll covers it, wherever it sits in the list.

New messages are told apart by count after a full read; for a ticket only ever seen in the list
(the count unknown), by ``created_at`` later than the settled ``updated_at``, which no message
that existed at that read can have.

The cursor is this state, compressed: ``base64url(zlib(JSON))`` with a version, opaque to users.
Every event's cursor is the state right after that event, so resuming repeats nothing, and what
came after it (even in the same poll) is seen again.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs

from vpsbg_support._polling import Backoff, failure_pause, rides_out
from vpsbg_support._settle import is_settled
from vpsbg_support.errors import InvalidParameterError, NotFoundError, VPSBGError
from vpsbg_support.models import (
    CustomerReplied,
    StatusChanged,
    SupportReplied,
    Ticket,
    TicketEvent,
    TicketMessage,
    TicketOpened,
)

CURSOR_VERSION = 1
#: A cursor bigger than this once decompressed is refused (a cursor is not a way to eat memory).
_MAX_CURSOR_JSON = 64 * 1024 * 1024
#: Lists every ticket once, each with when the server may have read it.
Walk = Callable[[], AsyncIterator[tuple[Ticket, datetime]]]
#: Reads one ticket in full, with when the server may have read it.
Read = Callable[[int], Awaitable[tuple[Ticket, datetime]]]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def microseconds(moment: datetime | None) -> int | None:
    """A timestamp as integer microseconds since the epoch (exact, unlike a float)."""
    return None if moment is None else (moment - _EPOCH) // _MICROSECOND


@attrs.define
class Seen:
    """What the last read of one ticket showed.

    Attributes:
        updated_at: its ``updated_at`` in microseconds since the epoch; None forces a read.
        status: its status.
        messages: its message count, when a full read gave it.
        settled: the read could not have missed a change made in ``updated_at``'s second.
    """

    updated_at: int | None
    status: str
    messages: int | None
    settled: bool


def _reply(ticket: Ticket, message: TicketMessage, cursor: str) -> TicketEvent:
    if message.is_customer is True:
        return CustomerReplied(ticket=ticket, message=message, cursor=cursor)
    return SupportReplied(ticket=ticket, message=message, cursor=cursor)


class WatchState:
    """Every ticket's last seen state; encodes itself as the cursor."""

    def __init__(self, tickets: dict[int, Seen] | None = None) -> None:
        self.tickets: dict[int, Seen] = tickets if tickets is not None else {}

    # -- decisions -------------------------------------------------------------------------

    def needs_read(self, listed: Ticket) -> bool:
        """Whether a list entry may hide a change, so the ticket must be read in full."""
        seen = self.tickets.get(listed.id)
        return (
            seen is None
            or not seen.settled
            or seen.updated_at != microseconds(listed.updated_at)
            or seen.status != listed.status
        )

    def has_unsettled(self) -> bool:
        """Whether a ticket awaits the read that settles it (poll again at the floor)."""
        return any(not seen.settled for seen in self.tickets.values())

    def note_listed(self, listed: Ticket, served: datetime) -> bool:
        """Record a list entry at the start of a watch (no events); True if it needs a read."""
        settled = is_settled(listed.updated_at, served)
        self.tickets[listed.id] = Seen(
            microseconds(listed.updated_at), listed.status, None, settled
        )
        return not settled

    def note_read(self, ticket: Ticket, served: datetime) -> None:
        """Record a full read without events (the start of a watch)."""
        self.tickets[ticket.id] = self._final(ticket, served)

    def forget(self, ticket_id: int) -> None:
        """Drop a ticket the API no longer has."""
        self.tickets.pop(ticket_id, None)

    def changes(self, ticket: Ticket, served: datetime) -> Iterator[TicketEvent]:
        """The events between the last read of ``ticket`` and this one, in order; the state
        moves forward before each is yielded, so its cursor resumes right after it."""
        messages = ticket.messages
        prior = self.tickets.get(ticket.id)
        steps: list[tuple[Seen, Callable[[str], TicketEvent]]] = []
        if prior is None:
            start = min(1, len(messages))
            status = ticket.status
            steps.append(
                (Seen(None, status, start, False), lambda c: TicketOpened(ticket=ticket, cursor=c))
            )
        else:
            start = _first_new(prior, messages)
            status = prior.status
        for index in range(start, len(messages)):
            message = messages[index]
            steps.append(
                (
                    Seen(None, status, index + 1, False),
                    lambda c, m=message: _reply(ticket, m, c),  # type: ignore[misc]
                )
            )
        if ticket.status != status:
            old = status
            steps.append(
                (
                    Seen(None, ticket.status, len(messages), False),
                    lambda c: StatusChanged(ticket=ticket, old=old, new=ticket.status, cursor=c),
                )
            )
        final = self._final(ticket, served)
        if not steps:
            self.tickets[ticket.id] = final
            return
        steps[-1] = (final, steps[-1][1])
        for seen, make in steps:
            self.tickets[ticket.id] = seen
            yield make(self.encode())

    @staticmethod
    def _final(ticket: Ticket, served: datetime) -> Seen:
        return Seen(
            microseconds(ticket.updated_at),
            ticket.status,
            len(ticket.messages),
            is_settled(ticket.updated_at, served),
        )

    # -- the cursor ------------------------------------------------------------------------

    def encode(self) -> str:
        """The cursor: this state as compact, opaque, URL-safe text."""
        statuses = sorted({seen.status for seen in self.tickets.values()})
        index = {status: i for i, status in enumerate(statuses)}
        rows = []
        previous = 0
        for ticket_id in sorted(self.tickets):
            seen = self.tickets[ticket_id]
            rows.append(
                [
                    ticket_id - previous,
                    seen.updated_at,
                    index[seen.status],
                    seen.messages,
                    int(seen.settled),
                ]
            )
            previous = ticket_id
        payload = {"v": CURSOR_VERSION, "s": statuses, "t": rows}
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(zlib.compress(raw, 9)).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, cursor: object) -> WatchState:
        """Read a cursor made by :meth:`encode`.

        Raises:
            InvalidParameterError: it is not one (damaged, or from an unknown version).
        """
        if not isinstance(cursor, str) or not cursor.isascii():
            raise InvalidParameterError("cursor", "expected the cursor string of an event")
        try:
            packed = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            inflater = zlib.decompressobj()
            raw = inflater.decompress(packed, _MAX_CURSOR_JSON)
            if inflater.unconsumed_tail or not inflater.eof:
                raise ValueError("truncated or too big")
            payload = json.loads(raw)
            return cls(_read_rows(payload))
        except (ValueError, TypeError, KeyError, IndexError, binascii.Error, zlib.error):
            raise InvalidParameterError(
                "cursor", "not a cursor of this library's watch() (damaged or truncated?)"
            ) from None


def _read_rows(payload: Any) -> dict[int, Seen]:
    if not isinstance(payload, dict) or payload.get("v") != CURSOR_VERSION:
        raise ValueError("unknown cursor version")
    statuses = payload["s"]
    if not all(isinstance(s, str) for s in statuses):
        raise ValueError("bad statuses")
    tickets: dict[int, Seen] = {}
    ticket_id = 0
    for delta, updated_at, status, messages, settled in payload["t"]:
        if not isinstance(delta, int) or delta <= 0:
            raise ValueError("bad ticket id")
        if updated_at is not None and not isinstance(updated_at, int):
            raise ValueError("bad updated_at")
        if messages is not None and (not isinstance(messages, int) or messages < 0):
            raise ValueError("bad message count")
        if not isinstance(status, int) or status < 0:
            raise ValueError("bad status")
        ticket_id += delta
        tickets[ticket_id] = Seen(updated_at, statuses[status], messages, settled == 1)
    return tickets


def _first_new(prior: Seen, messages: tuple[TicketMessage, ...]) -> int:
    """The index of the first message the last read did not have."""
    if prior.messages is not None:
        return min(prior.messages, len(messages))
    if prior.updated_at is None:
        return len(messages)
    for index, message in enumerate(messages):
        created = microseconds(message.created_at)
        if created is not None and created > prior.updated_at:
            return index
    return len(messages)


async def watch(
    walk: Walk, read: Read, state: WatchState | None, backoff: Backoff
) -> AsyncIterator[TicketEvent]:
    """Poll forever, yielding the events each poll finds (see ``AsyncTickets.watch``).

    Without a ``state`` (no cursor) the first poll only records what exists: no events.
    """
    if state is None:
        state = WatchState()
        while True:
            try:
                await _start(walk, read, state)
                break
            except VPSBGError as exc:
                if not rides_out(exc):
                    raise
                await asyncio.sleep(failure_pause(backoff, exc, "watching tickets"))
        await asyncio.sleep(backoff.after_poll(changed=True))
    while True:
        changed = False
        try:
            async for event in _poll(walk, read, state):
                changed = True
                yield event
        except VPSBGError as exc:
            if not rides_out(exc):
                raise
            delay = failure_pause(backoff, exc, "watching tickets")
        else:
            delay = backoff.after_poll(changed=changed or state.has_unsettled())
        await asyncio.sleep(delay)


async def starting_point(walk: Walk, read: Read) -> WatchState:
    """The state of every ticket now, with no events: where a watch without cursor begins."""
    state = WatchState()
    await _start(walk, read, state)
    return state


async def _start(walk: Walk, read: Read, state: WatchState) -> None:
    unsettled = [listed.id async for listed, served in walk() if state.note_listed(listed, served)]
    for ticket_id in unsettled:
        try:
            ticket, served = await read(ticket_id)
        except NotFoundError:
            state.forget(ticket_id)
            continue
        state.note_read(ticket, served)


async def _poll(walk: Walk, read: Read, state: WatchState) -> AsyncIterator[TicketEvent]:
    stale = [listed async for listed, _ in walk() if state.needs_read(listed)]
    # Oldest change first; a ticket without updated_at last.
    stale.sort(key=lambda t: (t.updated_at is None, microseconds(t.updated_at) or 0, t.id))
    for listed in stale:
        try:
            ticket, served = await read(listed.id)
        except NotFoundError:
            state.forget(listed.id)
            continue
        for event in state.changes(ticket, served):
            yield event
