"""The server's id for a request, read from the response headers (``C.REQUEST_ID_HEADERS``)."""

from __future__ import annotations

from collections.abc import Mapping

from multidict import CIMultiDict, CIMultiDictProxy

from vpsbg_support import _constants as C

__all__ = ["request_id_in"]

_NAMES = tuple(name.lower() for name in C.REQUEST_ID_HEADERS)


def request_id_in(headers: Mapping[str, str]) -> str | None:
    """The first non-empty of ``X-Request-Id``, ``Request-Id``, ``X-Correlation-Id``,
    ``CF-Ray`` in ``headers`` (names in any case), or None."""
    if isinstance(headers, CIMultiDictProxy | CIMultiDict):  # a response's: look names up
        for name in _NAMES:
            value = headers.get(name, "").strip()
            if value:
                return value
        return None
    found = {name.lower(): value for name, value in headers.items() if name.lower() in _NAMES}
    for name in _NAMES:
        value = found.get(name, "").strip()
        if value:
            return value
    return None
