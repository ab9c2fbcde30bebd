"""Request ids (on results and errors), event hooks, with_options(extra_headers/extra_query) and
client.rate_limit, on both clients, against a loopback API of ours that records headers."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from tests._observe_servers import ATTACHMENT_BYTES, RecordingAPI
from vpsbg_support import (
    AsyncClient,
    Client,
    InternalServerError,
    InvalidParameterError,
    NotFoundError,
    RateLimitSnapshot,
    RequestInfo,
    ResponseInfo,
)

TOKEN = "tok-HOOK-9d2c-SECRET-0123456789abcdef"
both_clients = pytest.mark.parametrize("blocking", [False, True], ids=["async", "blocking"])


async def on_client(
    api: RecordingAPI, blocking: bool, use: Callable[[Any], Any], **options: Any
) -> Any:
    """``use(client)`` on a fresh AsyncClient (awaited) or Client (in a worker thread)."""
    options.setdefault("max_retries", 1)
    if blocking:

        def run() -> Any:
            with Client(TOKEN, base_url=api.url, **options) as client:
                return use(client)

        return await asyncio.to_thread(run)
    async with AsyncClient(TOKEN, base_url=api.url, **options) as client:
        return await use(client)


# --- request ids ---------------------------------------------------------------------------


@both_clients
@pytest.mark.parametrize(
    "header", ["X-Request-Id", "x-request-id", "Request-Id", "X-Correlation-Id", "CF-Ray"]
)
async def test_the_request_id_is_read_from_each_supported_header(
    blocking: bool, header: str
) -> None:
    headers = {header: "abc-123"}
    async with RecordingAPI(response_headers=headers).serve() as api:
        raw = await on_client(api, blocking, lambda c: c.tickets.with_raw_response.get(1))
    assert raw.request_id == "abc-123"


async def test_x_request_id_wins_over_the_other_names() -> None:
    headers = {
        "CF-Ray": "ray",
        "X-Correlation-Id": "corr",
        "Request-Id": "req",
        "X-Request-Id": "x",
    }
    async with RecordingAPI(response_headers=headers).serve() as api:
        raw = await on_client(api, False, lambda c: c.tickets.with_raw_response.get(1))
    assert raw.request_id == "x"
    del headers["X-Request-Id"]
    async with RecordingAPI(response_headers=headers).serve() as api:
        raw = await on_client(api, False, lambda c: c.tickets.with_raw_response.get(1))
    assert raw.request_id == "req"


@both_clients
@pytest.mark.parametrize("header", ["X-Request-Id", "Request-Id", "X-Correlation-Id", "CF-Ray"])
async def test_every_status_error_carries_the_request_id(blocking: bool, header: str) -> None:
    async with RecordingAPI(
        fail_first=5, fail_status=500, response_headers={header: "err-42"}
    ).serve() as api:
        with pytest.raises(InternalServerError) as caught:
            await on_client(api, blocking, lambda c: c.tickets.get(1), max_retries=0)
    assert caught.value.request_id == "err-42"
    assert "[request id err-42]" in str(caught.value)


async def test_no_request_id_header_means_none() -> None:
    async with RecordingAPI(fail_first=1, fail_status=404).serve() as api:
        with pytest.raises(NotFoundError) as caught:
            await on_client(api, False, lambda c: c.tickets.get(1))
        assert caught.value.request_id is None and "request id" not in str(caught.value)
        raw = await on_client(api, False, lambda c: c.tickets.with_raw_response.get(1))
    assert raw.request_id is None


# --- event hooks ---------------------------------------------------------------------------


@both_clients
async def test_hooks_see_every_attempt_without_the_token(blocking: bool) -> None:
    seen: list[RequestInfo | ResponseInfo] = []

    async def on_response(info: ResponseInfo) -> None:  # a coroutine hook is awaited
        seen.append(info)

    hooks = {"request": [seen.append], "response": [on_response]}
    async with RecordingAPI(fail_first=1, response_headers={"X-Request-Id": "r1"}).serve() as api:
        await on_client(
            api, blocking, lambda c: c.tickets.list(page=2, per_page=5), event_hooks=hooks
        )
    kinds = [(type(i).__name__, i.attempt) for i in seen]
    assert kinds == [
        ("RequestInfo", 1),
        ("ResponseInfo", 1),
        ("RequestInfo", 2),
        ("ResponseInfo", 2),
    ]
    first, answer = seen[0], seen[1]
    assert isinstance(first, RequestInfo) and isinstance(answer, ResponseInfo)
    assert first.method == "GET" and first.url == f"{api.url}/support/tickets?page=2&per_page=5"
    assert first.headers["Authorization"] == "Bearer ***"
    assert (answer.status_code, answer.request_id) == (503, "r1")
    assert 0 <= answer.elapsed < 5  # seconds from sending to the headers, on loopback
    assert [i.status_code for i in seen if isinstance(i, ResponseInfo)] == [503, 200]
    assert TOKEN not in repr(seen)


def test_event_hooks_are_checked_when_the_client_is_made() -> None:
    with pytest.raises(InvalidParameterError, match="unknown event 'error'"):
        AsyncClient(TOKEN, event_hooks={"error": [print]})
    with pytest.raises(InvalidParameterError, match="callable"):
        Client(TOKEN, event_hooks={"request": ["print"]})  # type: ignore[list-item]


async def test_an_exception_in_a_hook_ends_the_call() -> None:
    def refuse(info: RequestInfo) -> None:
        raise RuntimeError("not now")

    async with RecordingAPI().serve() as api:
        with pytest.raises(RuntimeError, match="not now"):
            await on_client(
                api, False, lambda c: c.tickets.get(1), event_hooks={"request": [refuse]}
            )
    assert api.seen == []


# --- with_options --------------------------------------------------------------------------


@both_clients
async def test_with_options_adds_headers_and_query_to_every_request_of_the_copy(
    blocking: bool,
) -> None:
    def use(client: Any) -> Any:
        derived = client.with_options(
            timeout=5, extra_headers={"x-trace": "1"}, extra_query={"lang": "en", "page": 9}
        )
        calls = [derived.tickets.list(page=2), derived.tickets.get(3), client.tickets.get(4)]
        if blocking:
            return calls

        async def run_all() -> list[Any]:
            return [await call for call in calls]

        return run_all()

    async with RecordingAPI().serve() as api:
        await on_client(api, blocking, use, default_headers={"X-Team": "billing"})
    listed, got, plain = api.seen
    assert listed.path_qs == "/v1/support/tickets?lang=en&page=2"  # the call's page wins
    assert got.path_qs == "/v1/support/tickets/3?lang=en&page=9"
    assert listed.headers["X-Trace"] == "1" and listed.headers["X-Team"] == "billing"
    assert plain.path_qs == "/v1/support/tickets/4" and "X-Trace" not in plain.headers
    assert all(seen.headers["Authorization"] == f"Bearer {TOKEN}" for seen in api.seen)


async def test_with_options_adds_headers_and_query_to_downloads_too() -> None:
    async with RecordingAPI().serve() as api, AsyncClient(TOKEN, base_url=api.url) as client:
        derived = client.with_options(extra_headers={"x-trace": "1"}, extra_query={"lang": "en"})
        async with derived.tickets.stream_attachment(3, 7) as stream:
            streamed = b"".join([chunk async for chunk in stream.iter_chunks()])
        saved = io.BytesIO()
        await derived.tickets.download_attachment(3, 7, saved)
    assert streamed == saved.getvalue() == ATTACHMENT_BYTES
    for seen in api.seen:
        assert seen.path_qs == "/v1/support/tickets/3/attachments/7?lang=en"
        assert seen.headers["X-Trace"] == "1"
        assert seen.headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    "options",
    [{"extra_headers": {"Authorization": "x"}}, {"extra_query": {"flag": True}},
     {"extra_query": {"": "x"}}],
)  # fmt: skip
def test_with_options_checks_what_it_adds(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameterError):
        AsyncClient(TOKEN).with_options(**options)


# --- rate limit ----------------------------------------------------------------------------


@both_clients
async def test_rate_limit_reports_what_the_server_said(blocking: bool) -> None:
    headers = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "41"}

    def use(client: Any) -> Any:
        before = client.rate_limit
        result = client.tickets.get(1)

        async def later() -> Any:
            await result
            return before, client.rate_limit

        return later() if not blocking else (before, client.rate_limit)

    async with RecordingAPI(response_headers=headers).serve() as api:
        before, after = await on_client(api, blocking, use)
    assert before == RateLimitSnapshot(
        remaining=None, limit=None, resets_at=None, server_sends_headers=None, in_flight=0
    )
    assert (after.remaining, after.limit, after.server_sends_headers) == (41, 60, True)


async def test_rate_limit_without_headers_and_during_a_retry_after() -> None:
    async with RecordingAPI().serve() as api, AsyncClient(TOKEN, base_url=api.url) as client:
        await client.tickets.get(1)
        assert client.rate_limit.server_sends_headers is False
        assert client.rate_limit.remaining is None
    headers = {"Retry-After": "30", "X-RateLimit-Remaining": "0"}
    async with (
        RecordingAPI(fail_first=1, fail_status=429, response_headers=headers).serve() as api,
        AsyncClient(TOKEN, base_url=api.url, raise_on_rate_limit=True) as client,
    ):
        with pytest.raises(Exception, match="429"):
            await client.tickets.get(1)
        snapshot = client.with_options(max_retries=0).rate_limit  # shared with copies
    assert snapshot.remaining == 0 and snapshot.resets_at is not None
    wait = (snapshot.resets_at - datetime.now(timezone.utc)).total_seconds()
    assert 25 < wait <= 30
