"""Raw responses: what the server answered to a call, with the parsed result one call away.

``raw = await client.tickets.with_raw_response.get(216)``: ``raw.headers``, ``raw.content``,
``raw.request_id``, and ``raw.parse()`` for the Ticket that ``client.tickets.get`` returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import attrs

from vpsbg_support.errors import ResponseDecodeError

__all__ = ["RawResponse"]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class RawResponse(Generic[T]):
    """A successful answer as received (the token scrubbed), and its parsed result.

    Attributes:
        status_code: the HTTP status.
        headers: the response headers (case-insensitive).
        content: the body bytes, decoded from gzip/deflate.
        method: the request's HTTP method.
        url: the request's URL.
        request_id: the server's id for the request (``X-Request-Id``, else ``Request-Id``,
            ``X-Correlation-Id``, ``CF-Ray``), or None.
        elapsed: seconds from the first attempt until the body was read, retries included.
        retries_taken: attempts made before the one answered.
    """

    status_code: int
    headers: Mapping[str, str]
    content: bytes = attrs.field(repr=False)
    method: str
    url: str
    request_id: str | None
    elapsed: float
    retries_taken: int
    _parse: Callable[[], T] = attrs.field(repr=False, alias="parse")

    def parse(self) -> T:
        """The result the plain call returns (e.g. the Ticket).

        Raises:
            ResponseDecodeError: the body is not what the call documents.
        """
        return self._parse()

    def text(self, encoding: str = "utf-8") -> str:
        """The body as text (undecodable bytes replaced)."""
        return self.content.decode(encoding, "replace")

    def json(self) -> Any:
        """The body decoded as JSON; None for an empty body.

        Raises:
            ResponseDecodeError: the body is not JSON.
        """
        return json_body(self.content, self.status_code, self.method, self.url)


def json_body(body: bytes, status: int, method: str, url: str) -> Any:
    """``body`` decoded as JSON; None when empty.

    Raises:
        ResponseDecodeError: the body is not JSON.
    """
    if not body or body.isspace():  # as body.strip() == b"", without copying the body
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ResponseDecodeError(
            f"Expected a JSON body from {method} {url}, got undecodable bytes"
            f" ({exc.__class__.__name__}).",
            status=status,
            body=body,
            method=method,
            url=url,
        ) from None
