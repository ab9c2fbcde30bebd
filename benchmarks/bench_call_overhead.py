"""What the library costs per call: ``tickets.get`` vs raw aiohttp + ``json.loads``, and the
blocking Client vs AsyncClient, on the same loopback server in the same run.

Run: ``.venv/bin/python benchmarks/bench_call_overhead.py [--calls 2000] [--rounds 5]
[--block 100] [--profile]``. The server is a bare aiohttp.web app in its own process answering
one fixed ticket body, so the server's cost is the same for every client and small. Each round
makes ``--calls`` calls per client, the four clients taking turns in blocks of ``--block``
calls (each client warm, on its own connection), so that all of them run under the same
machine conditions; printed are the best-of-rounds time per call and the median of the
per-round ratios
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


class Contenders:
    """The four clients, each warm on its own connection to the same server, timing blocks of
    calls in turn. Raw aiohttp and AsyncClient share one event loop run from this thread; the
    blocking Client runs its own, as it does for a user."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._open())
        self.client = Client(token=TOKEN, base_url=url, max_retries=0)
        self.client.tickets.get(216)  # warm: its loop, session and connection

    async def _open(self) -> None:
        self.session = aiohttp.ClientSession()
        self.aclient = AsyncClient(TOKEN, base_url=self.url, max_retries=0)
        self.headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
        self.target = f"{self.url}/support/tickets/216"
        for _ in range(2):  # warm both connections
            await self._raw(1, json.loads)
            await self._async(1)

    def close(self) -> None:
        self.client.close()
        self.loop.run_until_complete(self.aclient.aclose())
        self.loop.run_until_complete(self.session.close())
        self.loop.close()

    async def _raw(self, calls: int, parse: Callable[[bytes], object]) -> Timing:
        started = _now()
        for _ in range(calls):
            async with self.session.get(self.target, headers=self.headers) as resp:
                parse(await resp.read())
        return _since(started)

    async def _async(self, calls: int) -> Timing:
        started = _now()
        for _ in range(calls):
            await self.aclient.tickets.get(216)
        return _since(started)

    def raw(self, calls: int) -> Timing:
        """Raw aiohttp + json.loads."""
        return self.loop.run_until_complete(self._raw(calls, json.loads))

    def raw_models(self, calls: int) -> Timing:
        """The raw baseline plus the structuring into a Ticket the library must also do: what
        is left between this and AsyncClient is the pipeline's own cost (a reading aid)."""
        return self.loop.run_until_complete(self._raw(calls, _ticket))

    def lib(self, calls: int) -> Timing:
        """AsyncClient.tickets.get."""
        return self.loop.run_until_complete(self._async(calls))

    def sync(self, calls: int) -> Timing:
        """The blocking Client's tickets.get."""
        started = _now()
        for _ in range(calls):
            self.client.tickets.get(216)
        return _since(started)


def _ticket(body: bytes) -> Ticket:
    return structure(json.loads(body), Ticket)


def one_round(contenders: Contenders, calls: int, block: int) -> list[Timing]:
    """``calls`` calls per client in blocks of ``block``, the clients' order rotating from one
    block to the next; each client's summed time. Short alternating blocks put all four under
    the same machine conditions: on a shared VM, whole 2,000-call runs taken one after the
    other drifted by up to 40% for the same client."""
    timers = [contenders.raw, contenders.raw_models, contenders.lib, contenders.sync]
    totals = [(0.0, 0.0)] * len(timers)
    done = 0
    turn = 0
    while done < calls:
        n = min(block, calls - done)
        order = [(turn + k) % len(timers) for k in range(len(timers))]
        for k in order:
            wall, cpu = timers[k](n)
            totals[k] = (totals[k][0] + wall, totals[k][1] + cpu)
        done += n
        turn += 1
    return totals


def profile_async(url: str, calls: int) -> None:
    """cProfile of ``calls`` AsyncClient calls, printed."""

    async def run() -> None:
        async with AsyncClient(TOKEN, base_url=url, max_retries=0) as client:
            await client.tickets.get(216)
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(calls):
                await client.tickets.get(216)
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(40)

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=100, help="calls per client per turn")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with Server() as server:
        if args.profile:
            profile_async(server.url, args.calls)
            return
        raw: list[Timing] = []
        models: list[Timing] = []
        lib: list[Timing] = []
        sync: list[Timing] = []
        contenders = Contenders(server.url)
        try:
            for _ in range(args.rounds):
                for times, timing in zip(
                    (raw, models, lib, sync),
                    one_round(contenders, args.calls, args.block),
                    strict=True,
                ):
                    times.append(timing)
        finally:
            contenders.close()
    per_call = 1e6 / args.calls
    print(
        f"{args.calls} sequential tickets.get per client and round, {args.rounds} rounds,"
        f" clients taking turns in blocks of {args.block} calls"
    )
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
