"""The ``vpsbg-support`` command: bulk export, tickets and support plans from a shell.

Exit status: 0 success, 1 any other error, or a question answered "no" (nothing was sent), or
stdout closed early (``| head``: a quiet exit), 2 bad usage (a bad option value, an unusable
``--base-url``, ``--demo`` with ``--token``/``--base-url``, or a confirmation needed with no
terminal to ask on and no ``--yes``), 3 authentication (no, wrong or read-only token), 4 invalid
input (checked locally or refused by the API with 422/400, or a download that would replace a
different file: the other attachments are still downloaded), 5 not found, 6 network (connection,
timeout, download cut short), 7 an export that finished with failures (run it again to complete
it), 130 interrupted (Ctrl-C; an export is left resumable).

``--json`` prints one JSON document on stdout, with the library's field names: ``tickets list``
an object ``{"items": [tickets], "page", "last_page", "per_page", "total", "has_next"}``
(tickets without ``messages`` when the list answer did not carry them; the paging keys are
``null`` when the API does not say, and with ``--all`` ``total`` counts every ticket and
``has_next`` is false), ``tickets show|create|reply|resolve`` a ticket (``resolve``: ``{"id":
N}`` when the API answers without one), ``tickets departments|services`` an array of them,
``tickets download`` an array of ``{"attachment_id", "path", "skipped"}`` for the files written
or already there (a file kept because it differs is an error line on stderr, and exit 4),
``plans list`` an array of plans, ``plans purchase|renew|cancel|undo-cancel`` an order (``null``
when the API answers without one), ``export`` the summary (the keys of ``_summary_json``),
``orders list`` an array of orders, ``orders show|wait`` an order. ``tickets watch --json``
prints JSON Lines instead, one event a line: ``{"event", "ticket_id", "subject", "status",
"message"|"old","new", "cursor"}``. Errors are never JSON, with ``--json`` too: one
plain-text line on stderr, ``vpsbg-support: error: ...``, and the exit status above.

One module per command group (``tickets``, ``plans``, ``export``...), each with a ``register``
function; ``_main`` builds the parser from them and runs the chosen command.
"""

from __future__ import annotations

from vpsbg_support.cli._app import (
    EXIT_ABORTED,
    EXIT_AUTH,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_NETWORK,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    EXIT_VALIDATION,
    exit_code_for,
)
from vpsbg_support.cli._main import build_parser, main

__all__ = [
    "EXIT_ABORTED",
    "EXIT_AUTH",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_NETWORK",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "EXIT_VALIDATION",
    "build_parser",
    "exit_code_for",
    "main",
]
