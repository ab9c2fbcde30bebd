"""Attachments: upload inputs -> multipart parts rebuilt per attempt; safe, atomic downloads.

Uploads stream from their source and are never read whole. Each attempt rebuilds the body from the
source (re-opened path, rewound file) so a retried upload never goes out short.
"""

from __future__ import annotations

import contextlib
import io
import mimetypes
import os
import tempfile
from collections.abc import AsyncIterable, Iterable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO, Any, Union

import aiohttp
import attrs

from vpsbg_support.errors import DownloadError, InvalidParameterError

__all__ = ["AttachmentInput", "Multipart", "Upload", "guess_content_type", "normalize_uploads"]

#: What ``attachments=`` accepts, one item per file:
#: a path (``str`` / ``os.PathLike``); a binary file object (its ``.name`` is used);
#: ``(name, content)`` or ``(name, content, content_type)`` where content is ``bytes``, a path,
#: a binary file object or an async iterable of ``bytes``.
AttachmentInput = Union[
    str,
    "os.PathLike[str]",
    IO[bytes],
    tuple[str, Any],
    tuple[str, Any, str],
]

_FIELD = "attachments"
_DEFAULT_TYPE = "application/octet-stream"


#: Types of files people attach to support tickets that the stdlib table does not know.
_SUPPORT_TYPES = {
    ".log": "text/plain",
    ".out": "text/plain",
    ".err": "text/plain",
    ".conf": "text/plain",
    ".cfg": "text/plain",
    ".ini": "text/plain",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".jsonl": "application/jsonl",
    ".har": "application/json",
    ".md": "text/markdown",
}


def guess_content_type(name: str) -> str:
    """The MIME type for a file name, ``application/octet-stream`` when unknown."""
    ext = os.path.splitext(name)[1].lower()
    if ext in _SUPPORT_TYPES:
        return _SUPPORT_TYPES[ext]
    return mimetypes.guess_type(name, strict=False)[0] or _DEFAULT_TYPE


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterError(_FIELD, "every attachment needs a non-empty file name")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InvalidParameterError(_FIELD, f"file name {name!r} contains control characters")
    return name


@attrs.frozen
class Upload:
    """One attachment, normalised: a name, a content type and a way to open its bytes again."""

    name: str
    content_type: str
    source: Any = attrs.field(repr=False)
    kind: str  # "path" | "bytes" | "file" | "aiter"
    start: int = 0

    @property
    def replayable(self) -> bool:
        """Whether a second attempt can send exactly the same bytes."""
        return self.kind != "aiter" and not (self.kind == "file" and self.start < 0)

    def payload(self, stack: AsyncExitStack) -> Any:
        """A fresh object for aiohttp to stream this attachment from."""
        if self.kind == "path":
            handle = open(self.source, "rb")  # noqa: SIM115 -- closed by the stack
            stack.callback(handle.close)
            return handle
        if self.kind == "file":
            if self.start >= 0:
                self.source.seek(self.start)
            return _Unclosable(self.source)
        return self.source


class _Unclosable(io.RawIOBase):
    """Lends a caller's file to aiohttp, which closes what it streams, without closing it."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self.name = getattr(raw, "name", None)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def read(self, size: int | None = -1) -> bytes:
        return self._raw.read(-1 if size is None else size)

    def close(self) -> None:  # the caller owns the file
        super().close()


def _from_path(path: str | os.PathLike[str], name: str | None, ctype: str | None) -> Upload:
    fspath = os.fspath(path)
    try:
        st = os.stat(fspath)
    except FileNotFoundError:
        raise InvalidParameterError(_FIELD, f"file not found: {fspath}") from None
    except OSError as exc:
        raise InvalidParameterError(_FIELD, f"cannot read {fspath}: {exc.strerror}") from None
    if not os.path.isfile(fspath):
        raise InvalidParameterError(_FIELD, f"not a regular file: {fspath}")
    if not os.access(fspath, os.R_OK):
        raise InvalidParameterError(_FIELD, f"file is not readable: {fspath}")
    if st.st_size == 0:
        raise InvalidParameterError(_FIELD, f"file is empty: {fspath}")
    final = _check_name(name if name is not None else os.path.basename(fspath))
    return Upload(final, ctype or guess_content_type(final), fspath, "path")


def _from_file(handle: Any, name: str | None, ctype: str | None) -> Upload:
    if name is None:
        raw_name = getattr(handle, "name", None)
        if not isinstance(raw_name, str | bytes) or isinstance(raw_name, int):
            raise InvalidParameterError(
                _FIELD, "this file object has no name: pass (name, file) instead"
            )
        name = os.path.basename(os.fsdecode(raw_name))
    final = _check_name(name)
    if isinstance(handle, io.TextIOBase):
        raise InvalidParameterError(_FIELD, f"{final}: open the file in binary mode ('rb')")
    try:
        start = handle.tell() if handle.seekable() else -1
    except (OSError, ValueError, AttributeError):
        start = -1
    if start >= 0:
        try:
            end = handle.seek(0, io.SEEK_END)
            handle.seek(start)
        except (OSError, ValueError) as exc:
            raise InvalidParameterError(_FIELD, f"{final}: cannot read: {exc}") from None
        if end - start <= 0:
            raise InvalidParameterError(_FIELD, f"{final}: file is empty")
    return Upload(final, ctype or guess_content_type(final), handle, "file", start)


def _normalize_one(item: Any) -> Upload:
    if isinstance(item, str | os.PathLike):
        return _from_path(item, None, None)
    if isinstance(item, tuple):
        if len(item) not in (2, 3):
            raise InvalidParameterError(
                _FIELD, "a tuple must be (name, content) or (name, content, content_type)"
            )
        name = _check_name(item[0])
        content = item[1]
        ctype = item[2] if len(item) == 3 else None
        if ctype is not None and (not isinstance(ctype, str) or "/" not in ctype):
            raise InvalidParameterError(_FIELD, f"{name}: invalid content type {ctype!r}")
        if isinstance(content, bytes | bytearray | memoryview):
            if len(content) == 0:
                raise InvalidParameterError(_FIELD, f"{name}: content is empty")
            return Upload(name, ctype or guess_content_type(name), bytes(content), "bytes")
        if isinstance(content, str | os.PathLike):
            return _from_path(content, name, ctype)
        if isinstance(content, AsyncIterable):
            return Upload(name, ctype or guess_content_type(name), content, "aiter")
        if hasattr(content, "read"):
            return _from_file(content, name, ctype)
        raise InvalidParameterError(
            _FIELD, f"{name}: content must be bytes, a path, a binary file or an async iterable"
        )
    if hasattr(item, "read"):
        return _from_file(item, None, None)
    if isinstance(item, bytes | bytearray):
        raise InvalidParameterError(_FIELD, "bytes need a name: pass (name, content)")
    raise InvalidParameterError(_FIELD, f"unsupported attachment input: {type(item).__name__}")


def normalize_uploads(attachments: Iterable[AttachmentInput]) -> tuple[Upload, ...]:
    """Check every attachment before anything is sent.

    Raises:
        InvalidParameterError: (field ``attachments``) a file is missing, unreadable, empty,
            nameless, or of an unsupported type.
    """
    if isinstance(attachments, str | bytes | os.PathLike) or (
        isinstance(attachments, tuple) and attachments and isinstance(attachments[0], str)
    ):
        # A lone path or (name, content) tuple is a common slip: it is one attachment, not many.
        raise InvalidParameterError(_FIELD, "pass a list of attachments, e.g. attachments=[path]")
    return tuple(_normalize_one(item) for item in attachments)


@attrs.frozen
class Multipart:
    """A multipart/form-data body of plain fields and uploads, rebuilt for every attempt."""

    fields: Sequence[tuple[str, str]]
    uploads: Sequence[Upload] = ()

    @property
    def replayable(self) -> bool:
        """False when one upload is an async iterable, which cannot be sent twice."""
        return all(u.replayable for u in self.uploads)

    def build(self, stack: AsyncExitStack) -> aiohttp.FormData:
        """A fresh FormData; files opened for it are closed by ``stack``."""
        # quote_fields=False writes file names as browsers do (UTF-8, quotes escaped);
        # aiohttp's default percent-encodes them, which PHP/Laravel servers do not decode.
        # default_to_multipart: the API documents multipart/form-data even for a reply with no
        # files; aiohttp would otherwise send such a form url-encoded.
        form = aiohttp.FormData(quote_fields=False, default_to_multipart=True)
        for key, value in self.fields:
            form.add_field(key, value)
        for upload in self.uploads:
            form.add_field(
                f"{_FIELD}[]",
                upload.payload(stack),
                filename=upload.name,
                content_type=upload.content_type,
            )
        return form


# --- downloads ------------------------------------------------------------------------------

_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
_FORBIDDEN = set('/\\<>:"|?*')
_MAX_NAME_BYTES = 255


def safe_filename(name: str | None, fallback: str) -> str:
    """A file name that is safe to create inside a folder, from a name a server gave us.

    No path separators, no ``..``, no leading dots, no control characters, no Windows reserved
    names (``CON``, ``NUL``...), at most 255 UTF-8 bytes with the extension kept. ``fallback`` is
    used when nothing usable is left (and is sanitised the same way).
    """
    cleaned = "".join(
        "_" if ch in _FORBIDDEN else ch
        for ch in (name or "")
        if ord(ch) >= 32 and ord(ch) != 127 and not (0xD800 <= ord(ch) <= 0xDFFF)
    )
    cleaned = cleaned.strip().lstrip(".").rstrip(". ")
    if not cleaned or set(cleaned) <= {"_", "."}:
        if name is fallback:
            return "attachment"
        return safe_filename(fallback, "attachment")
    stem = cleaned.partition(".")[0]
    if stem.upper().rstrip() in _RESERVED:
        cleaned = "_" + cleaned
    encoded = cleaned.encode("utf-8")
    if len(encoded) > _MAX_NAME_BYTES:
        base, ext = os.path.splitext(cleaned)
        ext_bytes = ext.encode("utf-8")
        if len(ext_bytes) > 32:  # a very long "extension" is not one
            base, ext_bytes = cleaned, b""
        room = _MAX_NAME_BYTES - len(ext_bytes)
        cleaned = base.encode("utf-8")[:room].decode("utf-8", "ignore") + ext_bytes.decode("utf-8")
    return cleaned


def filename_from_headers(headers: Any) -> str | None:
    """The file name in a ``Content-Disposition`` header (``filename*`` preferred), or None."""
    header = headers.get("Content-Disposition")
    if not header:
        return None
    try:
        _, params = aiohttp.multipart.parse_content_disposition(header)
        return aiohttp.multipart.content_disposition_filename(params, "filename")
    except (ValueError, UnicodeDecodeError, LookupError):
        return None


#: Where a download may go: a folder, a file path, or a writable binary file object.
DownloadTarget = Union[str, "os.PathLike[str]", IO[bytes]]


def is_folder_target(dest: str | os.PathLike[str]) -> bool:
    """A destination names a folder when it exists as one or ends with a path separator."""
    text = os.fspath(dest)
    return os.path.isdir(text) or text.endswith((os.sep, "/"))


def final_path(
    dest: str | os.PathLike[str], server_name: str | None, fallback: str, *, overwrite: bool
) -> Path:
    """Where the download lands: inside the folder under a safe name, or the given file path.

    Raises:
        InvalidParameterError: the file exists and ``overwrite`` is False, or a safe name would
            still resolve outside the folder.
    """
    if is_folder_target(dest):
        folder = Path(dest).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / safe_filename(server_name, fallback)
        if target.resolve().parent != folder:  # belt and braces: never outside the folder
            raise InvalidParameterError("dest", f"refusing to write outside {folder}")
    else:
        target = Path(dest).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and target.exists():
        raise InvalidParameterError(
            "dest", f"{target} already exists; pass overwrite=True to replace it"
        )
    return target


async def write_atomically(
    chunks: AsyncIterable[bytes],
    target: Path,
    *,
    overwrite: bool,
    expected: Iterable[int | None] = (),
) -> int:
    """Stream ``chunks`` into a temporary file beside ``target``, then move it into place.

    The temporary file is renamed only once every byte arrived and the count matches each
    ``expected`` size; otherwise it is removed and the error raised. Returns the byte count.
    """
    fd, tmp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name[:40]}.", suffix=".part"
    )
    try:
        with os.fdopen(fd, "wb") as out:
            written = 0
            async for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
            check_size(written, expected)
            out.flush()
            os.fsync(out.fileno())
        if overwrite:
            os.replace(tmp_name, target)
        else:
            # link() refuses to replace an existing file, closing the race with a concurrent writer.
            try:
                os.link(tmp_name, target)
            except FileExistsError:
                raise InvalidParameterError(
                    "dest", f"{target} already exists; pass overwrite=True to replace it"
                ) from None
            except OSError:
                if target.exists():
                    raise
                os.replace(tmp_name, target)
            else:
                os.unlink(tmp_name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return written


def check_size(written: int, expected: Iterable[int | None]) -> None:
    """Raise DownloadError when ``written`` differs from a known expected size."""
    for size in expected:
        if size is not None and written != size:
            raise DownloadError(
                f"download incomplete: received {written} bytes, expected {size}",
                request_sent=True,
            )
