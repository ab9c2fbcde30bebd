"""One request's life: rate limit, attempt, read within bounds, decide, sleep, raise.

Every call goes through :meth:`Pipeline._attempts`, the one retry loop: failures before the
headers, error statuses and a download cut mid-body (restarted inside it) share one attempt count
and one sleep budget. Its steps are small: an attempt gives an outcome (a response or a
:class:`~vpsbg_support._failures.Failure` holding an already-built, scrubbed error),
:func:`~vpsbg_support._retry.decide` says whether to go again, and the errors come from the pure
builders of ``_failures``. The pipeline knows routes and
bytes, never what a ticket is. No frame an error leaves through holds the token, an aiohttp
response, or a body or headers the server sent unscrubbed.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, NamedTuple, NoReturn, TypeVar, cast
from urllib.parse import urlencode, urlsplit

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from vpsbg_support import _constants as C
from vpsbg_support import _http as http
from vpsbg_support._decode import BodyFailure
from vpsbg_support._failures import (
    Failure,
    body_failure,
    rate_limited_locally,
    status_failure,
    transport_failure,
)
from vpsbg_support._ratelimit import RateLimiter
from vpsbg_support._redact import Redacted, Redactor
from vpsbg_support._request_id import request_id_in
from vpsbg_support._retry import FailureKind, RetryPolicy, decide, refuse_wait
from vpsbg_support._routes import Route
from vpsbg_support._session_options import SessionOptions
from vpsbg_support._version import __version__
from vpsbg_support.errors import MAY_HAVE_REACHED_VPSBG, DownloadError, add_note
from vpsbg_support.hooks import EventHooks, RequestInfo, ResponseInfo, fire
from vpsbg_support.responses import json_body

__all__ = ["Pipeline", "Response"]

logger = logging.getLogger(C.LOGGER_NAME)
T = TypeVar("T")

DEFAULT_USER_AGENT = f"vpsbg-support-python/{__version__} {http.DEFAULT_USER_AGENT_SUFFIX}"


class Response(NamedTuple):
    """A response, its headers and body already scrubbed of the token. (A tuple: built on
    every call, so cheap to make; attrs' frozen ``__init__`` costs three times as much.)

    Attributes:
        status: the HTTP status.
        headers: the response headers.
        body: the body bytes, decoded and within ``max_response_size``; empty for a stream.
        method: the request's method.
        url: the request's URL.
        elapsed: seconds from the first attempt until the body was read (retries included).
        retries_taken: how many attempts were made before this one.
        stream: for a streamed body, its decoded chunks (see ``BodyStream.chunks``).
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    method: str
    url: str
    elapsed: float = 0.0
    retries_taken: int = 0
    stream: http.BodyStream | None = None

    def __repr__(self) -> str:
        # Every field but the stream: an open body is not a value to show.
        shown = ", ".join(f"{k}={v!r}" for k, v in self._asdict().items() if k != "stream")
        return f"Response({shown})"

    @property
    def request_id(self) -> str | None:
        """The server's id for this request, from the first of ``X-Request-Id`` (any case),
        ``Request-Id``, ``X-Correlation-Id`` or ``CF-Ray`` (``C.REQUEST_ID_HEADERS``)."""
        return request_id_in(self.headers)

    def json(self) -> Any:
        """The body decoded as JSON; ``None`` for an empty body.

        Raises:
            ResponseDecodeError: the body is not JSON.
        """
        return json_body(self.body, self.status, self.method, self.url)


class _Call(NamedTuple):
    """What one call sends (a tuple: built on every call, so cheap to make)."""

    route: Route
    url: str
    #: The URL's path, for logs.
    path: str
    params: Mapping[str, str | int] | None
    json_body: Any
    multipart: http.MultipartBody | None
    stream: bool
    #: A cut body may be asked for again from the start (its consumer can start over).
    restartable: bool

    @property
    def replayable(self) -> bool:
        return self.multipart.replayable if self.multipart is not None else True

    @property
    def query(self) -> str:
        """``?page=2&per_page=5`` (empty without parameters), for logs and hooks."""
        return "?" + urlencode(self.params) if self.params else ""


class _CallState:
    """One call's counters, shared by all its attempts: one attempt count, one sleep budget."""

    __slots__ = ("attempt", "replayed", "slept", "started")

    def __init__(self, started: float) -> None:
        self.started = started
        self.attempt = 0
        self.slept = 0.0
        #: Set once an attempt that may have reached the server is followed by another one.
        self.replayed = False


class Pipeline:
    """Owns the session (unless the caller gave one), the limiter, and every request's life."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        timeout: float | aiohttp.ClientTimeout,
        retry: RetryPolicy,
        session: aiohttp.ClientSession | None = None,
        user_agent: str | None = None,
        session_options: SessionOptions | None = None,
        default_headers: Mapping[str, str] | None = None,
        max_response_size: int = C.MAX_RESPONSE_SIZE,
        event_hooks: EventHooks | None = None,
    ) -> None:
        self.redact = Redactor(token)
        self.hooks = event_hooks or EventHooks()
        #: Query parameters added to every request (``with_options(extra_query=...)``).
        self.extra_query: Mapping[str, str | int] = {}
        self.base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self.base_url).path
        self.timeout = http.as_timeout(timeout)
        self.retry = retry
        self.max_response_size = max_response_size
        self.limiter = RateLimiter(max_shared_wait=retry.max_retry_after)
        self._headers = {
            "Accept": "application/json",
            "Accept-Encoding": C.ACCEPT_ENCODING,
            "User-Agent": user_agent or DEFAULT_USER_AGENT,
            # Spelt one way each (check_default_headers), so they replace, never duplicate.
            **(default_headers or {}),
            "Authorization": Redacted(f"Bearer {token}"),
        }
        # A session of ours sends these by default: a plain call passes none of its own.
        self._sessions = http.SessionHolder(
            session, session_options or SessionOptions(), self._headers
        )
        # The bytes as stored, never compressed on the way: a compressed body's length is
        # not the file's, so a body cut short could only be noticed by decoding it.
        self._stream_headers = {**self._headers, "Accept": "*/*", "Accept-Encoding": "identity"}

    def __repr__(self) -> str:
        return f"<Pipeline base_url={self.base_url!r} token=***>"

    def with_options(
        self,
        *,
        timeout: float | aiohttp.ClientTimeout | None = None,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str | int] | None = None,
    ) -> Pipeline:
        """A pipeline with other settings sharing this one's session and limiter.

        ``extra_headers`` (checked, spelt one way: see ``check_default_headers``) and
        ``extra_query`` are added to those of this pipeline, for every request.
        """
        clone = copy.copy(self)
        if timeout is not None:
            clone.timeout = http.as_timeout(timeout)
        if retry is not None:
            clone.retry = retry
        if extra_headers:
            token = self._headers["Authorization"]
            clone._headers = {**self._headers, **extra_headers, "Authorization": token}
            clone._stream_headers = {
                **self._stream_headers,
                **extra_headers,
                "Authorization": token,
            }
        if extra_query:
            clone.extra_query = {**self.extra_query, **extra_query}
        return clone

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called (by this pipeline or a ``with_options`` copy)."""
        return self._sessions.lifecycle.closed

    async def aclose(self) -> None:
        """Close the session if this pipeline created it; a caller's session is left open."""
        await self._sessions.aclose()

    def url_for(self, route: Route, path_params: Mapping[str, int | str] | None = None) -> str:
        """The absolute URL of ``route`` with its path parameters filled in."""
        return self.base_url + route.format_path(path_params)

    # --- the three ways in: a whole body, a stream held by the caller, a restartable download

    def request(
        self,
        route: Route,
        *,
        path_params: Mapping[str, int | str] | None = None,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        multipart: http.MultipartBody | None = None,
    ) -> Coroutine[Any, Any, Response]:
        """Send ``route`` with retries per the policy; await it for the 2xx response, body read.

        Not a coroutine itself but the retry loop's, built here: one frame less for every
        resumption of every call.

        Raises:
            APIStatusError: (a subclass per status) for a non-2xx answer.
            APIConnectionError / APITimeoutError: the connection failed or timed out.
            ResponseTooLargeError: the body passed ``max_response_size``.
            ResponseDecodeError: the body could not be decoded (compression, cut short).
        """
        route_path = route.format_path(path_params)
        call = _Call(
            route,
            self.base_url + route_path,
            self._base_path + route_path,
            {**self.extra_query, **params}
            if params and self.extra_query
            else params or self.extra_query,
            json_body if route.body == "json" else None,
            multipart,
            False,
            False,
        )
        attempts: Coroutine[Any, Any, Response] = self._attempts(call)
        return attempts

    @asynccontextmanager
    async def stream(
        self, route: Route, *, path_params: Mapping[str, int | str] | None = None
    ) -> AsyncIterator[Response]:
        """Open ``route`` and yield the 2xx response with ``stream`` set, body unread.

        The total timeout does not apply to a stream (a large file may take long); the read
        timeout between chunks does. A body cut while the caller reads is not asked again.
        """
        async with AsyncExitStack() as keep:  # closes the response when the caller is done
            call = self._stream_call(route, path_params, restartable=False)
            yield cast(Response, await self._attempts(call, keep))

    async def download(
        self,
        route: Route,
        consume: Callable[[Response], Awaitable[T]],
        *,
        path_params: Mapping[str, int | str] | None = None,
    ) -> T:
        """Stream ``route`` into ``consume``; a body cut short (``DownloadError.cut_short``) is
        asked for again from the start, under the same attempts and sleep budget as any failure.

        ``consume`` must leave nothing behind when it raises (it is called again).
        """
        call = self._stream_call(route, path_params, restartable=True)
        return cast(T, await self._attempts(call, consume))

    def _stream_call(
        self, route: Route, path_params: Mapping[str, int | str] | None, *, restartable: bool
    ) -> _Call:
        route_path = route.format_path(path_params)
        return _Call(
            route,
            self.base_url + route_path,
            self._base_path + route_path,
            self.extra_query or None,
            None,
            None,
            True,
            restartable,
        )

    # --- the retry loop --------------------------------------------------------------------

    async def _attempts(
        self,
        call: _Call,
        take: AsyncExitStack | Callable[[Response], Awaitable[Any]] | None = None,
    ) -> Any:
        """Send ``call`` until an attempt gets a 2xx response, and return it, its body read and
        its connection already back in the pool. For a stream, ``take`` says what to do with
        the open response: an ``AsyncExitStack`` keeps it open (and closes it when the stack
        closes), and it is returned; a function consumes it, and what that returns is returned.
        A ``DownloadError`` the function raises for a cut body counts as the attempt's failure.

        A coroutine, not an async generator: no generator to finalize on every call.
        """
        policy = self.retry
        method = call.route.method
        state = _CallState(started=time.monotonic())
        while True:
            if not self.limiter.try_acquire():
                await self.limiter.acquire(
                    lambda delay: self._allow_shared_wait(call, state, delay)
                )
            if call.multipart is None and not call.stream:
                # Nothing outlives the attempt (no open file, no open body): no stack to keep.
                outcome = await self._attempt(call, state)
            else:
                async with AsyncExitStack() as stack:
                    outcome = await self._attempt(call, state, stack)
                    if call.stream and isinstance(outcome, Response):
                        if isinstance(take, AsyncExitStack):  # the caller reads the body
                            take.push_async_exit(stack.pop_all())
                            return outcome
                        try:
                            return await cast(Callable[[Response], Awaitable[Any]], take)(outcome)
                        except DownloadError as exc:
                            if not (call.restartable and exc.cut_short):
                                raise
                            outcome = Failure(FailureKind.AMBIGUOUS, exc)
            if isinstance(outcome, Response):
                return outcome
            decision = decide(
                method=method,
                attempt=state.attempt,
                policy=policy,
                kind=outcome.kind,
                status=outcome.status,
                retry_after=outcome.retry_after,
                replayable=call.replayable,
                slept=state.slept,
            )
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "%s %s%s: %s (%s)",
                    method,
                    call.path,
                    call.query,
                    f"retrying in {decision.delay:.3f}s"
                    if decision.retry
                    else f"giving up: {decision.reason}",
                    _why(outcome),
                )
            if not decision.retry:
                outcome.error.replayed = state.replayed
                _raise_unchained(outcome.error)
            state.replayed = state.replayed or outcome.may_have_acted
            state.attempt += 1
            state.slept += decision.delay
            await asyncio.sleep(decision.delay)

    def _allow_shared_wait(self, call: _Call, state: _CallState, delay: float) -> None:
        """The limiter is about to sleep for a Retry-After another call received."""
        why = refuse_wait(self.retry, delay, state.slept)
        if why:
            raise rate_limited_locally(delay, why, call.route.method, call.url)
        state.slept += delay

    async def _attempt(
        self, call: _Call, state: _CallState, stack: AsyncExitStack | None = None
    ) -> Response | Failure:
        """One attempt: send, then :meth:`_answer` what came back. Without ``stack`` (no file
        to close, no body left open) the response is closed when this returns; with it, files
        and the response are left to ``stack``.

        Transport failures come back as a :class:`Failure`; nothing the server sent leaves
        this frame unscrubbed.
        """
        route = call.route
        released = False
        started = time.monotonic()
        headers_sent = self._stream_headers if call.stream else self._headers
        try:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "%s %s%s: sending (attempt %d)",
                    route.method,
                    call.path,
                    call.query,
                    state.attempt + 1,
                )
            if self.hooks.request:
                await fire(
                    self.hooks.request,
                    RequestInfo(
                        method=route.method,
                        url=call.url + call.query,
                        headers={**headers_sent, "Authorization": "Bearer ***"},
                        attempt=state.attempt + 1,
                    ),
                )
            request = http.send(
                self._sessions.get(),
                method=route.method,
                url=call.url,
                params=call.params,
                json_body=call.json_body,
                data=None if stack is None else http.build_body(call.multipart, stack),
                headers=None if headers_sent is self._sessions.default_headers else headers_sent,
                timeout=http.stream_timeout(self.timeout) if call.stream else self.timeout,
            )
            if stack is None:
                async with request as resp:
                    released = True
                    return await self._answer(call, state, resp, started)
            resp = await stack.enter_async_context(request)
            released = True
            return await self._answer(call, state, resp, started)
        except http.TRANSPORT_ERRORS as exc:
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "%s %s%s failed: %s (attempt %d, %.3fs)",
                    route.method,
                    call.path,
                    call.query,
                    exc.__class__.__name__,
                    state.attempt + 1,
                    time.monotonic() - started,
                )
            return transport_failure(
                exc,
                route.method,
                call.url,
                self.redact,
                sent=released or not http.never_sent(exc),
                timed_out=http.is_timeout(exc),
                certificate=http.is_certificate_error(exc),
            )
        except BodyFailure as exc:  # an error body's compression
            return body_failure(exc.kind, exc.message, 502, route.method, call.url)
        except (asyncio.CancelledError, KeyboardInterrupt) as exc:
            if not route.idempotent:
                add_note(exc, MAY_HAVE_REACHED_VPSBG)
            raise
        finally:
            if not released:
                self.limiter.release(None)

    async def _answer(
        self, call: _Call, state: _CallState, resp: aiohttp.ClientResponse, started: float
    ) -> Response | Failure:
        """What the server answered: record its rate-limit headers, scrub them, tell the log and
        the hooks, and read the body (unless streamed) within bounds."""
        route = call.route
        status = resp.status
        self.limiter.release(status, resp.headers)
        headers: Mapping[str, str] = resp.headers
        if self.redact.in_headers(headers):
            headers = CIMultiDictProxy(CIMultiDict(self.redact.headers(headers.items())))
        logged = logger.isEnabledFor(logging.INFO)
        # Read for the log line and the hooks only: a raw response reads its own, lazily.
        request_id = request_id_in(headers) if logged or self.hooks.response else None
        if logged:
            logger.info(
                "%s %s%s -> %d (attempt %d, %.3fs, request id %s)",
                route.method,
                call.path,
                call.query,
                status,
                state.attempt + 1,
                time.monotonic() - started,
                request_id or "-",
            )
        if self.hooks.response:
            await fire(
                self.hooks.response,
                ResponseInfo(
                    method=route.method,
                    url=call.url + call.query,
                    status_code=status,
                    headers=headers,
                    request_id=request_id,
                    attempt=state.attempt + 1,
                    elapsed=time.monotonic() - started,
                ),
            )
        if status >= 300:
            raw = await http.read_bounded(resp, C.MAX_ERROR_BODY, truncate=True)
            return status_failure(
                status,
                resp.reason,
                self.redact.data(raw),
                headers,
                route.method,
                call.url,
                self.redact,
            )
        if call.stream:
            return Response(
                status,
                headers,
                b"",
                route.method,
                call.url,
                time.monotonic() - state.started,
                state.attempt,
                http.BodyStream(resp, call.url),
            )
        try:
            raw = await http.read_bounded(resp, self.max_response_size, truncate=False)
        except BodyFailure as exc:
            return body_failure(
                exc.kind,
                exc.message,
                status,
                route.method,
                call.url,
                limit=self.max_response_size,
            )
        return Response(
            status,
            headers,
            self.redact.data(raw),
            route.method,
            call.url,
            time.monotonic() - state.started,
            state.attempt,
        )


def _why(failure: Failure) -> str:
    """The reason an attempt failed, for the retry log line."""
    if failure.status is not None:
        return f"HTTP {failure.status}"
    return failure.error.__class__.__name__


def _raise_unchained(error: BaseException) -> NoReturn:
    """Raise ``error`` with no ``__context__``, even where Python still counts an exception as
    being handled: on 3.10 a task resumed with an exception runs its whole step inside the
    wake-up's ``except`` block, so a plain raise would chain the aiohttp error back on."""
    try:
        raise error
    except BaseException:
        error.__context__ = None
        raise  # a bare re-raise sets no context
