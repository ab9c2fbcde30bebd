"""Upload inputs: what ``attachments=`` accepts, checked before anything is sent, and the
multipart body rebuilt from its sources for every attempt.

Uploads stream from their source and are never read whole. Each attempt rebuilds the body from the
source (re-opened path, rewound file) so a retried upload never goes out short.
"""

from __future__ import annotations

import io
import mimetypes
import os
import stat
from collections.abc import AsyncIterable, Iterable, Sequence
from contextlib import AsyncExitStack
from typing import IO, Any, Literal, Union

import attrs

from vpsbg_support._http import FilePayload, FormData, new_form
from vpsbg_support.errors import InvalidParameterError

__all__ = ["AttachmentInput", "Multipart", "Upload", "guess_content_type", "normalize_uploads"]

#: What ``attachments=`` accepts, one item per file:
#: a path (``str`` / ``os.PathLike``); a binary file object (its ``.name`` is used);
#: ``(name, content)`` or ``(name, content, content_type)`` where content is ``bytes``, a ``str``
#: (text, sent UTF-8 encoded: never read as a path), a ``Path``, a binary file object or an async
#: iterable of ``bytes``.
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


UploadKind = Literal["path", "bytes", "file", "aiter"]


@attrs.frozen
class Upload:
    """One attachment, normalised: a name, a content type and a way to send its bytes again.

    Attributes:
        name: the file name sent in the part's ``Content-Disposition``.
        content_type: the part's ``Content-Type``.
        source: the path, bytes, caller's file object or async iterable.
        kind: which of those ``source`` is.
        start: where a caller's seekable file stood when it was given (rewound there before
            each attempt); None for a file that cannot seek.
        size: bytes to send when known in advance (then the request has a Content-Length).
    """

    name: str
    content_type: str
    source: Any = attrs.field(repr=False)
    kind: UploadKind
    start: int | None = None
    size: int | None = None

    @property
    def replayable(self) -> bool:
        """Whether a second attempt can send exactly the same bytes."""
        return self.kind != "aiter" and not (self.kind == "file" and self.start is None)

    def payload(self, stack: AsyncExitStack) -> Any:
        """A fresh object for aiohttp to stream this attachment from.

        Raises:
            InvalidParameterError: a path can no longer be opened (deleted or replaced since it
                was checked).
        """
        if self.kind == "path":
            try:
                handle = open(self.source, "rb")  # noqa: SIM115 -- closed by the stack
            except OSError as exc:
                raise InvalidParameterError(
                    _FIELD, f"cannot read {self.source}: {exc.strerror}"
                ) from None
            stack.callback(handle.close)
            # The size is taken now, not when checked: a log still being written is sent as it
            # stands at this attempt, and Content-Length always matches what goes out.
            size = os.fstat(handle.fileno()).st_size
            return FilePayload(handle, self.name, self.content_type, start=None, size=size)
        if self.kind == "file":
            return FilePayload(
                self.source, self.name, self.content_type, start=self.start, size=self.size
            )
        return self.source


def _from_path(path: str | os.PathLike[str], name: str | None, ctype: str | None) -> Upload:
    fspath = os.fspath(path)
    try:
        st = os.stat(fspath)
    except FileNotFoundError:
        raise InvalidParameterError(_FIELD, f"file not found: {fspath}") from None
    except OSError as exc:
        raise InvalidParameterError(_FIELD, f"cannot read {fspath}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        # A folder, FIFO or device: opening a FIFO would block, a device may never end.
        raise InvalidParameterError(_FIELD, f"not a regular file: {fspath}")
    if st.st_size == 0:
        raise InvalidParameterError(_FIELD, f"file is empty: {fspath}")
    try:
        # access() says yes to root for any file; opening is the check that does not lie.
        with open(fspath, "rb"):
            pass
    except OSError as exc:
        raise InvalidParameterError(_FIELD, f"cannot read {fspath}: {exc.strerror}") from None
    final = _check_name(name if name is not None else os.path.basename(fspath))
    return Upload(final, ctype or guess_content_type(final), fspath, "path", size=st.st_size)


def _from_file(handle: Any, name: str | None, ctype: str | None) -> Upload:
    if name is None:
        raw_name = getattr(handle, "name", None)
        if not isinstance(raw_name, str | bytes):
            raise InvalidParameterError(
                _FIELD, "this file object has no name: pass (name, file) instead"
            )
        name = os.path.basename(os.fsdecode(raw_name))
    final = _check_name(name)
    if isinstance(handle, io.TextIOBase):
        raise InvalidParameterError(_FIELD, f"{final}: open the file in binary mode ('rb')")
    readable = getattr(handle, "readable", None)
    if callable(readable) and not readable():
        raise InvalidParameterError(_FIELD, f"{final}: the file is not open for reading")
    start, size = _seekable_span(handle, final)
    if size == 0:
        raise InvalidParameterError(_FIELD, f"{final}: file is empty")
    return Upload(final, ctype or guess_content_type(final), handle, "file", start, size)


def _seekable_span(handle: Any, name: str) -> tuple[int | None, int | None]:
    """Where a file object stands and how many bytes are left, or (None, None) if it cannot seek."""
    try:
        if not handle.seekable():
            return None, None
        start = handle.tell()
    except (OSError, ValueError, AttributeError):
        return None, None
    try:
        end = handle.seek(0, io.SEEK_END)
        handle.seek(start)
    except (OSError, ValueError) as exc:
        raise InvalidParameterError(_FIELD, f"{name}: cannot read: {exc}") from None
    return start, max(0, end - start)


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
        if ctype is not None and (
            not isinstance(ctype, str) or "/" not in ctype or not ctype.isprintable()
        ):
            raise InvalidParameterError(_FIELD, f"{name}: invalid content type {ctype!r}")
        if isinstance(content, str):
            # Text, not a path: ("hello.txt", "hello text") must not go looking for a file
            # named "hello text". A path in a tuple is a Path.
            content = content.encode("utf-8")
        if isinstance(content, bytes | bytearray | memoryview):
            if len(content) == 0:
                raise InvalidParameterError(_FIELD, f"{name}: content is empty")
            data = bytes(content)
            return Upload(name, ctype or guess_content_type(name), data, "bytes", size=len(data))
        if isinstance(content, os.PathLike):
            return _from_path(content, name, ctype)
        if isinstance(content, AsyncIterable):
            return Upload(name, ctype or guess_content_type(name), content, "aiter")
        if hasattr(content, "read"):
            return _from_file(content, name, ctype)
        raise InvalidParameterError(
            _FIELD,
            f"{name}: content must be bytes, text, a Path, a binary file or an async iterable",
        )
    if hasattr(item, "read"):
        return _from_file(item, None, None)
    if isinstance(item, bytes | bytearray | memoryview):
        raise InvalidParameterError(_FIELD, "bytes need a name: pass (name, content)")
    if isinstance(item, AsyncIterable):
        raise InvalidParameterError(_FIELD, "an async iterable needs a name: pass (name, chunks)")
    raise InvalidParameterError(_FIELD, f"unsupported attachment input: {type(item).__name__}")


def normalize_uploads(attachments: Iterable[AttachmentInput]) -> tuple[Upload, ...]:
    """Check every attachment before anything is sent.

    Args:
        attachments: the ``attachments=`` argument of create/reply.

    Returns:
        One Upload per attachment, in order.

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

    def build(self, stack: AsyncExitStack) -> FormData:
        """A fresh FormData; files opened for it are closed by ``stack``.

        Raises:
            InvalidParameterError: a file can no longer be opened.
        """
        form = new_form()
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
