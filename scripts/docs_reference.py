"""The generated pages of the documentation site, and the mkdocs hook that adds them.

Nothing here is written twice: the API reference lists every name of each public module's
``__all__`` (rendered from its docstring by mkdocstrings), and the CLI reference is the help of
every command the parser of ``vpsbg-support`` has, walked recursively. A name or a command added
anywhere in the package appears on the next build without an edit here. A public module that is
not in this build (``vpsbg_support.archive`` before its branch lands) is skipped with a notice.

``mkdocs.yml`` names this file under ``hooks:``; ``tests/test_docs.py`` imports it to check that
every public name has a reference entry.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
from collections.abc import Iterator
from typing import Any

#: The modules whose ``__all__`` the API reference documents, in the order of the site's menu.
PUBLIC_MODULES = ("vpsbg_support", "vpsbg_support.testing", "vpsbg_support.archive")
#: Where the generated pages live inside the site.
REFERENCE_DIR = "reference"
CLI_PAGE = f"{REFERENCE_DIR}/cli.md"
#: The width the CLI help is wrapped at.
HELP_COLUMNS = "80"
#: The options every command takes: listed once, under the top command.
COMMON_GROUP = "connection and output:"

log = logging.getLogger("mkdocs.hooks.docs_reference")


def api_page_path(module: str) -> str:
    """The site path of ``module``'s reference page."""
    return f"{REFERENCE_DIR}/{module}.md"


def import_public(module: str) -> Any | None:
    """``module`` imported, or None when this build does not have it (only that module missing:
    a broken import inside it is an error, not a notice)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            return None
        raise


def documented_names(module: Any) -> list[str]:
    """The public names of ``module``: its ``__all__``, sorted as the page lists them."""
    names: list[str] = list(module.__all__)
    return sorted(names, key=lambda n: (n.startswith("_"), n.lower()))


def _entry(module: str, name: str, value: Any) -> str:
    options = ["show_root_heading: true", "show_root_full_path: false"]
    if isinstance(value, type(os)):  # a submodule re-exported by name: its classes are listed
        options += ["members: false"]
    body = "\n".join(f"      {o}" for o in options)
    return f"::: {module}.{name}\n    options:\n{body}\n"


def api_page(module_name: str, module: Any) -> str:
    """The Markdown of one module's reference page: its docstring, then one entry per name."""
    lines = [
        f"# `{module_name}`",
        "",
        "Generated from the docstrings of every name in the module's `__all__`.",
        "",
        f"::: {module_name}",
        "    options:",
        "      show_root_heading: false",
        "      members: false",
        "",
    ]
    for name in documented_names(module):
        lines.append(_entry(module_name, name, getattr(module, name)))
    return "\n".join(lines)


def api_pages() -> dict[str, str]:
    """Every API reference page this build can make, by site path; missing modules skipped."""
    pages: dict[str, str] = {}
    for name in PUBLIC_MODULES:
        module = import_public(name)
        if module is None:
            log.info("docs: %s is not in this build; its reference page is skipped", name)
            continue
        pages[api_page_path(name)] = api_page(name, module)
    return pages


def walk_commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (command words, parser) of the command line, depth first, the top parser first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk_commands(sub, (*path, name))


def cli_page() -> str:
    """The CLI reference: the ``--help`` of every command, as the parser prints it."""
    from vpsbg_support.cli import build_parser

    # Plain text at a fixed width, whatever the terminal building the site (Python 3.14's
    # argparse colours help on a terminal unless NO_COLOR is set).
    fixed = {"COLUMNS": HELP_COLUMNS, "NO_COLOR": "1"}
    saved = {name: os.environ.get(name) for name in fixed}
    os.environ.update(fixed)
    try:
        parser = build_parser()
        commands = list(walk_commands(parser))
        lines = [
            "# Command line reference",
            "",
            "Generated from the argument parser of `vpsbg-support` (`vpsbg_support.cli"
            ".build_parser()`): each section is what `--help` prints for that command.",
            "The options under *connection and output*, listed once under `vpsbg-support`, are"
            " accepted by every command, before or after it.",
            "",
        ]
        for words, sub in commands:
            title = " ".join((parser.prog, *words))
            text = sub.format_help().rstrip()
            if words:
                text = _without_common_options(text)
            lines += [f"## `{title}`", "", "```text", text, "```", ""]
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return "\n".join(lines)


def _without_common_options(help_text: str) -> str:
    """A command's help without the paragraph of the options every command takes."""
    paragraphs = help_text.split("\n\n")
    kept = [p for p in paragraphs if not p.startswith(COMMON_GROUP)]
    return "\n\n".join(kept)


def generated_pages() -> dict[str, str]:
    """Every generated page of the site, by path under ``docs/``."""
    return {CLI_PAGE: cli_page(), **api_pages()}


# -- mkdocs hooks --------------------------------------------------------------------------------

#: The pages made by ``on_config`` for ``on_files`` of the same build.
_PAGES: dict[str, str] = {}


def on_config(config: Any) -> Any:
    """Add a *Reference* section to the menu: the CLI page, then one page per public module."""
    pages = generated_pages()
    _PAGES.clear()
    _PAGES.update(pages)
    reference: list[Any] = [{"Command line": CLI_PAGE}]
    for name in PUBLIC_MODULES:
        path = api_page_path(name)
        if path in pages:
            reference.append({name: path})
    nav = config.get("nav")
    if nav is not None:
        nav.append({"Reference": reference})
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages to the site's files (never written into ``docs/``)."""
    from mkdocs.structure.files import File

    for path, content in _PAGES.items():
        files.append(File.generated(config, path, content=content))
    return files
