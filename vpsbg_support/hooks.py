"""Event hooks: see every HTTP attempt a client makes, as public, token-free values.

``AsyncClient(event_hooks={"request": [on_request], "response": [on_response]})``: each hook is
called with a :class:`RequestInfo` before an attempt is sent, and a :class:`ResponseInfo` once its
status and headers arrive (before the body is read). A hook may be a plain function or a
coroutine function; it runs on the client's event loop (for the blocking ``Client``, its
background thread), so keep it quick. An exception raised by a hook ends the call with it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from vpsbg_support.errors import InvalidParameterError

__all__ = ["EventHooks", "RequestInfo", "ResponseInfo"]


@attrs.frozen(kw_only=True)
class RequestInfo:
    """An HTTP attempt about to be sent.

    Attributes:
        method: the HTTP method.
        url: the URL, query string included.
        headers: the request headers; ``Authorization`` shows as ``"Bearer ***"``.
        attempt: 1 for the first attempt, 2 for the first retry...
    """

    method: str
    url: str
    headers: Mapping[str, str]
    attempt: int


@attrs.frozen(kw_only=True)
class ResponseInfo:
    """The status and headers of an HTTP attempt's answer (any status, errors included).

    Attributes:
        method: the HTTP method.
        url: the URL, query string included.
        status_code: the HTTP status.
        headers: the response headers (case-insensitive; the token scrubbed).
        request_id: the server's id for the request (see ``RawResponse.request_id``), or None.
        attempt: 1 for the first attempt, 2 for the first retry...
        elapsed: seconds from sending this attempt to its headers.
    """

    method: str
    url: str
    status_code: int
    headers: Mapping[str, str]
    request_id: str | None
    attempt: int
    elapsed: float


#: A hook: called with a RequestInfo or ResponseInfo; may return an awaitable.
Hook = Callable[[Any], Any]


@attrs.frozen
class EventHooks:
    """The hooks of a client, checked once: ``request`` and ``response`` ones."""

    request: tuple[Hook, ...] = ()
    response: tuple[Hook, ...] = ()

    @classmethod
    def of(cls, hooks: Mapping[str, Sequence[Hook]] | None) -> EventHooks:
        """Check ``{"request": [...], "response": [...]}`` as given to a client.

        Raises:
            InvalidParameterError: an unknown event name or a hook that is not callable.
        """
        hooks = hooks or {}
        unknown = set(hooks) - {"request", "response"}
        if unknown:
            raise InvalidParameterError(
                "event_hooks", f"unknown event {sorted(unknown)[0]!r} (use 'request', 'response')"
            )
        checked = {}
        for name, funcs in hooks.items():
            funcs = tuple(funcs)
            if not all(callable(func) for func in funcs):
                raise InvalidParameterError("event_hooks", f"every {name!r} hook must be callable")
            checked[name] = funcs
        return cls(**checked)

    def __bool__(self) -> bool:
        return bool(self.request or self.response)


async def fire(hooks: tuple[Hook, ...], info: RequestInfo | ResponseInfo) -> None:
    """Call each hook with ``info``, awaiting those that return an awaitable."""
    for hook in hooks:
        result = hook(info)
        if inspect.isawaitable(result):
            await result
