"""What the blocking Client costs over AsyncClient: sequential ``tickets.get`` against the fake.

Run: ``.venv/bin/python benchmarks/bench_sync_overhead.py [--calls 2000] [--rounds 5]``.
Prints the best-of-rounds time per call for each client, the median of the per-round ratios
(rounds alternate async and blocking, so a machine busy with something else skews a pair less
than it skews two best-ofs taken at different moments) and the target (<= 1.25); it never
asserts. The fake runs on its own thread, so both clients pay the same server cost. Also prints
what one bare hand-off to the loop thread and back costs here (a no-op coroutine through
``LoopThread.run``), which is the floor of the blocking client's overhead on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from vpsbg_support._client import AsyncClient
from vpsbg_support._loop_thread import LoopThread
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


async def _noop() -> None:
    return None


def time_handoff(calls: int) -> float:
    runner = LoopThread()
    try:
        runner.run(_noop())
        started = time.perf_counter()
        for _ in range(calls):
            runner.run(_noop())
        return time.perf_counter() - started
    finally:
        runner.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with FakeVPSBGThread(FakeVPSBG(seed=0, tickets=5, rate_limit=10**9)) as fake:
        ticket_id = fake.state.tickets[0].id
        sync_times, async_times = [], []
        for _ in range(args.rounds):  # interleaved, so drift affects both alike
            async_times.append(time_async(fake, ticket_id, args.calls))
            sync_times.append(time_sync(fake, ticket_id, args.calls))
    handoff = min(time_handoff(args.calls) for _ in range(args.rounds))
    best_sync, best_async = min(sync_times), min(async_times)
    per_call = 1e6 / args.calls
    print(f"{args.calls} sequential tickets.get, best of {args.rounds} rounds")
    print(f"  AsyncClient: {best_async * per_call:8.1f} us/call")
    print(f"  Client:      {best_sync * per_call:8.1f} us/call")
    print(f"  bare hand-off to the loop thread and back: {handoff * per_call:.1f} us/call")
    ratio = statistics.median(s / a for s, a in zip(sync_times, async_times, strict=True))
    verdict = "ok" if ratio <= TARGET_RATIO else "over target"
    print(
        f"  ratio Client/AsyncClient: {ratio:.3f} median of rounds, "
        f"{best_sync / best_async:.3f} of bests (target <= {TARGET_RATIO}: {verdict})"
    )


if __name__ == "__main__":
    main()
