"""Every code example in README.md runs: Python blocks against FakeVPSBG, CLI lines through the
real argument parser. A stale example (a renamed method, a removed flag) fails `make test`."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vpsbg_support.cli import build_parser
from vpsbg_support.testing import FakeVPSBGThread

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks(language: str) -> list[tuple[int, str]]:
    """(line number, code) of every fenced block in the README in ``language``."""
    text = README.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(2))
        for m in FENCE.finditer(text)
        if m.group(1) == language
    ]


PYTHON = blocks("python")
CLI_LINES = [
    (line_no, line.split("  #")[0].strip())
    for line_no, code in blocks("sh")
    for line in code.splitlines()
    if line.startswith("vpsbg-support ")
]


def test_the_readme_has_examples() -> None:
    assert len(PYTHON) >= 6 and len(CLI_LINES) >= 8


@pytest.mark.parametrize(("line_no", "code"), PYTHON, ids=[f"line{n}" for n, _ in PYTHON])
def test_python_example_runs(
    line_no: int,
    code: str,
    vpsbg_fake_factory: Callable[..., FakeVPSBGThread],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    run_example(code, line_no, vpsbg_fake_factory, monkeypatch, tmp_path)


def test_a_stale_example_fails(
    vpsbg_fake_factory: Callable[..., FakeVPSBGThread],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    line_no, code = next((n, c) for n, c in PYTHON if "client.tickets.list(" in c)
    stale = code.replace("client.tickets.list(", "client.tickets.list_all(")
    with pytest.raises(AttributeError, match="list_all"):
        run_example(stale, line_no, vpsbg_fake_factory, monkeypatch, tmp_path)


def run_example(
    code: str,
    line_no: int,
    vpsbg_fake_factory: Callable[..., FakeVPSBGThread],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Run one README block with the environment pointing at a seeded fake."""
    fake = vpsbg_fake_factory(seed=11, tickets=10)
    monkeypatch.setenv("VPSBG_API_TOKEN", fake.token)
    monkeypatch.setenv("VPSBG_BASE_URL", fake.url)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, f"README.md:{line_no}", "exec"), namespace)
    # Blocks that define pytest tests: run them the way pytest would, with a fake of their own.
    for name, func in list(namespace.items()):
        if name.startswith("test_") and callable(func):
            marks = [m for m in getattr(func, "pytestmark", []) if m.name == "vpsbg_fake"]
            options = {"seed": 0, "tickets": 10, **(marks[0].kwargs if marks else {})}
            func(vpsbg_fake_factory(**options))


@pytest.mark.parametrize(("line_no", "line"), CLI_LINES, ids=[f"line{n}" for n, _ in CLI_LINES])
def test_cli_example_parses(line_no: int, line: str) -> None:
    args = build_parser().parse_args(shlex.split(line)[1:])
    assert args is not None
