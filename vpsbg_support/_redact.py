"""Keeping the token out: of messages, logs, bytes a server echoed, file names and frame locals.

Everything the pipeline hands on (a response, an error's body and headers, a file name) has gone
through a :class:`Redactor` first, so no frame an error passes through holds the token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from vpsbg_support import _constants as C

__all__ = ["Redacted", "Redactor"]


class Redacted(str):
    """A header value that shows as ``'***'`` in any repr (aiohttp's RequestInfo, a dump of frame
    locals by an error tracker) while still being sent as itself."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


class Redactor:
    """Removes one token from text and bytes; its repr never shows the token."""

    __slots__ = ("_in_bodies", "_token")

    def __init__(self, token: str) -> None:
        self._token = token
        # What scrub_bytes looks for, encoded once: as sent, and as PHP's JSON escapes "/".
        self._in_bodies: tuple[bytes, ...] = ()
        if len(token) >= C.MIN_TOKEN_SCRUBBED_FROM_BODIES:
            self._in_bodies = tuple(
                dict.fromkeys([token.encode(), token.replace("/", "\\/").encode()])
            )

    def __repr__(self) -> str:
        return "<Redactor token=***>"

    def text(self, text: str) -> str:
        """``text`` with the token replaced by ``***``."""
        return text.replace(self._token, "***") if self._token and self._token in text else text

    def data(self, data: bytes) -> bytes:
        """Bytes the server sent without the token, also as PHP's JSON writes it (``\\/``); not
        a token too short to be a real one (see ``MIN_TOKEN_SCRUBBED_FROM_BODIES``)."""
        for token in self._in_bodies:
            if token in data:
                data = data.replace(token, b"***")
        return data

    def headers(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Headers as a plain dict without the token (and without ``Set-Cookie``)."""
        return {k: self.text(v) for k, v in headers if k.lower() != "set-cookie"}

    def in_headers(self, headers: Mapping[str, str]) -> bool:
        """Does any header value quote the token?"""
        token = self._token
        if token:
            for value in headers.values():  # a loop, not any(genexpr): this runs every call
                if token in value:
                    return True
        return False

    def mentioned_in(self, exc: BaseException) -> bool:
        """Does ``exc``, or anything chained to it, quote the token?"""
        if not self._token:
            return False
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            texts = (str(current), repr(current), *map(repr, current.args))
            if any(self._token in text for text in texts):
                return True
            current = current.__cause__ or current.__context__
        return False
