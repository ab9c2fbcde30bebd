"""What every command shares: exit statuses, the errors the CLI words itself, and the output."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import IO, Any

from vpsbg_support import AsyncClient
from vpsbg_support.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    DownloadError,
    ExportError,
    InvalidParameterError,
    NotFoundError,
    OtherSourceError,
    PermissionDeniedError,
    UnprocessableEntityError,
    VPSBGError,
)

PROG = "vpsbg-support"
EXIT_OK = 0
EXIT_ERROR = 1
#: A question answered "no": nothing was sent. The same status as other errors, as most tools do.
EXIT_ABORTED = EXIT_ERROR
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_VALIDATION = 4
EXIT_NOT_FOUND = 5
EXIT_NETWORK = 6
EXIT_PARTIAL = 7
EXIT_INTERRUPTED = 130

#: A command: called with the open client, the parsed arguments and where its results go.
Handler = Callable[[AsyncClient, argparse.Namespace, "Output"], Awaitable[int]]
#: A command that reads local files only (``archive ...``): no client is built for it.
OfflineHandler = Callable[[argparse.Namespace, "Output"], int]


class CLIExit(Exception):
    """An error the CLI words itself, for the command line (``--overwrite``, not a parameter)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class StdoutClosed(Exception):
    """Whoever read stdout has gone (``| head``): nothing left to say, and nobody to say it to."""


def exit_code_for(exc: BaseException) -> int:
    """The exit status for an error.

    Args:
        exc: the error that ended the command.

    Returns:
        3 auth, 4 validation (and an archive of another source), 5 not found, 6 network,
        7 archive folder not writable (resumable: run again once fixed), 1 anything else.
    """
    if isinstance(exc, ConfigurationError | AuthenticationError | PermissionDeniedError):
        return EXIT_AUTH
    if isinstance(
        exc, InvalidParameterError | UnprocessableEntityError | BadRequestError | OtherSourceError
    ):
        return EXIT_VALIDATION
    if isinstance(exc, ExportError):
        return EXIT_PARTIAL
    if isinstance(exc, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, APIConnectionError | DownloadError):
        return EXIT_NETWORK
    return EXIT_ERROR


def describe(exc: BaseException) -> str:
    """One line for an error: the library's message, plus the API's field errors on a 422 when
    they say more than the message (Laravel's message repeats the first of them)."""
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, UnprocessableEntityError) and exc.errors:
        fields = []
        for field, messages in exc.errors.items():
            news = [m for m in messages if m not in text]
            if news:
                fields.append(f"{field}: {' '.join(news)}")
        if fields:
            text = f"{text} ({'; '.join(fields)})"
    elif isinstance(exc, OSError) and exc.filename is not None:
        # "/proc/nope: No such file or directory", as mkdir or cp would say it.
        where = os.fsdecode(exc.filename)
        if exc.filename2 is not None:
            where += f" -> {os.fsdecode(exc.filename2)}"
        text = f"{where}: {exc.strerror or exc.__class__.__name__}"
    elif not isinstance(exc, VPSBGError):
        text = f"{exc.__class__.__name__}: {text}"
    return " ".join(text.split())


def fail(message: str, code: int) -> int:
    """Print ``message`` as the command's one error line on stderr and return ``code``."""
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()
    return code


class Output:
    """Where results go: stdout as text for people, or one JSON document with ``--json``."""

    def __init__(self, as_json: bool, out: IO[str] | None = None) -> None:
        self.as_json = as_json
        # Looked up now, not at import: whoever redirected sys.stdout meanwhile gets the output.
        self._out = out if out is not None else sys.stdout

    def line(self, data: Any, text: Callable[[], str]) -> None:
        """Write one item of a stream: ``data`` as one JSON line with ``--json`` (JSON Lines),
        else ``text()``, flushed at once for whoever reads the pipe."""
        try:
            if self.as_json:
                self._out.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
            else:
                self._out.write(text().rstrip("\n") + "\n")
            self._out.flush()
        except BrokenPipeError:
            raise StdoutClosed from None

    def emit(self, data: Any, text: Callable[[], str]) -> None:
        """Write one result: ``data`` as JSON with ``--json``, else ``text()``."""
        try:
            if self.as_json:
                json.dump(data, self._out, indent=2, ensure_ascii=False, default=str)
                self._out.write("\n")
            else:
                self._out.write(text().rstrip("\n") + "\n")
            self._out.flush()
        except BrokenPipeError:
            raise StdoutClosed from None
