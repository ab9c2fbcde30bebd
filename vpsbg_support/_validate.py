"""Strict checks on what we send, raised before any request leaves the machine."""

from __future__ import annotations

import math
import re

from vpsbg_support import _constants as C
from vpsbg_support.errors import InvalidParameterError


def check_id(field: str, value: object) -> int:
    """A path id: a positive int, or a string of digits (the docs type path ids as strings)."""
    if type(value) is int and value > 0:  # the common case, before the checks that explain
        return value
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidParameterError(field, f"expected an integer id, got {type(value).__name__}")
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise InvalidParameterError(field, f"expected an integer id, got {value!r}")
    # int(): an int subclass (an IntEnum, say) would go into the URL by its str(), its name.
    value = int(value)
    if value <= 0:
        raise InvalidParameterError(field, f"must be a positive integer, got {value}")
    return value


def check_int(field: str, value: object, *, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer within [minimum, maximum]; bools are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterError(field, f"expected an integer, got {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise InvalidParameterError(field, f"must be {bound}, got {value}")
    return int(value)


#: What Laravel's TrimStrings middleware strips from both ends before validating (its regex
#: ``[\s\x{FEFF}\x{200B}\x{200E}]``): the limits are counted on what remains, as the server will.
_TRIMMED = re.compile(r"^[\s\ufeff\u200b\u200e]+|[\s\ufeff\u200b\u200e]+$")


def check_text(field: str, value: object, *, minimum: int, maximum: int | None = None) -> str:
    """A string whose length, in characters once surrounding blanks are trimmed as the server
    trims them, lies in range. Returned as a plain ``str`` (a str subclass such as a str Enum
    would otherwise be sent as its ``str()``), untrimmed."""
    if not isinstance(value, str):
        raise InvalidParameterError(field, f"expected a string, got {type(value).__name__}")
    length = len(_TRIMMED.sub("", value))
    if length < minimum:
        raise InvalidParameterError(field, f"must be at least {minimum} characters, got {length}")
    if maximum is not None and length > maximum:
        raise InvalidParameterError(field, f"must be at most {maximum} characters, got {length}")
    return str.__str__(value)


def check_seconds(field: str, value: object, *, minimum: float = 0.0) -> float:
    """Seconds for a timeout or an interval: a finite number above 0 and at least ``minimum``
    (``inf`` would overflow the loop's timer, ``nan`` would silently mean no limit, ``True`` is
    not a number of seconds)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidParameterError(
            field, f"expected seconds as a number, got {type(value).__name__}"
        )
    if not math.isfinite(value) or value <= 0 or value < minimum:
        at_least = f"at least {minimum:g}" if minimum > 0 else "above 0"
        raise InvalidParameterError(field, f"must be a finite number {at_least}, got {value}")
    return float(value)


def check_timeout(value: object) -> float:
    """Seconds for the client's ``timeout`` (see :func:`check_seconds`)."""
    return check_seconds("timeout", value)


def check_billing_cycle_renew(value: object) -> int:
    """Renewal periods VPSBG accepts: 1, 3, 6, 12 or 24 months."""
    cycle = check_int("billing_cycle", value)
    if cycle not in C.RENEW_BILLING_CYCLES:
        allowed = ", ".join(map(str, C.RENEW_BILLING_CYCLES))
        raise InvalidParameterError("billing_cycle", f"must be one of {allowed}, got {cycle}")
    return cycle


def check_billing_cycle_purchase(value: object) -> int:
    """Purchase periods VPSBG accepts: 1 to 24 months."""
    low, high = C.PURCHASE_BILLING_CYCLE_RANGE
    return check_int("billing_cycle", value, minimum=low, maximum=high)
