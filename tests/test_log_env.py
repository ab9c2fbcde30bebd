"""VPSBG_LOG=debug|info turns the library's log on stderr on, in a fresh process; no token."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

TOKEN = "tok-LOGS-5e1f-SECRET-0123456789abcdef"

#: Run in a child: a loopback API whose first answer is a 503, each answer with a request id;
#: then one ticket read (retried) and one list with a query.
CHILD = textwrap.dedent(
    f"""
    import asyncio, itertools
    from aiohttp import web
    from vpsbg_support import AsyncClient

    counter = itertools.count(1)

    async def handle(request):
        n = next(counter)
        headers = {{"X-Request-Id": f"req-{{n}}"}}
        if n == 1:
            return web.json_response({{"message": "busy"}}, status=503, headers=headers)
        if request.path.endswith("/tickets"):
            return web.json_response([], headers=headers)
        return web.json_response({{"id": 7, "status": "opened", "subject": "s"}}, headers=headers)

    async def main():
        app = web.Application()
        app.router.add_get("/v1/support/tickets", handle)
        app.router.add_get("/v1/support/tickets/{{id}}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        async with AsyncClient({TOKEN!r}, base_url=f"http://127.0.0.1:{{port}}/v1") as client:
            await client.tickets.get(7)
            await client.tickets.list(page=2, per_page=5)
        await runner.cleanup()

    asyncio.run(main())
    """
)


def run_child(level: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "VPSBG_LOG"}
    if level is not None:
        env["VPSBG_LOG"] = level
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stderr and "Bearer" not in done.stderr
    return done.stderr.splitlines()


def test_vpsbg_log_debug_shows_every_attempt_and_retry_on_stderr() -> None:
    lines = run_child("DEBUG")
    assert all("vpsbg_support" in line for line in lines), lines
    text = "\n".join(lines)
    assert "GET /v1/support/tickets/7: sending (attempt 1)" in text
    assert "GET /v1/support/tickets/7 -> 503 (attempt 1, " in text
    assert "request id req-1)" in text
    assert "GET /v1/support/tickets/7: retrying in " in text and "(HTTP 503)" in text
    assert "GET /v1/support/tickets/7 -> 200 (attempt 2, " in text and "request id req-2" in text
    assert "GET /v1/support/tickets?page=2&per_page=5 -> 200 (attempt 1, " in text
    assert "request id req-3" in text


def test_vpsbg_log_info_shows_answers_and_retries_but_not_each_send() -> None:
    text = "\n".join(run_child("info"))
    assert "-> 503 (attempt 1" in text and "retrying in" in text and "-> 200 (attempt 2" in text
    assert "sending" not in text and " DEBUG]" not in text


@pytest.mark.parametrize("level", [None, "chatty"])
def test_without_a_known_vpsbg_log_level_the_library_is_silent(level: str | None) -> None:
    assert run_child(level) == []
