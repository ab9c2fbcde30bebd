"""`make test-all`: the test suite on every CPython 3.10-3.13 found on this machine."""

from __future__ import annotations

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

# A missing interpreter is skipped with a message, not an error: CI machines differ.
nox.options.error_on_missing_interpreters = False
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Lint-free install of the package with its dev extras, then pytest."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs)
