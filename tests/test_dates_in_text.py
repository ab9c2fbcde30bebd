"""Dates as text: what the CLI prints and reads, and the fake's timestamps.

Years before 1000 keep four digits: ``strftime("%Y")`` does not zero-pad them on glibc
(``999-01-02``), which a reader of the CLI's tables, or a client parsing the fake's ISO-8601
timestamps, would trip over.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

import pytest

from vpsbg_support import Ticket
from vpsbg_support.cli._format import when
from vpsbg_support.cli._options import moment
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


def test_cli_moments_are_utc_and_refuse_what_is_not_a_time() -> None:
    """``--since`` reads a date or an ISO 8601 time ("Z" too, on Python 3.10)."""
    utc = timezone.utc
    assert moment("2024-05-01") == datetime(2024, 5, 1, tzinfo=utc)
    assert moment("2024-05-01T12:00:00Z") == datetime(2024, 5, 1, 12, tzinfo=utc)
    assert moment(" 2024-05-01T14:00:00+02:00 ") == datetime(2024, 5, 1, 12, tzinfo=utc)
    for bad in ("last tuesday", "", "Z", "2024-13-01"):
        with pytest.raises(argparse.ArgumentTypeError, match="a date"):
            moment(bad)
