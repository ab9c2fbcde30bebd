"""Raw responses: what the server answered to a call, with the parsed result one call away.

``raw = await client.tickets.with_raw_response.get(216)``: ``raw.headers``, ``raw.content``,
``raw.request_id``, and ``raw.parse()`` for the Ticket that ``client.tickets.get`` returns. Every
call of every resource has such a twin under ``with_raw_response``, on both clients.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import attrs

from vpsbg_support.errors import BodyNotKeptError, ResponseDecodeError

__all__ = ["RawResponse"]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class RawResponse(Generic[T]):
    """A successful answer as received (the token scrubbed), and its parsed result.

    For a call that made more than one request (``resolve(refresh=True)``), it is the last
    response. A download's body went to its destination: its ``content``, ``text()`` and
    ``json()`` raise BodyNotKeptError.

    Attributes:
        status_code: the HTTP status.
        headers: the response headers (case-insensitive).
        method: the request's HTTP method.
        url: the request's URL.
        request_id: the server's id for the request (``X-Request-Id``, else ``Request-Id``,
            ``X-Correlation-Id``, ``CF-Ray``), or None.
        elapsed: seconds from the first attempt until the body was read, retries included.
        retries_taken: attempts made before the one answered.
    """

    status_code: int
    headers: Mapping[str, str]
    _content: bytes | None = attrs.field(repr=False, alias="content")
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

    @property
    def content(self) -> bytes:
        """The body bytes, decoded from gzip/deflate, the token scrubbed.

        Raises:
            BodyNotKeptError: the call streamed its body (a download).
        """
        if self._content is None:
            raise BodyNotKeptError(
                f"the body of {self.method} {self.url} was streamed to its destination and is"
                " not kept: read the file (raw.parse() gives its path)"
            )
        return self._content

    def text(self, encoding: str = "utf-8") -> str:
        """The body as text (undecodable bytes replaced).

        Raises:
            BodyNotKeptError: the call streamed its body (a download).
        """
        return self.content.decode(encoding, "replace")

    def json(self) -> Any:
        """The body decoded as JSON; None for an empty body.

        Raises:
            ResponseDecodeError: the body is not JSON.
            BodyNotKeptError: the call streamed its body (a download).
        """
        return json_body(self.content, self.status_code, self.method, self.url)


#: What json.loads uses when given no options, made once.
_JSON = json.JSONDecoder()


def json_body(body: bytes, status: int, method: str, url: str) -> Any:
    """``body`` decoded as JSON; None when empty.

    Raises:
        ResponseDecodeError: the body is not JSON.
    """
    if not body or body.isspace():  # as body.strip() == b"", without copying the body
        return None
    try:
        # json.loads(bytes) first guesses the encoding from BOMs and zero bytes; a body opening
        # with an ASCII byte not followed by a zero byte is UTF-8 to that guess (and has no BOM
        # for json.loads(str) to refuse), so it is decoded here and given to json.loads' own
        # decoder directly: a microsecond less per call for a ticket.
        if 0 < body[0] < 0x80 and body[1:2] != b"\0":
            return _JSON.decode(body.decode("utf-8", "surrogatepass"))
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
