"""Every code example in README.md runs: Python blocks against FakeVPSBG, CLI lines through the
real argument parser. A stale example (a renamed method, a removed flag) fails `make test`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests._examples import ROOT, blocks, cli_argv, cli_lines, run_example
from vpsbg_support.cli import build_parser
from vpsbg_support.testing import FakeVPSBGThread

README = ROOT / "README.md"
PYTHON = blocks(README, "python")
CLI_LINES = cli_lines(README)


def test_the_readme_has_examples() -> None:
    assert len(PYTHON) >= 6 and len(CLI_LINES) >= 8
    assert blocks(README, "python", runnable=False) == []  # the front door's all run


@pytest.mark.parametrize(("line_no", "code"), PYTHON, ids=[f"line{n}" for n, _ in PYTHON])
def test_python_example_runs(
    line_no: int,
    code: str,
    vpsbg_fake_factory: Callable[..., FakeVPSBGThread],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    run_example(code, f"README.md:{line_no}", vpsbg_fake_factory, monkeypatch, tmp_path)


def test_a_stale_example_fails(
    vpsbg_fake_factory: Callable[..., FakeVPSBGThread],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    line_no, code = next((n, c) for n, c in PYTHON if "client.tickets.list(" in c)
    stale = code.replace("client.tickets.list(", "client.tickets.list_all(")
    with pytest.raises(AttributeError, match="list_all"):
        run_example(stale, f"README.md:{line_no}", vpsbg_fake_factory, monkeypatch, tmp_path)


@pytest.mark.parametrize(("line_no", "line"), CLI_LINES, ids=[f"line{n}" for n, _ in CLI_LINES])
def test_cli_example_parses(line_no: int, line: str) -> None:
    args = build_parser().parse_args(cli_argv(line))
    assert args is not None
