"""Time rendering the HTML archive (index, pages, tickets.csv) of 10,000 tickets (target <= 10 s).

Three runs into one temporary folder: the first renders and writes every page; the second finds
every page up to date (the stamps match) and writes none; the third follows a change to 10
tickets and rewrites their pages only. Tickets average ~10 HTML messages (so nh3 has real work)
and a few attachments. The archive is an in-memory reader: this times the views, not SQLite.
Prints each time, its ratio to the target, and the median of REPEATS first runs.

Then the same through the real thing: FakeVPSBG's 10,000 tickets (plain-text messages) exported
into ``archive.sqlite`` (not timed), and ``render_html(Archive(folder))`` timed once, SQLite
reads and parsing included.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs

from vpsbg_support.archive import ArchivedAttachment, TicketVersion
from vpsbg_support.archive.html import render_html
from vpsbg_support.models import Attachment, Ticket, TicketMessage

TICKETS = 10_000
TARGET_SECONDS = 10.0
CHANGED = 10
REPEATS = 3
_EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
_WORDS = (
    *("the", "server", "does", "not", "respond", "after", "the", "reboot", "please", "check"),
    "<b>firewall</b>",
    "<a href='https://vpsbg.eu/help'>help</a>",
    "<br>",
    "сървърът",
    "не",
    "отговаря",
    "87.120.8.29",
)


class _Reader:
    """An ArchiveReader over generated tickets (files are listed, not written)."""

    def __init__(self, path: Path, tickets: list[Ticket]) -> None:
        self.path = path
        self.versions = {t.id: [_version(t, t.id)] for t in tickets}
        self.files = [
            ArchivedAttachment(
                ticket_id=t.id,
                attachment_id=a.id,
                name=a.name,
                path=f"attachments/{t.id}/{a.id}-{a.name}",
                size=a.size or 0,
                sha256="0" * 64,
                downloaded_at=_EPOCH,
            )
            for t in tickets
            for a in t.attachments
        ]

    def tickets(self) -> list[Ticket]:
        return [v[-1].ticket for v in self.versions.values()]

    def ticket(self, ticket_id: int) -> Ticket:
        return self.versions[ticket_id][-1].ticket

    def history(self, ticket_id: int) -> list[TicketVersion]:
        return self.versions[ticket_id]

    def attachments(self, ticket_id: int | None = None) -> list[ArchivedAttachment]:
        return [f for f in self.files if ticket_id in (None, f.ticket_id)]


def _version(ticket: Ticket, version_id: int) -> TicketVersion:
    return TicketVersion(
        ticket=ticket,
        raw=b"{}",
        updated_at=ticket.updated_at,
        fetched_at=_EPOCH,
        run_id=1,
        version_id=version_id,
    )


def _tickets(count: int, seed: int = 1) -> list[Ticket]:
    rng = random.Random(seed)
    result = []
    for ticket_id in range(1, count + 1):
        created = _EPOCH + timedelta(minutes=ticket_id * 7)
        messages = tuple(
            TicketMessage(
                id=ticket_id * 100 + n,
                content="<p>" + " ".join(rng.choices(_WORDS, k=rng.randint(20, 80))) + "</p>",
                is_customer=n % 2 == 0,
                created_at=created + timedelta(hours=n),
                attachments=tuple(
                    Attachment(id=ticket_id * 1000 + n * 10 + k, name=f"log-{k}.png", size=4096)
                    for k in range(rng.choice((0, 0, 0, 1, 2)))
                ),
            )
            for n in range(rng.randint(1, 20))
        )
        result.append(
            Ticket(
                id=ticket_id,
                status=rng.choice(("opened", "answered", "resolved")),
                subject=f"Ticket {ticket_id}: " + " ".join(rng.choices(_WORDS, k=6)),
                created_at=created,
                updated_at=messages[-1].created_at,
                department="tech-support",
                service_label="ubuntu-16gb - 87.120.8.29",
                messages=messages,
            )
        )
    return result


def _cpu() -> float:
    """CPU time of this process (all threads) and of its finished children (the workers)."""
    times = os.times()
    return time.process_time() + times.children_user + times.children_system


def _timed(reader: _Reader) -> tuple[float, float, int]:
    """Wall time, CPU time (worker processes included) and pages written by one render."""
    start, cpu = time.perf_counter(), _cpu()
    summary = render_html(reader)
    return time.perf_counter() - start, _cpu() - cpu, summary.pages_written


def main() -> None:
    tickets = _tickets(TICKETS)
    messages = sum(len(t.messages) for t in tickets)
    print(f"{TICKETS} tickets, {messages} messages; target {TARGET_SECONDS:.0f} s")
    firsts, cpus = [], []
    for repeat in range(REPEATS):
        with tempfile.TemporaryDirectory() as folder:
            reader = _Reader(Path(folder), tickets)
            first, cpu, written = _timed(reader)
            firsts.append(first)
            cpus.append(cpu)
            print(f"  first run:  {first:6.2f} s wall, {cpu:6.2f} s CPU ({written} pages)")
            if repeat:
                continue
            again, again_cpu, unchanged_written = _timed(reader)
            for ticket in tickets[:CHANGED]:
                changed = attrs.evolve(ticket, status="resolved")
                reader.versions[ticket.id].append(_version(changed, TICKETS + ticket.id))
            after, after_cpu, changed_written = _timed(reader)
        print(f"  no change:  {again:6.2f} s wall, {again_cpu:6.2f} s CPU ({unchanged_written})")
        print(
            f"  {CHANGED} changed: {after:6.2f} s wall, {after_cpu:6.2f} s CPU ({changed_written})"
        )
    median, cpu_median = statistics.median(firsts), statistics.median(cpus)
    print(
        f"first run, median of {REPEATS}: {median:.2f} s wall = {median / TARGET_SECONDS:.2f}x the "
        f"{TARGET_SECONDS:.0f} s target ({'met' if median <= TARGET_SECONDS else 'MISSED'}); "
        f"{cpu_median:.2f} s CPU = {cpu_median / TARGET_SECONDS:.2f}x"
    )


async def _export(folder: Path) -> None:
    from vpsbg_support import AsyncClient
    from vpsbg_support.archive import export_tickets
    from vpsbg_support.testing import FakeVPSBG

    async with FakeVPSBG(seed=1, tickets=TICKETS, rate_limit=10**9) as fake:
        client = AsyncClient(fake.token, base_url=fake.url)
        async with client:
            await export_tickets(client, folder, attachments=False, concurrency=16)


def real_archive() -> None:
    """Render a real archive of FakeVPSBG's tickets (exported first, untimed)."""
    from vpsbg_support.archive import Archive

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_export(Path(folder)))
        with Archive(folder) as archive:
            start, cpu = time.perf_counter(), _cpu()
            summary = render_html(archive)
            wall, cpu = time.perf_counter() - start, _cpu() - cpu
    print(
        f"real archive of {summary.tickets} tickets: {wall:.2f} s wall = "
        f"{wall / TARGET_SECONDS:.2f}x the target, {cpu:.2f} s CPU = {cpu / TARGET_SECONDS:.2f}x"
    )


if __name__ == "__main__":
    main()
    real_archive()
