"""The house rules a reader relies on: resources never touch aiohttp, the archive reaches the
API through the public client only, and the package imports without cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vpsbg_support"

#: Private modules the archive may use: pure helpers with no client inside (its tunables, the
#: same-second rule it shares with tickets.watch, the version it stamps on its pages).
ARCHIVE_MAY_USE = {"vpsbg_support._constants", "vpsbg_support._settle", "vpsbg_support._version"}


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (``from vpsbg_support import _x`` counts as ``_x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _private(module: str) -> bool:
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else ""
    # ``from vpsbg_support import __version__`` names a public dunder, not a private module.
    return parts[0] == "vpsbg_support" and name.startswith("_") and not name.startswith("__")


@pytest.mark.parametrize("path", sorted((PACKAGE / "resources").glob("*.py")), ids=lambda p: p.name)
def test_resources_never_import_aiohttp(path: Path) -> None:
    assert not any(m == "aiohttp" or m.startswith("aiohttp.") for m in _imports(path))


ARCHIVE_FILES = [*sorted((PACKAGE / "archive").glob("*.py")), PACKAGE / "export.py"]


@pytest.mark.parametrize("path", ARCHIVE_FILES, ids=lambda p: p.name)
def test_the_archive_uses_the_public_api_only(path: Path) -> None:
    private = {m for m in _imports(path) if _private(m) and m not in ARCHIVE_MAY_USE}
    # ``from vpsbg_support import _constants as C`` is recorded as both the package and the
    # module; only the module is a private name.
    private = {m for m in private if not any(m.startswith(f"{ok}.") for ok in ARCHIVE_MAY_USE)}
    assert private == set(), f"{path.name} imports private modules: {sorted(private)}"


#: The CLI reads its defaults (environment variable names, page size, intervals) where the
#: library keeps every tunable; everything else it does through the public API.
CLI_MAY_USE = {"vpsbg_support._constants"}
CLI_FILES = [*sorted((PACKAGE / "cli").glob("*.py")), PACKAGE / "demo.py"]


@pytest.mark.parametrize("path", CLI_FILES, ids=lambda p: p.name)
def test_the_cli_uses_the_public_api_only(path: Path) -> None:
    """Its own ``cli._*`` modules aside, the command line is a user of the library."""
    private = {
        m
        for m in _imports(path)
        if _private(m)
        and m not in CLI_MAY_USE
        and not any(m.startswith(f"{ok}.") for ok in CLI_MAY_USE)
        and not m.startswith("vpsbg_support.cli.")
    }
    assert private == set(), f"{path.name} imports private modules: {sorted(private)}"


@pytest.mark.parametrize(
    "module", ["vpsbg_support.archive", "vpsbg_support.cli", "vpsbg_support.testing"]
)
def test_each_public_module_imports_first_without_a_cycle(module: str) -> None:
    """Imported first in a fresh interpreter, before the package's own ``__init__`` had a
    chance to import it: a cycle shows as an ImportError here."""
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
