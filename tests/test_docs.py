"""The documentation site: every Python example of its pages runs, every public name has a
reference entry, and the generated pages follow the code (a name or a command added later
appears without an edit)."""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import logging
import re
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests._examples import ROOT, blocks, run_example
from vpsbg_support.cli import build_parser
from vpsbg_support.testing import FakeVPSBGThread

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
EXAMPLES = [
    (f"docs/{page.name}:{line_no}", code)
    for page in PAGES
    for line_no, code in blocks(page, "python")
]


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "docs_reference", ROOT / "scripts/docs_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def test_the_site_has_its_pages_and_examples() -> None:
    names = {page.stem for page in PAGES}
    assert {"index", "getting-started", "async", "blocking", "export", "testing", "errors"} <= names
    assert len(EXAMPLES) >= 15


@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_python_example_runs(
    where: str,
    code: str,
    vpsbg_fake_factory: Callable[..., FakeVPSBGThread],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    run_example(code, where, vpsbg_fake_factory, monkeypatch, tmp_path)


def test_blocks_marked_not_run_are_the_only_ones_skipped(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nprint(1)\n```\n\n<!-- example: not run (needs a real account) -->\n"
        "```python\nprint(2)\n```\n",
        encoding="utf-8",
    )
    assert blocks(page, "python") == [(1, "print(1)\n")]
    assert blocks(page, "python", runnable=False) == [(6, "print(2)\n")]


# -- the API reference ---------------------------------------------------------------------------


@pytest.mark.parametrize("module_name", gen.PUBLIC_MODULES)
def test_every_public_name_has_a_reference_entry(module_name: str) -> None:
    module = gen.import_public(module_name)
    if module is None:
        pytest.skip(f"{module_name} is not in this build")
    page = gen.generated_pages()[gen.api_page_path(module_name)]
    entries = {line[4:].strip() for line in page.splitlines() if line.startswith("::: ")}
    assert entries == {module_name} | {f"{module_name}.{name}" for name in module.__all__}
    for name in module.__all__:  # each entry renders something a reader can use
        value = getattr(module, name)
        # A type alias (``Callable[...]``) is no class, though 3.10's isclass() says it is.
        if isinstance(value, types.GenericAlias):
            continue
        if inspect.isclass(value) or inspect.isfunction(value):
            assert (value.__doc__ or "").strip(), f"{module_name}.{name} has no docstring"


def test_a_module_added_later_gets_its_page(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    missing = gen.PUBLIC_MODULES[-1]
    monkeypatch.setitem(sys.modules, missing, None)  # as if the branch had not landed
    with caplog.at_level(logging.INFO):
        pages = gen.api_pages()
    assert gen.api_page_path(missing) not in pages
    assert f"{missing} is not in this build" in caplog.text

    module = types.ModuleType(missing)
    module.__all__ = ["Archive"]  # type: ignore[attr-defined]
    module.Archive = type("Archive", (), {"__doc__": "An archive."})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, missing, module)
    page = gen.api_pages()[gen.api_page_path(missing)]
    assert f"::: {missing}.Archive" in page


def test_the_menu_lists_each_generated_page(monkeypatch: pytest.MonkeyPatch) -> None:
    config: dict[str, Any] = {"nav": [{"Home": "index.md"}]}
    gen.on_config(config)
    reference = config["nav"][-1]["Reference"]
    listed = [path for entry in reference for path in entry.values()]
    assert listed[0] == gen.CLI_PAGE
    assert set(listed) == set(gen.generated_pages())


# -- the CLI reference ---------------------------------------------------------------------------


def test_the_cli_reference_has_every_command_with_its_help() -> None:
    page = gen.cli_page()
    for words, parser in gen.walk_commands(build_parser()):
        assert f"## `{' '.join(('vpsbg-support', *words))}`" in page
        for action in parser._actions:
            for flag in action.option_strings:
                assert flag in page
    assert "## `vpsbg-support tickets download`" in page and "--overwrite" in page


def test_a_command_group_added_later_is_in_the_cli_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vpsbg_support.cli import _main

    def register(commands: Any) -> None:
        group = commands.group("invoices", "the account's invoices", dest="invoices_command")
        watch = group.add("watch", _main._run, "wait for an order to be paid")
        watch.add_argument("--every", help="seconds between looks")

    monkeypatch.setattr(_main, "GROUPS", (*_main.GROUPS, types.SimpleNamespace(register=register)))
    page = gen.cli_page()
    assert "## `vpsbg-support invoices watch`" in page and "seconds between looks" in page


def test_walk_commands_is_depth_first() -> None:
    parser = argparse.ArgumentParser(prog="p")
    sub = parser.add_subparsers()
    group = sub.add_parser("g").add_subparsers()
    group.add_parser("a")
    sub.add_parser("h")
    assert [words for words, _ in gen.walk_commands(parser)] == [(), ("g",), ("g", "a"), ("h",)]


def test_the_testing_guide_lists_every_route_name() -> None:
    """The route names a fault or a count takes, as the guide lists them: every one, no other."""
    from vpsbg_support.testing import ROUTE_NAMES

    page = (ROOT / "docs" / "testing.md").read_text()
    listed = page.split("Route names (`vpsbg_support.testing.ROUTE_NAMES`", 1)[1].split("\n\n")[0]
    assert set(re.findall(r"`([a-z_]+\.[a-z_]+)`", listed)) == set(ROUTE_NAMES)
