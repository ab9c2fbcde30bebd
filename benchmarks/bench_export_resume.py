"""Resume cost of export_tickets: time and peak memory of loading a 20,000-ticket journal.

The journal is written by the export's own ``_Journal.add_ticket`` (synthetic tickets of about
3.5 kB: 3 messages, 2 attachments), then read back by ``_Journal.load()`` as a resuming run
does: the time is the best of ROUNDS loads without tracing, the memory the peak of one load
traced with tracemalloc. The same journal with only its ticket lines (what earlier versions
wrote) is loaded too: that takes the full-parse path.

``python benchmarks/bench_export_resume.py``
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from vpsbg_support.export import _TICKET_PREFIX, _Journal

TICKETS = 20_000
ROUNDS = 2
_TEXT = (
    "the server does not respond after the reboot , please check <p>the firewall</p> "
    'rules "eth0" interface сървърът не отговаря ünïcode 87.120.8.29 disk I/O latency '
)


def _ticket(tid: int) -> dict[str, Any]:
    messages = [
        {
            "id": tid * 10 + n,
            "content": (_TEXT * 8)[: 770 + 37 * n],
            "is_customer": n % 2 == 0,
            "created_at": f"2024-10-{1 + n:02d}T11:54:{tid % 60:02d}.000000Z",
            "attachments": [
                {
                    "id": tid * 10 + n,
                    "name": f"screenshot-{n}.png",
                    "size": 1426 + tid,
                    "mimeType": "image/png",
                }
            ]
            if n < 2
            else [],
            "user": "Ana Petrova",
        }
        for n in range(3)
    ]
    return {
        "id": tid,
        "status": "opened",
        "subject": f"Server {tid} does not respond after the reboot",
        "updated_at": f"2024-10-05T08:{tid % 60:02d}:{tid % 59:02d}.000000Z",
        "user": "Ana Petrova",
        "messages": messages,
    }


def _load(path: Path) -> _Journal:
    journal = _Journal(path)
    journal.load()
    return journal


def _measure(path: Path) -> tuple[float, int, int, int]:
    """Best time of ROUNDS untraced loads; what one traced load holds after it, and its peak."""
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        loaded = len(_load(path).tickets)
        best = min(best, time.perf_counter() - started)
    tracemalloc.start()
    journal = _load(path)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del journal
    return best, held, peak, loaded


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "journal.jsonl"
        writer = _Journal(path)
        writer.open()
        try:
            for tid in range(1, TICKETS + 1):
                writer.add_ticket(_ticket(tid))
        finally:
            writer.close()
        size = path.stat().st_size
        old = Path(folder) / "old-journal.jsonl"
        with open(path, "rb") as source, open(old, "wb") as out:
            out.writelines(line for line in source if line.startswith(_TICKET_PREFIX))
        print(f"journal: {TICKETS} tickets, {size / TICKETS:.0f} bytes per ticket on average")
        for label, journal in (("current journal", path), ("ticket lines only", old)):
            seconds, held, peak, loaded = _measure(journal)
            print(
                f"{label:>17}: {loaded} tickets loaded in {seconds:.2f} s; "
                f"{held / 1e6:.1f} MB held after, {peak / 1e6:.1f} MB peak (tracemalloc)"
            )


if __name__ == "__main__":
    main()
