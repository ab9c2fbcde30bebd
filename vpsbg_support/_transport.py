"""The HTTP layer: the aiohttp session, one request() with the retry loop, status -> exception.

The transport knows routes and bytes, never what a ticket is. It never logs headers, and it scrubs
the token from anything it turns into an exception message.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, NoReturn, Protocol
from urllib.parse import urlsplit

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from vpsbg_support import _constants as C
from vpsbg_support._lifecycle import Lifecycle
from vpsbg_support._retry import (
    Decision,
    FailureKind,
    RateBudget,
    RetryPolicy,
    decide,
    parse_retry_after,
    refuse_wait,
)
from vpsbg_support._routes import Route
from vpsbg_support._session_options import SessionOptions, build_session
from vpsbg_support._validate import check_timeout
from vpsbg_support._version import __version__
from vpsbg_support.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    InvalidParameterError,
    RateLimitError,
    ResponseDecodeError,
    TLSVerificationError,
    status_error_class,
)

logger = logging.getLogger(C.LOGGER_NAME)

DEFAULT_USER_AGENT = f"vpsbg-support-python/{__version__} aiohttp/{aiohttp.__version__}"


class MultipartBody(Protocol):
    """A multipart body that can be (re)built for each attempt from its source."""

    @property
    def replayable(self) -> bool:
        """False when a second attempt could not send the same bytes."""
        ...

    def build(self, stack: AsyncExitStack) -> aiohttp.FormData:
        """Build a fresh FormData; files it opens are registered on ``stack`` to be closed."""
        ...


@attrs.frozen
class Response:
    """A fully read response: status, headers and the raw body bytes."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    method: str
    url: str

    def json(self) -> Any:
        """The body decoded as JSON; ``None`` for an empty body.

        Raises:
            ResponseDecodeError: the body is not JSON.
        """
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ResponseDecodeError(
                f"Expected a JSON body from {self.method} {self.url}, got undecodable bytes"
                f" ({exc.__class__.__name__}).",
                status=self.status,
                body=self.body,
                method=self.method,
                url=self.url,
            ) from None


class _Redacted(str):
    """A header value that shows as ``'***'`` in any repr (aiohttp's RequestInfo, a dump of frame
    locals by an error tracker) while still being sent as itself."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


class RateLimiter:
    """Client-wide pacing from the server's rate-limit headers, shared by all concurrent tasks.

    The bookkeeping is :class:`~vpsbg_support._retry.RateBudget`; this adds the waiting. After a
    429 with ``Retry-After`` every task waits until that moment; once ``X-RateLimit-Remaining``
    is spent, tasks wait for answers to the requests in flight and then probe one at a time,
    instead of each collecting its own 429.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._budget = RateBudget()
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def budget(self) -> RateBudget:
        """The shared bookkeeping (for inspection)."""
        return self._budget

    async def acquire(self, before_sleep: Callable[[float], None] | None = None) -> float:
        """Wait until a request may be sent and reserve it; pair with :meth:`release`.

        Args:
            before_sleep: called with the seconds about to be slept for a ``Retry-After``; it may
                raise to refuse the wait (the reservation is then not taken).

        Returns:
            The seconds slept for ``Retry-After`` waits.
        """
        slept = 0.0
        while True:
            delay = self._budget.ask(self._clock())
            if delay == 0.0:
                return slept
            if delay is None:
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                finally:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
                continue
            if before_sleep is not None:
                before_sleep(delay)
            await asyncio.sleep(delay)
            slept += delay

    def release(self, status: int | None, headers: Mapping[str, str] | None = None) -> None:
        """Record the answer (``status`` None: the request failed) and wake waiting tasks."""
        self._budget.done(self._clock(), status, headers or {})
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class _SessionHolder:
    """The one aiohttp session of a client (and of its ``with_options`` copies)."""

    def __init__(self, session: aiohttp.ClientSession | None, options: SessionOptions) -> None:
        self._session = session
        self._owned = session is None
        self._options = options
        self.lifecycle = Lifecycle()

    def get(self) -> aiohttp.ClientSession:
        self.lifecycle.enter()
        if not self._owned and self._session is not None and self._session.closed:
            raise ConfigurationError(
                "the aiohttp session given to the client is closed; keep it open while the"
                " client is in use"
            )
        # Created lazily so that it belongs to the loop that actually runs the requests.
        if self._session is None or (self._owned and self._session.closed):
            self._session = build_session(self._options)
            self._owned = True
        return self._session

    async def aclose(self) -> None:
        self.lifecycle.closed = True
        if self._owned and self._session is not None and not self._session.closed:
            await self._session.close()


def _classify(exc: BaseException) -> FailureKind:
    """Did the request provably never reach the server?"""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return FailureKind.NOT_SENT  # refused, DNS, TLS handshake, proxy: nothing sent
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return FailureKind.NOT_SENT
    return FailureKind.AMBIGUOUS


class Transport:
    """Owns the aiohttp session (unless the caller gave one) and sends every request."""

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
    ) -> None:
        self._token = token
        # What scrub_bytes looks for, encoded once: as sent, and as PHP's JSON escapes "/".
        self._token_in_bodies: tuple[bytes, ...] = ()
        if len(token) >= C.MIN_TOKEN_SCRUBBED_FROM_BODIES:
            self._token_in_bodies = tuple(
                dict.fromkeys([token.encode(), token.replace("/", "\\/").encode()])
            )
        self.base_url = base_url.rstrip("/")
        self.timeout = _as_timeout(timeout)
        self.retry = retry
        self._sessions = _SessionHolder(session, session_options or SessionOptions())
        self.limiter = RateLimiter()
        self._headers = {
            "Accept": "application/json",
            "User-Agent": user_agent or DEFAULT_USER_AGENT,
            **(default_headers or {}),
            "Authorization": _Redacted(f"Bearer {token}"),
        }

    def __repr__(self) -> str:
        return f"<Transport base_url={self.base_url!r} token=***>"

    def with_options(
        self,
        *,
        timeout: float | aiohttp.ClientTimeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> Transport:
        """A transport with other timeout/retry settings sharing this one's session and limiter."""
        clone = copy.copy(self)
        if timeout is not None:
            clone.timeout = _as_timeout(timeout)
        if retry is not None:
            clone.retry = retry
        return clone

    def _get_session(self) -> aiohttp.ClientSession:
        return self._sessions.get()

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called (by this transport or a ``with_options`` copy)."""
        return self._sessions.lifecycle.closed

    async def aclose(self) -> None:
        """Close the session if this transport created it; a caller's session is left open."""
        await self._sessions.aclose()

    def scrub(self, text: str) -> str:
        """Remove the token from a text that might end up in an exception or a log."""
        return text.replace(self._token, "***") if self._token else text

    def scrub_bytes(self, data: bytes) -> bytes:
        """Remove the token from bytes the server sent, also as PHP's JSON writes it (``\\/``);
        not a token too short to be a real one (see ``MIN_TOKEN_SCRUBBED_FROM_BODIES``)."""
        for token in self._token_in_bodies:
            if token in data:
                data = data.replace(token, b"***")
        return data

    def _mentions_token(self, exc: BaseException) -> bool:
        """Does ``exc``, or anything chained to it, quote the token?"""
        if not self._token:
            return False
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            texts = (str(current), repr(current), *map(repr, current.args))
            if any(self._token in text for text in texts):
                return True
            current = current.__cause__ or current.__context__
        return False

    def url_for(self, route: Route, path_params: Mapping[str, int | str] | None = None) -> str:
        """The absolute URL of ``route`` with its path parameters filled in."""
        return self.base_url + route.format_path(**(path_params or {}))

    async def request(
        self,
        route: Route,
        *,
        path_params: Mapping[str, int | str] | None = None,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        multipart: MultipartBody | None = None,
    ) -> Response:
        """Send ``route`` with retries per the policy and return the fully read 2xx response.

        Raises:
            APIStatusError: (a subclass per status) for a non-2xx answer.
            APIConnectionError / APITimeoutError: the connection failed or timed out.
        """
        async with self._send(
            route,
            path_params=path_params,
            params=params,
            json_body=json_body,
            multipart=multipart,
            read_body=True,
        ) as (resp, body):
            # A body echoing the token (a debugging proxy, a misconfigured server) must not carry
            # it on into models, decode errors or an export's files.
            return Response(
                resp.status, resp.headers, self.scrub_bytes(body), route.method, str(resp.url)
            )

    @asynccontextmanager
    async def stream(
        self,
        route: Route,
        *,
        path_params: Mapping[str, int | str] | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Open ``route`` and yield the 2xx response with its body unread and not decoded
        (``Content-Encoding`` is the caller's to undo), for streaming.

        The total timeout does not apply to a stream (a large file may take long); the read timeout
        between chunks does.
        """
        stream_timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self.timeout.connect,
            sock_connect=self.timeout.sock_connect,
            sock_read=self.timeout.sock_read or self.timeout.total,
        )
        async with self._send(
            route,
            path_params=path_params,
            timeout=stream_timeout,
            read_body=False,
            accept="*/*",
        ) as (resp, _):
            yield resp

    @asynccontextmanager
    async def _send(
        self,
        route: Route,
        *,
        path_params: Mapping[str, int | str] | None = None,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        multipart: MultipartBody | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        read_body: bool,
        accept: str | None = None,
    ) -> AsyncIterator[tuple[aiohttp.ClientResponse, bytes]]:
        policy = self.retry
        method = route.method
        url = self.url_for(route, path_params)
        log_path = urlsplit(url).path
        headers: dict[str, str] | CIMultiDict[str] = self._headers
        if accept is not None:
            # The bytes as stored, never compressed on the way: a compressed body's length is
            # not the file's, so a body cut short could only be noticed by decoding it.
            headers = {**self._headers, "Accept": accept, "Accept-Encoding": "identity"}
        req_timeout = timeout or self.timeout
        replayable = multipart.replayable if multipart is not None else True
        session = self._get_session()
        attempt = 0
        slept = 0.0
        # Set once an attempt that may have reached the server is followed by another one.
        replayed = False

        def allow_wait(delay: float) -> None:
            # The limiter is about to sleep for a Retry-After another request received.
            nonlocal slept
            why = refuse_wait(policy, delay, slept)
            if why:
                raise self._rate_limited_locally(delay, why, method, url)
            slept += delay

        while True:
            await self.limiter.acquire(allow_wait)
            released = False
            started = time.monotonic()
            try:
                async with AsyncExitStack() as stack:
                    data = _build_body(multipart, stack)
                    echoed: APIConnectionError | None = None
                    try:
                        resp = await stack.enter_async_context(
                            session.request(
                                method,
                                url,
                                params=params,
                                json=json_body if route.body == "json" else None,
                                data=data,
                                headers=headers,
                                timeout=req_timeout,
                                allow_redirects=False,
                                # A download decodes its own body (it checks a gzip stream
                                # ended); everything else lets aiohttp do it.
                                auto_decompress=None if read_body else False,
                            )
                        )
                        released = True
                        self.limiter.release(resp.status, resp.headers)
                        status = resp.status
                        body = await resp.read() if status >= 300 or read_body else b""
                    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                        kind = _classify(exc)
                        decision = decide(
                            method=method,
                            attempt=attempt,
                            policy=policy,
                            kind=kind,
                            replayable=replayable,
                            slept=slept,
                        )
                        logger.debug(
                            "%s %s failed: %s (attempt %d, %.3fs); %s",
                            method,
                            log_path,
                            exc.__class__.__name__,
                            attempt + 1,
                            time.monotonic() - started,
                            _outcome(decision),
                        )
                        if not decision.retry:
                            error = self._connection_error(exc, kind, method, url)
                            error.replayed = replayed
                            if not self._mentions_token(exc):
                                raise error from exc
                            # aiohttp's exception quotes what the server sent, and that echoes
                            # the token: raised below, out of this handler, so it is neither
                            # the cause nor the context that a traceback prints.
                            echoed = error
                        replayed = replayed or kind is not FailureKind.NOT_SENT
                    else:
                        logger.debug(
                            "%s %s -> %d (attempt %d, %.3fs)",
                            method,
                            log_path,
                            status,
                            attempt + 1,
                            time.monotonic() - started,
                        )
                        if status < 300:
                            yield resp, body
                            return
                        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                        decision = decide(
                            method=method,
                            attempt=attempt,
                            policy=policy,
                            kind=FailureKind.STATUS,
                            status=status,
                            retry_after=retry_after,
                            replayable=replayable,
                            slept=slept,
                        )
                        logger.debug("%s %s: %s", method, log_path, _outcome(decision))
                        if not decision.retry:
                            status_error = self._status_error(resp, body, retry_after, method)
                            status_error.replayed = replayed
                            raise status_error
                        # 408 and 429 say the server did not act on the request.
                        replayed = replayed or status not in (408, 429)
                    if echoed is not None:
                        _raise_unchained(echoed)
            finally:
                if not released:
                    self.limiter.release(None)
            attempt += 1
            slept += decision.delay
            await asyncio.sleep(decision.delay)

    def _rate_limited_locally(self, wait: float, why: str, method: str, url: str) -> RateLimitError:
        return RateLimitError(
            f"rate limited: the API asked this client to wait {wait:.2f}s more, and {why};"
            " the request was not sent",
            status=429,
            retry_after=wait,
            method=method,
            url=self.scrub(url),
            request_sent=False,
        )

    def _connection_error(
        self, exc: BaseException, kind: FailureKind, method: str, url: str
    ) -> APIConnectionError:
        sent = kind is not FailureKind.NOT_SENT
        url = self.scrub(url)
        detail = self.scrub(str(exc)) or exc.__class__.__name__
        if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
            return APITimeoutError(
                f"{method} {url} timed out ({exc.__class__.__name__}).",
                method=method,
                url=url,
                request_sent=sent,
            )
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return TLSVerificationError(
                f"{method} {url} failed: the server's TLS certificate could not be verified"
                f" ({detail}). With a private CA or a TLS-inspecting proxy, pass ca_bundle= or"
                f" set {C.ENV_CA_BUNDLE}.",
                method=method,
                url=url,
                request_sent=False,
            )
        return APIConnectionError(
            f"{method} {url} failed: {detail}.", method=method, url=url, request_sent=sent
        )

    def _status_error(
        self,
        resp: aiohttp.ClientResponse,
        raw: bytes,
        retry_after: float | None,
        method: str,
    ) -> APIStatusError:
        status = resp.status
        body: Any = None
        message = ""
        # An echoed token must not survive into the exception's body, message or repr.
        raw = self.scrub_bytes(raw)
        if raw.strip():
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError):
                body = self.scrub(raw.decode("utf-8", "replace"))
                message = body[:200].strip()
        if isinstance(body, Mapping):
            msg = body.get("message") or body.get("error")
            if isinstance(msg, str):
                message = msg
        message = self.scrub(message or resp.reason or "request failed")
        cls = status_error_class(status)
        kwargs: dict[str, Any] = {
            "status": status,
            "body": body,
            "headers": {
                k: self.scrub(v) for k, v in resp.headers.items() if k.lower() != "set-cookie"
            },
            "method": method,
            "url": self.scrub(str(resp.url)),
            "request_sent": True,
        }
        if cls is RateLimitError:
            return RateLimitError(message, retry_after=retry_after, **kwargs)
        return cls(message, **kwargs)


def _raise_unchained(error: BaseException) -> NoReturn:
    """Raise ``error`` with no ``__context__``, even where Python still counts an exception as
    being handled: on 3.10 a task resumed with an exception runs its whole step inside the
    wake-up's ``except`` block, so a plain raise would chain the aiohttp error back on."""
    try:
        raise error
    except BaseException:
        error.__context__ = None
        raise  # a bare re-raise sets no context


def _outcome(decision: Decision) -> str:
    if decision.retry:
        return f"retrying in {decision.delay:.3f}s"
    return f"giving up: {decision.reason}"


def _build_body(multipart: MultipartBody | None, stack: AsyncExitStack) -> aiohttp.FormData | None:
    """The body for one attempt, rebuilt from its sources (a file may have gone meanwhile)."""
    if multipart is None:
        return None
    try:
        return multipart.build(stack)
    except InvalidParameterError:
        raise
    except (OSError, ValueError) as exc:
        raise InvalidParameterError(
            "attachments", f"cannot read an attachment ({exc.__class__.__name__}: {exc})"
        ) from None


def _as_timeout(timeout: float | aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    if isinstance(timeout, aiohttp.ClientTimeout):
        return timeout
    seconds = check_timeout(timeout)
    return aiohttp.ClientTimeout(total=seconds, connect=min(seconds, C.DEFAULT_CONNECT_TIMEOUT))
