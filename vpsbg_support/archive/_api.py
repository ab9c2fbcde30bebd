"""What the archive needs from the client beyond its plain calls, in one place.

A ticket's body exactly as the server sent it (bytes and ``Date`` header) and the Ticket read
from it come from the public ``client.tickets.with_raw_response.get``; a stored body becomes a
:class:`Ticket` again through the public ``Ticket.from_dict``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from vpsbg_support.errors import ResponseDecodeError
from vpsbg_support.models import Ticket

if TYPE_CHECKING:
    from vpsbg_support import AsyncClient


@attrs.frozen(kw_only=True)
class RawTicket:
    """A ticket's response: its body as received, and what else the archive uses of it.

    Attributes:
        body: the body's bytes, as received.
        date: its ``Date`` header, if any.
        elapsed: seconds the call took, retries included.
        method, url, status: for errors.
        parse: the Ticket the body holds (raises ResponseDecodeError when it holds none).
    """

    body: bytes
    date: str | None
    elapsed: float
    method: str
    url: str
    status: int
    parse: Callable[[], Ticket]

    def decode_error(self, problem: str) -> ResponseDecodeError:
        """The error for a body that is not a ticket."""
        return ResponseDecodeError(
            f"Could not read the Ticket in the response to {self.method} {self.url}: {problem}",
            status=self.status,
            body=self.body,
            method=self.method,
            url=self.url,
        )


async def get_raw_ticket(client: AsyncClient, ticket_id: int) -> RawTicket:
    """GET one ticket, keeping its body's bytes as the server sent them.

    Raises:
        APIError: as any call of the client (after its retries).
    """
    response = await client.tickets.with_raw_response.get(ticket_id)
    return RawTicket(
        body=response.content,
        date=response.headers.get("Date"),
        elapsed=response.elapsed,
        method=response.method,
        url=response.url,
        status=response.status_code,
        parse=response.parse,
    )


def parse_ticket(data: Any) -> Ticket:
    """A ticket's JSON (parsed) as a Ticket, unknown keys kept in ``extra``.

    Raises:
        ValueError: (ConversionError) it does not have a ticket's shape.
    """
    return Ticket.from_dict(data)
