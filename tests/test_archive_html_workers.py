"""The HTML archive's worker processes: the same pages, byte for byte, as rendering in the
calling process, and a worker that cannot start or dies costs speed, never a page."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests._archive_standin import StandInArchive
from tests.conftest import example
from tests.test_archive_html import HOSTILE
from vpsbg_support.archive import _prepare
from vpsbg_support.archive.html import render_html


def many_html_tickets(folder: Path) -> StandInArchive:
    folder.mkdir()
    store = StandInArchive(folder)
    for ticket_id in range(1, 13):
        body = example("ticket_create_example.json")
        body["id"] = ticket_id
        body["messages"] = [
            {"content": f"<p>Ticket {ticket_id}, message <b>{n}</b> &amp; more</p>"}
            for n in range(5)
        ] + [{"content": HOSTILE}, {"content": "plain\ntext <not a tag"}]
        store.add(body)
    store.add({**body, "status": "resolved"})  # an earlier version: the same bodies again
    return store


def files_of(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in {".html", ".csv"}
    }


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Send every batch to the workers (a chunk of 1) and record what they were asked."""
    seen: list[str] = []
    call = _prepare._Worker.call

    def spy(self: _prepare._Worker, kind: str, items: list[str]) -> list[str]:
        seen.append(kind)
        return call(self, kind, items)

    monkeypatch.setattr(_prepare, "HTML_RENDER_CHUNK", 1)
    monkeypatch.setattr(_prepare._Worker, "call", spy)
    return seen


def in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    with monkeypatch.context() as patch:
        patch.setattr(_prepare, "HTML_RENDER_PROCESSES", 1)
        store = many_html_tickets(tmp_path / "alone")
        render_html(store)
    return files_of(store.path)


def test_workers_write_the_same_pages_as_the_calling_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: list[str]
) -> None:
    store = many_html_tickets(tmp_path / "workers")
    summary = render_html(store)

    assert set(calls) == {"sanitize", "text"}  # the workers did sanitise and convert
    assert summary.pages_written == 13
    assert files_of(store.path) == in_process(tmp_path, monkeypatch)
    page = (store.path / "html" / "ticket-3.html").read_text(encoding="utf-8")
    assert "<script" not in page and "onerror" not in page and "javascript:" not in page


def test_a_worker_that_dies_costs_speed_not_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: list[str]
) -> None:
    def dead(self: _prepare._Worker, kind: str, items: list[str]) -> list[str]:
        raise EOFError("the worker's pipe closed")

    monkeypatch.setattr(_prepare._Worker, "call", dead)
    store = many_html_tickets(tmp_path / "dead")
    render_html(store)

    assert files_of(store.path) == in_process(tmp_path, monkeypatch)


def test_a_worker_that_cannot_start_costs_speed_not_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: list[str]
) -> None:
    monkeypatch.setattr("sys.executable", str(tmp_path / "no-such-python"))
    store = many_html_tickets(tmp_path / "none")
    render_html(store)

    assert calls == []
    assert files_of(store.path) == in_process(tmp_path, monkeypatch)
