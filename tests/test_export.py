"""Bulk export against the fake: exact copies, incremental re-runs, crashes, faults and failures."""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses

from vpsbg_support import (
    AsyncClient,
    AuthenticationError,
    InvalidParameterError,
    RetryPolicy,
    Ticket,
    _settle,
)
from vpsbg_support.archive import _job
from vpsbg_support.archive._folder import ArchiveFolder
from vpsbg_support.export import (
    MANIFEST_FILE,
    TICKETS_FILE,
    ExportProgress,
    ExportSummary,
    export_tickets,
)
from vpsbg_support.testing import FakeVPSBG, FakeVPSBGThread

JOURNAL = ".export-journal.jsonl"
DATABASE = "archive.sqlite"
FAST_RETRIES = RetryPolicy(max_retries=10, initial_delay=0.001, max_delay=0.01)


def shrink(fake: FakeVPSBG | FakeVPSBGThread, limit: int = 8 * 1024) -> None:
    """Cap the generated attachments (up to 4 MiB each) so a test moves kilobytes, not megabytes."""
    for ticket in fake.state.tickets:
        for message in ticket.messages:
            for attachment in message.attachments:
                attachment.size = min(attachment.size, limit)


@pytest.fixture
async def fake() -> AsyncIterator[FakeVPSBG]:
    async with FakeVPSBG(seed=3, tickets=8, rate_limit=100_000) as server:
        shrink(server)
        yield server


def client_for(fake: FakeVPSBG | FakeVPSBGThread, **options: Any) -> AsyncClient:
    options.setdefault("retry_policy", FAST_RETRIES)
    return AsyncClient(fake.token, base_url=fake.url, **options)


async def export(fake: FakeVPSBG | FakeVPSBGThread, dest: Path, **options: Any) -> ExportSummary:
    async with client_for(fake) as client:
        return await export_tickets(client, dest, **options)


async def server_tickets(fake: FakeVPSBG | FakeVPSBGThread) -> dict[int, Any]:
    """Every ticket exactly as GET /support/tickets/{id} returns it, by raw HTTP."""
    headers = {"Authorization": f"Bearer {fake.token}", "Accept": "application/json"}
    result = {}
    async with aiohttp.ClientSession(headers=headers) as http:
        for ticket in fake.state.tickets:
            async with http.get(f"{fake.url}/support/tickets/{ticket.id}") as response:
                result[ticket.id] = await response.json()
    return result


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def exported_tickets(dest: Path) -> dict[int, Any]:
    lines = (dest / TICKETS_FILE).read_bytes().split(b"\n")
    assert lines[-1] == b"", "tickets.jsonl ends with a complete line"
    tickets = [json.loads(line) for line in lines[:-1]]
    return {t["id"]: t for t in tickets}


def attachment_files(dest: Path) -> dict[str, str]:
    """Relative path -> sha256 of every attachment file (temporary files included, on purpose)."""
    root = dest / "attachments"
    return {p.relative_to(dest).as_posix(): sha256(p) for p in root.rglob("*") if p.is_file()}


async def assert_matches_server(fake: FakeVPSBG | FakeVPSBGThread, dest: Path) -> None:
    """tickets.jsonl, attachments/ and manifest.json are exactly the server's state."""
    expected = await server_tickets(fake)
    assert exported_tickets(dest) == expected
    files = attachment_files(dest)
    wanted = {}
    for ticket in fake.state.tickets:
        for message in ticket.messages:
            for attachment in message.attachments:
                matches = [p for p in files if p.startswith(f"attachments/{ticket.id}/")]
                path = next(p for p in matches if p.split("/")[2].startswith(f"{attachment.id}-"))
                wanted[path] = fake.state.attachment_sha256(attachment.id)
    assert files == wanted
    manifest = json.loads((dest / MANIFEST_FILE).read_text())
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == {TICKETS_FILE, *wanted}
    for path, entry in listed.items():
        assert entry["sha256"] == sha256(dest / path)
        assert entry["size"] == (dest / path).stat().st_size
    assert manifest["counts"] == {
        "tickets": len(expected),
        "messages": sum(len(t["messages"]) for t in expected.values()),
        "attachments": len(wanted),
        "attachment_bytes": sum((dest / p).stat().st_size for p in wanted),
    }


# -- a full export ---------------------------------------------------------------------------


async def test_full_export_is_an_exact_copy_of_the_server(fake: FakeVPSBG, tmp_path: Path) -> None:
    hostile = fake.state.add_attachment(
        fake.state.tickets[0].id, name="../../etc/passwd", content=b"root:x:0:0\n"
    )
    events: list[ExportProgress] = []

    summary = await export(fake, tmp_path / "out", concurrency=4, progress=events.append)

    await assert_matches_server(fake, tmp_path / "out")
    assert summary.complete and summary.failures == ()
    assert summary.manifest == tmp_path / "out" / MANIFEST_FILE
    assert summary.tickets == summary.tickets_fetched == len(fake.state.tickets)
    assert summary.attachments == summary.attachments_downloaded > 0
    # A hostile name stays inside the ticket's folder.
    inside = tmp_path / "out" / "attachments" / str(hostile.ticket_id)
    assert [p.name for p in inside.iterdir() if p.name.startswith(f"{hostile.id}-")] == [
        f"{hostile.id}-.._.._etc_passwd"
    ]
    assert events[-1].done == events[-1].listed == len(fake.state.tickets)
    assert events[-1].listing_done


async def test_unknown_fields_of_the_api_are_kept(tmp_path: Path) -> None:
    base = "https://api.test/v1"
    drifted = {
        "id": 7,
        "status": "opened",
        "subject": "Disk is full",
        "updated_at": "2024-08-02T11:57:57.000000Z",
        "user": "Ana",
        "owner": {"id": 3, "email": "ana@example.com"},
        "priority": "high",
        "messages": [{"message": "Please help", "from_customer": 1, "x_flag": [1, 2.5, None]}],
    }
    with aioresponses() as mocked:
        mocked.get(
            f"{base}/support/tickets?page=1",
            payload=[{"id": 7, "status": "opened", "subject": "s"}],
        )
        mocked.get(f"{base}/support/tickets/7", payload=drifted)
        async with AsyncClient("t0ken", base_url=base, max_retries=0) as client:
            summary = await export_tickets(client, tmp_path, attachments=False)
    assert summary.complete
    assert exported_tickets(tmp_path) == {7: drifted}


# -- incremental and resumable -----------------------------------------------------------------


async def test_second_run_refetches_only_the_changed_ticket(
    fake: FakeVPSBG, tmp_path: Path
) -> None:
    await export(fake, tmp_path)
    changed = fake.state.tickets[2].id
    fake.state.reply(changed, "One more thing about this problem.")
    fake.state.add_attachment(changed, name="more.log", content=b"line 1\nline 2\n")
    fake.clear_requests()

    summary = await export(fake, tmp_path)

    assert fake.count("tickets.get") == 1
    assert [r.path for r in fake.requests if r.route == "tickets.get"] == [
        f"/v1/support/tickets/{changed}"
    ]
    assert fake.count("tickets.download_attachment") == 1
    assert summary.tickets_fetched == 1
    assert summary.tickets_unchanged == len(fake.state.tickets) - 1
    assert summary.attachments_downloaded == 1
    await assert_matches_server(fake, tmp_path)


async def test_since_exports_only_tickets_updated_since(fake: FakeVPSBG, tmp_path: Path) -> None:
    moments = sorted(t.updated_at for t in fake.state.tickets)
    since = moments[len(moments) // 2]

    summary = await export(fake, tmp_path, since=since, attachments=False)

    recent = {t.id for t in fake.state.tickets if t.updated_at >= since}
    assert set(exported_tickets(tmp_path)) == recent
    assert summary.tickets_listed == len(recent) < len(fake.state.tickets)
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert manifest["since"] is not None and not manifest["attachments_included"]
    assert not (tmp_path / "attachments").exists()
    # A full run later adds the older tickets and keeps the recent ones.
    await export(fake, tmp_path)
    await assert_matches_server(fake, tmp_path)


async def test_cancelled_run_leaves_no_manifest_and_a_rerun_finishes(
    fake: FakeVPSBG, tmp_path: Path
) -> None:
    await export(fake, tmp_path / "clean")
    fake.clear_requests()
    enough = asyncio.Event()

    def progress(event: ExportProgress) -> None:
        if event.attachments >= 3:
            enough.set()

    async with client_for(fake) as client:
        job = asyncio.create_task(
            export_tickets(client, tmp_path / "out", concurrency=2, progress=progress)
        )
        await enough.wait()
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    out = tmp_path / "out"
    assert not (out / MANIFEST_FILE).exists()
    assert not (out / TICKETS_FILE).exists()
    assert not [p for p in out.rglob("*.part")]
    first = fake.count("tickets.get")

    summary = await export(fake, out)

    assert summary.complete
    # Only what the first run had not finished is read again.
    assert summary.tickets_fetched + summary.tickets_unchanged == len(fake.state.tickets)
    assert 1 <= summary.tickets_unchanged <= first
    assert summary.attachments_unchanged >= 3
    assert (out / TICKETS_FILE).read_bytes() == (tmp_path / "clean" / TICKETS_FILE).read_bytes()
    assert attachment_files(out) == attachment_files(tmp_path / "clean")
    await assert_matches_server(fake, out)


_EXPORT_IN_CHILD = """
import asyncio, sys
from vpsbg_support import AsyncClient
from vpsbg_support.export import export_tickets

async def main():
    async with AsyncClient(sys.argv[2], base_url=sys.argv[1]) as client:
        await export_tickets(client, sys.argv[3], concurrency=2)

asyncio.run(main())
"""


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


async def test_killed_run_reruns_to_the_same_result(
    vpsbg_fake_factory: Callable[..., FakeVPSBGThread], tmp_path: Path
) -> None:
    fake = vpsbg_fake_factory(seed=5, tickets=12, rate_limit=100_000)
    shrink(fake)
    out, clean = tmp_path / "out", tmp_path / "clean"
    await export(fake, clean)
    latency = fake.faults.add(None, "latency", seconds=0.05)

    def files_done() -> int:
        return files_recorded(out)

    argv = [sys.executable, "-c", _EXPORT_IN_CHILD, fake.url, fake.token, str(out)]
    child = subprocess.Popen(argv)  # noqa: ASYNC220 -- the fake runs on its own thread
    try:
        wait_for(lambda: files_done() >= 4, "the child to download a few attachments")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not (out / MANIFEST_FILE).exists()
    fake.faults.remove(latency)

    summary = await export(fake, out)

    assert summary.complete and summary.attachments_unchanged >= 4
    assert (out / TICKETS_FILE).read_bytes() == (clean / TICKETS_FILE).read_bytes()
    assert attachment_files(out) == attachment_files(clean)
    manifest, reference = (json.loads((d / MANIFEST_FILE).read_text()) for d in (out, clean))
    assert manifest["files"] == reference["files"]
    assert manifest["counts"] == reference["counts"]
    await assert_matches_server(fake, out)


# -- faults and failures -----------------------------------------------------------------------


async def test_export_under_20_percent_faults_loses_nothing(tmp_path: Path) -> None:
    async with FakeVPSBG(seed=4, tickets=10, rate_limit=100_000) as fake:
        shrink(fake, 64 * 1024)
        # About one request in five fails, in every way a GET can fail.
        for status in (500, 503, 429):
            fake.faults.add(None, "status", status=status, probability=0.06)
        fake.faults.add(None, "reset", probability=0.06)
        fake.faults.add("tickets.download_attachment", "truncate", probability=0.06)

        summary = await export(fake, tmp_path, concurrency=6)

        faulted = sum(1 for r in fake.requests if r.fault not in (None, "latency"))
        assert faulted >= 0.1 * len(fake.requests), (faulted, len(fake.requests))
        assert summary.complete, summary.failures
        fake.faults.clear()
        await assert_matches_server(fake, tmp_path)


async def test_failures_are_reported_and_a_rerun_finishes(fake: FakeVPSBG, tmp_path: Path) -> None:
    await export(fake, tmp_path / "clean")
    broken = fake.faults.add("tickets.get", "status", status=500, times=2)
    async with client_for(fake, retry_policy=RetryPolicy(max_retries=0)) as client:
        summary = await export_tickets(client, tmp_path / "out")

    assert broken.fired == 2
    assert not summary.complete and summary.manifest is None
    assert len(summary.failures) == 2
    assert all(f.attachment_id is None and "500" in f.error for f in summary.failures)
    assert not (tmp_path / "out" / MANIFEST_FILE).exists()
    assert len(exported_tickets(tmp_path / "out")) == len(fake.state.tickets) - 2
    fake.clear_requests()

    again = await export(fake, tmp_path / "out")

    assert again.complete and again.tickets_fetched == 2 == fake.count("tickets.get")
    assert (tmp_path / "out" / TICKETS_FILE).read_bytes() == (
        tmp_path / "clean" / TICKETS_FILE
    ).read_bytes()


async def test_refused_token_stops_the_run(fake: FakeVPSBG, tmp_path: Path) -> None:
    async with AsyncClient("not-the-token", base_url=fake.url) as client:
        with pytest.raises(AuthenticationError):
            await export_tickets(client, tmp_path)
    assert not (tmp_path / MANIFEST_FILE).exists()


async def test_one_export_at_a_time_per_folder(fake: FakeVPSBG, tmp_path: Path) -> None:
    folder = ArchiveFolder(tmp_path, create=True)
    lock = _job.FolderLock(folder)
    lock.acquire()
    try:
        with pytest.raises(InvalidParameterError, match="another export"):
            await export(fake, tmp_path)
    finally:
        lock.release()
        folder.close()
    assert (await export(fake, tmp_path, attachments=False)).complete


async def test_bad_concurrency_is_refused(fake: FakeVPSBG, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="concurrency"):
        await export(fake, tmp_path, concurrency=0)
    assert not os.listdir(tmp_path)


# -- since, unfinished runs, deleted tickets, leftovers ------------------------------------------


async def test_a_since_rerun_finishes_what_an_unfinished_full_run_left(
    fake: FakeVPSBG, tmp_path: Path
) -> None:
    # A full run that exported nothing (every ticket read fails) ...
    fake.faults.add("tickets.get", "status", status=500, times=len(fake.state.tickets))
    async with client_for(fake, retry_policy=RetryPolicy(max_retries=0)) as client:
        first = await export_tickets(client, tmp_path, attachments=False)
    assert not first.complete and first.tickets == 0
    newest = max(t.updated_at for t in fake.state.tickets)

    # ... is finished by a re-run that only asks for the newest ticket.
    summary = await export(fake, tmp_path, since=newest)

    assert summary.complete and summary.tickets == len(fake.state.tickets)
    await assert_matches_server(fake, tmp_path)
    # Once complete, the window is the one asked for again.
    fake.clear_requests()
    again = await export(fake, tmp_path, since=newest)
    assert again.tickets_fetched == 0 and fake.count("tickets.get") == 0


async def test_a_since_rerun_still_repairs_older_tickets_files(
    fake: FakeVPSBG, tmp_path: Path
) -> None:
    await export(fake, tmp_path)
    oldest = min(
        (t for t in fake.state.tickets if any(m.attachments for m in t.messages)),
        key=lambda t: t.updated_at,
    )
    lost = next((tmp_path / "attachments" / str(oldest.id)).iterdir())
    lost.unlink()
    fake.clear_requests()

    summary = await export(fake, tmp_path, since=max(t.updated_at for t in fake.state.tickets))

    assert summary.complete and summary.attachments_downloaded == 1
    assert fake.count("tickets.get") == 0  # nothing changed on the server: nothing read again
    assert lost.exists()
    await assert_matches_server(fake, tmp_path)


async def test_a_ticket_deleted_on_the_server_is_kept_and_counted(
    fake: FakeVPSBG, tmp_path: Path
) -> None:
    await export(fake, tmp_path)
    gone = fake.state.tickets[3]
    with fake.state.lock:
        del fake.state._tickets[gone.id]  # the fake has no public delete: neither has the API

    summary = await export(fake, tmp_path)

    assert summary.complete and summary.tickets_not_listed == 1
    assert gone.id in exported_tickets(tmp_path)
    assert summary.tickets == len(fake.state.tickets) + 1
    assert (tmp_path / "attachments" / str(gone.id)).exists() == any(
        m.attachments for m in gone.messages
    )


async def test_temporary_files_of_a_killed_run_are_removed(fake: FakeVPSBG, tmp_path: Path) -> None:
    folder = tmp_path / "attachments" / "1"
    folder.mkdir(parents=True)
    leftovers = [tmp_path / ".tickets.jsonl.1a2b3c4d.part", folder / ".x.bin.1a2b3c4d.part"]
    for leftover in leftovers:
        leftover.write_bytes(b"half a file")

    assert (await export(fake, tmp_path, attachments=False)).complete

    assert [p for p in leftovers if p.exists()] == []


# -- resuming from archive.sqlite ---------------------------------------------------------------


def files_recorded(dest: Path) -> int:
    """Attachment files committed to the archive so far (0 before it exists)."""
    if not (dest / DATABASE).exists():
        return 0
    try:
        with sqlite3.connect(f"{(dest / DATABASE).as_uri()}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT COUNT(*) FROM attachments").fetchone()[0])
    except sqlite3.Error:
        return 0


def forbid_full_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make parsing a ticket body fail the test: a stored one (the archive reads them back with
    ``Ticket.from_dict``) or a fetched one (the client structures what it reads)."""

    def refuse(*args: Any) -> Any:
        raise AssertionError("a ticket body was parsed on resume")

    monkeypatch.setattr(Ticket, "from_dict", classmethod(refuse))
    monkeypatch.setattr(_job, "get_raw_ticket", refuse)


async def test_resume_parses_no_ticket_body(
    fake: FakeVPSBG, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await export(fake, tmp_path)
    before = (tmp_path / TICKETS_FILE).read_bytes()
    forbid_full_parse(monkeypatch)
    fake.clear_requests()

    summary = await export(fake, tmp_path)

    assert summary.complete and summary.tickets_fetched == 0
    assert summary.tickets_unchanged == len(fake.state.tickets)
    assert summary.attachments_unchanged == summary.attachments > 0
    assert fake.count("tickets.get") == 0 == fake.count("tickets.download_attachment")
    assert (tmp_path / TICKETS_FILE).read_bytes() == before
    await assert_matches_server(fake, tmp_path)


# -- updated_at to the second: a change in the second a ticket was read -------------------------


class ServerClock:
    """The fake's clock, set by the test: the time of each change and each response's Date."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        #: seconds the server spends between reading a ticket and answering: really slept,
        #: and added to that answer's Date (the clock itself stays where the test set it)
        self.latency = 0.0

    def __call__(self) -> datetime:
        return self.now


def at(second: int, microsecond: int = 0, minute: int = 0) -> datetime:
    return datetime(2030, 1, 2, 12, minute, second, microsecond, tzinfo=timezone.utc)


_FRACTION = re.compile(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d{6}Z")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def laravel_fake(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[FakeVPSBG, ServerClock]]:
    """The fake answering tickets.list and tickets.get as the real API does: times to the second
    (``.000000Z``, so two changes in one second share an ``updated_at``) and a ``Date`` header
    from the same clock; the test sets that clock."""
    clock = ServerClock(at(0))
    server = FakeVPSBG(seed=3, tickets=5, rate_limit=100_000, clock=clock)
    shrink(server)

    def as_laravel(handler: Handler, slow: bool) -> Handler:
        async def answer(request: web.Request) -> web.StreamResponse:
            read_at = clock.now
            response = await handler(request)
            latency = clock.latency if slow else 0.0
            if latency:
                await asyncio.sleep(latency)
            assert isinstance(response, web.Response) and isinstance(response.body, bytes)
            response.body = _FRACTION.sub(rb"\1.000000Z", response.body)
            date = read_at + timedelta(seconds=latency)
            response.headers["Date"] = email.utils.format_datetime(date, usegmt=True)
            return response

        return answer

    for name in ("_ticket_get", "_tickets_list"):  # before start: routes bind then
        slow = name == "_ticket_get"
        monkeypatch.setattr(server, name, as_laravel(getattr(server, name), slow))
    async with server:
        yield server, clock


def tickets_read(fake: FakeVPSBG) -> list[str]:
    return [r.path for r in fake.requests if r.route == "tickets.get"]


def assert_read_again_only(fake: FakeVPSBG, summary: ExportSummary, ticket_id: int) -> None:
    """The run read that ticket and no other, and counted every other as unchanged."""
    assert tickets_read(fake) == [f"/v1/support/tickets/{ticket_id}"]
    assert summary.complete
    assert summary.tickets_fetched == 1
    assert summary.tickets_unchanged == len(fake.state.tickets) - 1


@pytest.mark.parametrize("latency", [0.0, 1.3], ids=["quick answer", "slow answer"])
async def test_a_reply_in_the_second_a_ticket_was_read_is_exported_by_the_next_run(
    laravel_fake: tuple[FakeVPSBG, ServerClock], tmp_path: Path, latency: float
) -> None:
    # A slow answer: the server reads the ticket in the second of its update and answers 1.3 s
    # later; Date alone would say "read two seconds after the update".
    fake, clock = laravel_fake
    ticket = fake.state.tickets[1].id
    clock.now = at(5, 200_000)
    fake.state.reply(ticket, "The disk is full again.")
    clock.now, clock.latency = at(5, 600_000), latency
    await export(fake, tmp_path)  # reads the ticket in the second of its update
    clock.latency = 0.0
    listed_before = (await server_tickets(fake))[ticket]["updated_at"]
    clock.now = at(5, 900_000)
    fake.state.reply(ticket, "We have resized it.", is_customer=False)
    assert (await server_tickets(fake))[ticket]["updated_at"] == listed_before  # the trap
    clock.now = at(0, minute=1)
    fake.clear_requests()

    summary = await export(fake, tmp_path)

    assert_read_again_only(fake, summary, ticket)
    assert b"We have resized it." in jsonl_lines(tmp_path)[ticket]
    await assert_matches_server(fake, tmp_path)
    # Read a minute after its update this time: settled, the next run skips it.
    fake.clear_requests()
    third = await export(fake, tmp_path)
    assert third.tickets_fetched == 0 and tickets_read(fake) == []


async def test_only_tickets_read_within_a_second_of_their_update_are_read_again(
    laravel_fake: tuple[FakeVPSBG, ServerClock], tmp_path: Path
) -> None:
    fake, clock = laravel_fake
    settled, unsettled = fake.state.tickets[1].id, fake.state.tickets[2].id
    # Date 12:00:10: a change in second 7 ended more than the 1 s margin before any read
    # that Date allows (the answer took a few ms): settled.
    clock.now = at(7, 500_000)
    fake.state.reply(settled, "Three seconds before the export.")
    # Second 8 ends at 12:00:09, and 09 less the request's time is within the margin of the
    # read: the ticket may have changed after it was read.
    clock.now = at(8)
    fake.state.reply(unsettled, "Two seconds before the export.")
    fake.state.add_attachment(unsettled, name="late.log", content=b"written late\n")
    clock.now = at(10)  # every response of the first run says Date: 12:00:10
    first = await export(fake, tmp_path)
    before = (tmp_path / TICKETS_FILE).read_bytes()
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    clock.now = at(0, minute=5)
    fake.clear_requests()

    summary = await export(fake, tmp_path)

    # The older tickets (generated years before) and the settled one are not read again.
    assert_read_again_only(fake, summary, unsettled)
    # Read again byte-identical: nothing else changes, complete files are not downloaded again.
    assert (tmp_path / TICKETS_FILE).read_bytes() == before
    assert fake.count("tickets.download_attachment") == 0
    assert summary.attachments_downloaded == 0
    assert summary.attachments_unchanged == summary.attachments == first.attachments
    assert json.loads((tmp_path / MANIFEST_FILE).read_text())["files"] == manifest["files"]


def old_journal(dest: Path, unsettled: int, bare: int) -> bytes:
    """The journal an earlier version wrote for the tickets now in ``dest``: a summary line
    before each ticket line (flagged unsettled for ``unsettled``; none for ``bare``, as the
    oldest versions wrote), then one line per attachment file."""
    lines: list[bytes] = []
    for tid, line in sorted(jsonl_lines(dest).items()):
        ticket = json.loads(line)
        if tid != bare:
            summary: dict[str, Any] = {"id": tid, "length": len(line)}
            if tid == unsettled:
                summary["settled"] = False
            lines.append(json.dumps({"summary": summary}).encode() + b"\n")
        lines.append(b'{"ticket":' + line + b"}\n")
        del ticket
    manifest = json.loads((dest / MANIFEST_FILE).read_text())
    for entry in manifest["files"][1:]:
        lines.append(json.dumps({"file": entry}).encode() + b"\n")
    return b"".join(lines)


async def test_a_journal_of_an_earlier_version_resumes_without_reading_again(
    laravel_fake: tuple[FakeVPSBG, ServerClock], tmp_path: Path
) -> None:
    fake, clock = laravel_fake
    clock.now = at(30)
    for ticket in fake.state.tickets:
        fake.state.reply(ticket.id, "In the second of the export.")
    await export(fake, tmp_path)  # every ticket read in the second of its update
    before = (tmp_path / TICKETS_FILE).read_bytes()
    ids = sorted(t.id for t in fake.state.tickets)
    keep, bare = ids[0], ids[1]
    # What earlier versions left: a journal (summaries without the flag are settled, as are
    # ticket lines without a summary), the manifest, and no archive.sqlite.
    (tmp_path / JOURNAL).write_bytes(old_journal(tmp_path, unsettled=keep, bare=bare))
    for leftover in tmp_path.glob(f"{DATABASE}*"):
        leftover.unlink()
    clock.now = at(0, minute=10)
    fake.clear_requests()

    summary = await export(fake, tmp_path)

    assert_read_again_only(fake, summary, keep)
    assert fake.count("tickets.download_attachment") == 0
    assert (tmp_path / TICKETS_FILE).read_bytes() == before


async def test_without_a_usable_date_header_the_local_clock_decides_with_a_margin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2030, 1, 2, 12, 0, 0, tzinfo=timezone.utc)
    monkeypatch.setattr(_settle, "now", lambda: now)

    def ticket(tid: int, updated_at: datetime) -> dict[str, Any]:
        stamp = updated_at.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        return {"id": tid, "status": "opened", "subject": "s", "updated_at": stamp}

    # No Date, or one that does not parse: this machine's clock, less 5 s for the clocks'
    # difference, then the second of the update as with a Date. A Date in the obsolete "-0000"
    # form still counts (it says 3 s after the update: settled, where the local clock would not).
    recent = ticket(7, now - timedelta(seconds=6))
    older = ticket(8, now - timedelta(seconds=7))
    dated = ticket(9, now - timedelta(seconds=3))
    first, second, reads = await export_twice(
        tmp_path,
        [(recent, None), (older, "soon"), (dated, "Wed, 02 Jan 2030 12:00:00 -0000")],
    )

    assert reads == {"7": 2, "8": 1, "9": 1}
    assert first.complete and first.tickets_fetched == 3
    assert second.complete
    assert (second.tickets_fetched, second.tickets_unchanged) == (1, 2)
    assert exported_tickets(tmp_path) == {7: recent, 8: older, 9: dated}


# -- tickets.jsonl holds the JSON as the API sent it -------------------------------------------


def as_sent(body: bytes) -> Any:
    """A JSON text's exact value: every digit of every number, every key, duplicates included."""
    return json.loads(body, parse_float=Decimal, object_pairs_hook=list)


def jsonl_lines(dest: Path) -> dict[int, bytes]:
    """The lines of tickets.jsonl (without their newline), by ticket id."""
    lines = (dest / TICKETS_FILE).read_bytes().split(b"\n")
    assert lines[-1] == b""
    return {json.loads(line)["id"]: line for line in lines[:-1]}


def odd_body(ticket: dict[str, Any]) -> bytes:
    """The ticket as a server may spell it: pretty-printed over CRLF and LF lines, numbers that
    a round trip through floats re-spells, a key the models do not know, a duplicate key."""
    pretty = json.dumps(ticket, indent=2, ensure_ascii=False).replace("\n", "\r\n")
    extra = (
        ',\n  "price": 12.50,\r\n  "ratio": 1E2,\n'
        '  "exact": 0.123456789012345678901234567891,\n  "huge": 1e999,\n'
        '  "x_new": {"note": "café \\n ☕", "list": [1, 2.0]},\n'
        '  "dup": 1,\n  "dup": 2\n}\r\n'
    )
    return ("\r\n  " + pretty[: -len("\r\n}")] + extra).encode()


def one_line(body: bytes) -> bytes:
    return body.replace(b"\r", b" ").replace(b"\n", b" ").strip()


@pytest.fixture
async def fake_with_bodies(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[FakeVPSBG, dict[int, bytes]]]:
    """The fake, answering GET /support/tickets/{id} with the bytes put in the yielded dict for
    that id (with its own answer for other ids)."""
    server = FakeVPSBG(seed=3, tickets=5, rate_limit=100_000)
    shrink(server)
    bodies: dict[int, bytes] = {}
    original = server._ticket_get

    async def ticket_get(request: web.Request) -> web.StreamResponse:
        body = bodies.get(int(request.match_info["ticket_id"]))
        if body is None:
            return await original(request)
        return web.Response(body=body, content_type="application/json")

    monkeypatch.setattr(server, "_ticket_get", ticket_get)  # before start: routes bind then
    async with server:
        yield server, bodies


@pytest.fixture
async def odd_fake(
    fake_with_bodies: tuple[FakeVPSBG, dict[int, bytes]],
) -> tuple[FakeVPSBG, bytes]:
    """The fake, one of whose tickets is answered with ``odd_body``; and that body."""
    fake, bodies = fake_with_bodies
    odd = fake.state.tickets[1].id
    bodies[odd] = odd_body((await server_tickets(fake))[odd])
    return fake, bodies[odd]


async def test_a_ticket_is_written_byte_for_byte_as_sent(
    odd_fake: tuple[FakeVPSBG, bytes], tmp_path: Path
) -> None:
    fake, body = odd_fake
    odd = fake.state.tickets[1].id

    summary = await export(fake, tmp_path)

    assert summary.complete and summary.failures == ()
    line = jsonl_lines(tmp_path)[odd]
    assert line == one_line(body)
    assert b"12.50" in line and b"1E2" in line and b"1e999" in line
    assert as_sent(line) == as_sent(body)
    # The other tickets are the server's JSON too.
    served = await server_tickets(fake)
    assert {tid: json.loads(line) for tid, line in jsonl_lines(tmp_path).items()} == {
        **served,
        odd: json.loads(body),
    }


async def test_a_resumed_export_keeps_the_lines_as_sent(
    odd_fake: tuple[FakeVPSBG, bytes], tmp_path: Path
) -> None:
    fake, body = odd_fake
    odd = fake.state.tickets[1].id
    await export(fake, tmp_path)
    first = (tmp_path / TICKETS_FILE).read_bytes()

    # Nothing changed: every line is copied from the journal as it is.
    again = await export(fake, tmp_path)
    assert again.complete and again.tickets_fetched == 0
    assert (tmp_path / TICKETS_FILE).read_bytes() == first

    # Another ticket changed: it is read again, the odd one is kept as it was sent.
    other = fake.state.tickets[3].id
    fake.state.reply(other, "Still broken.")
    changed = await export(fake, tmp_path)
    assert changed.complete and changed.tickets_fetched == 1
    lines = jsonl_lines(tmp_path)
    assert lines[odd] == one_line(body)
    assert json.loads(lines[other]) == (await server_tickets(fake))[other]


async def test_a_lone_surrogate_escape_is_exported(
    laravel_fake: tuple[FakeVPSBG, ServerClock], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A clock of the test's own: each export reads the tickets seconds after their last change,
    # so that the last run need not read the changed ticket again (it would if it read it in the
    # second of its update).
    fake, clock = laravel_fake
    # "\ud83d" half an emoji: legal JSON (the fake sends it escaped), no UTF-8 form once parsed.
    cut = fake.state.tickets[2].id
    clock.now = at(1)
    fake.state.reply(cut, "cut emoji \ud83d")
    clock.now = at(10)

    summary = await export(fake, tmp_path)

    assert summary.complete and summary.failures == ()
    assert summary.tickets == len(fake.state.tickets)
    await assert_matches_server(fake, tmp_path)
    assert b"cut emoji \\ud83d" in jsonl_lines(tmp_path)[cut]

    # In an attachment's name too (kept in archive.sqlite; the fake cannot serve
    # such a name in Content-Disposition, hence no download here).
    named = fake.state.add_attachment(cut, name="half\ud83d.txt", content=b"some bytes\n")
    clock.now = at(20)
    fake.state.reply(cut, "See the attachment.")  # a change the listing shows
    clock.now = at(30)
    again = await export(fake, tmp_path, attachments=False)
    assert again.complete and again.tickets_fetched == 1
    forbid_full_parse(monkeypatch)  # the name is read back from the archive as written
    fake.clear_requests()

    third = await export(fake, tmp_path, attachments=False)

    assert third.complete and third.tickets_unchanged == len(fake.state.tickets)
    assert fake.count("tickets.get") == 0
    messages = exported_tickets(tmp_path)[cut]["messages"]
    assert named.name in [a["name"] for m in messages for a in m["attachments"]]


def test_a_lone_surrogate_escape_does_not_stop_the_command(
    vpsbg_fake_factory: Callable[..., FakeVPSBGThread], tmp_path: Path
) -> None:
    fake = vpsbg_fake_factory(seed=3, tickets=4, rate_limit=100_000)
    shrink(fake)
    fake.state.reply(fake.state.tickets[1].id, "cut emoji \ud83d")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPSBG_")}
    env.update(VPSBG_BASE_URL=fake.url, VPSBG_API_TOKEN=fake.token)
    argv = [sys.executable, "-m", "vpsbg_support.cli", "export", str(tmp_path), "--json"]

    for _ in range(2):  # and a re-run
        run = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        assert run.returncode == 0, run.stderr
        summary = json.loads(run.stdout)
        assert summary["complete"] and summary["failures"] == []
        assert summary["tickets"] == len(fake.state.tickets)


async def test_a_body_in_utf16_or_with_a_bom_is_written_as_utf8(
    fake_with_bodies: tuple[FakeVPSBG, dict[int, bytes]], tmp_path: Path
) -> None:
    fake, bodies = fake_with_bodies
    served = await server_tickets(fake)
    text = {tid: json.dumps(served[tid])[:-1] + ', "price": 12.50, "x": "é"}' for tid in served}
    first, second = sorted(served)[:2]
    bodies[first] = text[first].encode("utf-16")
    bodies[second] = b"\xef\xbb\xbf" + text[second].encode()

    summary = await export(fake, tmp_path, attachments=False)

    assert summary.complete
    lines = jsonl_lines(tmp_path)
    assert lines[first] == text[first].encode()
    assert lines[second] == text[second].encode()


async def test_a_ticket_the_archive_cannot_store_fails_alone(tmp_path: Path) -> None:
    base = "https://api.test/v1"
    huge = 10**300  # a legal JSON number, past what SQLite (and a folder name) can hold
    attachment = {"id": 9, "name": "a.txt", "size": 3}
    tickets = [
        {
            "id": tid,
            "status": "opened",
            "subject": "s",
            "updated_at": "2024-08-02T11:57:57.000000Z",
            "messages": [{"message": "m", "from_customer": 1, "attachments": files}],
        }
        for tid, files in ((huge, [attachment]), (8, []))
    ]
    with aioresponses() as mocked:
        mocked.get(f"{base}/support/tickets?page=1", payload=tickets)
        for ticket in tickets:
            mocked.get(f"{base}/support/tickets/{ticket['id']}", payload=ticket)
        async with AsyncClient("t0ken", base_url=base, max_retries=0) as client:
            summary = await export_tickets(client, tmp_path)

    assert not summary.complete
    assert [(f.ticket_id, f.attachment_id) for f in summary.failures] == [(huge, None)]
    assert "64 bits" in summary.failures[0].error
    assert exported_tickets(tmp_path) == {8: tickets[1]}


async def test_a_ticket_updated_at_the_end_of_time_is_exported_not_a_crash(
    tmp_path: Path,
) -> None:
    # Telling whether the copy is settled must not overflow the date range and end the run.
    far = {"id": 7, "status": "opened", "subject": "s", "updated_at": "9999-12-31T23:59:59Z"}
    first, second, _ = await export_twice(tmp_path, [(far, "Mon, 01 Jan 0001 00:00:00 GMT")])
    assert first.complete and first.failures == ()
    assert second.tickets_fetched == 1  # unsettled, so read again: nothing was proven


async def export_twice(
    dest: Path, tickets: list[tuple[dict[str, Any], str | None]]
) -> tuple[ExportSummary, ExportSummary, dict[str, int]]:
    """Export twice from a mocked API answering each ticket with its Date header (None: no
    Date); also how often each ticket was read."""
    base = "https://api.test/v1"
    with aioresponses() as mocked:
        mocked.get(f"{base}/support/tickets?page=1", payload=[t for t, _ in tickets], repeat=True)
        for ticket, date in tickets:
            headers = {} if date is None else {"Date": date}
            url = f"{base}/support/tickets/{ticket['id']}"
            mocked.get(url, payload=ticket, headers=headers, repeat=True)
        async with AsyncClient("t0ken", base_url=base, max_retries=0) as client:
            first = await export_tickets(client, dest, attachments=False)
            second = await export_tickets(client, dest, attachments=False)
        reads = {
            str(url).rsplit("/", 1)[-1]: len(calls)
            for (_, url), calls in mocked.requests.items()
            if "?" not in str(url)
        }
    return first, second, reads
