"""What a new user meets first on the command line: the documented examples run against the
demo, help says what options take, and one problem does not stop the rest of a download."""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests._examples import ROOT, cli_argv, cli_lines
from tests.test_cli import Run, in_process, vpsbg
from vpsbg_support import AsyncClient
from vpsbg_support import _constants as C
from vpsbg_support.cli import build_parser, main
from vpsbg_support.demo import demo_server
from vpsbg_support.testing import FakeVPSBGThread

__all__ = ["in_process"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.vpsbg_fake(seed=2, tickets=6, rate_limit=100_000)

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = [(f"{page.name}:{line_no}", line) for page in PAGES for line_no, line in cli_lines(page)]


def test_the_examples_are_there() -> None:
    assert len(EXAMPLES) >= 12
    assert any("tickets show" in line for _, line in EXAMPLES)


@pytest.fixture(scope="module")
def page_folders() -> dict[str, Path]:
    """One working folder per page, shared by its lines."""
    return {}


@pytest.mark.parametrize(("where", "line"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_every_cli_example_runs_against_the_demo(
    where: str,
    line: str,
    page_folders: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each documented line, with ``--demo`` added (and ``--yes``: no terminal here), works:
    the ids the docs use are ids the demo has. A page's lines run in its order in one folder,
    as a reader types them (an offline command on ``./support-archive`` finds the archive an
    ``export`` line before it wrote)."""
    page = where.split(":")[0]
    if page not in page_folders:
        page_folders[page] = tmp_path_factory.mktemp(page.replace(".", "_"))
    folder = page_folders[page]
    monkeypatch.chdir(folder)
    for name in ("VPSBG_API_TOKEN", "VPSBG_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    (folder / "df.txt").write_text("/dev/sda1  100%\n")  # what `--attach df.txt` attaches
    argv = cli_argv(line)
    extra = [] if "--demo" in argv else ["--demo"]
    if argv[:2] == ["tickets", "watch"]:
        _watch_until_ctrl_c([*extra, *argv], folder)
        return
    code = main([*extra, "--yes", *argv])
    err = capsys.readouterr().err
    assert code == 0, f"{where}: {line}\n{err}"


def _demo_cursor() -> str:
    """A cursor the demo account accepts: what ``"$CURSOR"`` stands for in the docs."""

    async def cursor() -> str:
        async with demo_server() as fake, AsyncClient(fake.token, base_url=fake.url) as client:
            return await client.tickets.watch_cursor()

    return asyncio.run(cursor())


def _watch_until_ctrl_c(argv: list[str], folder: Path) -> None:
    """``tickets watch`` runs until Ctrl-C: run it a moment in a child, interrupt it, and
    expect the documented exit status 130 and no traceback."""
    argv = [_demo_cursor() if arg == "$CURSOR" else arg for arg in argv]
    child = subprocess.Popen(
        [sys.executable, "-m", "vpsbg_support.cli", *argv],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.0)
    child.send_signal(signal.SIGINT)
    _out, err = child.communicate(timeout=30)
    assert child.returncode == 130, f"{argv}: {err}"
    assert "Traceback" not in err, err


def _help(*words: str) -> str:
    parser = build_parser()
    for word in words:
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = subparsers.choices[word]
    return " ".join(parser.format_help().split())


def test_help_says_what_options_take_and_their_defaults() -> None:
    for command in (("tickets", "create"), ("tickets", "reply")):
        assert "--attach FILE a file to attach; repeat for more" in _help(*command)
    export = _help("export")
    assert f"--concurrency N requests at once (default: {C.EXPORT_CONCURRENCY})" in export
    assert "--since WHEN only tickets updated since WHEN: a date (2024-05-01) or an ISO" in export
    assert f"--per-page N tickets per list request, 1-{C.MAX_PER_PAGE}" in export
    assert f"--per-page N tickets per page, 1-{C.MAX_PER_PAGE}" in _help("tickets", "list")


def test_per_page_past_the_maximum_is_refused_before_any_request(
    vpsbg_fake: FakeVPSBGThread,
) -> None:
    run = vpsbg("tickets", "list", "--per-page", "1000", fake=vpsbg_fake)
    assert run.code == 2 and "--per-page: must be at most 100, got 1000" in run.err
    assert vpsbg_fake.requests == []
    most = vpsbg("--json", "tickets", "list", "--per-page", str(C.MAX_PER_PAGE), fake=vpsbg_fake)
    assert most.code == 0 and most.json()["per_page"] == C.MAX_PER_PAGE


def test_a_download_keeps_going_past_conflicts_and_reports_each(
    vpsbg_fake: FakeVPSBGThread, tmp_path: Path
) -> None:
    ticket = vpsbg_fake.state.tickets[0]
    first = vpsbg_fake.state.add_attachment(ticket.id, name="a.log", content=b"from support A")
    free = vpsbg_fake.state.add_attachment(ticket.id, name="b.log", content=b"from support B")
    last = vpsbg_fake.state.add_attachment(ticket.id, name="c.log", content=b"from support C")
    mine = {a.id: tmp_path / f"{a.id}-{a.name}" for a in (first, last)}
    for path in mine.values():
        path.write_bytes(b"my own file, not the attachment")
    every = [a.id for m in ticket.messages for a in m.attachments]

    run = vpsbg(
        "--json", "tickets", "download", str(ticket.id), "-o", str(tmp_path), fake=vpsbg_fake
    )

    assert run.code == 4, run
    downloaded = [item["attachment_id"] for item in run.json()]
    assert downloaded == [i for i in every if i not in mine]  # all the others, in order
    assert (tmp_path / f"{free.id}-b.log").read_bytes() == b"from support B"
    errors = run.err.splitlines()
    assert len(errors) == 2
    for line, path in zip(errors, mine.values(), strict=True):
        assert line.startswith(f"vpsbg-support: error: {path} already exists")
        assert line.endswith("pass --overwrite to replace it")
        assert path.read_bytes() == b"my own file, not the attachment"


def test_money_actions_with_yes_do_not_look_the_price_up(in_process: Callable[..., Run]) -> None:
    run = in_process("--yes", "plans", "renew", "--billing-cycle", "1")
    assert run.code == 0 and "EUR" in run.out


def test_amounts_take_the_api_s_currency_when_it_names_one() -> None:
    from vpsbg_support.cli.plans import currency, money
    from vpsbg_support.models import Order

    assert currency(Order(id=1, status="paid", extra={"currency": "BGN"})) == "BGN"
    assert currency(Order(id=1, status="paid")) == C.DEFAULT_CURRENCY == "EUR"
    assert money(None, "EUR") == "-"


async def test_a_price_it_cannot_know_is_said_to_be_unknown(
    vpsbg_fake_factory: Callable[..., FakeVPSBGThread],
) -> None:
    from vpsbg_support import AsyncClient
    from vpsbg_support.cli.plans import price_of

    fake = vpsbg_fake_factory(tickets=0, active_plan=None)
    async with AsyncClient(fake.token, base_url=fake.url, max_retries=0) as client:
        assert await price_of(client, "basic", 2) == (
            "Price: 20.00 EUR (24.00 EUR with VAT): Basic, 2 x 10.00 EUR a month, before any promo."
        )
        unknown = "Price unknown: the plans list does not give it."
        assert await price_of(client, None, 1) == unknown  # no plan of the account's to renew
        assert await price_of(client, "no-such-plan", 1) == unknown
        fake.faults.add("plans.list", "status", status=500)
        failed = await price_of(client, "basic", 1)
        assert failed == "Price unknown: the plans could not be listed."
