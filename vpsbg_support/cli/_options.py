"""Option types and the options every command takes, for the argument parser."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from vpsbg_support import _constants as C
from vpsbg_support.cli._app import Handler, OfflineHandler


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An option type: a whole number of at least ``minimum`` (and at most ``maximum``), else a
    usage error (exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value

    return parse


positive_int = whole_number(1)
retries = whole_number(0)
page_size = whole_number(1, C.MAX_PER_PAGE)


def seconds(text: str) -> float:
    """An option type: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text}")
    return value


def moment(text: str) -> datetime:
    """An option type: a date or an ISO 8601 time, in UTC unless it says otherwise."""
    value = text.strip()
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"  # Python 3.10's fromisoformat does not read "Z"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {MOMENT_FORMAT}, got {text!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


#: What ``moment`` accepts, for help texts and errors alike.
MOMENT_FORMAT = "a date (2024-05-01) or an ISO 8601 time (2024-05-01T12:00:00Z)"


def common_options() -> argparse.ArgumentParser:
    """Options accepted before or after the command; SUPPRESS keeps a later one from resetting
    an earlier one to its default."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection and output")
    s = argparse.SUPPRESS
    group.add_argument("--token", default=s, help=f"API token (default: ${C.ENV_TOKEN})")
    group.add_argument(
        "--base-url", default=s, help=f"API root (default: ${C.ENV_BASE_URL} or the real API)"
    )
    group.add_argument("--json", action="store_true", default=s, help="machine-readable output")
    group.add_argument(
        "--yes", "-y", action="store_true", default=s, help="do not ask before money actions"
    )
    group.add_argument(
        "--demo",
        action="store_true",
        default=s,
        help="run against an embedded fake API with seeded data (no token needed; not with"
        " --token or --base-url)",
    )
    group.add_argument("--timeout", type=seconds, default=s, help="seconds per request (60)")
    group.add_argument(
        "--max-retries", type=retries, default=s, help="retries of a failed read (default 2)"
    )
    group.add_argument("--verbose", "-v", action="store_true", default=s, help="log requests")
    return common


class Commands:
    """Adds commands to a group of subcommands, each with the common options and a handler."""

    def __init__(self, group: Any, common: argparse.ArgumentParser) -> None:
        self._group = group
        self._common = common

    def add(self, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        """A command ``name`` running ``handler``; returns its parser for its own arguments."""
        sub: argparse.ArgumentParser = self._group.add_parser(
            name, parents=[self._common], help=help_text, description=help_text
        )
        sub.set_defaults(handler=handler)
        return sub

    def add_offline(
        self, name: str, handler: OfflineHandler, help_text: str
    ) -> argparse.ArgumentParser:
        """A command ``name`` that needs no client (no token, no network): ``handler`` runs
        with the arguments and the output only."""
        sub: argparse.ArgumentParser = self._group.add_parser(
            name, parents=[self._common], help=help_text, description=help_text
        )
        sub.set_defaults(handler=None, offline=handler)
        return sub

    def group(self, name: str, help_text: str, dest: str) -> Commands:
        """A command group ``name`` (``tickets``, ``plans``...) whose actions are added to the
        returned :class:`Commands`."""
        parser = self._group.add_parser(name, help=help_text, description=help_text)
        actions = parser.add_subparsers(dest=dest, required=True, metavar="ACTION")
        return Commands(actions, self._common)
