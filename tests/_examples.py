"""Running the code examples of a Markdown page (the README, the docs site's pages): Python
blocks against a seeded FakeVPSBG, CLI lines through the real argument parser or the demo.

A block that cannot run (it needs a real account, or shows a fragment) is marked on the line
before its fence with ``<!-- example: not run (why) -->``; every other ``python`` block runs.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vpsbg_support.testing import FakeVPSBGThread

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
NOT_RUN = re.compile(r"<!-- example: not run \([^)]+\) -->\n\Z")


def blocks(page: Path, language: str, *, runnable: bool = True) -> list[tuple[int, str]]:
    """(line number, code) of every fenced block of ``page`` in ``language``: the runnable
    ones, or (``runnable=False``) the ones marked not run."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        if match.group(1) != language:
            continue
        marked = NOT_RUN.search(text, 0, match.start()) is not None
        if marked != runnable:
            found.append((text.count("\n", 0, match.start()) + 1, match.group(2)))
    return found


def cli_lines(page: Path) -> list[tuple[int, str]]:
    """(line number, command) of every ``vpsbg-support ...`` line of the page's sh blocks,
    without its trailing comment."""
    return [
        (line_no, line.split("  #")[0].strip())
        for line_no, code in blocks(page, "sh")
        for line in code.splitlines()
        if line.startswith("vpsbg-support ")
    ]


def cli_argv(line: str) -> list[str]:
    """The arguments of a ``vpsbg-support ...`` line."""
    return shlex.split(line)[1:]


def run_example(
    code: str,
    where: str,
    vpsbg_fake_factory: Callable[..., FakeVPSBGThread],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Run one block with the environment pointing at a seeded fake; ``where`` names it in
    tracebacks (``README.md:120``)."""
    fake = vpsbg_fake_factory(seed=11, tickets=10)
    monkeypatch.setenv("VPSBG_API_TOKEN", fake.token)
    monkeypatch.setenv("VPSBG_BASE_URL", fake.url)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(code, where, "exec"), namespace)
    # Blocks that define pytest tests: run them the way pytest would, with a fake of their own.
    for name, func in list(namespace.items()):
        if name.startswith("test_") and callable(func):
            marks = [m for m in getattr(func, "pytestmark", []) if m.name == "vpsbg_fake"]
            options = {"seed": 0, "tickets": 10, **(marks[0].kwargs if marks else {})}
            result = func(vpsbg_fake_factory(**options))
            if inspect.iscoroutine(result):  # an async test, as pytest-asyncio runs it
                asyncio.run(result)
