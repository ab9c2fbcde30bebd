"""The API token never shows: not in logs (ours or aiohttp's), reprs, exceptions or written files.

One tour calls every endpoint at DEBUG level, with uploads, downloads, 401/403/404/422/429,
resets, truncation and timeouts, then searches everything the user could see for the tokens.
"""

from __future__ import annotations

import json
import logging
import socket
import traceback
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from vpsbg_support import AsyncClient, errors
from vpsbg_support import _routes as R
from vpsbg_support._retry import RetryPolicy
from vpsbg_support.testing import FakeVPSBG

SECRET = "SECRET-TOKEN-4242-xyz"
READ_ONLY = "READONLY-SECRET-5555"
WRONG = "WRONG-SECRET-9876"
TOKENS = (SECRET, READ_ONLY, WRONG)
FAST = RetryPolicy(max_retries=2, initial_delay=0.001, max_delay=0.002)
TICKET = 1003
ATTACHMENT = 9006


def _leaks(text: str) -> list[str]:
    return [t for t in TOKENS if t in text]


def _exception_texts(exc: BaseException) -> list[str]:
    """Everything a user or an error tracker may print about an exception and its causes."""
    texts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args), repr(vars(current))]
        current = current.__cause__ or current.__context__
    return texts


async def test_a_full_tour_never_reveals_a_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: aiohttp.client, aiohttp.server... too
    for name in ("vpsbg_support", "aiohttp", "aiohttp.client", "aiohttp.access", "asyncio"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    seen: list[str] = []  # reprs and strs of everything the tour touched
    raised: list[BaseException] = []

    async def expect_error(coro: Awaitable[Any]) -> None:
        try:
            await coro
        except errors.VPSBGError as exc:
            raised.append(exc)
        else:
            pytest.fail("expected an error")

    upload = tmp_path / "uploads" / "report.log"
    upload.parent.mkdir()
    upload.write_bytes(b"kernel: oops\n" * 1000)
    downloads = tmp_path / "downloads"

    async with FakeVPSBG(seed=3, tickets=5, token=SECRET, read_only_token=READ_ONLY) as fake:
        async with AsyncClient(SECRET, base_url=fake.url, retry_policy=FAST) as client:
            t, p = client.tickets, client.plans
            results: list[Any] = [
                await t.list(per_page=2),
                [x async for x in t.iter_all(per_page=3)],
                await t.departments(),
                await t.services(),
                await t.get(TICKET),
                await t.create(
                    department_id=2,
                    subject="Disk full",
                    message="Please help",
                    attachments=[upload, ("notes.txt", b"some notes")],
                ),
                await t.reply(TICKET, message="More logs", attachments=[upload]),
                await t.resolve(TICKET),
                await t.download_attachment(TICKET, ATTACHMENT, f"{downloads}/"),
                await p.list(),
                await p.purchase(plan="professional", billing_cycle=12),
                await p.renew(billing_cycle=3),
                await p.cancel(reason="testing"),
                await p.undo_cancel(),
            ]
            async with t.stream_attachment(TICKET, ATTACHMENT) as stream:
                with (downloads / "streamed.bin").open("wb") as out:
                    async for chunk in stream.iter_chunks():
                        out.write(chunk)
                seen.append(repr(stream))
            async with client._transport.stream(
                R.TICKETS_ATTACHMENT, path_params={"ticket_id": TICKET, "attachment_id": ATTACHMENT}
            ) as response:
                # The pipeline's response and its stream must print without the token.
                seen += [repr(response), repr(response.stream)]
            seen += [repr(r) for r in results] + [str(r) for r in results]
            seen += [repr(client), repr(t), repr(p), repr(client._transport), str(client)]
            seen.append(repr(client.with_options(timeout=5)))

            # Failures of every kind.
            await expect_error(t.get(999_999))  # 404
            await expect_error(t.create(department_id=999, subject="abc", message="hello"))  # 422
            fake.faults.add("plans.renew", "reset", times=1)
            await expect_error(p.renew(billing_cycle=1))  # ambiguous POST failure
            fake.faults.add("tickets.get", "reset")
            await expect_error(t.get(TICKET))  # GET resets until retries run out
            fake.faults.clear()
            fake.faults.add("tickets.download_attachment", "truncate", keep_fraction=0.3)
            await expect_error(t.download_attachment(TICKET, ATTACHMENT, downloads / "cut.bin"))
            fake.faults.clear()
            fake.faults.add("plans.list", "latency", seconds=0.2, times=3)
            await expect_error(client.with_options(timeout=0.05).plans.list())  # timeouts
            fake.faults.add("tickets.services", "status", status=503)
            await expect_error(t.services())  # 503 after retries
            fake.faults.clear()
            fake.faults.add("plans.list", "status", status=429, retry_after=300, times=1)
            await expect_error(p.list())  # Retry-After over the cap
            await expect_error(t.get(TICKET))  # refused locally while the client must wait

        async with AsyncClient(WRONG, base_url=fake.url, retry_policy=FAST) as wrong:
            await expect_error(wrong.tickets.get(TICKET))  # 401
            seen.append(repr(wrong))
        async with AsyncClient(READ_ONLY, base_url=fake.url, retry_policy=FAST) as read_only:
            await expect_error(read_only.plans.renew(billing_cycle=1))  # 403
        seen.append(repr(fake))

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    async with AsyncClient(SECRET, base_url=closed, retry_policy=FAST) as refused:
        await expect_error(refused.plans.purchase(plan="basic", billing_cycle=1))  # refused

    kinds = {type(e) for e in raised}
    assert {
        errors.NotFoundError,
        errors.UnprocessableEntityError,
        errors.APIConnectionError,
        errors.DownloadError,
        errors.APITimeoutError,
        errors.InternalServerError,
        errors.RateLimitError,
        errors.AuthenticationError,
        errors.PermissionDeniedError,
    } <= kinds, kinds
    for exc in raised:
        for text in _exception_texts(exc):
            assert not _leaks(text), (type(exc), text)
    for text in seen:
        assert not _leaks(text), text
    records = caplog.records
    assert any(r.name == "vpsbg_support" for r in records)
    assert not _leaks(caplog.text)
    for record in records:
        assert not _leaks(repr(record.__dict__)), record
    written = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert len(written) >= 3  # the uploaded log, two downloads
    for path in written:
        data = path.read_bytes()
        assert not any(token.encode() in data for token in TOKENS), path
        assert not _leaks(str(path))


async def test_a_token_echoed_by_the_server_is_scrubbed_from_errors() -> None:
    """A misbehaving proxy or server that echoes the request back must not put it in errors."""
    from aioresponses import aioresponses

    from tests.conftest import BASE

    echo = f'{{"message": "bad header Authorization: Bearer {SECRET}"}}'
    with aioresponses() as mocked:
        url = f"{BASE}/support/plans"
        mocked.get(url, status=400, body=echo, headers={"X-Echo": f"Bearer {SECRET}"})
        mocked.get(url, status=502, body=f"<pre>Authorization: Bearer {SECRET}</pre>")
        async with AsyncClient(SECRET, base_url=BASE, max_retries=0) as client:
            for _ in range(2):
                with pytest.raises(errors.APIStatusError) as info:
                    await client.plans.list()
                for text in _exception_texts(info.value):
                    assert SECRET not in text, text


async def test_a_token_echoed_in_a_malformed_answer_is_not_chained_into_the_error() -> None:
    """aiohttp's parse error quotes the bad line; chained as the cause it printed the token."""
    import asyncio

    async def echo_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        auth = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"author"))
        # A header line without a colon: aiohttp refuses the answer and quotes the line.
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nEcho " + auth + b"\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo_headers, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with AsyncClient(SECRET, base_url=f"http://127.0.0.1:{port}", max_retries=0) as c:
            with pytest.raises(errors.APIConnectionError) as info:
                await c.tickets.list()
    finally:
        server.close()
        await server.wait_closed()
    for text in _exception_texts(info.value):
        assert SECRET not in text, text


async def test_a_token_echoed_in_a_successful_answer_goes_no_further() -> None:
    """Not into a decode error's body or message, nor into the models."""
    from aioresponses import aioresponses

    from tests.conftest import BASE, example

    ticket = example("ticket_create_example.json")
    ticket["subject"] = f"Authorization: Bearer {SECRET}"
    with aioresponses() as mocked:
        mocked.get(f"{BASE}/support/plans", body=f"<pre>Bearer {SECRET}</pre>")
        mocked.post(f"{BASE}/support/renew", status=201, payload={"id": f"Bearer {SECRET}"})
        mocked.get(f"{BASE}/support/tickets/216", payload=ticket)
        async with AsyncClient(SECRET, base_url=BASE, max_retries=0) as client:
            with pytest.raises(errors.ResponseDecodeError) as html:
                await client.plans.list()
            with pytest.raises(errors.ResponseDecodeError) as shape:
                await client.plans.renew(billing_cycle=1)
            read = await client.tickets.get(216)
    for exc in (html.value, shape.value):
        assert SECRET.encode() not in exc.body
        for text in _exception_texts(exc):
            assert SECRET not in text, text
    assert read.subject == "Authorization: Bearer ***"


@pytest.mark.parametrize(
    "token",
    ["abc def", "abc\ndef", "abc\x00def", "t\u00f6ken", "abc\udc80def"],
    ids=["space", "newline", "nul", "non-ascii", "lone surrogate"],
)
def test_a_token_no_real_token_could_be_is_refused_without_quoting_it(token: str) -> None:
    """Such a token failed at the first call in an exception holding the whole header."""
    from vpsbg_support import Client

    for make in (AsyncClient, Client):
        with pytest.raises(errors.ConfigurationError) as info:
            make(token, base_url="http://127.0.0.1:9")
        for text in _exception_texts(info.value):
            assert token not in text and "abc" not in text, text


def test_a_token_anywhere_in_an_exception_chain_is_noticed() -> None:
    """aiohttp wraps one error in another: the echo may sit in the inner one."""
    transport = AsyncClient(SECRET, base_url="http://127.0.0.1:9")._transport
    try:
        try:
            raise ValueError(f"bad line: Authorization: Bearer {SECRET}")
        except ValueError as inner:
            raise OSError("payload error") from inner
    except OSError as outer:
        assert transport.redact.mentioned_in(outer)
    assert not transport.redact.mentioned_in(OSError("payload error"))


async def test_a_token_echoed_in_php_json_escaping_is_scrubbed_too() -> None:
    """PHP's json_encode writes "/" as "\\/": the echo is not the token's bytes as sent."""
    from aioresponses import aioresponses

    from tests.conftest import BASE, example

    token = "12|Slash/Token+Value="
    ticket = example("ticket_create_example.json")
    raw = json.dumps(ticket).replace(
        '"subject": ', '"subject": "echo ' + token.replace("/", "\\/") + '", "was": ', 1
    )
    with aioresponses() as mocked:
        mocked.get(f"{BASE}/support/tickets/216", body=raw)
        async with AsyncClient(token, base_url=BASE, max_retries=0) as client:
            read = await client.tickets.get(216)
    assert read.subject == "echo ***" and token not in repr(read)


async def test_a_test_token_too_short_to_be_real_does_not_rewrite_the_data() -> None:
    """Users' tests often use a token like "test": scrubbing it from bodies mangled the data."""
    async with FakeVPSBG(token="test") as fake, AsyncClient("test", base_url=fake.url) as client:
        ticket = await client.tickets.create(
            department_id=fake.state.departments[0].id,
            subject="latest test run",
            message="please test this",
        )
    assert ticket.subject == "latest test run"
    assert ticket.messages[-1].content == "please test this"
