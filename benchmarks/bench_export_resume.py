"""Resume and search cost of an archive of 20,000 tickets; its bytes per ticket.

The archive is written through the export's own store (``Store.add_version`` with the same
parsing and text extraction as a run; synthetic tickets of about 3.5 kB: 3 messages, 2
attachments each, every attachment recorded as a file), then:

- resume: what a re-run does before its first request (open ``archive.sqlite``, check the
  source, load every ticket's ``updated_at``/settled flag, the attachments each ticket names,
  every recorded file's hash and status): best of ROUNDS, and the peak memory of one
  (tracemalloc); target <= 0.5 s;
- search: one ``Archive.search`` (FTS5, ranked, with a snippet), median of SEARCHES different
  queries; target <= 50 ms;
- size: bytes per ticket of ``archive.sqlite`` and ``tickets.jsonl``.

``python benchmarks/bench_export_resume.py``
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from vpsbg_support.archive import Archive
from vpsbg_support.archive._api import parse_ticket
from vpsbg_support.archive._folder import ArchiveFolder
from vpsbg_support.archive._job import _ExportJob
from vpsbg_support.archive._results import attachment_path
from vpsbg_support.archive._store import DB_FILE, FileRow, Store, WantedFile
from vpsbg_support.archive._text import messages_text
from vpsbg_support.archive._views import write_tickets

TICKETS = 20_000
ROUNDS = 3
SEARCHES = 21
SOURCE = "https://api.vpsbg.example/v1"
RESUME_TARGET = 0.5
SEARCH_TARGET = 0.050
#: Messages are drawn from these sentences (deterministically per ticket), so that a word is
#: in some tickets and not others, as in a real account (one text in every ticket would make
#: every search rank all 20,000).
_SENTENCES = [
    "the server does not respond after the reboot, please check",
    "<p>the firewall</p> rules on the eth0 interface drop packets",
    "сървърът не отговаря след рестарт",
    "ünïcode in the hostname breaks the panel",
    "ping to 87.120.8.29 times out since this morning",
    "disk I/O latency is above 200 ms on the database volume",
    "the disk is full and the backup job failed",
    "please restore yesterday's backup of the mail server",
    "the invoice for last month shows the wrong VAT number",
    "we were charged twice for the same plan",
    "the SSL certificate expired and the renewal did not run",
    "DNS records for the domain do not propagate",
    "the VPS is slow: load average stays above 20",
    "please upgrade the plan to more RAM and CPU",
    "the control panel shows an internal error when we log in",
    "email from our domain lands in spam at large providers",
    "the kernel panicked during the night, console attached",
    "a port scan from your network hit our firewall",
    "we need reverse DNS for the new IP address",
    "the snapshot could not be created: quota exceeded",
]
_WORDS = ["firewall", "reboot", "backup", "invoice VAT", "сървърът", "kernel panic*", "ssl"]


def _ticket(tid: int) -> dict[str, Any]:
    messages = [
        {
            "id": tid * 10 + n,
            "content": " ".join(
                _SENTENCES[(tid * 7 + n * 13 + k * k) % len(_SENTENCES)] for k in range(12)
            ),
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


def _build(folder: Path) -> None:
    store = Store(folder / DB_FILE)
    store.set_meta("source", SOURCE)
    run = store.start_run(
        started_at="2024-10-05T08:00:00.000000Z", source=SOURCE, since=None, attachments=True
    )
    for tid in range(1, TICKETS + 1):
        data = _ticket(tid)
        if tid % 97 == 0:
            data["subject"] = f"Disk full on server {tid}"
        raw = json.dumps(data, ensure_ascii=False).encode()
        ticket = parse_ticket(json.loads(raw))
        wanted = [
            WantedFile(attachment_id=a.id, name=a.name, path=attachment_path(tid, a), size=a.size)
            for a in ticket.attachments
        ]
        store.add_version(
            ticket_id=tid,
            raw=raw,
            updated_at=data["updated_at"],
            fetched_at="2024-10-05T09:00:00.000000Z",
            settled=True,
            run_id=run,
            subject=ticket.subject,
            status=ticket.status,
            messages=len(ticket.messages),
            files=wanted,
            text=messages_text(ticket),
            known=None,
        )
        for file in wanted:
            row = FileRow(
                ticket_id=tid,
                attachment_id=file.attachment_id,
                path=file.path,
                size=file.size or 0,
                sha256="0" * 64,
                stat=(file.size or 0, 1, tid),
            )
            store.put_file(
                row, name=file.name, downloaded_at="2024-10-05T09:00:00.000000Z", run_id=run
            )
    store.finish_run(run, finished_at="2024-10-05T09:10:00.000000Z", complete=True)
    with ArchiveFolder(folder, create=False) as view:
        write_tickets(view, store)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()


def _resume(folder: Path) -> int:
    """What a re-run does before its first request."""
    client: Any = SimpleNamespace(base_url=SOURCE)
    job = _ExportJob(
        client,
        folder,
        concurrency=8,
        attachments=True,
        since=None,
        progress=None,
        per_page=None,
        allow_other_source=False,
        source=None,
    )
    with ArchiveFolder(folder, create=False) as view:
        store = job._open(view)
        store.rollback()
        store.db.close()
    return len(job.known)


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        started = time.perf_counter()
        _build(folder)
        print(
            f"bench_export_resume: {TICKETS} tickets written in"
            f" {time.perf_counter() - started:.1f} s (setup)"
        )
        database = (folder / DB_FILE).stat().st_size
        lines = (folder / "tickets.jsonl").stat().st_size
        print(
            f"  bytes per ticket: archive.sqlite {database / TICKETS:.0f},"
            f" tickets.jsonl {lines / TICKETS:.0f}, both {(database + lines) / TICKETS:.0f}"
        )
        best = float("inf")
        for _ in range(ROUNDS):
            started = time.perf_counter()
            loaded = _resume(folder)
            best = min(best, time.perf_counter() - started)
        tracemalloc.start()
        _resume(folder)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        verdict = "OK" if best <= RESUME_TARGET else "ABOVE TARGET"
        print(
            f"  resume: {loaded} tickets loaded in {best:.3f} s (target <= {RESUME_TARGET} s)"
            f" {verdict}; {peak / 1e6:.1f} MB peak (tracemalloc)"
        )
        times = []
        with Archive(folder) as archive:
            for n in range(SEARCHES):
                query = _WORDS[n % len(_WORDS)] if n % 3 else "disk full"
                started = time.perf_counter()
                hits = archive.search(query)
                times.append(time.perf_counter() - started)
                assert hits, query
        median = statistics.median(times)
        verdict = "OK" if median <= SEARCH_TARGET else "ABOVE TARGET"
        print(
            f"  search: median {median * 1000:.1f} ms, worst {max(times) * 1000:.1f} ms over"
            f" {SEARCHES} queries (target <= {SEARCH_TARGET * 1000:.0f} ms) {verdict}"
        )


if __name__ == "__main__":
    main()
