"""How an attempt failed, as pure data: the kind that decides a retry, and the error to raise
if not. The builders take only scrubbed bytes and headers (gidgethub's ``sansio`` style), so
they are tested, and mutated, without a server."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from vpsbg_support import _constants as C
from vpsbg_support._redact import Redactor
from vpsbg_support._retry import FailureKind, parse_retry_after
from vpsbg_support.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    RateLimitedLocallyError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    TLSVerificationError,
    status_error_class,
)

__all__ = [
    "Failure",
    "body_failure",
    "rate_limited_locally",
    "status_error",
    "status_failure",
    "transport_failure",
]


@attrs.frozen
class Failure:
    """How one attempt failed: the kind that decides a retry, and the error to raise if not."""

    kind: FailureKind
    error: APIError
    status: int | None = None
    retry_after: float | None = None

    @property
    def may_have_acted(self) -> bool:
        """Could the server have acted on the request? (408 and 429 say it did not.)"""
        if self.kind is FailureKind.STATUS:
            return self.status not in (408, 429)
        return self.kind is not FailureKind.NOT_SENT


def rate_limited_locally(wait: float, why: str, method: str, url: str) -> RateLimitedLocallyError:
    """The error of a call this client refuses to send because of another call's Retry-After."""
    return RateLimitedLocallyError(
        f"rate limited locally: another call was told to wait (Retry-After), {wait:.2f}s are"
        f" left, and {why}; this request was not sent",
        retry_after=wait,
        method=method,
        url=url,
    )


def transport_failure(
    exc: BaseException,
    method: str,
    url: str,
    redact: Redactor,
    *,
    sent: bool,
    timed_out: bool,
    certificate: bool,
) -> Failure:
    """A connection failure or timeout; ``sent``: the request may have reached the server;
    ``certificate``: the server's TLS certificate could not be verified."""
    kind = FailureKind.AMBIGUOUS if sent else FailureKind.NOT_SENT
    name = exc.__class__.__name__
    if certificate:
        # Asking again would meet the same certificate: final, and nothing was sent.
        return Failure(
            FailureKind.FINAL,
            TLSVerificationError(
                f"{method} {url} failed: the server's TLS certificate could not be verified"
                f" ({redact.text(str(exc)) or name}). With a private CA or a TLS-inspecting"
                f" proxy, pass ca_bundle= or set {C.ENV_CA_BUNDLE}.",
                method=method,
                url=url,
                request_sent=False,
            ),
        )
    if timed_out:
        error: APIError = APITimeoutError(
            f"{method} {url} timed out ({name}).", method=method, url=url, request_sent=sent
        )
    else:
        # aiohttp's text may quote what the server sent: dropped when it holds the token.
        detail = name if redact.mentioned_in(exc) else (redact.text(str(exc)) or name)
        error = APIConnectionError(
            f"{method} {url} failed: {detail}.", method=method, url=url, request_sent=sent
        )
    return Failure(kind, error)


def body_failure(
    kind: str, message: str, status: int, method: str, url: str, *, limit: int = 0
) -> Failure:
    """A 2xx body that could not be read: too large and corrupt are final, cut may be retried."""
    if kind == "too_large":
        error: APIError = ResponseTooLargeError(
            f"The response to {method} {url} is too large: {message}"
            " (raise AsyncClient(max_response_size=...) if it is expected).",
            status=status,
            limit=limit,
            method=method,
            url=url,
        )
        return Failure(FailureKind.FINAL, error)
    error = ResponseDecodeError(
        f"Could not read the response to {method} {url}: {message}.",
        status=status,
        body=b"",
        method=method,
        url=url,
    )
    return Failure(FailureKind.AMBIGUOUS if kind == "cut" else FailureKind.FINAL, error)


def status_failure(
    status: int,
    reason: str | None,
    raw: bytes,
    headers: Mapping[str, str],
    method: str,
    url: str,
    redact: Redactor,
) -> Failure:
    """A non-2xx answer; ``raw`` and ``headers`` are already scrubbed."""
    retry_after = parse_retry_after(headers.get("Retry-After"))
    return Failure(
        FailureKind.STATUS,
        status_error(status, reason, raw, headers, retry_after, method, url, redact),
        status=status,
        retry_after=retry_after,
    )


def status_error(
    status: int,
    reason: str | None,
    raw: bytes,
    headers: Mapping[str, str],
    retry_after: float | None,
    method: str,
    url: str,
    redact: Redactor,
) -> APIStatusError:
    """The exception for a non-2xx answer: the class for its status, the API's message."""
    body: Any = None
    message = ""
    if raw.strip():
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            body = redact.text(raw.decode("utf-8", "replace"))
            message = body[:200].strip()
    if isinstance(body, Mapping):
        msg = body.get("message") or body.get("error")
        if isinstance(msg, str):
            message = msg
    message = redact.text(message or reason or "request failed")
    cls = status_error_class(status)
    kwargs: dict[str, Any] = {
        "status": status,
        "body": body,
        "headers": redact.headers(headers.items()),
        "method": method,
        "url": url,
        "request_sent": True,
    }
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    return cls(message, **kwargs)
