"""VPSBG_LOG=debug|info turns the library's log on stderr on, in a fresh process; no token."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

TOKEN = "tok-LOGS-5e1f-SECRET-0123456789abcdef"

#: Run in a child: a fake API whose first answer to the ticket is a 503, then one client call.
CHILD = textwrap.dedent(
    f"""
    import asyncio
    from vpsbg_support import AsyncClient
    from vpsbg_support.testing import FakeVPSBG

    async def main():
        async with FakeVPSBG(tickets=1, token={TOKEN!r}) as fake:
            ticket_id = fake.state.tickets[0].id
            fake.faults.add("tickets.get", "status", status=503, times=1)
            async with AsyncClient({TOKEN!r}, base_url=fake.url) as client:
                await client.tickets.get(ticket_id)
                await client.tickets.list(page=2, per_page=5)
            print(ticket_id)

    asyncio.run(main())
    """
)


def run_child(level: str | None) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VPSBG_LOG"}
    if level is not None:
        env["VPSBG_LOG"] = level
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), done.stderr


@pytest.mark.parametrize("level", ["debug", "DEBUG"])
def test_vpsbg_log_debug_shows_every_attempt_on_stderr(level: str) -> None:
    ticket_id, stderr = run_child(level)
    lines = [line for line in stderr.splitlines() if "vpsbg_support" in line]
    first = next(line for line in lines if f"/support/tickets/{ticket_id}" in line)
    assert "GET" in first and "503" in first and "attempt 1" in first
    assert any("retrying in" in line for line in lines)
    assert any(
        f"/support/tickets/{ticket_id}" in line and "200" in line and "attempt 2" in line
        for line in lines
    )
    assert TOKEN not in stderr and "Bearer" not in stderr


def test_without_vpsbg_log_the_library_is_silent() -> None:
    _, stderr = run_child(None)
    assert stderr == ""
    _, stderr = run_child("chatty")  # not a level we know: nothing configured
    assert stderr == ""
