"""Undoing gzip and deflate in bounded pieces, checking the compressed stream really ended.

Pure (zlib only): the pipeline's readers in ``_http`` feed it what arrives.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

__all__ = ["BodyFailure", "Decoder"]


class BodyFailure(Exception):
    """A body could not be read as sent: ``too_large``, ``corrupt`` (compression), ``encoding``
    (one this client cannot undo) or ``cut`` (it ended early)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


_GZIP_WBITS = 16 + zlib.MAX_WBITS


class Decoder:
    """Undo a gzip or deflate ``Content-Encoding``, in bounded pieces, checking it ends.

    A compressed body's ``Content-Length`` is not the decoded size, so only the end of the
    compressed stream tells a complete body from one cut short: aiohttp does not check it.
    """

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._zlib: Any = None  # made on the first bytes: a deflate body's header decides it
        self._head = b""
        self._trailing = False
        self._members = 0  # gzip members begun after the first

    @classmethod
    def for_encoding(cls, encoding: str) -> Decoder | None:
        """A decoder for ``encoding``; None for a body as stored.

        Raises:
            BodyFailure: an encoding this client cannot undo.
        """
        if encoding in ("", "identity"):
            return None
        if encoding in ("gzip", "x-gzip"):
            return cls(_GZIP_WBITS)
        if encoding == "deflate":
            return cls(zlib.MAX_WBITS)
        raise BodyFailure(
            f"the server sent Content-Encoding {encoding[:40]!r}, which this client cannot undo",
            "encoding",
        )

    def feed(self, data: bytes, size: int) -> Iterator[bytes]:
        """The decoded bytes of ``data``, in pieces of at most ``size`` (no zip bomb in RAM)."""
        if self._zlib is None:
            data = self._head + data
            if self._wbits == zlib.MAX_WBITS and len(data) < 2:
                self._head = data  # a zlib header is two bytes: wait for the second
                return
            self._zlib = zlib.decompressobj(self._wbits_for(data))
        try:
            yield from self._decode(data, max(1, size))
        except zlib.error as exc:
            raise BodyFailure(f"the compressed body is corrupt ({exc})", "corrupt") from None

    def _wbits_for(self, head: bytes) -> int:
        if self._wbits != zlib.MAX_WBITS:
            return self._wbits
        # "deflate" is meant to be zlib-wrapped (RFC 9110); some servers send it raw. A zlib
        # header: method 8, a window of at most 32 KiB, and a check making it a multiple of 31.
        cmf, flg = head[0], head[1]
        wrapped = cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf * 256 + flg) % 31 == 0
        return zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS

    def _decode(self, data: bytes, size: int) -> Iterator[bytes]:
        while True:
            if self._trailing:
                if data.strip(b"\0"):
                    raise zlib.error("data after the end of the compressed stream")
                return  # zero padding after the stream, as gunzip allows
            piece = self._zlib.decompress(data, size)
            if piece:
                yield piece
            if self._zlib.eof:
                data = self._zlib.unused_data
                if not data:
                    return
                if not data.strip(b"\0"):
                    self._trailing = True
                    return
                if self._wbits != _GZIP_WBITS:
                    raise zlib.error("data after the end of the compressed stream")
                # A gzip file may hold several members, one after the other.
                self._zlib = zlib.decompressobj(self._wbits)
                self._members += 1
                continue
            data = self._zlib.unconsumed_tail
            # A full piece may leave decoded bytes inside zlib: ask again until one is short.
            if not data and len(piece) < size:
                return

    def finish(self) -> None:
        """Raise unless the compressed stream ended properly (an empty body is empty).

        Raises:
            BodyFailure: ``cut`` when the stream ended before its end marker.
        """
        if self._zlib is None and not self._head:
            return
        if self._zlib is None or not self._zlib.eof:
            if self._members:
                raise BodyFailure(
                    "bytes after the end of the compressed body, or a further gzip member cut"
                    " short",
                    "corrupt",
                )
            raise BodyFailure(
                "download cut short: the compressed body ended before its end marker", "cut"
            )
