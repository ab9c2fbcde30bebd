"""What every resource shares: hand a call to the pipeline, turn the JSON into models, and the
raw twin of every call (``with_raw_response``)."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from vpsbg_support._convert import ConversionError, structure, structure_list
from vpsbg_support._pipeline import Pipeline, Response
from vpsbg_support.errors import APIStatusError, ResponseDecodeError, ResponseTooLargeError
from vpsbg_support.models import Page
from vpsbg_support.responses import RawResponse

T = TypeVar("T")
P = ParamSpec("P")

#: While a raw twin runs: the responses its call received, last one last. A context variable,
#: so concurrent calls (each its own task) never see each other's.
_received: ContextVar[list[Response] | None] = ContextVar("vpsbg_support_raw", default=None)


def received(response: Response) -> Response:
    """Note ``response`` for the raw twin running this call, if any; return it."""
    box = _received.get()
    if box is not None and (not box or box[-1] is not response):
        box.append(response)
    return response


def received_error(error: APIStatusError) -> None:
    """Note an error answer a call turned into a result (``undo_cancel``'s 422 after a retry),
    so its raw twin shows that answer: status, headers and body as the error kept them."""
    body = error.body
    if body is None:
        content = b""
    elif isinstance(body, str):
        content = body.encode()
    else:
        content = json.dumps(body).encode()
    received(Response(error.status, error.headers, content, error.method or "", error.url or ""))


class AsyncResource:
    """Base of the resource groups; holds the pipeline and nothing else."""

    def __init__(self, transport: Pipeline) -> None:
        self._transport = transport
        #: Hands a call to the pipeline: ``response = await self._request(route, ...)``. The
        #: pipeline's own method, bound once: no frame of ours around every call.
        self._request = transport.request

    def __repr__(self) -> str:
        return f"<{type(self).__name__} base_url={self._transport.base_url!r}>"

    # Every answer a call reads goes through one of the three _structure helpers (a download
    # through ``received``): that is where a running raw twin is told of it.

    @staticmethod
    def _structure(response: Response, cl: type[T]) -> T:
        data = received(response).json()
        try:
            return structure(data, cl)
        except ConversionError as exc:
            raise _decode_error(response, cl, exc) from None

    @staticmethod
    def _structure_optional(response: Response, cl: type[T]) -> T | None:
        """For endpoints that answer an object or 204/empty: None when there is no body."""
        if received(response).status == 204 or not response.body.strip():
            return None
        return AsyncResource._structure(response, cl)

    @staticmethod
    def _structure_page(response: Response, cl: type[T]) -> Page[T]:
        data = received(response).json()
        try:
            return structure_list(data, cl)
        except ConversionError as exc:
            raise _decode_error(response, cl, exc) from None


def raw_twin(
    call: Callable[P, Awaitable[T]],
) -> Callable[P, Coroutine[Any, Any, RawResponse[T]]]:
    """The raw twin of a resource call: same arguments, answering a RawResponse of the last
    response the call received, whose ``parse()`` is the call's result.

    The call runs whole (retries, a ``refresh`` read, a download's restarts), so ``parse()``
    returns exactly what the plain call returns. A body that cannot be read as the documented
    shape (ResponseDecodeError) still gives the raw response; ``parse()`` raises the error.
    """

    @functools.wraps(call)
    async def raw(*args: P.args, **kwargs: P.kwargs) -> RawResponse[T]:
        box: list[Response] = []
        token = _received.set(box)
        try:
            result = await call(*args, **kwargs)
        except ResponseDecodeError as exc:
            if not box or not _read_from(exc, box[-1]):
                raise  # the pipeline's own (too large, corrupt): no response to show
            return raw_response(box[-1], _raiser(exc))
        finally:
            _received.reset(token)
        if not box:  # pragma: no cover - every call reads an answer or raises
            raise AssertionError(f"{call.__qualname__} returned without reading an answer")
        return raw_response(box[-1], lambda: result)

    return raw


def _read_from(error: ResponseDecodeError, response: Response) -> bool:
    """Was ``error`` raised reading ``response``'s body (which then carries that very body)?"""
    return (
        error.body is response.body
        and (error.method, error.url) == (response.method, response.url)
        and not isinstance(error, ResponseTooLargeError)
    )


def _raiser(error: BaseException) -> Callable[[], Any]:
    def parse() -> Any:
        raise error

    return parse


def raw_response(response: Response, parse: Callable[[], T]) -> RawResponse[T]:
    """The public raw view of ``response``; ``parse`` gives the plain call's result."""
    return RawResponse(
        status_code=response.status,
        headers=response.headers,
        content=None if response.stream is not None else response.body,
        method=response.method,
        url=response.url,
        request_id=response.request_id,
        elapsed=response.elapsed,
        retries_taken=response.retries_taken,
        parse=parse,
    )


def _decode_error(response: Response, cl: type[Any], exc: ConversionError) -> ResponseDecodeError:
    return ResponseDecodeError(
        f"Could not read the {cl.__name__} in the response to {response.method} {response.url}:"
        f" {exc}",
        status=response.status,
        body=response.body,
        method=response.method,
        url=response.url,
    )
