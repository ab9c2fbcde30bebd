"""The archive keeps its promises: each bug of issue 14's "Why", reproduced and fixed."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.test_export import (
    DATABASE,
    assert_matches_server,
    attachment_files,
    export,
    files_recorded,
    shrink,
)
from vpsbg_support import ExportError, InvalidParameterError, OtherSourceError
from vpsbg_support.archive import MANIFEST_FILE, TICKETS_FILE, Archive
from vpsbg_support.cli import main
from vpsbg_support.testing import FakeVPSBG, FakeVPSBGThread

FIXTURE = Path(__file__).parent / "data" / "archive-v1"


@pytest.fixture
async def fake() -> AsyncIterator[FakeVPSBG]:
    async with FakeVPSBG(seed=3, tickets=6, rate_limit=100_000) as server:
        shrink(server)
        yield server


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_holds(dest: Path) -> None:
    """``sha256sum -c``: every file the manifest lists has its size and sha256 on disk."""
    manifest = json.loads((dest / MANIFEST_FILE).read_text())
    for entry in manifest["files"]:
        path = dest / entry["path"]
        assert not path.is_symlink(), entry["path"]
        assert path.stat().st_size == entry["size"], entry["path"]
        assert sha256(path) == entry["sha256"], entry["path"]


def tree(dest: Path) -> dict[str, Any]:
    """Every file under ``dest`` (links as their target; the database as its content, not its
    pages), for "nothing changed"."""
    found: dict[str, Any] = {}
    with sqlite3.connect(dest / DATABASE) as db:
        found[DATABASE] = list(db.iterdump())
    for path in sorted(dest.rglob("*")):
        name = path.relative_to(dest).as_posix()
        if name.startswith(DATABASE):
            continue
        if path.is_symlink():
            found[name] = b"-> " + os.readlink(path).encode()
        elif path.is_file():
            found[name] = path.read_bytes()
    return found


def an_attachment(dest: Path) -> Path:
    return sorted((dest / "attachments").rglob("*-*"))[0]


# -- the manifest never lies -----------------------------------------------------------------------


async def test_a_file_damaged_on_disk_with_the_right_size_is_downloaded_again(
    fake: FakeVPSBG, tmp_path: Path
) -> None:
    await export(fake, tmp_path)
    damaged = an_attachment(tmp_path)
    good = damaged.read_bytes()
    damaged.write_bytes(bytes(len(good)))  # same size, other bytes
    fake.clear_requests()

    summary = await export(fake, tmp_path)

    assert summary.complete and summary.attachments_downloaded == 1
    assert fake.count("tickets.download_attachment") == 1
    assert damaged.read_bytes() == good
    manifest_holds(tmp_path)
    await assert_matches_server(fake, tmp_path)


async def test_verify_reports_damage_the_file_status_cannot_show(
    fake: FakeVPSBG, tmp_path: Path
) -> None:
    await export(fake, tmp_path)
    damaged = an_attachment(tmp_path)
    before = damaged.stat()
    damaged.write_bytes(bytes(before.st_size))
    os.utime(damaged, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back
    missing = sorted((tmp_path / "attachments").rglob("*-*"))[-1]
    missing.unlink()

    with Archive(tmp_path) as archive:
        problems = archive.verify()

    relative = {p.path: p.kind for p in problems}
    assert relative == {
        damaged.relative_to(tmp_path).as_posix(): "sha256",
        missing.relative_to(tmp_path).as_posix(): "missing",
    }
    assert all(p.path in p.message for p in problems)


# -- identity --------------------------------------------------------------------------------------


async def test_another_server_is_refused_and_nothing_changes(
    fake: FakeVPSBG, tmp_path: Path
) -> None:
    await export(fake, tmp_path)
    before = tree(tmp_path)
    async with FakeVPSBG(seed=9, tickets=5, rate_limit=100_000) as other:
        shrink(other)
        with pytest.raises(OtherSourceError, match="allow-other-source") as raised:
            await export(other, tmp_path)
        assert raised.value.recorded == fake.url and raised.value.given == other.url
        assert other.count("tickets.list") == 0
        assert tree(tmp_path) == before

        # On purpose: both fakes number tickets from 1001, so the same ids now hold the other
        # server's tickets; the first server's versions stay in the history.
        mixed = await export(other, tmp_path, allow_other_source=True)

    assert mixed.complete and mixed.tickets == len(fake.state.tickets)
    manifest_holds(tmp_path)
    shared = other.state.tickets[0].id
    with Archive(tmp_path) as archive:
        assert [v.run_id for v in archive.history(shared)] == [1, 2]


async def test_another_account_on_the_same_server_is_refused_and_nothing_changes(
    fake: FakeVPSBG, tmp_path: Path
) -> None:
    await export(fake, tmp_path)
    before = tree(tmp_path)
    # Another token of the same API: none of the archive's tickets (ticket ids are global).
    theirs = [
        fake.state.create_ticket(department_id=1, subject=f"Other account {n}", message="Hello!")
        for n in range(3)
    ]
    with fake.state.lock:
        for ticket in list(fake.state.tickets):
            if ticket not in theirs:
                del fake.state._tickets[ticket.id]
    fake.clear_requests()

    with pytest.raises(OtherSourceError, match="another account"):
        await export(fake, tmp_path)

    assert fake.count("tickets.get") == 0 == fake.count("tickets.download_attachment")
    assert tree(tmp_path) == before
    with Archive(tmp_path) as archive:
        assert len(archive.runs()) == 1
    # Deleted on purpose (or another account on purpose): allowed, the old tickets are kept.
    summary = await export(fake, tmp_path, allow_other_source=True)
    assert summary.complete and summary.tickets_not_listed == 6 and summary.tickets == 9


# -- symbolic links --------------------------------------------------------------------------------


async def test_the_export_never_writes_through_a_symlink(fake: FakeVPSBG, tmp_path: Path) -> None:
    dest, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(b"precious\n")
    await export(fake, tmp_path / "clean")
    target = an_attachment(tmp_path / "clean").relative_to(tmp_path / "clean")
    (dest / target).parent.mkdir(parents=True)
    (dest / target).symlink_to(victim)
    (dest / TICKETS_FILE).symlink_to(victim)
    (dest / MANIFEST_FILE).symlink_to(victim)
    linked_folder = (
        dest
        / "attachments"
        / sorted(p.name for p in (tmp_path / "clean" / "attachments").iterdir())[-1]
    )
    linked_folder.symlink_to(outside, target_is_directory=True)

    summary = await export(fake, dest)

    assert victim.read_bytes() == b"precious\n"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    # The link on a file's path was replaced by the file; the linked folder is refused.
    assert not (dest / target).is_symlink() and (dest / TICKETS_FILE).is_file()
    assert not summary.complete
    assert summary.failures and all(
        "symbolic link" in f.error and str(linked_folder) in f.error for f in summary.failures
    )
    linked_folder.unlink()
    assert (await export(fake, dest)).complete
    manifest_holds(dest)


def test_tickets_download_overwrite_replaces_a_symlink_not_its_target(
    vpsbg_fake_factory: Callable[..., FakeVPSBGThread],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = vpsbg_fake_factory(seed=3, tickets=3, rate_limit=100_000)
    shrink(server)
    ticket = next(t for t in server.state.tickets if any(m.attachments for m in t.messages))
    attachment = next(a for m in ticket.messages for a in m.attachments)
    folder, victim = tmp_path / "downloads", tmp_path / "victim.txt"
    folder.mkdir()
    victim.write_bytes(b"precious\n")
    planted = folder / f"{attachment.id}-{attachment.name}"
    planted.symlink_to(victim)
    monkeypatch.setenv("VPSBG_BASE_URL", server.url)
    monkeypatch.setenv("VPSBG_API_TOKEN", server.token)

    argv = ["tickets", "download", str(ticket.id), str(attachment.id), "-o", str(folder)]
    code = main([*argv, "--overwrite"])

    assert code == 0, capsys.readouterr().err
    assert victim.read_bytes() == b"precious\n"
    assert not planted.is_symlink()
    assert sha256(planted) == server.state.attachment_sha256(attachment.id)


def test_a_download_to_a_file_path_replaces_a_symlink_there(
    vpsbg_fake_factory: Callable[..., FakeVPSBGThread], tmp_path: Path
) -> None:
    from vpsbg_support import Client

    server = vpsbg_fake_factory(seed=3, tickets=3, rate_limit=100_000)
    shrink(server)
    ticket = next(t for t in server.state.tickets if any(m.attachments for m in t.messages))
    attachment = next(a for m in ticket.messages for a in m.attachments)
    victim, planted = tmp_path / "victim.txt", tmp_path / "file.bin"
    victim.write_bytes(b"precious\n")
    planted.symlink_to(victim)
    with Client(server.token, base_url=server.url) as client:
        client.tickets.download_attachment(ticket.id, attachment.id, planted, overwrite=True)
    assert victim.read_bytes() == b"precious\n"
    assert not planted.is_symlink()


# -- duplicate attachment ids ----------------------------------------------------------------------


async def test_duplicate_attachment_ids_across_tickets_are_two_files(
    fake: FakeVPSBG, tmp_path: Path
) -> None:
    first, second = fake.state.tickets[0], fake.state.tickets[1]
    shared = fake.state.add_attachment(first.id, name="same.log", content=b"shared bytes\n")
    # The same attachment id in another ticket (a server may reuse ids across tickets).
    twin = type(shared)(
        id=shared.id,
        ticket_id=second.id,
        message_id=second.messages[-1].id,
        name="same.log",
        mime_type=shared.mime_type,
        size=shared.size,
        content=b"the other ticket's bytes\n",
    )
    second.messages[-1].attachments.append(twin)
    original = fake.state.attachment

    def attachment(attachment_id: int, ticket_id: int | None = None) -> Any:
        if attachment_id == shared.id and ticket_id == second.id:
            return twin
        return original(attachment_id, ticket_id)

    fake.state.attachment = attachment  # type: ignore[method-assign]
    original_chunks = fake.state.attachment_chunks

    def chunks(attachment_id: int) -> Any:
        return original_chunks(attachment_id)

    fake.state.attachment_chunks = chunks  # type: ignore[method-assign]

    summary = await export(fake, tmp_path)

    paths = {f"attachments/{t}/{shared.id}-same.log" for t in (first.id, second.id)}
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert paths <= {f["path"] for f in manifest["files"]}
    assert summary.complete
    manifest_holds(tmp_path)
    fake.clear_requests()
    again = await export(fake, tmp_path)
    assert again.complete and again.attachments_downloaded == 0
    assert fake.count("tickets.download_attachment") == 0


# -- file-system errors are typed and name the path ------------------------------------------------


async def test_a_full_disk_is_an_export_error_naming_the_path(
    fake: FakeVPSBG, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync

    def full(fd: int) -> None:
        if os.path.isfile(f"/proc/self/fd/{fd}") or not os.path.exists("/proc/self/fd"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ExportError, match="no space left") as raised:
        await export(fake, tmp_path)
    assert raised.value.path is not None and raised.value.path.startswith(str(tmp_path))
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert (await export(fake, tmp_path)).complete  # resumable
    manifest_holds(tmp_path)


def test_the_cli_exits_7_on_a_full_disk_and_resumes(
    vpsbg_fake_factory: Callable[..., FakeVPSBGThread], tmp_path: Path
) -> None:
    server = vpsbg_fake_factory(seed=3, tickets=6, rate_limit=100_000)
    shrink(server)
    # Without coverage's own data file, which the same limit would break at exit.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VPSBG_", "COV"))}
    env |= {"VPSBG_BASE_URL": server.url, "VPSBG_API_TOKEN": server.token}
    argv = [sys.executable, "-m", "vpsbg_support.cli", "export", str(tmp_path / "out")]

    def small_disk() -> None:  # every file this process writes stops at 40 kB
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    full = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=120, preexec_fn=small_disk
    )
    assert full.returncode == 7, full.stderr
    assert full.stderr.count("\n") == 1 and str(tmp_path / "out") in full.stderr
    assert "Traceback" not in full.stderr and "Errno" not in full.stderr
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    manifest_holds(tmp_path / "out")


async def test_files_where_folders_are_expected_are_typed_errors(
    fake: FakeVPSBG, tmp_path: Path
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    with pytest.raises(ExportError, match="a file is in the way") as raised:
        await export(fake, a_file)
    assert raised.value.path == str(a_file)
    with pytest.raises(ExportError, match="a file is in the way"):
        await export(fake, a_file / "below")

    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "attachments").write_text("in the way")
    summary = await export(fake, dest)
    assert not summary.complete and summary.failures
    assert all("a file is in the way" in f.error for f in summary.failures)
    (dest / "attachments").unlink()
    assert (await export(fake, dest)).complete


# -- kill -9 at random points ----------------------------------------------------------------------

_EXPORT_IN_CHILD = """
import asyncio, sys
from vpsbg_support import AsyncClient
from vpsbg_support.archive import export_tickets

async def main():
    async with AsyncClient(sys.argv[2], base_url=sys.argv[1]) as client:
        await export_tickets(client, sys.argv[3], concurrency=3)

asyncio.run(main())
"""


def test_kill_9_at_random_points_never_leaves_a_lying_manifest(
    vpsbg_fake_factory: Callable[..., FakeVPSBGThread], tmp_path: Path
) -> None:
    server = vpsbg_fake_factory(seed=5, tickets=10, rate_limit=100_000)
    shrink(server)
    server.faults.add(None, "latency", seconds=0.01)
    dest = tmp_path / "out"
    chance = random.Random(14)
    argv = [sys.executable, "-c", _EXPORT_IN_CHILD, server.url, server.token, str(dest)]
    for trial in range(6):
        # Damage a file between runs too (while no manifest vouches for the folder): the next
        # manifest must not vouch for it.
        if trial % 2 and not (dest / MANIFEST_FILE).exists():
            files = sorted((dest / "attachments").rglob("*-*")) if dest.exists() else []
            if files:
                victim = chance.choice(files)
                victim.write_bytes(bytes(victim.stat().st_size))
        child = subprocess.Popen(argv)
        time.sleep(chance.uniform(0.05, 1.5))
        child.send_signal(signal.SIGKILL)
        child.wait()
        if (dest / MANIFEST_FILE).exists():
            manifest_holds(dest)
    final = subprocess.run(argv, timeout=120)
    assert final.returncode == 0
    manifest_holds(dest)
    assert files_recorded(dest) == len(attachment_files(dest))
    with Archive(dest) as archive:
        assert archive.verify() == []


# -- migration from an earlier version -------------------------------------------------------------


async def test_an_archive_of_the_previous_version_is_migrated_nothing_lost(tmp_path: Path) -> None:
    dest = tmp_path / "archive"
    shutil.copytree(FIXTURE, dest)
    old_lines = (dest / TICKETS_FILE).read_bytes()
    old_manifest = json.loads((dest / MANIFEST_FILE).read_text())
    with pytest.raises(InvalidParameterError, match="earlier version"):
        Archive(dest)
    async with FakeVPSBG(seed=3, tickets=4, rate_limit=100_000) as server:
        shrink(server, 2048)
        # The fixture was exported from another port: the migrated source is that URL.
        with pytest.raises(OtherSourceError):
            await export(server, dest)
        server.clear_requests()

        summary = await export(server, dest, allow_other_source=True)

        assert summary.complete and summary.tickets_fetched == 0
        assert server.count("tickets.get") == 0 == server.count("tickets.download_attachment")
        # Every file hashed again before the new manifest vouches for it: same files.
        assert summary.attachments_unchanged == old_manifest["counts"]["attachments"]
        await assert_matches_server(server, dest)
    assert (dest / TICKETS_FILE).read_bytes() == old_lines
    manifest = json.loads((dest / MANIFEST_FILE).read_text())
    assert manifest["files"] == old_manifest["files"]
    with Archive(dest) as archive:
        assert archive.source == old_manifest["base_url"]
        runs = archive.runs()
        assert runs[0].migrated and runs[0].complete and not runs[-1].migrated
        tickets = archive.tickets()
        assert [t.id for t in tickets] == [json.loads(x)["id"] for x in old_lines.splitlines()]
        assert all(len(archive.history(t.id)) == 1 for t in tickets)
        assert len(archive.attachments()) == old_manifest["counts"]["attachments"]
        assert archive.verify() == []


# -- a third-party tool reads the archive ----------------------------------------------------------


async def test_sqlite_utils_reads_the_tickets(fake: FakeVPSBG, tmp_path: Path) -> None:
    import sqlite_utils

    await export(fake, tmp_path)
    db = sqlite_utils.Database(tmp_path / DATABASE)
    assert {"runs", "ticket_versions", "attachments", "changes", "tickets"} <= set(db.table_names())
    latest = {
        row["ticket_id"]: json.loads(row["raw"])
        for row in db.query(
            "select v.ticket_id, v.raw from tickets t join ticket_versions v on v.id = t.version_id"
        )
    }
    lines = (tmp_path / TICKETS_FILE).read_bytes().splitlines()
    assert latest == {json.loads(x)["id"]: json.loads(x) for x in lines}
    assert db["runs"].count == 1


# -- the schema's migrations ---------------------------------------------------------------------


def test_migrations_are_numbered_and_applied_in_order(tmp_path: Path) -> None:
    from vpsbg_support.archive._schema import MIGRATIONS, SCHEMA_VERSION, connect

    path = tmp_path / DATABASE
    sqlite3.connect(path).close()  # an empty database: version 0
    db = connect(path, readonly=False)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"meta", "runs", "ticket_versions", "tickets", "attachments", "changes"} <= tables
    db.close()
    connect(path, readonly=False).close()  # at the current version: nothing to apply, no error

    with sqlite3.connect(path) as newer:
        newer.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(ExportError, match="newer version"):
        connect(path, readonly=False)


async def test_tickets_jsonl_is_rewritten_only_when_needed(fake: FakeVPSBG, tmp_path: Path) -> None:
    await export(fake, tmp_path)
    first = (tmp_path / TICKETS_FILE).stat()
    await export(fake, tmp_path)  # nothing changed: the same file, not written again
    assert (tmp_path / TICKETS_FILE).stat().st_ino == first.st_ino
    lines = (tmp_path / TICKETS_FILE).read_bytes()
    (tmp_path / TICKETS_FILE).write_bytes(bytes(len(lines)))  # damaged, same size

    await export(fake, tmp_path)

    assert (tmp_path / TICKETS_FILE).read_bytes() == lines
    manifest_holds(tmp_path)
    fake.state.reply(fake.state.tickets[0].id, "Something new.")
    await export(fake, tmp_path)
    assert b"Something new." in (tmp_path / TICKETS_FILE).read_bytes()
    manifest_holds(tmp_path)


def test_archive_times_keep_four_digit_years_and_sort_as_text() -> None:
    """An ``updated_at`` before the year 1000 (the API gives what it has) is stored so that it
    sorts before later times and reads back the same."""
    from vpsbg_support.archive._times import parse_stamp, stamp

    early = datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    late = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert stamp(early) == "0999-01-02T03:04:05.000006Z"
    assert stamp(late) == "2024-05-01T12:00:00.000000Z"
    assert stamp(early) < stamp(late)
    assert parse_stamp(stamp(early)) == early
