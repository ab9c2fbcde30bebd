"""``vpsbg-support archive verify|log|search``: offline, no token, one line per problem."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.test_export import export, shrink
from vpsbg_support.cli import main
from vpsbg_support.testing import FakeVPSBG


@pytest.fixture
async def archived(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Path]:
    """An archive of two runs (a reply about a full disk between them); then no token around."""
    async with FakeVPSBG(seed=3, tickets=6, rate_limit=100_000) as fake:
        shrink(fake)
        await export(fake, tmp_path)
        fake.state.reply(fake.state.tickets[-1].id, "The <b>disk is full</b> again &amp; slow.")
        await export(fake, tmp_path)
    for name in list(os.environ):
        if name.startswith("VPSBG_"):
            monkeypatch.delenv(name)
    yield tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_search_finds_message_text_offline(
    archived: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "archive", "search", str(archived), "disk full", "--json")
    assert code == 0, err
    hits = json.loads(out)
    assert hits and hits[0]["snippet"].count("[") >= 2
    assert "<b>" not in hits[0]["snippet"] and "&amp;" not in hits[0]["snippet"]
    assert {"ticket_id", "subject", "updated_at", "snippet", "rank"} <= set(hits[0])
    code, out, _ = run(capsys, "archive", "search", str(archived), "disk", "--limit", "1")
    assert code == 0 and out.count("\n#") == 0 and out.startswith("#")


async def test_log_lists_each_runs_changes(
    archived: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "archive", "log", str(archived), "--json")
    assert code == 0, err
    changes = json.loads(out)
    assert {c["kind"] for c in changes if c["run_id"] == 1} == {"new"}
    assert {c["kind"] for c in changes if c["run_id"] == 2} >= {"messages"}
    code, out, _ = run(capsys, "archive", "log", str(archived), "--since", "2999-01-01")
    assert code == 0 and out == "No changes recorded since then.\n"
    code, out, _ = run(capsys, "archive", "log", str(archived))
    assert "run 2" in out and "new message" in out


async def test_verify_names_each_damaged_file_and_fails(
    archived: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "archive", "verify", str(archived))
    assert code == 0 and out.startswith("OK"), err
    damaged = sorted((archived / "attachments").rglob("*-*"))[0]
    damaged.write_bytes(b"x" * damaged.stat().st_size)
    code, out, _ = run(capsys, "archive", "verify", str(archived), "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    assert [p["path"] for p in report["problems"]] == [damaged.relative_to(archived).as_posix()]


def test_a_folder_without_an_archive_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "archive", "search", str(tmp_path), "x")
    assert code == 4 and out == "" and err.count("\n") == 1 and "no archive.sqlite" in err
