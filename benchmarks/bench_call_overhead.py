"""What the library costs per call: ``tickets.get`` vs raw aiohttp + ``json.loads``, and the
blocking Client vs AsyncClient, on the same loopback server in the same run.

Run: ``.venv/bin/python benchmarks/bench_call_overhead.py [--calls 2000] [--rounds 5]
[--profile]``. The server is a bare aiohttp.web app in its own process answering one fixed
ticket body, so the server's cost is the same for every client and small. Rounds interleave the
clients; printed are the best-of-rounds time per call and the median of the per-round ratios
(library / raw, target <= 1.15; Client / AsyncClient, target <= 1.25), in wall-clock time and
in CPU time of the client process (steadier on a shared machine). A fourth client, raw + the
same structuring into a Ticket, shows what the pipeline itself costs (no target). It never
asserts.
``--profile`` prints a cProfile of the library's calls instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from vpsbg_support import AsyncClient, Client, Ticket
from vpsbg_support._convert import structure

TOKEN = "bench-token-0123456789abcdef"
BODY_PATH = Path(__file__).parent.parent / "tests" / "data" / "ticket_get_example_drifted.json"
TARGET_RAW, TARGET_SYNC = 1.15, 1.25


_SERVER = """
import asyncio, sys
from aiohttp import web

BODY = open(sys.argv[1], "rb").read()

async def ticket(request):
    return web.Response(body=BODY, content_type="application/json")

async def main():
    app = web.Application()
    app.router.add_get("/v1/support/tickets/{id}", ticket)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


class Server:
    """A loopback server in its own process (no GIL shared with the clients measured)
    answering GET /v1/support/tickets/{id} with one fixed ticket body."""

    def __enter__(self) -> Server:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(BODY_PATH)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        self.url = f"http://127.0.0.1:{int(self._proc.stdout.readline())}/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(10)


Timing = tuple[float, float]


def _now() -> Timing:
    return time.perf_counter(), time.process_time()


def _since(started: Timing) -> Timing:
    """Wall-clock and CPU seconds (this process, all threads) since ``started``."""
    wall, cpu = _now()
    return wall - started[0], cpu - started[1]


def time_raw(url: str, calls: int, parse: Callable[[bytes], object] = json.loads) -> Timing:
    async def run() -> Timing:
        headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
        async with aiohttp.ClientSession() as session:
            target = f"{url}/support/tickets/216"
            started = (0.0, 0.0)
            for i in range(calls + 1):
                if i == 1:
                    started = _now()  # the first call warms the connection
                async with session.get(target, headers=headers) as resp:
                    parse(await resp.read())
            return _since(started)

    return asyncio.run(run())


def _ticket(body: bytes) -> Ticket:
    return structure(json.loads(body), Ticket)


def time_raw_models(url: str, calls: int) -> Timing:
    """The raw baseline plus the structuring into a Ticket the library must also do: what is
    left between this and AsyncClient is the pipeline's own cost (not a target, a reading aid)."""
    return time_raw(url, calls, _ticket)


def time_async(url: str, calls: int) -> Timing:
    async def run() -> Timing:
        async with AsyncClient(TOKEN, base_url=url, max_retries=0) as client:
            await client.tickets.get(216)
            started = _now()
            for _ in range(calls):
                await client.tickets.get(216)
            return _since(started)

    return asyncio.run(run())


def time_sync(url: str, calls: int) -> Timing:
    with Client(token=TOKEN, base_url=url, max_retries=0) as client:
        client.tickets.get(216)
        started = _now()
        for _ in range(calls):
            client.tickets.get(216)
        return _since(started)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with Server() as server:
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(time_async, server.url, args.calls)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
            return
        raw: list[Timing] = []
        models: list[Timing] = []
        lib: list[Timing] = []
        sync: list[Timing] = []
        for _ in range(args.rounds):
            raw.append(time_raw(server.url, args.calls))
            models.append(time_raw_models(server.url, args.calls))
            lib.append(time_async(server.url, args.calls))
            sync.append(time_sync(server.url, args.calls))
    per_call = 1e6 / args.calls
    print(f"{args.calls} sequential tickets.get, {args.rounds} interleaved rounds")
    for i, what in enumerate(("wall-clock", "CPU (client process)")):
        print(f" {what}, best of rounds:")
        print(f"  raw aiohttp + json.loads: {min(t[i] for t in raw) * per_call:8.1f} us/call")
        print(f"  raw + structure(Ticket):  {min(t[i] for t in models) * per_call:8.1f} us/call")
        print(f"  AsyncClient:              {min(t[i] for t in lib) * per_call:8.1f} us/call")
        print(f"  Client (blocking):        {min(t[i] for t in sync) * per_call:8.1f} us/call")
        lib_raw = statistics.median(a[i] / b[i] for a, b in zip(lib, raw, strict=True))
        lib_models = statistics.median(a[i] / b[i] for a, b in zip(lib, models, strict=True))
        sync_lib = statistics.median(a[i] / b[i] for a, b in zip(sync, lib, strict=True))
        print(f"  AsyncClient / raw:    {lib_raw:.3f} (median of rounds; target <= {TARGET_RAW})")
        print(
            f"  AsyncClient / (raw + structure): {lib_models:.3f} (the pipeline alone; no target)"
        )
        print(f"  Client / AsyncClient: {sync_lib:.3f} (median of rounds; target <= {TARGET_SYNC})")


if __name__ == "__main__":
    main()
