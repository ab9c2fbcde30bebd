"""``export DIR --html``, ``archive html DIR`` and ``tickets show`` rendering message HTML."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.test_export import shrink
from vpsbg_support.archive import _sanitize
from vpsbg_support.cli import main
from vpsbg_support.testing import FakeVPSBGThread


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def against(fake: FakeVPSBGThread) -> list[str]:
    return ["--base-url", fake.url, "--token", fake.token]


@pytest.mark.vpsbg_fake(seed=3, tickets=5)
def test_export_html_writes_the_pages_and_says_where_to_open_them(
    vpsbg_fake: FakeVPSBGThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shrink(vpsbg_fake)

    code, out, err = run(capsys, *against(vpsbg_fake), "export", str(tmp_path), "--html")

    assert code == 0, err
    assert "HTML archive of 5 tickets: 5 page(s) written" in out
    assert f"open {(tmp_path / 'index.html').as_uri()}" in out
    assert (tmp_path / "tickets.csv").is_file()
    assert len(list((tmp_path / "html").glob("ticket-*.html"))) == 5

    # Offline, no token: nothing changed, nothing is written again.
    code, out, err = run(capsys, "archive", "html", str(tmp_path), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["tickets"] == 5
    assert (summary["pages_written"], summary["pages_unchanged"]) == (0, 5)
    assert summary["index"] == str(tmp_path / "index.html")


@pytest.mark.vpsbg_fake(seed=3, tickets=2)
def test_without_nh3_export_html_says_how_to_install_it_before_exporting(
    vpsbg_fake: FakeVPSBGThread,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "nh3", None)
    monkeypatch.setattr(_sanitize, "_cleaner", None)

    code, out, err = run(capsys, *against(vpsbg_fake), "export", str(tmp_path), "--html")

    assert code == 1 and out == ""
    assert "pip install 'vpsbg-support[html]'" in err
    assert vpsbg_fake.requests == [] and list(tmp_path.iterdir()) == []


def test_archive_html_of_a_folder_without_an_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "archive", "html", str(tmp_path))

    assert code != 0 and "archive.sqlite" in err
    assert not (tmp_path / "index.html").exists()


@pytest.mark.vpsbg_fake(seed=3, tickets=1)
def test_tickets_show_renders_message_html_as_text(
    vpsbg_fake: FakeVPSBGThread, capsys: pytest.CaptureFixture[str]
) -> None:
    ticket = vpsbg_fake.state.tickets[0]
    vpsbg_fake.state.reply(
        ticket.id,
        "<p>Hello,</p><p>the disk is <b>full</b> &amp; slow.</p>"
        '<ul><li>see <a href="https://vpsbg.eu/kb">the guide</a></li></ul>'
        "<script>alert(1)</script>",
    )

    code, out, err = run(capsys, *against(vpsbg_fake), "tickets", "show", str(ticket.id))

    assert code == 0, err
    assert "Hello,\n\nthe disk is full & slow.\n\n- see the guide <https://vpsbg.eu/kb>" in out
    assert "<" + "p>" not in out and "alert" not in out
