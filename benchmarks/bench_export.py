"""Export throughput: export_tickets vs raw aiohttp (>= 1.2x) and sequential requests (>= 10x).

1,000 tickets of 3 messages each, no attachments, 20 ms of injected latency on every request. The
fake runs in a child process so that serving never competes with the exporters for the GIL. The
three exporters do the same requests (every list page, then every ticket) and write the same
``tickets.jsonl``; the ratios compare tickets per second measured in this one run.

It also prints the floor: the first list page plus ceil(1000 / 16) waves of the fastest single
ticket round trip seen (20 ms of latency plus serving). No exporter that keeps 16 tickets in
flight can finish sooner, so raw aiohttp's time over the floor is the most any exporter can gain
on it in this set-up.

``python benchmarks/bench_export.py``
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import requests

from vpsbg_support import AsyncClient
from vpsbg_support.export import TICKETS_FILE, export_tickets

TICKETS = 1000
MESSAGES = 3
LATENCY = 0.020
CONCURRENCY = 16
PER_PAGE = 100
TARGET_VS_RAW = 1.2
TARGET_VS_REQUESTS = 10.0
ROUNDS = 2  # the concurrent exporters run this many times each, alternating; the best counts


# -- the server (child process) ----------------------------------------------------------------


async def _serve() -> None:
    from vpsbg_support.testing import FakeVPSBG

    fake = FakeVPSBG(seed=0, tickets=TICKETS, rate_limit=10**9, per_page_max=PER_PAGE)
    for ticket in fake.state.tickets:
        del ticket.messages[MESSAGES:]
        for message in ticket.messages:
            message.attachments.clear()
        while len(ticket.messages) < MESSAGES:
            fake.state.reply(ticket.id, "One more detail about the problem.")
    fake.faults.add(None, "latency", seconds=LATENCY)
    async with fake:
        print(json.dumps({"url": fake.url, "token": fake.token}), flush=True)
        # Serve until the parent closes our stdin.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


# -- the three exporters -----------------------------------------------------------------------


async def library_export(url: str, token: str, dest: Path) -> None:
    """This library: ``export_tickets`` at CONCURRENCY, tickets only."""
    async with AsyncClient(token, base_url=url) as client:
        summary = await export_tickets(
            client, dest, concurrency=CONCURRENCY, attachments=False, per_page=PER_PAGE
        )
    if summary.tickets != TICKETS:
        print(f"  warning: export_tickets exported {summary.tickets} tickets")


async def raw_aiohttp_export(url: str, token: str, dest: Path) -> None:
    """What one would write by hand: list pages in order, fetch tickets 16 at a time."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    limit = asyncio.Semaphore(CONCURRENCY)
    lines: dict[int, bytes] = {}

    async with aiohttp.ClientSession(headers=headers) as session:

        async def fetch(ticket_id: int) -> None:
            async with limit, session.get(f"{url}/support/tickets/{ticket_id}") as response:
                response.raise_for_status()
                ticket = await response.json()
            lines[ticket_id] = json.dumps(ticket, ensure_ascii=False).encode() + b"\n"

        tasks = []
        page = 1
        while True:
            params = {"page": page, "per_page": PER_PAGE}
            async with session.get(f"{url}/support/tickets", params=params) as response:
                response.raise_for_status()
                body = await response.json()
            tasks += [asyncio.create_task(fetch(item["id"])) for item in body["data"]]
            if body["links"]["next"] is None:
                break
            page += 1
        await asyncio.gather(*tasks)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / TICKETS_FILE).write_bytes(b"".join(lines[k] for k in sorted(lines)))
    if len(lines) != TICKETS:
        print(f"  warning: raw aiohttp exported {len(lines)} tickets")


def requests_export(url: str, token: str, dest: Path) -> None:
    """The blocking baseline: one ``requests`` call after another."""
    lines: dict[int, bytes] = {}
    with requests.Session() as session:
        session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
        ids: list[int] = []
        page = 1
        while True:
            params = {"page": page, "per_page": PER_PAGE}
            response = session.get(f"{url}/support/tickets", params=params, timeout=30)
            response.raise_for_status()
            body = response.json()
            ids += [item["id"] for item in body["data"]]
            if body["links"]["next"] is None:
                break
            page += 1
        for ticket_id in ids:
            response = session.get(f"{url}/support/tickets/{ticket_id}", timeout=30)
            response.raise_for_status()
            lines[ticket_id] = json.dumps(response.json(), ensure_ascii=False).encode() + b"\n"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / TICKETS_FILE).write_bytes(b"".join(lines[k] for k in sorted(lines)))
    if len(lines) != TICKETS:
        print(f"  warning: requests exported {len(lines)} tickets")


# -- measuring ---------------------------------------------------------------------------------


async def _floor(url: str, token: str) -> tuple[float, float]:
    """The least time any exporter can take here, from the fastest of 20 single round trips:
    the first list page must arrive before any ticket is known, then the tickets go
    CONCURRENCY at a time, each wave taking at least one round trip. Returns (floor seconds,
    fastest ticket round trip)."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def fastest(target: str, params: dict[str, int] | None = None) -> float:
        best = float("inf")
        for _ in range(20):
            started = time.perf_counter()
            async with session.get(target, params=params) as response:
                await response.read()
            best = min(best, time.perf_counter() - started)
        return best

    async with aiohttp.ClientSession(headers=headers) as session:
        page = await fastest(f"{url}/support/tickets", {"page": 1, "per_page": PER_PAGE})
        ticket = await fastest(f"{url}/support/tickets/1")
    waves = -(-TICKETS // CONCURRENCY)
    return page + waves * ticket, ticket


def _timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _async(
    exporter: Callable[[str, str, Path], Coroutine[Any, Any, None]], url: str, token: str
) -> Callable[[], None]:
    def run() -> None:
        with tempfile.TemporaryDirectory() as folder:
            asyncio.run(exporter(url, token, Path(folder) / "out"))

    return run


def main() -> None:
    """Start the fake, time the three exporters, print seconds, throughput and both ratios."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        if server.stdout is None:
            raise RuntimeError("the fake's stdout is not a pipe")
        info = json.loads(server.stdout.readline())
        url, token = info["url"], info["token"]
        print(
            f"bench_export: {TICKETS} tickets x {MESSAGES} messages, no attachments,"
            f" {LATENCY * 1000:.0f} ms latency per request, concurrency {CONCURRENCY},"
            f" {PER_PAGE} per page"
        )
        floor, round_trip = asyncio.run(_floor(url, token))
        library = raw = float("inf")
        for _ in range(ROUNDS):
            library = min(library, _timed(_async(library_export, url, token)))
            raw = min(raw, _timed(_async(raw_aiohttp_export, url, token)))

        def blocking() -> None:
            with tempfile.TemporaryDirectory() as folder:
                requests_export(url, token, Path(folder) / "out")

        sequential = _timed(blocking)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)

    for name, seconds in (
        ("export_tickets", library),
        ("raw aiohttp", raw),
        ("sequential requests", sequential),
    ):
        print(f"  {name:<20} {seconds:7.2f} s  {TICKETS / seconds:7.0f} tickets/s")
    print(
        f"  {'floor':<20} {floor:7.2f} s  {TICKETS / floor:7.0f} tickets/s"
        f"  (first page + {-(-TICKETS // CONCURRENCY)} waves of {CONCURRENCY} x the fastest"
        f" ticket round trip, {round_trip * 1000:.1f} ms; no exporter can be faster)"
    )
    vs_raw = raw / library  # throughput ratio = inverse time ratio
    vs_requests = sequential / library
    print(
        f"export_tickets / raw aiohttp throughput: {vs_raw:.2f}x (target >= {TARGET_VS_RAW})"
        f" {'OK' if vs_raw >= TARGET_VS_RAW else 'BELOW TARGET'}"
    )
    print(
        f"  raw aiohttp takes {raw / floor:.2f}x the floor: the best any exporter could reach"
        f" against it here is {raw / floor:.2f}x; {TARGET_VS_RAW}x would need"
        f" {raw / TARGET_VS_RAW:.2f} s"
    )
    print(
        f"export_tickets / sequential requests throughput: {vs_requests:.1f}x"
        f" (target >= {TARGET_VS_REQUESTS:.0f}x)"
        f" {'OK' if vs_requests >= TARGET_VS_REQUESTS else 'BELOW TARGET'}"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        asyncio.run(_serve())
    else:
        main()
