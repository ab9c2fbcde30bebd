"""The public exception tree: every error the library raises is a ``VPSBGError``.

``InvalidParameterError`` is raised before anything is sent. ``APIError`` and its subclasses
describe a request that was attempted; ``request_sent`` says whether the server may have acted on
it, which matters for money: a purchase that failed with ``request_sent=True`` may have created an
order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vpsbg_support._request_id import request_id_in
from vpsbg_support._routes import method_is_idempotent

__all__ = [
    "MAY_HAVE_REACHED_VPSBG",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BodyNotKeptError",
    "ClientClosedError",
    "ConfigurationError",
    "DownloadError",
    "ExportError",
    "InternalServerError",
    "InvalidParameterError",
    "LockedError",
    "NotFoundError",
    "OrderCancelledError",
    "OtherSourceError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimitedLocallyError",
    "ResponseDecodeError",
    "TLSVerificationError",
    "ResponseTooLargeError",
    "UnprocessableEntityError",
    "VPSBGError",
    "WaitTimeoutError",
    "WrongEventLoopError",
    "status_error_class",
]

#: The advice every failure of a non-idempotent call that may have been sent carries (in its
#: message, in a note on a KeyboardInterrupt or CancelledError, and on the CLI's stderr).
MAY_HAVE_REACHED_VPSBG = (
    "This request may have reached VPSBG: check your orders (or the ticket's messages) before"
    " trying again."
)
_CHECK_BEFORE_RETRY = " " + MAY_HAVE_REACHED_VPSBG


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)`` once, also on Python 3.10 (which keeps ``__notes__`` unprinted)."""
    notes = list(getattr(exc, "__notes__", ()))
    if note not in notes:
        setattr(exc, "__notes__", [*notes, note])  # noqa: B010 -- typeshed lacks it before 3.11


class VPSBGError(Exception):
    """Base class of every exception this library raises."""


class ConfigurationError(VPSBGError):
    """The client is missing something it needs, such as an API token.

    Attributes:
        setting: which setting is wrong, when one is: ``"token"`` (missing, or holding a
            character no token has), ``"base_url"``; None otherwise (a session, proxy or CA
            bundle that cannot be used: the message says which).
    """

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class InvalidParameterError(VPSBGError, ValueError):
    """A value given to a method breaks a documented rule; nothing was sent.

    Attributes:
        field: the name of the offending parameter, as the API calls it (e.g. ``"subject"``).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ExportError(VPSBGError):
    """The archive folder could not be written or read: a full disk, a file where a folder is
    expected, a symbolic link where the archive would write, a damaged ``archive.sqlite``.

    What was done before it is kept: run the export again once the cause is fixed.

    Attributes:
        path: the file or folder concerned.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class OtherSourceError(VPSBGError):
    """The archive holds another server's (or another account's) tickets; nothing was changed.

    Export into another folder, or pass ``allow_other_source=True`` (``--allow-other-source``)
    to mix them on purpose.

    Attributes:
        recorded: the source the archive was written from.
        given: the source of this run.
    """

    def __init__(self, message: str, *, recorded: str, given: str) -> None:
        super().__init__(message)
        self.message = message
        self.recorded = recorded
        self.given = given


class WaitTimeoutError(VPSBGError, TimeoutError):
    """A wait (``orders.wait``, ``tickets.wait_for_reply``) ran out of time; nothing failed.

    Attributes:
        timeout: the seconds that were allowed.
        last: what the last poll saw (the Order, or the Ticket), or None if none succeeded.
    """

    def __init__(self, message: str, *, timeout: float, last: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.timeout = timeout
        self.last = last


class OrderCancelledError(VPSBGError):
    """``orders.wait`` saw the order ``cancelled``: it will never reach the awaited status.

    Attributes:
        order: the cancelled Order, as last read.
    """

    def __init__(self, message: str, *, order: Any) -> None:
        super().__init__(message)
        self.message = message
        self.order = order


class APIError(VPSBGError):
    """A request was attempted and did not succeed.

    Attributes:
        method: HTTP method of the failed request.
        url: URL of the failed request (never carries the token).
        request_sent: True when the server may have received and acted on the request.
        replayed: True when this error answers a retry, by the client's retry policy, of a
            request whose earlier attempt may have reached the server (it failed ambiguously
            or with a 5xx). A DELETE or PUT repeated that way can be refused because the first
            attempt already did the work.
    """

    replayed: bool = False

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        request_sent: bool = True,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url
        self.request_sent = request_sent


class APIConnectionError(APIError):
    """The connection failed: refused, reset, DNS, TLS, or a body cut short."""

    def __init__(
        self,
        message: str = "Connection to the VPSBG API failed.",
        *,
        method: str | None = None,
        url: str | None = None,
        request_sent: bool = False,
    ) -> None:
        if request_sent and method is not None and not method_is_idempotent(method):
            message += _CHECK_BEFORE_RETRY
        super().__init__(message, method=method, url=url, request_sent=request_sent)


class APITimeoutError(APIConnectionError):
    """The request timed out (connecting, or waiting for the response)."""

    def __init__(
        self,
        message: str = "Request to the VPSBG API timed out.",
        *,
        method: str | None = None,
        url: str | None = None,
        request_sent: bool = False,
    ) -> None:
        super().__init__(message, method=method, url=url, request_sent=request_sent)


class ResponseDecodeError(APIError):
    """A 2xx response whose body could not be read as the documented shape.

    Attributes:
        status: the HTTP status.
        body: the raw body as received (bytes), for inspection.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: bytes,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        # A 2xx answer means the server acted: a POST's effect (an order, a reply) exists.
        if method is not None and not method_is_idempotent(method):
            message += _CHECK_BEFORE_RETRY
        super().__init__(message, method=method, url=url, request_sent=True)
        self.status = status
        self.body = body


class ResponseTooLargeError(ResponseDecodeError):
    """A response body passed the client's ``max_response_size`` (decoded, so a small
    compressed body expanding past it counts); reading stopped there and nothing was kept.

    Attributes:
        limit: the size in bytes that was passed.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        limit: int,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, status=status, body=b"", method=method, url=url)
        self.limit = limit


class DownloadError(APIError):
    """A download did not complete (short body, size mismatch); no partial file is left.

    Attributes:
        cut_short: True when the body ended (or the connection broke) before it was complete,
            so asking again may succeed; False when what arrived is wrong (too long, corrupt).
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        request_sent: bool = True,
        cut_short: bool = False,
    ) -> None:
        super().__init__(message, method=method, url=url, request_sent=request_sent)
        self.cut_short = cut_short


class APIStatusError(APIError):
    """The API answered with a non-2xx status.

    Attributes:
        status: the HTTP status code.
        message: the API's ``message`` when the body has one, else a generic text.
        body: the decoded JSON body, the text body, or None when empty.
        headers: the response headers.
        request_id: the server's id for the request, to quote to VPSBG support: from
            ``X-Request-Id``, else ``Request-Id``, ``X-Correlation-Id``, ``CF-Ray``; or None.
    """

    status: int

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        url: str | None = None,
        request_sent: bool = True,
    ) -> None:
        request_id = request_id_in(headers or {})
        text = f"HTTP {status}: {message}"
        if request_id:
            text += f" [request id {request_id}]"
        if (
            request_sent
            and status >= 500
            and method is not None
            and not method_is_idempotent(method)
        ):
            text += _CHECK_BEFORE_RETRY
        super().__init__(text, method=method, url=url, request_sent=request_sent)
        self.message = message
        self.status = status
        self.body = body
        self.headers: Mapping[str, str] = dict(headers or {})
        self.request_id = request_id


class BadRequestError(APIStatusError):
    """400: the request was malformed."""


class AuthenticationError(APIStatusError):
    """401: no valid token was sent."""


class PermissionDeniedError(APIStatusError):
    """403: the token may not do this (for example a Read token on a write call)."""


class NotFoundError(APIStatusError):
    """404: no such ticket, attachment or resource."""


class UnprocessableEntityError(APIStatusError):
    """422: the API rejected the input.

    Attributes:
        errors: field name -> list of messages, from a Laravel-shaped body; empty when absent.
    """

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.errors: dict[str, list[str]] = _field_errors(self.body)


class LockedError(APIStatusError):
    """423: the resource is locked at the moment."""


class RateLimitError(APIStatusError):
    """429: too many requests.

    Attributes:
        retry_after: seconds the server asked us to wait, when it said so.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class RateLimitedLocallyError(RateLimitError):
    """Refused by this client, not by the server: another call was told to wait (Retry-After)
    and that wait is longer than this call may sleep. Nothing was sent; ``status`` is None
    because no HTTP status was received for this call.

    Attributes:
        retry_after: seconds left of the shared wait.
    """

    status: int | None  # type: ignore[assignment]  # None: the server sent no status

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        APIError.__init__(self, message, method=method, url=url, request_sent=False)
        self.message = message
        self.status = None
        self.body = None
        self.headers = {}
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx: the server failed."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: UnprocessableEntityError,
    423: LockedError,
    429: RateLimitError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status."""
    if status >= 500:
        return InternalServerError
    return _STATUS_CLASSES.get(status, APIStatusError)


def _field_errors(body: Any) -> dict[str, list[str]]:
    """Read ``{"errors": {field: [msg, ...]}}`` leniently: any other shape gives ``{}``."""
    if not isinstance(body, Mapping):
        return {}
    raw = body.get("errors")
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, list[str]] = {}
    for field, msgs in raw.items():
        if isinstance(msgs, str):
            out[str(field)] = [msgs]
        elif isinstance(msgs, list):
            out[str(field)] = [str(m) for m in msgs]
        else:
            out[str(field)] = [str(msgs)]
    return out


class TLSVerificationError(APIConnectionError):
    """The server's TLS certificate could not be verified; nothing was sent.

    Behind a TLS-inspecting proxy, or with a private CA, pass ``ca_bundle=`` (a PEM file) or
    ``ssl_context=`` to the client, or set ``VPSBG_CA_BUNDLE``.
    """


class WrongEventLoopError(VPSBGError, RuntimeError):
    """An ``AsyncClient`` was used under an event loop other than the one it was first used on.

    Its connections belong to that first loop. Create one ``AsyncClient`` per event loop (for
    example inside the coroutine given to ``asyncio.run``), or use the blocking ``Client``, which
    runs its own loop and may be called from any thread.
    """


class ClientClosedError(VPSBGError, RuntimeError):
    """A call was made on an ``AsyncClient`` after ``aclose()`` (or after its ``async with``
    block ended); nothing was sent. Create a new client."""


class BodyNotKeptError(VPSBGError, RuntimeError):
    """The body of a raw response is not available: the call streamed it to its destination
    (a download). Its status, headers and request id are."""
