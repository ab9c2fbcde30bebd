"""Dates before the year 1000 print with four digits in the CLI and in the fake's bodies.

``strftime("%Y")`` does not zero-pad such years on glibc (``999-01-02``), which a reader of the
CLI's tables, or a client parsing the fake's ISO-8601 timestamps, would trip over.
"""

from __future__ import annotations

from datetime import datetime, timezone

from vpsbg_support import Ticket
from vpsbg_support.cli._format import when
from vpsbg_support.testing._render import timestamp

EARLY = datetime(999, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)


def test_cli_dates_keep_four_digit_years() -> None:
    assert when(EARLY) == "0999-01-02 03:04"
    assert when(datetime(2024, 8, 2, 11, 57, 57, tzinfo=timezone.utc)) == "2024-08-02 11:57"
    assert when(None) == "-"


def test_fake_timestamps_keep_four_digit_years_and_parse_back() -> None:
    assert timestamp(EARLY) == "0999-01-02T03:04:05.000000Z"
    assert timestamp(EARLY, "microseconds") == "0999-01-02T03:04:05.678901Z"
    body = {"id": 1, "subject": "s", "status": "opened", "created_at": timestamp(EARLY)}
    assert Ticket.from_dict(body).created_at == EARLY.replace(microsecond=0)
