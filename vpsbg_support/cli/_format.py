"""Text for people: dates, sizes and aligned tables, shared by the command groups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol


class Model(Protocol):
    """Any of the library's models: each has ``to_dict``."""

    def to_dict(self) -> dict[str, Any]:
        """The model as the API spells it."""
        ...


def when(moment: datetime | None) -> str:
    """A date and time to the minute, or ``-``.

    ``isoformat()`` rather than ``strftime("%Y")``, which glibc does not zero-pad before 1000.
    """
    if moment is None:
        return "-"
    return moment.replace(tzinfo=None).isoformat(" ", "minutes")


def as_json(value: Model | Sequence[Model] | None) -> Any:
    """A model, or a list of them, as ``--json`` prints it: the API's spelling (``to_dict``);
    None as ``null``."""
    if value is None:
        return None
    if isinstance(value, Sequence):
        return [item.to_dict() for item in value]
    return value.to_dict()


def size(count: int | None) -> str:
    """A byte count in decimal units (``1.5 MB``), or ``?`` when unknown."""
    if count is None:
        return "?"
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def table(rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned on the widest cell; the last column is left ragged."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [f"{cell:<{width}}" for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)
