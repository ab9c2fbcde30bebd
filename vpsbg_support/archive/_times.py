"""Times as the archive writes them: UTC ISO 8601 text with microseconds, sortable as text."""

from __future__ import annotations

from datetime import date, datetime, timezone

from vpsbg_support.errors import InvalidParameterError


def stamp(moment: datetime) -> str:
    """A time as the archive writes it: ``2024-05-01T12:00:00.000000Z``.

    ``isoformat()``, as the converter writes times, not ``strftime("%Y")``: glibc does not
    zero-pad years before 1000, which would neither sort as text nor parse back.
    """
    utc = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def parse_stamp(text: str | None) -> datetime | None:
    """A time the archive wrote, aware UTC (None stays None)."""
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def as_utc(moment: datetime | date | None, field: str = "since") -> datetime | None:
    """A datetime or date (naive: UTC; a date: its midnight) as an aware UTC datetime.

    Raises:
        InvalidParameterError: (field ``field``) neither a datetime nor a date.
    """
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        if not isinstance(moment, date):
            raise InvalidParameterError(field, f"expected a datetime, got {moment!r}")
        moment = datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
