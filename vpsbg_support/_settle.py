"""When a ticket's copy is settled: ``updated_at`` is to the second, so a change in the second
the ticket was read does not show in it. The export and ``tickets.watch`` both decide by it.

A copy is unsettled when the second of its ``updated_at`` did not end a full second before the
earliest moment the server may have read the ticket: the response's ``Date`` less the time the
request took here (the server's clock, the one ``updated_at`` is on, so a skewed local clock
does not matter). A response without a usable ``Date`` is judged by this machine's clock when
the request started, less ``CLOCK_MARGIN`` for the difference between the clocks. An
unsettled copy is read again (by the next export run, by the next poll of a watch) even if
``updated_at`` is unchanged.
"""

from __future__ import annotations

import contextlib
import email.utils
from datetime import datetime, timedelta, timezone

from vpsbg_support import _constants as C

_SETTLE_MARGIN = timedelta(seconds=C.SETTLE_MARGIN)
_CLOCK_MARGIN = timedelta(seconds=C.CLOCK_MARGIN)


def now() -> datetime:
    """This machine's clock, aware UTC (a function, so that tests can set it)."""
    return datetime.now(timezone.utc)


def served_at(date_header: str | None, requested_at: datetime, elapsed: float = 0.0) -> datetime:
    """The earliest moment the server may have read what a response holds, on the server's
    clock: its ``Date`` header, stamped when the answer is sent, less ``elapsed``, the seconds
    the request took here (a slow server may read the ticket well before it answers). Without a
    usable ``Date``, this machine's clock when the request started, less the clock margin."""
    if date_header is not None:
        try:
            served = email.utils.parsedate_to_datetime(date_header)
        except (TypeError, ValueError, OverflowError):  # TypeError: Python 3.10's "unparsable"
            pass
        else:
            # RFC 9110 dates are GMT; only "-0000" parses as naive.
            if served.tzinfo is None:
                served = served.replace(tzinfo=timezone.utc)
            with contextlib.suppress(OverflowError):
                return served - timedelta(seconds=elapsed)
    return requested_at - _CLOCK_MARGIN


def is_settled(updated_at: datetime | None, served: datetime) -> bool:
    """Whether a ticket read no earlier than ``served`` (see :func:`served_at`) holds every
    change made up to its ``updated_at``, so that an unchanged ``updated_at`` proves an
    unchanged ticket.

    With ``Date`` 12:00:10 and a quick answer, an ``updated_at`` of 12:00:07 is settled, one of
    12:00:08 (its second ends 12:00:09, the margin takes the read back before that) is not.
    Without an ``updated_at`` nothing can be proven: False.
    """
    if updated_at is None:
        return False
    try:
        read_after = served - _SETTLE_MARGIN - timedelta(seconds=1)
    except OverflowError:  # a Date near year 1: nothing can be proven
        return False
    # Compared as "second began <= bound - 1 s", so an updated_at of 9999-12-31T23:59:59 does
    # not overflow.
    return updated_at.replace(microsecond=0) <= read_after
