"""``to_dict``, ``to_json`` and ``from_dict`` on every model: doors into the one converter.

The models never import ``vpsbg_support._convert`` (it imports them, to register their hooks); the
converter installs its two functions here when it is imported, which importing ``vpsbg_support``
always does first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["JSONModel", "WireModel", "install"]

_M = TypeVar("_M", bound="WireModel")

#: (structure, unstructure), installed by ``vpsbg_support._convert``.
_codec: list[tuple[Callable[[Any, Any], Any], Callable[[Any], Any]]] = []


def install(structure: Callable[[Any, Any], Any], unstructure: Callable[[Any], Any]) -> None:
    """Give the models the converter's two functions (called once, by ``_convert``)."""
    _codec[:] = [(structure, unstructure)]


class JSONModel:
    """Adds ``to_dict`` and ``to_json``: the model as the API spells it."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The model as JSON-ready data with the API's field names.

        Every field is written under its documented wire name (``mimeType``, ``content``...),
        ``None`` as ``null``; keys the library did not know, kept in ``extra``, are merged back;
        timestamps are ``"YYYY-MM-DDTHH:MM:SS.ffffffZ"``, money a JSON number (or a decimal
        string where a float would lose a digit), order periods epoch seconds.

        Returns:
            A new dict that ``json.dumps`` accepts; ``type(m).from_dict(m.to_dict()) == m``.
        """
        result: dict[str, Any] = _codec[0][1](self)
        return result

    def to_json(self, *, indent: int | None = None) -> str:
        """The model as a JSON text (:meth:`to_dict`, dumped; non-ASCII kept as is).

        Args:
            indent: indent nested levels by this many spaces; one line when None.

        Returns:
            The JSON text.
        """
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)


class WireModel(JSONModel):
    """Adds ``from_dict``, the way back from :meth:`to_dict` (or from a response body)."""

    __slots__ = ()

    @classmethod
    def from_dict(cls: type[_M], data: Any) -> _M:
        """Build the model from decoded JSON, leniently, as the client reads responses.

        ``Ticket.from_dict(json.loads(text))``: aliases the API has used (``message``,
        ``from_customer``...) are read, unknown keys go to ``extra``.

        Args:
            data: a dict as :meth:`to_dict` returns or the API sends.

        Returns:
            The model.

        Raises:
            ConversionError: (a ValueError) ``data`` does not have the model's shape; the
                message names where, e.g. ``messages[0].id: expected an integer, got 'x'``.
        """
        result: _M = _codec[0][0](data, cls)
        return result
