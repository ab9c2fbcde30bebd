"""The two things the archive needs from the client beyond its documented calls, in one place.

A ticket's body exactly as the server sent it (bytes and ``Date`` header) is read through the
client's transport, and a parsed body becomes a :class:`Ticket` through the client's converter:
both are private until the client offers public doors (``tickets.with_raw_response.get`` and
``Ticket.from_dict``); then each function here becomes a one-line call of that door.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from vpsbg_support import _routes as R
from vpsbg_support._client import AsyncClient
from vpsbg_support._convert import structure
from vpsbg_support.errors import ResponseDecodeError
from vpsbg_support.models import Ticket


@attrs.frozen(kw_only=True)
class RawTicket:
    """A ticket's response: its body as received, and what else the archive uses of it."""

    body: bytes
    date: str | None
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
    response = await client._transport.request(R.TICKETS_GET, path_params={"ticket_id": ticket_id})
    return RawTicket(
        body=response.body,
        date=response.headers.get("Date"),
        method=response.method,
        url=response.url,
        status=response.status,
    )


def parse_ticket(data: Any) -> Ticket:
    """A ticket's JSON (parsed) as a Ticket, unknown keys kept in ``extra``.

    Raises:
        ValueError: (ConversionError) it does not have a ticket's shape.
    """
    return structure(data, Ticket)
