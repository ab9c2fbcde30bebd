"""Safe file names from names a server gave: one path component on every OS, never the token."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping

from vpsbg_support._http import content_disposition_filename

__all__ = ["filename_from_headers", "safe_filename"]

_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789\u00b9\u00b2\u00b3"]
)
_FORBIDDEN = frozenset('/\\<>:"|?*')
#: Unicode categories dropped from names: controls (NUL, newline, NEL...), format characters
#: (bidi overrides that make "txt.exe" display as "exe.txt"), surrogates (undecodable bytes),
#: line and paragraph separators.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_MAX_NAME_BYTES = 255
#: A longer "extension" is part of the name, not an extension worth keeping when shortening.
_MAX_EXT_BYTES = 32
_DEFAULT_NAME = "attachment"


def safe_filename(name: str | None, fallback: str = _DEFAULT_NAME) -> str:
    """A file name that is safe to create inside a folder, from a name a server gave us.

    The result is one path component on every OS: no path separators (they become ``_``), no
    control, format or line-separator characters, no leading dots (so never ``.`` or ``..``,
    never hidden), no trailing dots or spaces, no Windows reserved name (``CON``, ``nul.txt``...
    get a ``_`` prefix), at most 255 UTF-8 bytes with the extension kept.

    Args:
        name: the name the server gave (``Content-Disposition``, the attachment's ``name``).
        fallback: used when nothing usable is left of ``name``; sanitised the same way, and
            ``"attachment"`` when nothing is left of it either.

    Returns:
        A non-empty file name.
    """
    cleaned = _clean(name)
    if not cleaned:
        cleaned = _clean(fallback) or _DEFAULT_NAME
    return cleaned


def _clean(name: str | None) -> str:
    kept = "".join(
        "_" if ch in _FORBIDDEN else ch
        for ch in (name or "")
        if unicodedata.category(ch) not in _DROPPED_CATEGORIES
    )
    kept = _trim(kept)
    if not kept.strip("_."):
        return ""  # nothing but separators and dots: no name worth keeping
    if kept.partition(".")[0].rstrip(" ").upper() in _RESERVED:
        kept = "_" + kept
    if len(kept.encode("utf-8")) > _MAX_NAME_BYTES:
        kept = _shorten(kept)
    return kept


def _trim(name: str) -> str:
    # Leading dots would hide the file (or make it . or ..); Windows drops trailing dots/spaces.
    # Repeat until stable: ". 0" must become "0", not " 0" (sanitising twice changes nothing).
    while True:
        trimmed = name.strip().lstrip(".").rstrip(". ")
        if trimmed == name:
            return name
        name = trimmed


def _shorten(name: str) -> str:
    base, ext = os.path.splitext(name)
    if len(ext.encode("utf-8")) > _MAX_EXT_BYTES:
        base, ext = name, ""
    room = _MAX_NAME_BYTES - len(ext.encode("utf-8"))
    base = _trim(base.encode("utf-8")[:room].decode("utf-8", "ignore"))
    return base + ext


def filename_from_headers(headers: Mapping[str, str]) -> str | None:
    """The file name in a ``Content-Disposition`` header (``filename*`` preferred), or None.

    Args:
        headers: the response headers.

    Returns:
        The name as sent (not sanitised), or None when there is none or it cannot be decoded.
    """
    header = headers.get("Content-Disposition")
    return content_disposition_filename(header) if header else None
