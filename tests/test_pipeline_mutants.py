"""The request pipeline at its edges, against a scripted loopback server: each test here failed
against a mutant of ``_pipeline.py`` that the rest of the suite let pass (``make mutate``).

They pin what callers rely on: ``replayed`` after a retry (what ``undo_cancel`` reports), a shared
Retry-After counted in the sleep budget, the limiter released once per attempt, bounds on bodies,
the "may have reached VPSBG" note on an interrupted POST, and a cut download asked for again.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from vpsbg_support import _constants as C
from vpsbg_support import _http as http
from vpsbg_support import _routes as R
from vpsbg_support._failures import status_error, transport_failure
from vpsbg_support._pipeline import Pipeline, Response, _Call
from vpsbg_support._ratelimit import RateLimiter
from vpsbg_support._redact import Redactor
from vpsbg_support._retry import RetryPolicy
from vpsbg_support.errors import (
    MAY_HAVE_REACHED_VPSBG,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    DownloadError,
    InternalServerError,
    NotFoundError,
    ResponseDecodeError,
    ResponseTooLargeError,
    add_note,
)

TOKEN = "tok-77aa-SECRET-0b1c"
NO_WAIT = RetryPolicy(max_retries=3, initial_delay=0, max_delay=0)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Script:
    """A loopback server answering each request with the next scripted handler."""

    def __init__(self) -> None:
        self.handlers: list[Handler] = []
        self.seen: list[tuple[str, str, int]] = []  # method, path, requests active on arrival
        self.active = 0
        self.url = ""

    def then(self, *handlers: Handler) -> Script:
        self.handlers.extend(handlers)
        return self

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.active += 1
        self.seen.append((request.method, request.path, self.active))
        try:
            handler = self.handlers.pop(0) if self.handlers else answer(200, b"{}")
            return await handler(request)
        finally:
            self.active -= 1


def answer(status: int, body: bytes = b"", **headers: str) -> Handler:
    """A canned answer; header names are keywords with "_" for "-" (``Retry_After="1"``)."""
    named = {name.replace("_", "-"): value for name, value in headers.items()}

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, headers=named)

    return handler


def hang(started: asyncio.Event, until: asyncio.Event) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        started.set()
        await until.wait()
        return web.Response(status=200)

    return handler


@pytest.fixture
async def script() -> AsyncIterator[Script]:
    s = Script()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", s.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    s.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield s
    finally:
        await runner.cleanup()


def pipeline(script: Script, policy: RetryPolicy = NO_WAIT, **options: Any) -> Pipeline:
    return Pipeline(token=TOKEN, base_url=script.url, timeout=5, retry=policy, **options)


GET = R.TICKETS_GET
DELETE = R.PLANS_UNDO_CANCEL  # idempotent: retried after a 5xx
POST = R.PLANS_RENEW  # never re-sent after an ambiguous failure


def counting_send(
    monkeypatch: pytest.MonkeyPatch, *, fail_first: Exception | None = None
) -> list[str]:
    """Count the pipeline's attempts; optionally the first fails with ``fail_first``."""
    attempts: list[str] = []
    real = http.send

    def send(*args: Any, **kwargs: Any) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        attempts.append(kwargs["url"])
        if fail_first is not None and len(attempts) == 1:
            raise fail_first
        return real(*args, **kwargs)

    monkeypatch.setattr(http, "send", send)
    return attempts


def _key() -> Any:
    return aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 1, False, True, None, None, None)


# --- replayed: did an earlier attempt of this call possibly act? -----------------------------


async def test_replayed_is_set_after_a_5xx_and_a_retry(script: Script) -> None:
    script.then(answer(503), answer(404))
    p = pipeline(script)
    with pytest.raises(NotFoundError) as caught:
        await p.request(DELETE)
    await p.aclose()
    assert caught.value.replayed is True


@pytest.mark.parametrize("status", [408, 429])
async def test_replayed_stays_false_after_answers_saying_nothing_was_done(
    script: Script, status: int
) -> None:
    script.then(answer(status, Retry_After="0"), answer(404))
    p = pipeline(script)
    with pytest.raises(NotFoundError) as caught:
        await p.request(DELETE)
    await p.aclose()
    assert caught.value.replayed is False
    assert len(script.seen) == 2


# --- waiting: between attempts, and for a wait another call was told --------------------------


async def test_a_retry_after_is_slept_before_the_retry(script: Script) -> None:
    script.then(answer(503, Retry_After="0.2"), answer(200, b'{"ok": 1}'))
    p = pipeline(script)
    started = time.monotonic()
    response = await p.request(GET, path_params={"ticket_id": 1})
    await p.aclose()
    assert time.monotonic() - started >= 0.18
    assert response.retries_taken == 1
    assert 0.18 <= response.elapsed < 5


async def test_a_retry_after_on_a_status_that_holds_nobody_else_is_slept_too(
    script: Script,
) -> None:
    script.then(answer(502, Retry_After="0.2"), answer(200))
    p = pipeline(script)
    started = time.monotonic()
    await p.request(GET, path_params={"ticket_id": 1})
    await p.aclose()
    assert time.monotonic() - started >= 0.18


async def test_a_shared_wait_counts_against_the_sleep_budget(script: Script) -> None:
    # Call A is told to wait 0.2 s and gives up (no retries); call B sleeps that shared wait,
    # then gets its own 503 asking for 0.2 s more: 0.4 s is past its 0.3 s budget.
    script.then(answer(429, Retry_After="0.2"), answer(503, Retry_After="0.2"), answer(200))
    p = pipeline(script, RetryPolicy(max_retries=0))
    b = p.with_options(retry=RetryPolicy(max_retries=3, sleep_budget=0.3))
    with pytest.raises(APIStatusError):
        await p.request(GET, path_params={"ticket_id": 1})
    with pytest.raises(InternalServerError):
        await b.request(GET, path_params={"ticket_id": 1})
    await p.aclose()
    assert len(script.seen) == 2


async def test_each_attempt_releases_the_limiter_once(script: Script) -> None:
    # The probe learns 2 requests are left; of three concurrent calls two go, and the third
    # must wait for an answer to one of them (not be let through by a double release).
    slow_started = asyncio.Event()
    finish_slow = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        slow_started.set()
        await finish_slow.wait()
        return web.Response(status=200, headers={"X-RateLimit-Remaining": "0"})

    script.then(answer(200, X_RateLimit_Remaining="2"))
    p = pipeline(script)
    await p.request(GET, path_params={"ticket_id": 0})
    script.then(answer(200, X_RateLimit_Remaining="0"), slow)
    calls = [asyncio.ensure_future(p.request(GET, path_params={"ticket_id": i})) for i in (1, 2, 3)]
    await slow_started.wait()
    await asyncio.sleep(0.1)  # call 1 is answered; call 3 must still be waiting
    assert [path for _, path, _ in script.seen] == ["/v1/support/tickets/0"] + [
        f"/v1/support/tickets/{i}" for i in (1, 2)
    ]
    finish_slow.set()
    await asyncio.gather(*calls)
    await p.aclose()
    assert script.seen[-1][1:] == ("/v1/support/tickets/3", 1)  # sent alone, after the answer


async def test_a_download_releases_the_limiter_once(script: Script) -> None:
    # A stream's attempt keeps its response open on a stack (a plain call's does not): its
    # answer must be counted once too. With a slow call still in flight, a second release
    # would count that call as answered.
    started, finish = asyncio.Event(), asyncio.Event()
    script.then(answer(200, X_RateLimit_Remaining="5"), hang(started, finish))
    p = pipeline(script)
    await p.request(GET, path_params={"ticket_id": 0})
    slow = asyncio.ensure_future(p.request(GET, path_params={"ticket_id": 1}))
    await started.wait()
    script.then(answer(200, b"file", X_RateLimit_Remaining="3"))

    async def consume(response: Response) -> bytes:
        assert response.stream is not None
        return b"".join([c async for c in response.stream.chunks()])

    try:
        route = R.TICKETS_ATTACHMENT
        await p.download(route, consume, path_params={"ticket_id": 1, "attachment_id": 2})
        in_flight = p.limiter.budget.in_flight
    finally:
        finish.set()
        await slow
        await p.aclose()
    assert in_flight == 1  # the slow call, unanswered then


# --- what a response carries, and which statuses are errors ----------------------------------


async def test_response_headers_echoing_the_token_are_scrubbed(script: Script) -> None:
    script.then(answer(200, b"{}", X_Echo=f"Bearer {TOKEN}", X_Request_Id="req-42"))
    p = pipeline(script)
    response = await p.request(GET, path_params={"ticket_id": 1})
    await p.aclose()
    assert TOKEN not in str(dict(response.headers))
    assert response.request_id == "req-42"


async def test_a_300_is_not_a_success(script: Script) -> None:
    script.then(answer(300, b'{"message": "pick one"}'))
    p = pipeline(script)
    with pytest.raises(APIStatusError) as caught:
        await p.request(GET, path_params={"ticket_id": 1})
    await p.aclose()
    assert caught.value.status == 300


async def test_a_huge_error_body_is_cut_to_size_not_refused(script: Script) -> None:
    script.then(answer(500, b"x" * (C.MAX_ERROR_BODY * 2)))
    p = pipeline(script, RetryPolicy(max_retries=0))
    with pytest.raises(InternalServerError) as caught:
        await p.request(GET, path_params={"ticket_id": 1})
    await p.aclose()
    assert len(caught.value.body) == C.MAX_ERROR_BODY


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_2xx_body_past_max_response_size_raises_and_is_not_retried(
    script: Script, chunked: bool
) -> None:
    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=200)
        if chunked:
            resp.enable_chunked_encoding()
        else:
            resp.content_length = 1000
        await resp.prepare(request)
        await resp.write(b"x" * 1000)
        return resp

    script.then(big, big)
    p = pipeline(script, max_response_size=100)
    with pytest.raises(ResponseTooLargeError) as caught:
        await p.request(GET, path_params={"ticket_id": 1})
    await p.aclose()
    assert caught.value.limit == 100
    assert len(script.seen) == 1


async def test_a_corrupt_compressed_2xx_body_is_final(script: Script) -> None:
    script.then(answer(200, b"not gzip at all", Content_Encoding="gzip"), answer(200))
    p = pipeline(script)
    with pytest.raises(ResponseDecodeError) as caught:
        await p.request(GET, path_params={"ticket_id": 1})
    await p.aclose()
    assert not isinstance(caught.value, ResponseTooLargeError)
    assert len(script.seen) == 1


async def test_a_compressed_2xx_body_cut_short_is_asked_again(script: Script) -> None:
    whole = gzip.compress(b'{"a": 1}' * 50)
    script.then(
        answer(200, whole[: len(whole) // 2], Content_Encoding="gzip"),
        answer(200, whole, Content_Encoding="gzip"),
    )
    p = pipeline(script)
    response = await p.request(GET, path_params={"ticket_id": 1})
    await p.aclose()
    assert response.body == b'{"a": 1}' * 50
    assert len(script.seen) == 2


async def test_a_corrupt_compressed_error_body_is_a_decode_error(script: Script) -> None:
    script.then(answer(500, b"not gzip at all", Content_Encoding="gzip"))
    p = pipeline(script, RetryPolicy(max_retries=0))
    with pytest.raises(ResponseDecodeError) as caught:
        await p.request(GET, path_params={"ticket_id": 1})
    await p.aclose()
    assert caught.value.status == 502


async def test_a_compressed_body_is_decoded(script: Script) -> None:
    script.then(answer(200, gzip.compress(b'{"a": 1}'), Content_Encoding="gzip"))
    p = pipeline(script)
    response = await p.request(GET, path_params={"ticket_id": 1})
    await p.aclose()
    assert response.json() == {"a": 1}


async def test_a_stream_reports_its_elapsed_time(script: Script) -> None:
    script.then(answer(200, b"abc"))
    p = pipeline(script)
    async with p.stream(
        R.TICKETS_ATTACHMENT, path_params={"ticket_id": 1, "attachment_id": 2}
    ) as r:
        assert r.stream is not None
        assert b"".join([c async for c in r.stream.chunks()]) == b"abc"
        assert 0 <= r.elapsed < 5
    await p.aclose()


# --- interrupted and cut calls ----------------------------------------------------------------


@pytest.mark.parametrize(("route", "noted"), [(POST, True), (GET, False)])
async def test_a_cancelled_call_says_whether_it_may_have_reached_vpsbg(
    script: Script, route: R.Route, noted: bool
) -> None:
    started, over = asyncio.Event(), asyncio.Event()
    script.then(hang(started, over))
    p = pipeline(script)
    call = asyncio.ensure_future(p.request(route, path_params={"ticket_id": 1}))
    await started.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError) as caught:
        await call
    over.set()
    await p.aclose()
    # 3.10 gives the awaiting side a fresh CancelledError raised from the pipeline's own.
    own = caught.value if sys.version_info >= (3, 11) else caught.value.__context__
    assert (MAY_HAVE_REACHED_VPSBG in getattr(own, "__notes__", [])) is noted


def test_add_note_adds_a_note_once() -> None:
    exc = KeyboardInterrupt()
    add_note(exc, "first")
    add_note(exc, "second")
    add_note(exc, "first")
    assert exc.__notes__ == ["first", "second"]


async def test_a_download_cut_short_is_asked_for_again(script: Script) -> None:
    script.then(answer(200, b"part"), answer(200, b"whole"))
    p = pipeline(script)
    bodies: list[bytes] = []

    async def consume(response: Response) -> bytes:
        assert response.stream is not None
        body = b"".join([c async for c in response.stream.chunks()])
        bodies.append(body)
        if body == b"part":
            raise DownloadError("cut", cut_short=True)
        return body

    route = R.TICKETS_ATTACHMENT
    result = await p.download(route, consume, path_params={"ticket_id": 1, "attachment_id": 2})
    await p.aclose()
    assert result == b"whole" and bodies == [b"part", b"whole"]


async def test_a_download_that_is_wrong_not_cut_is_not_asked_again(script: Script) -> None:
    script.then(answer(200, b"bad"), answer(200, b"good"))
    p = pipeline(script)

    async def consume(response: Response) -> bytes:
        raise DownloadError("wrong bytes", cut_short=False)

    route = R.TICKETS_ATTACHMENT
    with pytest.raises(DownloadError, match="wrong bytes"):
        await p.download(route, consume, path_params={"ticket_id": 1, "attachment_id": 2})
    await p.aclose()
    assert len(script.seen) == 1


# --- the pure pieces --------------------------------------------------------------------------


async def test_proxy_settings_in_the_environment_are_ignored_unless_asked(
    script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "")
    p = pipeline(script)
    assert (await p.request(GET, path_params={"ticket_id": 1})).status == 200
    await p.aclose()


def test_url_for_fills_the_path() -> None:
    p = Pipeline(token=TOKEN, base_url="https://api.test/v1/", timeout=5, retry=NO_WAIT)
    assert p.url_for(GET, {"ticket_id": 7}) == "https://api.test/v1/support/tickets/7"
    assert p.url_for(R.TICKETS_LIST) == "https://api.test/v1/support/tickets"


def test_a_response_built_by_hand_has_neutral_defaults() -> None:
    r = Response(200, {}, b"", "GET", "https://api.test/v1/x")
    assert (r.elapsed, r.retries_taken, r.stream, r.request_id) == (0.0, 0, None, None)
    assert "stream" not in repr(r)


def test_a_connection_failure_names_what_happened() -> None:
    redact = Redactor(TOKEN)
    url = "https://api.test/v1/x"
    said = transport_failure(
        ConnectionResetError("peer went away"),
        "GET",
        url,
        redact,
        sent=True,
        timed_out=False,
        certificate=False,
    )
    assert "peer went away" in str(said.error)
    silent = transport_failure(
        aiohttp.ClientOSError(), "GET", url, redact, sent=True, timed_out=False, certificate=False
    )
    assert "ClientOSError" in str(silent.error)


def test_a_text_error_body_gives_the_message_trimmed_and_bounded() -> None:
    redact = Redactor(TOKEN)
    url = "https://api.test/v1/x"
    short = status_error(
        502, "Bad Gateway", b"  upstream exploded \n", {}, None, "GET", url, redact
    )
    assert short.message == "upstream exploded"
    long = status_error(502, None, b"y" * 500, {}, None, "GET", url, redact)
    assert long.message == "y" * 200


def test_a_status_error_without_a_body_uses_the_reason_scrubbed() -> None:
    redact = Redactor(TOKEN)
    url = "https://api.test/v1/x"
    echoed = status_error(418, f"no {TOKEN}", b"", {}, None, "GET", url, redact)
    assert TOKEN not in str(echoed) and "no ***" in echoed.message
    bare = status_error(418, None, b"", {}, None, "GET", url, redact)
    assert bare.message == "request failed"


# --- which failures prove nothing was sent ----------------------------------------------------


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there any more


async def test_connection_retries_spend_the_sleep_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = counting_send(monkeypatch)
    policy = RetryPolicy(max_retries=50, initial_delay=0.05, max_delay=0.05, sleep_budget=0.1)
    p = Pipeline(token=TOKEN, base_url=closed_port_url(), timeout=5, retry=policy)
    with pytest.raises(APIConnectionError) as caught:
        await p.request(POST)  # refused: never sent, so even a renew may be retried
    await p.aclose()
    assert caught.value.request_sent is False
    # 50 backoffs of up to 0.05 s average 1.25 s: the 0.1 s budget stops them long before.
    assert 2 <= len(attempts) < 40


@pytest.mark.parametrize(
    ("failure", "sent"),
    [
        (aiohttp.ConnectionTimeoutError("connect timed out"), False),
        (aiohttp.ClientConnectorError(_key(), OSError(111, "refused")), False),
        (aiohttp.SocketTimeoutError("read timed out"), True),
        (aiohttp.ServerDisconnectedError(), True),
    ],
)
async def test_a_post_is_retried_only_when_the_failure_proves_it_was_never_sent(
    script: Script, monkeypatch: pytest.MonkeyPatch, failure: Exception, sent: bool
) -> None:
    attempts = counting_send(monkeypatch, fail_first=failure)
    p = pipeline(script)
    if sent:
        with pytest.raises(APIConnectionError) as caught:
            await p.request(POST)
        assert caught.value.request_sent is True
        assert len(attempts) == 1
    else:
        assert (await p.request(POST)).status == 200
        assert len(attempts) == 2
    await p.aclose()


async def test_a_timeout_is_reported_as_a_timeout(
    script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting_send(monkeypatch, fail_first=aiohttp.SocketTimeoutError("read timed out"))
    p = pipeline(script, RetryPolicy(max_retries=0))
    with pytest.raises(APITimeoutError):
        await p.request(GET, path_params={"ticket_id": 1})
    await p.aclose()


async def test_the_retry_log_names_a_failure_without_a_status_by_its_class(
    script: Script, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    counting_send(monkeypatch, fail_first=aiohttp.ServerDisconnectedError())
    p = pipeline(script)
    with caplog.at_level(logging.INFO, logger=C.LOGGER_NAME):
        assert (await p.request(GET, path_params={"ticket_id": 1})).status == 200
    await p.aclose()
    assert any(
        "retrying in" in r.getMessage() and r.getMessage().endswith("(APIConnectionError)")
        for r in caplog.records
    )


def test_try_acquire_reserves_a_free_slot_and_never_waits() -> None:
    limiter = RateLimiter()
    assert limiter.try_acquire() is True  # the probe
    assert limiter.try_acquire() is False  # wait for its answer: nothing reserved
    assert limiter.budget.in_flight == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_the_retry_loop_returns_one_response_and_never_sends_again(
    script: Script, stream: bool
) -> None:
    # Whoever drives the loop, a call that got its answer is over: the loop must not send the
    # request again (for a renew, a second order).
    p = pipeline(script)
    route = POST if not stream else R.TICKETS_ATTACHMENT
    url = p.url_for(route, {"ticket_id": 1, "attachment_id": 2} if stream else None)
    call = _Call(route, url, url, None, {"billing_cycle": 3}, None, stream, False)
    async with AsyncExitStack() as keep:  # a stream's response stays open until it closes
        response = await p._attempts(call, keep if stream else None)
        assert response.status == 200
    await p.aclose()
    assert len(script.seen) == 1


async def test_a_download_error_leaves_without_the_exception_it_was_raised_over(
    script: Script,
) -> None:
    # A consumer may raise its DownloadError while handling what the server sent (an aiohttp
    # error quoting a body): once the pipeline gives up, that chain must not leave with it.
    script.then(answer(200, b"part"))
    p = pipeline(script, RetryPolicy(max_retries=0))

    async def consume(response: Response) -> bytes:
        try:
            raise ValueError(f"server said {TOKEN}")
        except ValueError:
            raise DownloadError("cut", cut_short=True) from None

    route = R.TICKETS_ATTACHMENT
    with pytest.raises(DownloadError) as caught:
        await p.download(route, consume, path_params={"ticket_id": 1, "attachment_id": 2})
    await p.aclose()
    assert caught.value.__context__ is None and caught.value.__cause__ is None
