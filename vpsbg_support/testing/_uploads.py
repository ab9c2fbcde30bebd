"""Reading a request's input: streamed multipart with attachments, JSON, or a urlencoded form."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import attrs
from aiohttp import BodyPartReader, hdrs, web

from vpsbg_support._constants import CHUNK_SIZE
from vpsbg_support.testing._data import mime_type_for
from vpsbg_support.testing._records import UploadedFile

_ATTACHMENT_FIELD = re.compile(r"attachments(\[\d*\])?")


@attrs.frozen
class RequestInput:
    """A request's fields, the files sent as ``attachments[]``, and errors found on file parts.

    Attributes:
        fields: non-file fields (strings from forms; any JSON type from a JSON body).
        uploads: the attachments in the order they were sent.
        upload_errors: Laravel-style errors keyed ``attachments.N`` (e.g. a part with no file).
        json: the parsed body when it was valid JSON (of any type), else ``None``.
    """

    fields: dict[str, object]
    uploads: list[UploadedFile]
    upload_errors: dict[str, str]
    json: Any = None

    @property
    def form(self) -> dict[str, str]:
        """The text fields of a form body (multipart or urlencoded); empty for JSON."""
        if self.json is not None:
            return {}
        return {k: v for k, v in self.fields.items() if isinstance(v, str)}

    @property
    def files(self) -> tuple[UploadedFile, ...]:
        """The uploads without their bytes: what the request log keeps."""
        return tuple(attrs.evolve(u, content=None) for u in self.uploads)


async def read_input(request: web.Request, *, keep_bytes: bool) -> RequestInput:
    """Read a request body the way the backend accepts it: multipart, JSON, or urlencoded.

    Multipart file parts are streamed in 64 KiB chunks: only size and sha256 are kept unless
    ``keep_bytes`` is true. A body that is not valid JSON counts as no fields (validation then
    reports what is missing), as Laravel does.

    Args:
        request: the incoming request.
        keep_bytes: keep each uploaded file's bytes in memory (to serve it back).

    Returns:
        The parsed input.
    """
    if request.content_type.startswith("multipart/"):
        return await _read_multipart(request, keep_bytes)
    if request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        return RequestInput({k: v for k, v in form.items() if isinstance(v, str)}, [], {})
    raw = await request.read()
    try:
        data = json.loads(raw) if raw.strip() else None
    except ValueError:
        data = None
    return RequestInput(data if isinstance(data, dict) else {}, [], {}, data)


async def _read_multipart(request: web.Request, keep_bytes: bool) -> RequestInput:
    fields: dict[str, object] = {}
    uploads: list[UploadedFile] = []
    errors: dict[str, str] = {}
    reader = await request.multipart()
    index = 0
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            # A nested multipart is not something the API accepts; skip it whole.
            await part.release()
            continue
        name = part.name or ""
        if _ATTACHMENT_FIELD.fullmatch(name):
            if part.filename is None:
                await part.release()
                errors[f"attachments.{index}"] = f"The attachments.{index} field must be a file."
            else:
                uploads.append(await _read_file(part, part.filename, keep_bytes))
            index += 1
        elif part.filename is not None:
            await part.release()
        else:
            fields[name] = await part.text()
    return RequestInput(fields, uploads, errors)


async def _read_file(part: BodyPartReader, filename: str, keep_bytes: bool) -> UploadedFile:
    digest = hashlib.sha256()
    size = 0
    kept = bytearray() if keep_bytes else None
    while chunk := await part.read_chunk(CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
        if kept is not None:
            kept += chunk
    content_type = part.headers.get(hdrs.CONTENT_TYPE, "").split(";")[0].strip()
    return UploadedFile(
        name=filename,
        mime_type=content_type or mime_type_for(filename),
        size=size,
        sha256=digest.hexdigest(),
        content=bytes(kept) if kept is not None else None,
    )
