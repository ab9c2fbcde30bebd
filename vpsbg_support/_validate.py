"""Strict checks on what we send, raised before any request leaves the machine."""

from __future__ import annotations

from vpsbg_support import _constants as C
from vpsbg_support.errors import InvalidParameterError


def check_id(field: str, value: object) -> int | str:
    """A path id: a positive int, or a string of digits (the docs type path ids as strings)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidParameterError(field, f"expected an integer id, got {type(value).__name__}")
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit():
            raise InvalidParameterError(field, f"expected an integer id, got {value!r}")
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
    return value


def check_text(field: str, value: object, *, minimum: int, maximum: int | None = None) -> str:
    """A string whose length (in characters, surrounding blanks ignored) lies in range."""
    if not isinstance(value, str):
        raise InvalidParameterError(field, f"expected a string, got {type(value).__name__}")
    length = len(value.strip())
    if length < minimum:
        raise InvalidParameterError(field, f"must be at least {minimum} characters, got {length}")
    if maximum is not None and len(value) > maximum:
        raise InvalidParameterError(
            field, f"must be at most {maximum} characters, got {len(value)}"
        )
    return value


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
