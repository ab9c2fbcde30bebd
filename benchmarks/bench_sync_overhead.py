"""What the blocking Client costs over AsyncClient: sequential ``tickets.get`` against the fake.

Run: ``.venv/bin/python benchmarks/bench_sync_overhead.py [--calls 2000] [--rounds 3]``.
Prints the best-of-rounds time per call for each client and their ratio (target <= 1.25); it
never asserts. The fake runs on its own thread, so both clients pay the same server cost.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from vpsbg_support._client import AsyncClient
from vpsbg_support._sync import Client
from vpsbg_support.testing import FakeVPSBG, FakeVPSBGThread

TARGET_RATIO = 1.25


def time_sync(fake: FakeVPSBGThread, ticket_id: int, calls: int) -> float:
    with Client(token=fake.token, base_url=fake.url, max_retries=0) as client:
        client.tickets.get(ticket_id)  # warm: loop thread, session, connection
        started = time.perf_counter()
        for _ in range(calls):
            client.tickets.get(ticket_id)
        return time.perf_counter() - started


def time_async(fake: FakeVPSBGThread, ticket_id: int, calls: int) -> float:
    async def run() -> float:
        async with AsyncClient(fake.token, base_url=fake.url, max_retries=0) as client:
            await client.tickets.get(ticket_id)
            started = time.perf_counter()
            for _ in range(calls):
                await client.tickets.get(ticket_id)
            return time.perf_counter() - started

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with FakeVPSBGThread(FakeVPSBG(seed=0, tickets=5, rate_limit=10**9)) as fake:
        ticket_id = fake.state.tickets[0].id
        sync_times, async_times = [], []
        for _ in range(args.rounds):  # interleaved, so drift affects both alike
            async_times.append(time_async(fake, ticket_id, args.calls))
            sync_times.append(time_sync(fake, ticket_id, args.calls))
    best_sync, best_async = min(sync_times), min(async_times)
    per_call = 1e6 / args.calls
    print(f"{args.calls} sequential tickets.get, best of {args.rounds} rounds")
    print(f"  AsyncClient: {best_async * per_call:8.1f} us/call")
    print(f"  Client:      {best_sync * per_call:8.1f} us/call")
    ratio = best_sync / best_async
    verdict = "ok" if ratio <= TARGET_RATIO else "over target"
    print(f"  ratio Client/AsyncClient: {ratio:.3f} (target <= {TARGET_RATIO}: {verdict})")


if __name__ == "__main__":
    main()
