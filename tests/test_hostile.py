"""A hostile server, one attack per test, each from issue 12's "Why": bounded memory, no token
in any frame's locals, a long Retry-After that does not lock the client, downloads stopped at
their announced size, scrubbed file names, and the money messages.

The servers are our own loopback ones (``tests/_hostile.py``), not FakeVPSBG: they do what no
honest server does.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests._hostile import HostileThread, hostile
from tests._interruptible import interruptible
from tests.conftest import example
from vpsbg_support import (
    MAY_HAVE_REACHED_VPSBG,
    AsyncClient,
    Attachment,
    AuthenticationError,
    Client,
    DownloadError,
    InternalServerError,
    RateLimitedLocallyError,
    ResponseDecodeError,
    ResponseTooLargeError,
    RetryPolicy,
    UnprocessableEntityError,
)
from vpsbg_support._retry import parse_retry_after

TOKEN = "HOSTILE-SECRET-TOKEN-0123456789"
TICKET = json.dumps(example("ticket_get_example_drifted.json")).encode()
FAST = RetryPolicy(max_retries=2, initial_delay=0.001, max_delay=0.002)
GIB = 1024**3
MIB = 1024**2


def client_for(url: str, policy: RetryPolicy = FAST, **kwargs: Any) -> AsyncClient:
    return AsyncClient(TOKEN, base_url=url, retry_policy=policy, **kwargs)


async def ticket(_: web.Request) -> web.Response:
    return web.Response(body=TICKET, content_type="application/json")


def locals_text(exc: BaseException) -> str:
    """What an error tracker recording frame locals would store."""
    return "".join(
        traceback.TracebackException(
            type(exc), exc, exc.__traceback__, capture_locals=True
        ).format()
    )


# --- bounded memory: a gzip bomb and a 1 GiB body, in a child under an address-space limit --


def _bomb() -> bytes:
    """About 1 MB of gzip expanding to 1 GiB of zeros."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MIB)
    return b"".join([*(packer.compress(block) for _ in range(1024)), packer.flush()])


async def _serve_bomb(request: web.Request) -> web.StreamResponse:
    body: bytes = request.app["bomb"] if "bomb" in request.app else _BOMB[0]
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.headers["Content-Encoding"] = "gzip"
    await resp.prepare(request)
    try:
        for i in range(0, len(body), 64 * 1024):
            await resp.write(body[i : i + 64 * 1024])
    except (ConnectionError, RuntimeError):
        pass  # the client stopped reading: what a bounded client does
    return resp


async def _serve_gib(request: web.Request) -> web.StreamResponse:
    # Streamed: the server never holds more than one chunk of it.
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    chunk = b" " * (256 * 1024)
    try:
        await resp.write(b"[")
        for _ in range(GIB // len(chunk)):
            await resp.write(chunk)
    except (ConnectionError, RuntimeError):
        pass
    return resp


_BOMB: list[bytes] = []

_CHILD = """
import asyncio, json, resource, sys
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from vpsbg_support import AsyncClient, RetryPolicy

async def main():
    async with AsyncClient("HOSTILE-SECRET-TOKEN-0123456789", base_url=sys.argv[1],
                           retry_policy=RetryPolicy(max_retries=0),
                           max_response_size=int(sys.argv[3])) as client:
        try:
            await client.tickets.get(1)
        except BaseException as exc:
            return type(exc).__name__
    return "no error"

try:
    outcome = asyncio.run(main())
except MemoryError:
    outcome = "MemoryError (uncaught)"
# VmHWM: this process's own high-water mark. Not ru_maxrss, which Linux carries across exec
# from the parent (pytest, hundreds of MB into a full run) that spawned us.
with open("/proc/self/status") as status:
    hwm = next(line for line in status if line.startswith("VmHWM:"))
peak = int(hwm.split()[1]) * 1024
print(json.dumps({"outcome": outcome, "peak": peak}))
"""

#: The child's address space: Python, aiohttp and a 32 MiB body fit; 1 GiB does not.
AS_LIMIT = 1024 * MIB


def _run_child(url: str, max_size: int) -> dict[str, Any]:
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, url, str(AS_LIMIT), str(max_size)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("attack", ["gzip bomb", "1 GiB plain body"])
def test_a_hostile_body_gives_a_typed_error_in_bounded_memory(attack: str) -> None:
    if attack == "gzip bomb" and not _BOMB:
        _BOMB.append(_bomb())
        assert len(_BOMB[0]) < 2 * MIB
    handler = _serve_bomb if attack == "gzip bomb" else _serve_gib
    with HostileThread({"/support/tickets/1": handler}) as server:
        result = _run_child(server.url, 32 * MIB)
    assert result["outcome"] == "ResponseTooLargeError", result
    # Python + aiohttp + a 32 MiB body and its decoding: far below the 1 GiB the body holds.
    assert result["peak"] < 300 * MIB, result


def test_without_the_bound_the_bomb_would_not_fit() -> None:
    """The control: the limit above is real, so the previous test proves something."""
    if not _BOMB:
        _BOMB.append(_bomb())
    with HostileThread({"/support/tickets/1": _serve_bomb}) as server:
        result = _run_child(server.url, 2 * GIB)
    assert "MemoryError" in result["outcome"], result


# --- no token in any frame's locals -----------------------------------------------------


def _echo(status: int) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        body = json.dumps({"message": f"you sent {auth}", "errors": {"x": [auth]}})
        return web.Response(
            status=status, text=body, content_type="application/json", headers={"X-Echo": auth}
        )

    return handler


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (422, UnprocessableEntityError), (500, InternalServerError)],
)
async def test_an_echoed_token_is_in_no_frame_locals_of_a_status_error(
    status: int, error: type[Exception]
) -> None:
    async with (
        hostile({"/support/tickets/1": _echo(status)}) as url,
        client_for(url, RetryPolicy(max_retries=0)) as client,
    ):
        with pytest.raises(error) as info:
            await client.tickets.get(1)
    text = locals_text(info.value)
    assert "***" in str(info.value) and TOKEN not in text


async def test_an_echoed_token_is_in_no_frame_locals_of_a_2xx_decode_error() -> None:
    async def handler(request: web.Request) -> web.Response:
        auth = request.headers["Authorization"]
        return web.Response(
            text=f"<html>not json: {auth}</html>",
            headers={"X-Echo": auth, "Content-Type": "application/json"},
        )

    async with (
        hostile({"/support/tickets/1": handler}) as url,
        client_for(url) as client,
    ):
        with pytest.raises(ResponseDecodeError) as info:
            await client.tickets.get(1)
        assert b"***" in info.value.body
    assert TOKEN not in locals_text(info.value)


async def _raw_server(answers: list[Callable[[bytes], bytes]]) -> tuple[asyncio.Server, str]:
    """A raw HTTP server: connection n gets ``answers[n](request head)`` and is closed, so a
    body can be cut anywhere."""
    served = iter(answers)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(next(served)(head))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1"


def _auth_of(head: bytes) -> bytes:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"authorization:"):
            return line.split(b":", 1)[1].strip()
    return b""


def _cut_echo(head: bytes) -> bytes:
    auth = _auth_of(head)
    body = b"start " + auth + b" " * 100
    return (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nConnection: close\r\n"
        b'Content-Disposition: attachment; filename="' + auth.replace(b" ", b"_") + b'.log"\r\n'
        b"X-Echo: " + auth + b"\r\n\r\n" + body
    )


async def test_an_echoed_token_is_in_no_frame_locals_of_a_cut_download(tmp_path: Path) -> None:
    server, url = await _raw_server([_cut_echo] * 3)
    async with server, client_for(url) as client:
        with pytest.raises(DownloadError) as info:
            await client.tickets.download_attachment(1, 2, tmp_path)
    assert info.value.cut_short
    assert TOKEN not in locals_text(info.value)
    assert list(tmp_path.iterdir()) == []  # and no partial file


async def test_an_echoed_token_is_in_no_frame_locals_of_a_cut_stream() -> None:
    server, url = await _raw_server([_cut_echo])
    async with server, client_for(url) as client:
        with pytest.raises(DownloadError) as info:
            async with client.tickets.stream_attachment(1, 2) as stream:
                assert stream.name is not None and TOKEN not in stream.name
                async for chunk in stream.iter_chunks():
                    del chunk  # this frame is the user's: keep only the library's in view
    assert TOKEN not in locals_text(info.value)


# --- server-given file names are scrubbed ------------------------------------------------


async def test_a_file_name_echoing_the_token_is_scrubbed(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.Response:
        auth = request.headers["Authorization"].replace(" ", "_")
        return web.Response(
            body=b"log line\n",
            headers={"Content-Disposition": f'attachment; filename="{auth}.log"'},
        )

    async with (
        hostile({"/support/tickets/1/attachments/2": handler}) as url,
        client_for(url) as client,
    ):
        path = await client.tickets.download_attachment(1, 2, tmp_path)
    # The token became ***, which safe_filename makes ___ (no * in a file name).
    assert path is not None and TOKEN not in str(path) and path.name == "Bearer____.log"
    assert path.read_bytes() == b"log line\n"


# --- downloads stop at their announced size, and leave nothing -----------------------------


async def test_a_download_longer_than_announced_stops_early_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    sent = [0]
    requests = [0]

    async def endless(request: web.Request) -> web.StreamResponse:
        requests[0] += 1
        resp = web.StreamResponse()  # chunked: no Content-Length to stop the client
        await resp.prepare(request)
        chunk = b"x" * (64 * 1024)
        try:
            for _ in range(8192):  # 512 MiB, streamed
                await resp.write(chunk)
                sent[0] += len(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    announced = Attachment(id=2, name="small.log", size=1000)
    async with (
        hostile({"/support/tickets/1/attachments/2": endless}) as url,
        client_for(url) as client,
    ):
        with pytest.raises(DownloadError, match="passed its announced size") as info:
            await client.tickets.download_attachment(1, announced, tmp_path)
    assert not info.value.cut_short and requests[0] == 1  # too long is not asked again
    assert list(tmp_path.iterdir()) == []
    assert sent[0] < 64 * MIB  # the client hung up long before the 512 MiB


# --- Retry-After: shared, but for at most max_retry_after --------------------------------


def _far_date() -> str:
    return format_datetime(datetime.now(timezone.utc) + timedelta(days=3650), usegmt=True)


@pytest.mark.parametrize("wait", ["86400", "far date"])
async def test_a_long_retry_after_does_not_lock_the_client_past_max_retry_after(
    wait: str,
) -> None:
    seen: list[str] = []

    async def overloaded(request: web.Request) -> web.Response:
        seen.append("plans")
        retry_after = _far_date() if wait == "far date" else wait
        return web.Response(status=503, headers={"Retry-After": retry_after})

    async def answered(request: web.Request) -> web.Response:
        seen.append("ticket")
        return await ticket(request)

    policy = RetryPolicy(max_retries=2, initial_delay=0.001, max_retry_after=0.5)
    routes = {"/support/plans": overloaded, "/support/tickets/1": answered}
    async with (
        hostile(routes) as url,
        client_for(url, policy) as client,
    ):
        with pytest.raises(InternalServerError):
            await client.plans.list()  # told to wait far longer than it may: raised
        with pytest.raises(RateLimitedLocallyError) as info:
            await client.tickets.get(1)  # another endpoint: held by the shared wait
        assert seen == ["plans"]
        await asyncio.sleep(0.6)  # max_retry_after has passed: the server is asked again
        assert (await client.tickets.get(1)).id == 216
    refused = info.value
    assert refused.status is None and refused.request_sent is False
    assert "HTTP 429" not in str(refused) and "429" not in str(refused)
    assert "not sent" in str(refused) and refused.retry_after is not None
    assert seen == ["plans", "ticket"]


async def test_a_503_retry_after_of_one_call_holds_the_other_calls() -> None:
    times: dict[str, float] = {}
    answered_503 = asyncio.Event()

    async def plans(request: web.Request) -> web.Response:
        if "503" not in times:
            times["503"] = time.monotonic()
            answered_503.set()
            return web.Response(status=503, headers={"Retry-After": "0.6"})
        return web.json_response([])

    async def get(request: web.Request) -> web.Response:
        times.setdefault("ticket", time.monotonic())
        return await ticket(request)

    policy = RetryPolicy(max_retries=2, initial_delay=0.001, max_retry_after=5)
    async with (
        hostile({"/support/plans": plans, "/support/tickets/1": get}) as url,
        client_for(url, policy) as client,
    ):
        first = asyncio.ensure_future(client.plans.list())
        await answered_503.wait()
        await client.tickets.get(1)  # sent only once the 503's wait is over
        await first
    assert times["ticket"] - times["503"] >= 0.5


def test_a_retry_after_date_with_a_non_utc_offset_is_read_in_its_zone() -> None:
    now = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    # 12:00 at +02:00 is 10:00 UTC: one hour from now, not three.
    assert parse_retry_after("Tue, 01 Dec 2026 12:00:00 +0200", now=now) == 3600.0
    assert parse_retry_after("Tue, 01 Dec 2026 05:00:00 -0500", now=now) == 3600.0


# --- one attempt count and one sleep budget for a 503 and a cut body ----------------------


def _busy(head: bytes) -> bytes:
    return b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0.3\r\nContent-Length: 0\r\n\r\n"


def _cut(head: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 400


def _whole(head: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000


@pytest.mark.parametrize(("budget", "succeeds"), [(0.3, False), (30.0, True)])
async def test_a_503_and_a_cut_download_share_one_sleep_budget(
    tmp_path: Path, budget: float, succeeds: bool
) -> None:
    server, url = await _raw_server([_busy, _cut, _whole])
    policy = RetryPolicy(max_retries=5, initial_delay=0.05, max_delay=0.05, sleep_budget=budget)
    async with server, client_for(url, policy) as client:
        if succeeds:
            path = await client.tickets.download_attachment(1, 2, tmp_path)
            assert path is not None and path.read_bytes() == b"x" * 1000
            return
        # The 503's 0.3 s spent the whole budget: the cut body is not asked again.
        with pytest.raises(DownloadError) as info:
            await client.tickets.download_attachment(1, 2, tmp_path)
    assert info.value.cut_short and list(tmp_path.iterdir()) == []


async def test_a_503_and_a_cut_download_share_one_attempt_count(tmp_path: Path) -> None:
    server, url = await _raw_server([_busy, _cut, _whole])
    policy = RetryPolicy(max_retries=1, initial_delay=0.001, max_delay=0.001)
    async with server, client_for(url, policy) as client:
        with pytest.raises(DownloadError):
            await client.tickets.download_attachment(1, 2, tmp_path)


# --- money: every failure after a POST may have been sent says so --------------------------


async def _garbled(request: web.Request) -> web.Response:
    return web.Response(body=b"\x1f\x8b garbage", headers={"Content-Encoding": "gzip"})


async def _not_json(request: web.Request) -> web.Response:
    return web.Response(text="<html>order created</html>", content_type="application/json")


@pytest.mark.parametrize("answer", [_garbled, _not_json], ids=["corrupt gzip", "not json"])
async def test_a_renew_answered_2xx_with_an_unreadable_body_says_check_your_orders(
    answer: Callable[[web.Request], Awaitable[web.Response]],
) -> None:
    calls = [0]

    async def renew(request: web.Request) -> web.Response:
        calls[0] += 1
        return await answer(request)

    async with (
        hostile({"/support/renew": renew}) as url,
        client_for(url) as client,
    ):
        with pytest.raises(ResponseDecodeError) as info:
            await client.plans.renew(billing_cycle=1)
    assert info.value.request_sent is True and MAY_HAVE_REACHED_VPSBG in str(info.value)
    assert calls == [1]


async def test_a_renew_that_times_out_says_check_your_orders() -> None:
    calls = [0]

    async def slow(request: web.Request) -> web.Response:
        calls[0] += 1
        await asyncio.sleep(2)
        return web.json_response({})

    async with (
        hostile({"/support/renew": slow}) as url,
        client_for(url, timeout=0.3) as client,
    ):
        with pytest.raises(Exception) as info:
            await client.plans.renew(billing_cycle=1)
    assert getattr(info.value, "request_sent", None) is True
    assert MAY_HAVE_REACHED_VPSBG in str(info.value) and calls == [1]


async def test_a_cancelled_renew_carries_the_advice_as_a_note() -> None:
    arrived = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        arrived.set()
        await asyncio.sleep(5)
        return web.json_response({})

    async with (
        hostile({"/support/renew": slow}) as url,
        client_for(url) as client,
    ):
        task = asyncio.ensure_future(client.plans.renew(billing_cycle=1))
        await arrived.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task
    # 3.11 hands the awaiting side the pipeline's own CancelledError; 3.10 a fresh one raised
    # from it (its __context__), which is where the note is there.
    own = info.value if sys.version_info >= (3, 11) else info.value.__context__
    assert MAY_HAVE_REACHED_VPSBG in getattr(own, "__notes__", [])


async def test_a_cancelled_read_carries_no_advice() -> None:
    arrived = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        arrived.set()
        await asyncio.sleep(5)
        return await ticket(request)

    async with (
        hostile({"/support/tickets/1": slow}) as url,
        client_for(url) as client,
    ):
        task = asyncio.ensure_future(client.tickets.get(1))
        await arrived.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task
    assert not getattr(info.value, "__notes__", [])


def test_ctrl_c_during_a_blocking_renew_says_check_your_orders() -> None:
    arrived = threading.Event()

    async def slow(request: web.Request) -> web.Response:
        arrived.set()
        await asyncio.sleep(5)
        return web.json_response({})

    def press_ctrl_c() -> None:
        if arrived.wait(10):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with (
            HostileThread({"/support/renew": slow}) as server,
            Client(token=TOKEN, base_url=server.url) as client,
        ):
            presser = threading.Thread(target=press_ctrl_c)
            presser.start()
            with pytest.raises(KeyboardInterrupt) as info:
                client.plans.renew(billing_cycle=1)
            presser.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert MAY_HAVE_REACHED_VPSBG in getattr(info.value, "__notes__", [])


def test_ctrl_c_during_a_cli_renew_prints_the_advice() -> None:
    arrived = threading.Event()

    async def slow(request: web.Request) -> web.Response:
        arrived.set()
        await asyncio.sleep(20)
        return web.json_response({})

    with HostileThread({"/support/renew": slow}) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VPSBG_")}
        env |= {"VPSBG_BASE_URL": server.url, "VPSBG_API_TOKEN": TOKEN}
        argv = interruptible("vpsbg_support.cli", "plans", "renew", "--billing-cycle", "1")
        child = subprocess.Popen(
            [*argv, "--yes"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            assert arrived.wait(30), "the renew never arrived"
            child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()  # fail, never hang the suite
                child.communicate()
    assert child.returncode == 130, err
    assert err.strip().splitlines() == [
        f"vpsbg-support: error: interrupted. {MAY_HAVE_REACHED_VPSBG}"
    ]


# --- what a response tells about itself ----------------------------------------------------


async def test_a_raw_ticket_has_its_bytes_headers_request_id_and_retries() -> None:
    calls = [0]

    async def flaky(request: web.Request) -> web.Response:
        calls[0] += 1
        if calls[0] == 1:
            return web.Response(status=503)
        return web.Response(
            body=TICKET, content_type="application/json", headers={"X-Request-ID": "req-42"}
        )

    async with (
        hostile({"/support/tickets/216": flaky}) as url,
        client_for(url) as client,
    ):
        raw = await client.tickets.with_raw_response.get(216)
    assert raw.status_code == 200 and raw.content == TICKET and raw.json()["id"] == 216
    assert raw.request_id == "req-42" and raw.headers["x-request-id"] == "req-42"
    assert raw.retries_taken == 1 and raw.elapsed > 0 and raw.method == "GET"
    assert raw.url == f"{url}/support/tickets/216" and raw.text().startswith("{")
    assert raw.parse().id == 216 and TICKET not in repr(raw).encode()


async def test_an_endless_error_body_is_read_only_up_to_a_bound() -> None:
    sent = [0]

    async def endless_500(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=500)
        await resp.prepare(request)
        try:
            for _ in range(4096):  # 256 MiB, streamed
                await resp.write(b"e" * 65536)
                sent[0] += 65536
        except (ConnectionError, RuntimeError):
            pass
        return resp

    async with (
        hostile({"/support/tickets/1": endless_500}) as url,
        client_for(url, RetryPolicy(max_retries=0)) as client,
    ):
        with pytest.raises(InternalServerError) as info:
            await client.tickets.get(1)
    assert isinstance(info.value.body, str) and len(info.value.body) <= 64 * 1024
    assert sent[0] < 64 * MIB


async def test_max_response_size_is_the_clients_to_tune() -> None:
    async with (
        hostile({"/support/tickets/216": ticket}) as url,
        client_for(url, max_response_size=len(TICKET) - 1) as small,
        client_for(url, max_response_size=len(TICKET)) as exact,
    ):
        with pytest.raises(ResponseTooLargeError) as info:
            await small.tickets.get(216)
        assert (await exact.tickets.get(216)).id == 216
    assert info.value.limit == len(TICKET) - 1 and info.value.body == b""
