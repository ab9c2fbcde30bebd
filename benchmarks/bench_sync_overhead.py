"""What the blocking Client costs over AsyncClient: sequential ``tickets.get`` against the fake.

Run: ``.venv/bin/python benchmarks/bench_sync_overhead.py [--calls 2000] [--rounds 5]``.
Prints the best-of-rounds time per call for each client, the median of the per-round ratios
(rounds alternate async and blocking, so a machine busy with something else skews a pair less
than it skews two best-ofs taken at different moments) and the target (<= 1.25), in wall-clock
time and in CPU time of this process (steadier on a shared machine); it never asserts. The fake
runs in its own process (``python -m vpsbg_support.testing``), so its work neither shares this
process's GIL with the client's two threads nor counts in its CPU time. Also prints what a bare
call costs here (a no-op coroutine through ``LoopThread.run``): driven by the calling thread,
as a script's calls are, and handed to the loop's thread and back, as calls from inside a
running event loop are.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

from vpsbg_support._client import AsyncClient
from vpsbg_support._loop_thread import LoopThread
from vpsbg_support._sync import Client

TARGET_RATIO = 1.25

Timing = tuple[float, float]


class FakeProcess:
    """The fake API in a child process; its URL and write token read from its banner."""

    def __enter__(self) -> FakeProcess:
        command = [sys.executable, "-m", "vpsbg_support.testing", "--port", "0", "--tickets", "5"]
        self._proc = subprocess.Popen(
            [*command, "--rate-limit", str(10**9)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        self.url = self._proc.stdout.readline().split(" at ", 1)[1].strip()
        self.token = self._proc.stdout.readline().split(":", 1)[1].strip()
        return self

    def __exit__(self, *exc: object) -> None:
        self._proc.terminate()
        self._proc.wait(10)


def _now() -> Timing:
    return time.perf_counter(), time.process_time()


def _since(started: Timing) -> Timing:
    wall, cpu = _now()
    return wall - started[0], cpu - started[1]


def time_sync(fake: FakeProcess, ticket_id: int, calls: int) -> Timing:
    with Client(token=fake.token, base_url=fake.url, max_retries=0) as client:
        client.tickets.get(ticket_id)  # warm: loop thread, session, connection
        started = _now()
        for _ in range(calls):
            client.tickets.get(ticket_id)
        return _since(started)


def time_async(fake: FakeProcess, ticket_id: int, calls: int) -> Timing:
    async def run() -> Timing:
        async with AsyncClient(fake.token, base_url=fake.url, max_retries=0) as client:
            await client.tickets.get(ticket_id)
            started = _now()
            for _ in range(calls):
                await client.tickets.get(ticket_id)
            return _since(started)

    return asyncio.run(run())


async def _noop() -> None:
    return None


def time_bare_calls(calls: int) -> tuple[float, float]:
    """Seconds for ``calls`` no-op coroutines through ``LoopThread.run``: driven by this
    thread (a script's case), then handed to the loop's thread and back (the case of a call
    made from inside a running event loop, as in Jupyter)."""
    runner = LoopThread()

    def driven() -> float:
        runner.run(_noop())
        started = time.perf_counter()
        for _ in range(calls):
            runner.run(_noop())
        return time.perf_counter() - started

    async def handed_off() -> float:  # a running loop here: every call is handed off
        return driven()

    try:
        return driven(), asyncio.run(handed_off())
    finally:
        runner.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with FakeProcess() as fake:
        with Client(token=fake.token, base_url=fake.url) as client:
            ticket_id = client.tickets.list().items[0].id
        sync_times: list[Timing] = []
        async_times: list[Timing] = []
        for _ in range(args.rounds):  # interleaved, so drift affects both alike
            async_times.append(time_async(fake, ticket_id, args.calls))
            sync_times.append(time_sync(fake, ticket_id, args.calls))
    bare = [time_bare_calls(args.calls) for _ in range(args.rounds)]
    driven, handed_off = min(b[0] for b in bare), min(b[1] for b in bare)
    per_call = 1e6 / args.calls
    print(f"{args.calls} sequential tickets.get, best of {args.rounds} rounds")
    print(f"  a no-op call driven by the calling thread: {driven * per_call:.1f} us/call (wall)")
    print(
        f"  a no-op call handed to the loop's thread and back (from a running loop):"
        f" {handed_off * per_call:.1f} us/call (wall)"
    )
    for i, what in enumerate(("wall-clock", "CPU (this process)")):
        best_sync, best_async = min(t[i] for t in sync_times), min(t[i] for t in async_times)
        ratio = statistics.median(s[i] / a[i] for s, a in zip(sync_times, async_times, strict=True))
        verdict = "ok" if ratio <= TARGET_RATIO else "over target"
        print(f" {what}:")
        print(f"  AsyncClient: {best_async * per_call:8.1f} us/call")
        print(f"  Client:      {best_sync * per_call:8.1f} us/call")
        print(
            f"  ratio Client/AsyncClient: {ratio:.3f} median of rounds, "
            f"{best_sync / best_async:.3f} of bests (target <= {TARGET_RATIO}: {verdict})"
        )


if __name__ == "__main__":
    main()
