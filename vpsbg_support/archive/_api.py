"""What the archive needs from the client beyond its plain calls, in one place.

A ticket's body exactly as the server sent it (bytes and ``Date`` header) comes from the
public ``client.tickets.with_raw_response.get``. A parsed body becomes a :class:`Ticket`
through the client's converter, which is private until ``Ticket.from_dict`` exists: then
:func:`parse_ticket` becomes a one-line call of it.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from vpsbg_support._client import AsyncClient
from vpsbg_support._convert import structure
from vpsbg_support.errors import ResponseDecodeError
from vpsbg_support.models import Ticket


@attrs.frozen(kw_only=True)
class RawTicket:
    """A ticket's response: its body as received, and what else the archive uses of it.

    Attributes:
        body: the body's bytes, as received.
        date: its ``Date`` header, if any.
        elapsed: seconds the call took, retries included.
        method, url, status: for errors.
    """

    body: bytes
    date: str | None
    elapsed: float
    method: str
    url: str
    status: int

    def decode_error(self, problem: str) -> ResponseDecodeError:
        """The error for a body that is not a ticket."""
        return ResponseDecodeError(
            f"Could not read the Ticket in the response to {self.method} {self.url}: {problem}",
            status=self.status,
            body=self.body,
            method=self.method,
            url=self.url,
        )

    def data(self) -> Any:
        """The body parsed as JSON.

        Raises:
            ResponseDecodeError: it is not JSON.
        """
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise self.decode_error(f"not JSON ({exc.__class__.__name__})") from None


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
    )


def parse_ticket(data: Any) -> Ticket:
    """A ticket's JSON (parsed) as a Ticket, unknown keys kept in ``extra``.

    Raises:
        ValueError: (ConversionError) it does not have a ticket's shape.
    """
    return structure(data, Ticket)
