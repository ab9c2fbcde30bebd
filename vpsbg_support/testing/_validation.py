"""Request validation as the Laravel backend does it: every field error at once, its messages."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import TypeVar

from vpsbg_support._constants import (
    MESSAGE_MIN,
    PURCHASE_BILLING_CYCLE_RANGE,
    RENEW_BILLING_CYCLES,
    SUBJECT_MAX,
    SUBJECT_MIN,
)
from vpsbg_support.testing._state import FakeAPIError, FakeState

_INTEGER = re.compile(r"[+-]?\d+")
_TRUE = (True, 1, "1", "true")
_FALSE = (False, 0, "0", "false")

T = TypeVar("T")


class Validator:
    """Collects Laravel-style field errors over one request's input, then raises them together.

    Input is normalised as Laravel's default middleware does: strings are trimmed and an empty
    string counts as missing.

    Args:
        data: the request's fields (form values are strings; JSON values keep their type).
    """

    def __init__(self, data: Mapping[str, object]) -> None:
        self._data = {k: _normalise(v) for k, v in data.items()}
        self.errors: dict[str, list[str]] = {}

    def fail(self, field: str, message: str) -> None:
        """Record one error for ``field``."""
        self.errors.setdefault(field, []).append(message)

    def _present(self, field: str, required: bool) -> object | None:
        value = self._data.get(field)
        if value is None and required:
            self.fail(field, f"The {_label(field)} field is required.")
        return value

    def string(
        self, field: str, *, required: bool = False, min: int | None = None, max: int | None = None
    ) -> str | None:
        """Return a string field, checking its length in characters; ``None`` when invalid."""
        value = self._present(field, required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(field, f"The {_label(field)} field must be a string.")
            return None
        if min is not None and len(value) < min:
            self.fail(field, f"The {_label(field)} field must be at least {min} characters.")
            return None
        if max is not None and len(value) > max:
            self.fail(
                field, f"The {_label(field)} field must not be greater than {max} characters."
            )
            return None
        return value

    def integer(
        self,
        field: str,
        *,
        required: bool = False,
        min: int | None = None,
        max: int | None = None,
        choices: Collection[int] | None = None,
    ) -> int | None:
        """Return an integer field (an int, or a string of digits); ``None`` when invalid."""
        raw = self._present(field, required)
        if raw is None:
            return None
        value = _as_int(raw)
        name = _label(field)
        if value is None:
            self.fail(field, f"The {name} field must be an integer.")
        elif choices is not None and value not in choices:
            self.fail(field, f"The selected {name} is invalid.")
        elif min is not None and max is not None and not min <= value <= max:
            self.fail(field, f"The {name} field must be between {min} and {max}.")
        elif min is not None and value < min:
            self.fail(field, f"The {name} field must be at least {min}.")
        elif max is not None and value > max:
            self.fail(field, f"The {name} field must not be greater than {max}.")
        else:
            return value
        return None

    def boolean(self, field: str) -> bool | None:
        """Return an optional boolean field (true/false, 1/0, "1"/"0", "true"/"false")."""
        raw = self._present(field, False)
        if raw is None:
            return None
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        self.fail(field, f"The {_label(field)} field must be true or false.")
        return None

    def exists(self, field: str, value: T | None, lookup: Callable[[T], object | None]) -> None:
        """Record "The selected X is invalid." when a valid ``value`` finds nothing."""
        if value is not None and lookup(value) is None:
            self.fail(field, f"The selected {_label(field)} is invalid.")

    def check(self) -> None:
        """Raise the collected errors, if any.

        Raises:
            FakeAPIError: 422 with Laravel's summary message and every field's errors.
        """
        if not self.errors:
            return
        messages = [m for field_messages in self.errors.values() for m in field_messages]
        summary = messages[0]
        if len(messages) > 1:
            more = len(messages) - 1
            summary += f" (and {more} more error{'s' if more > 1 else ''})"
        raise FakeAPIError(422, summary, self.errors)


def _normalise(value: object) -> object:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _label(field: str) -> str:
    return field.replace("_", " ")


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    return None


def ticket_fields(
    data: Mapping[str, object], state: FakeState, attachment_errors: Mapping[str, str]
) -> tuple[int, str, str, int | None]:
    """Validate a create-ticket request.

    Args:
        data: the non-file fields.
        state: for the department and service lookups.
        attachment_errors: errors already found on file parts, keyed ``attachments.N``.

    Returns:
        ``(department_id, subject, message, service_id)``.

    Raises:
        FakeAPIError: 422 listing every invalid field.
    """
    check = Validator(data)
    department_id = check.integer("department_id", required=True)
    check.exists("department_id", department_id, state.department)
    subject = check.string("subject", required=True, min=SUBJECT_MIN, max=SUBJECT_MAX)
    message = check.string("message", required=True, min=MESSAGE_MIN)
    service_id = check.integer("service_id")
    check.exists("service_id", service_id, state.service)
    check.string("service_type", max=64)
    for field, error in attachment_errors.items():
        check.fail(field, error)
    check.check()
    assert department_id is not None and subject is not None and message is not None
    return department_id, subject, message, service_id


def reply_fields(data: Mapping[str, object], attachment_errors: Mapping[str, str]) -> str:
    """Validate a reply request and return its message.

    Raises:
        FakeAPIError: 422 listing every invalid field.
    """
    check = Validator(data)
    message = check.string("message", required=True, min=MESSAGE_MIN)
    for field, error in attachment_errors.items():
        check.fail(field, error)
    check.check()
    assert message is not None
    return message


def purchase_fields(data: Mapping[str, object], state: FakeState) -> tuple[str, int]:
    """Validate a purchase body and return ``(plan, billing_cycle)``.

    Raises:
        FakeAPIError: 422 listing every invalid field.
    """
    check = Validator(data)
    plan = check.string("plan", required=True)
    if plan is not None and all(p.key != plan for p in state.plans):
        check.fail("plan", "The selected plan is invalid.")
    low, high = PURCHASE_BILLING_CYCLE_RANGE
    cycle = check.integer("billing_cycle", required=True, min=low, max=high)
    check.check()
    assert plan is not None and cycle is not None
    return plan, cycle


def renew_fields(data: Mapping[str, object]) -> int:
    """Validate a renew body and return its billing cycle.

    Raises:
        FakeAPIError: 422 listing every invalid field.
    """
    check = Validator(data)
    cycle = check.integer("billing_cycle", required=True, choices=RENEW_BILLING_CYCLES)
    check.check()
    assert cycle is not None
    return cycle


def cancel_fields(data: Mapping[str, object]) -> tuple[str | None, bool]:
    """Validate a cancel body and return ``(reason, now)``.

    Raises:
        FakeAPIError: 422 listing every invalid field.
    """
    check = Validator(data)
    reason = check.string("reason", max=1000)
    now = check.boolean("now")
    check.check()
    return reason, bool(now)


def page_fields(query: Mapping[str, str], *, default: int, maximum: int) -> tuple[int, int]:
    """Validate ``page``/``per_page`` query parameters and return them with defaults applied.

    Raises:
        FakeAPIError: 422 listing every invalid parameter.
    """
    check = Validator(query)
    page = check.integer("page", min=1)
    per_page = check.integer("per_page", min=1, max=maximum)
    check.check()
    return page or 1, per_page or default
