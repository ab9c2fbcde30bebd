"""The aiohttp side of a request: the session, one attempt, and bodies read within bounds.

The only module that touches aiohttp's requests and responses. It undoes gzip/deflate itself with
``_decode.Decoder`` (in bounded pieces, checking the stream ended), so no body, however it is
compressed, takes more memory than the limit it is read under.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import IO, Any, Protocol

import aiohttp
import aiohttp.multipart
import aiohttp.payload
from aiohttp import FormData, hdrs
from aiohttp.abc import AbstractStreamWriter

from vpsbg_support import _constants as C
from vpsbg_support._decode import BodyFailure, Decoder
from vpsbg_support._lifecycle import Lifecycle
from vpsbg_support._session_options import SessionOptions, build_session
from vpsbg_support._validate import check_timeout
from vpsbg_support.errors import ConfigurationError, DownloadError, InvalidParameterError

__all__ = [
    "TRANSPORT_ERRORS",
    "BodyStream",
    "FilePayload",
    "FormData",
    "MultipartBody",
    "SessionHolder",
    "as_timeout",
    "build_body",
    "content_disposition_filename",
    "is_certificate_error",
    "is_timeout",
    "never_sent",
    "new_form",
    "read_bounded",
    "send",
    "stream_timeout",
]

#: What a failed attempt raises, from aiohttp, asyncio or the OS.
TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)

DEFAULT_USER_AGENT_SUFFIX = f"aiohttp/{aiohttp.__version__}"


class MultipartBody(Protocol):
    """A multipart body that can be (re)built for each attempt from its source."""

    @property
    def replayable(self) -> bool:
        """False when a second attempt could not send the same bytes."""
        ...

    def build(self, stack: AsyncExitStack) -> aiohttp.FormData:
        """Build a fresh FormData; files it opens are registered on ``stack`` to be closed."""
        ...


def new_form() -> FormData:
    """An empty multipart form as PHP/Laravel servers read it."""
    # quote_fields=False writes file names as browsers do (UTF-8, quotes escaped); aiohttp's
    # default percent-encodes them, which PHP/Laravel servers do not decode.
    # default_to_multipart: the API documents multipart/form-data even for a reply with no
    # files; aiohttp would otherwise send such a form url-encoded.
    return FormData(quote_fields=False, default_to_multipart=True)


class FilePayload(aiohttp.payload.Payload):
    """Streams a binary file in bounded reads on a worker thread, and never closes it.

    aiohttp's own file payloads close the file they were given (a caller's file must stay open)
    and cannot tell the size of a file object without a real descriptor (the body then goes out
    chunked). With a known ``size`` exactly that many bytes are sent: a file growing meanwhile is
    cut there, one ending sooner raises instead of leaving the server waiting for the rest.
    """

    def __init__(
        self,
        reader: IO[bytes],
        name: str,
        content_type: str,
        *,
        start: int | None,
        size: int | None,
    ) -> None:
        super().__init__(reader, content_type=content_type, filename=name)
        self._reader = reader
        self._start = start
        self._size = size

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """Refused: an attachment is streamed, never held whole in memory."""
        raise TypeError("an attachment file is streamed, not decoded")

    async def write(self, writer: AbstractStreamWriter) -> None:
        """Send the file's bytes (from its start offset) to ``writer``."""
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        """Send at most ``content_length`` bytes (all of them when None).

        Raises:
            OSError: the file ended before its announced size.
        """
        loop = asyncio.get_running_loop()
        if self._start is not None:
            await loop.run_in_executor(None, self._reader.seek, self._start)
        remaining = self._size
        if content_length is not None:
            remaining = content_length if remaining is None else min(remaining, content_length)
        while remaining is None or remaining > 0:
            want = C.UPLOAD_READ_SIZE if remaining is None else min(C.UPLOAD_READ_SIZE, remaining)
            chunk = await loop.run_in_executor(None, self._reader.read, want)
            if not chunk:
                break
            await writer.write(chunk)
            if remaining is not None:
                remaining -= len(chunk)
        if remaining:
            raise OSError(f"{self.filename}: the file ended {remaining} bytes short of its size")


def content_disposition_filename(header: str) -> str | None:
    """The file name in a ``Content-Disposition`` value (``filename*`` preferred), or None."""
    try:
        with warnings.catch_warnings():
            # aiohttp warns about malformed headers; a hostile server must not spam our users.
            warnings.simplefilter("ignore", aiohttp.multipart.BadContentDispositionHeader)
            warnings.simplefilter("ignore", aiohttp.multipart.BadContentDispositionParam)
            _, params = aiohttp.multipart.parse_content_disposition(header)
            return aiohttp.multipart.content_disposition_filename(params, "filename")
    except (ValueError, UnicodeDecodeError, LookupError):
        return None


class SessionHolder:
    """The one aiohttp session of a client (and of its ``with_options`` copies), and the loop
    it belongs to."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None,
        options: SessionOptions,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._session = session
        self._owned = session is None
        self._options = options
        self.lifecycle = Lifecycle()
        #: The headers a session of ours sends by default (None for a caller's session): a
        #: request with exactly these passes none of its own, and aiohttp merges no dict.
        self.default_headers = headers if session is None else None

    def get(self) -> aiohttp.ClientSession:
        """The session, created on first use (so it belongs to the loop that runs requests).

        Raises:
            ConfigurationError: the caller's session was closed.
            ClientClosedError / WrongEventLoopError: see :meth:`Lifecycle.enter`.
        """
        self.lifecycle.enter()
        session = self._session
        if session is not None and not session.closed:
            return session
        if not self._owned and session is not None:
            raise ConfigurationError(
                "the aiohttp session given to the client is closed; keep it open while the"
                " client is in use"
            )
        self._session = build_session(self._options, self.default_headers)
        self._owned = True
        return self._session

    async def aclose(self) -> None:
        """Close the session if it is ours; a caller's session is left open."""
        self.lifecycle.closed = True
        if self._owned and self._session is not None and not self._session.closed:
            await self._session.close()


def is_certificate_error(exc: BaseException) -> bool:
    """Did the attempt fail because the server's TLS certificate could not be verified?"""
    return isinstance(exc, aiohttp.ClientConnectorCertificateError)


def never_sent(exc: BaseException) -> bool:
    """Did the attempt provably never reach the server? (refused, DNS, TLS, proxy, connect
    timeout: nothing was sent)."""
    return isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)


def is_timeout(exc: BaseException) -> bool:
    """Is ``exc`` a timeout (connecting, or waiting for the answer)?"""
    return isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError)


def build_body(multipart: MultipartBody | None, stack: AsyncExitStack) -> aiohttp.FormData | None:
    """The body for one attempt, rebuilt from its sources (a file may have gone meanwhile).

    Raises:
        InvalidParameterError: an attachment can no longer be read.
    """
    if multipart is None:
        return None
    try:
        return multipart.build(stack)
    except InvalidParameterError:
        raise
    except (OSError, ValueError) as exc:
        raise InvalidParameterError(
            "attachments", f"cannot read an attachment ({exc.__class__.__name__}: {exc})"
        ) from None


def as_timeout(timeout: float | aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    """A ClientTimeout from seconds (connect at most ``DEFAULT_CONNECT_TIMEOUT``)."""
    if isinstance(timeout, aiohttp.ClientTimeout):
        return timeout
    seconds = check_timeout(timeout)
    return aiohttp.ClientTimeout(total=seconds, connect=min(seconds, C.DEFAULT_CONNECT_TIMEOUT))


def stream_timeout(timeout: aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    """The timeout of a streamed body: no total (a large file may take long), the read
    timeout between chunks."""
    return aiohttp.ClientTimeout(
        total=None,
        connect=timeout.connect,
        sock_connect=timeout.sock_connect,
        sock_read=timeout.sock_read or timeout.total,
    )


def send(
    session: aiohttp.ClientSession,
    *,
    method: str,
    url: str,
    params: Mapping[str, str | int] | None,
    json_body: Any,
    data: aiohttp.FormData | None,
    headers: Mapping[str, str] | None,
    timeout: aiohttp.ClientTimeout,
) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
    """One attempt, as aiohttp's context manager: entering it sends the request and gives the
    response, headers read; leaving it closes the response.

    Bodies are never decompressed by aiohttp: :func:`read_bounded` and :class:`BodyStream`
    do it within their bounds. ``headers`` None: the session's own (see
    ``SessionHolder.default_headers``).
    """
    return session.request(
        method,
        url,
        params=params,
        json=json_body,
        data=data,
        headers=headers,
        timeout=timeout,
        allow_redirects=False,
        auto_decompress=False,
    )


def _encoding_of(resp: aiohttp.ClientResponse) -> str:
    return resp.headers.get(hdrs.CONTENT_ENCODING, "").strip().lower()


def read_bounded(resp: aiohttp.ClientResponse, limit: int, *, truncate: bool) -> Awaitable[bytes]:
    """The body, decoded, at most ``limit`` bytes: read in chunks, never whole (await it).

    Not a coroutine itself: the common case (an announced length within ``limit``, nothing to
    decode) is aiohttp's own read, with no frame of ours around it.

    Args:
        resp: the response, body unread.
        limit: the largest decoded size accepted.
        truncate: keep the first ``limit`` bytes and drop the rest (an error body) instead of
            raising.

    Raises:
        BodyFailure: the body passed ``limit`` (``too_large``), or its compression is corrupt
            or unknown.
        aiohttp.ClientError / asyncio.TimeoutError: the body was cut or timed out.
    """
    announced = resp.content_length
    if not truncate and announced is not None and announced > limit:
        raise BodyFailure(f"the body announces {announced} bytes", "too_large")
    encoding = _encoding_of(resp)
    if announced is not None and announced <= limit and encoding in ("", "identity"):
        # In one read: aiohttp stops at Content-Length, already within bounds.
        return resp.read()
    return _read_in_chunks(resp, limit, Decoder.for_encoding(encoding), truncate=truncate)


async def _read_in_chunks(
    resp: aiohttp.ClientResponse, limit: int, decoder: Decoder | None, *, truncate: bool
) -> bytes:
    """:func:`read_bounded` for a body of unknown length, or one to decode."""
    out = bytearray()
    async for raw in resp.content.iter_chunked(C.CHUNK_SIZE):
        if decoder is None:
            out += raw
        else:
            # Never more than one byte past the limit decoded: a bomb stops here.
            for piece in decoder.feed(raw, limit + 1 - len(out)):
                out += piece
                if len(out) > limit:
                    break
        if len(out) > limit:
            if truncate:
                del out[limit:]
                return bytes(out)
            raise BodyFailure(f"the body passed {limit} bytes", "too_large")
    if decoder is not None:
        decoder.finish()
    return bytes(out)


class BodyStream:
    """A 2xx body, decoded, as chunks; stops the moment it passes an announced size."""

    __slots__ = ("_resp", "_started", "url")

    def __init__(self, resp: aiohttp.ClientResponse, url: str) -> None:
        self._resp = resp
        self.url = url
        self._started = False

    def __repr__(self) -> str:
        return f"<BodyStream {self.url}>"

    @property
    def size(self) -> int | None:
        """Content-Length when it is the size of the decoded bytes (not for a compressed body)."""
        if _encoding_of(self._resp) in ("", "identity"):
            return self._resp.content_length
        return None

    async def chunks(
        self, chunk_size: int = C.CHUNK_SIZE, *, expected: tuple[int | None, ...] = ()
    ) -> AsyncIterator[bytes]:
        """Yield the decoded body in chunks of at most ``chunk_size`` bytes, once.

        Args:
            chunk_size: the largest chunk to yield.
            expected: sizes the body must have (None entries unknown): reading stops as soon
                as more bytes arrive than the smallest of them, and a shorter body fails too.

        Raises:
            DownloadError: the body was cut short (``cut_short``), passed an expected size,
                is corrupt, or was already read.
        """
        if self._started:
            raise self._error("this attachment's body was already read")
        self._started = True
        sizes = [s for s in (self.size, *expected) if s is not None]
        ceiling = min(sizes) if sizes else None
        received = 0
        pieces: Iterator[bytes] = iter(())
        decoder = None
        failure = ""
        cut = False
        try:
            decoder = Decoder.for_encoding(_encoding_of(self._resp))
            reader = self._resp.content.iter_chunked(chunk_size)
            async for raw in reader:
                pieces = iter((raw,)) if decoder is None else decoder.feed(raw, chunk_size)
                for piece in pieces:
                    received += len(piece)
                    if ceiling is not None and received > ceiling:
                        failure = f"the body passed its announced size ({ceiling} bytes)"
                        break
                    yield piece
                if failure:
                    break
            else:
                if decoder is not None:
                    decoder.finish()
        except BodyFailure as exc:
            failure, cut = exc.message, exc.kind == "cut"
        except TRANSPORT_ERRORS as exc:
            # Only the class name: aiohttp's text may quote what the server sent.
            what = "cut short" if isinstance(exc, aiohttp.ClientPayloadError) else "failed"
            failure, cut = f"download {what} after {received} bytes ({type(exc).__name__})", True
        # Out of the handler, with nothing the server sent left in this frame's locals.
        raw = piece = b""
        pieces = iter(())
        if failure:
            raise self._error(failure, cut_short=cut)
        for size in sizes:
            if received != size:
                raise self._error(
                    f"download incomplete: received {received} bytes, expected {size}",
                    cut_short=received < size,
                )

    def _error(self, message: str, *, cut_short: bool = False) -> DownloadError:
        return DownloadError(message, method="GET", url=self.url, cut_short=cut_short)
