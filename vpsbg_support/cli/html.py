"""``vpsbg-support archive html DIR`` and ``export DIR --html``: the browsable archive.

Renders ``index.html``, a page per ticket and ``tickets.csv`` from the folder's
``archive.sqlite`` (offline, no token). Message HTML is sanitised with nh3, the optional extra
``vpsbg-support[html]``: without it, both commands say how to install it, and ``export --html``
says so before exporting anything.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from vpsbg_support.archive import Archive
from vpsbg_support.archive.html import HtmlSummary, render_html, require_nh3
from vpsbg_support.cli._app import EXIT_ERROR, EXIT_OK, CLIExit, Output
from vpsbg_support.cli._options import Commands

__all__ = ["check_html_extra", "register_html", "render", "summary_json", "summary_text"]


def check_html_extra() -> None:
    """Exit (status 1) with the install command when nh3 is missing.

    Raises:
        CLIExit: nh3 cannot be imported.
    """

    try:
        require_nh3()
    except ImportError as exc:
        raise CLIExit(str(exc), EXIT_ERROR) from None


def render(folder: str | os.PathLike[str]) -> HtmlSummary:
    """Render the browsable archive of an export folder (see ``vpsbg_support.archive.html``).

    Raises:
        CLIExit: nh3 is missing.
        ExportError: no archive there, or a page could not be written.
    """

    check_html_extra()
    with Archive(folder) as archive:
        return render_html(archive)


def summary_json(summary: HtmlSummary) -> dict[str, Any]:
    """The ``--json`` form of what was rendered."""
    return {
        "index": str(summary.index),
        "csv": str(summary.csv),
        "tickets": summary.tickets,
        "pages_written": summary.pages_written,
        "pages_unchanged": summary.pages_unchanged,
    }


def summary_text(summary: HtmlSummary) -> str:
    """What was rendered and the address to open, for people."""
    return (
        f"HTML archive of {summary.tickets} tickets: {summary.pages_written} page(s) written,"
        f" {summary.pages_unchanged} already up to date; CSV index: {summary.csv}\n"
        f"  open {summary.index.as_uri()}"
    )


def _html(args: argparse.Namespace, out: Output) -> int:
    summary = render(args.dir)
    out.emit(summary_json(summary), lambda: summary_text(summary))
    return EXIT_OK


def register_html(archive: Commands) -> None:
    """Add ``html`` to the ``archive`` command group."""
    html = archive.add_offline(
        "html",
        _html,
        "write index.html, a page per ticket and tickets.csv (needs vpsbg-support[html])",
    )
    html.add_argument("dir", help="the export folder")
