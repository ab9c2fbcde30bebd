"""Loopback servers for the observability tests: a private CA, a small API that records what it
receives (headers included: it is ours, and the token is a test token), and a forward proxy."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import example

TICKET = example("ticket_create_example.json")


@attrs.frozen
class TLSFiles:
    """A private CA (``ca_pem``) and a server context whose certificate it signed for
    127.0.0.1."""

    ca_pem: Path
    server_context: ssl.SSLContext


def make_tls(folder: Path) -> TLSFiles:
    """A CA and a 127.0.0.1 server certificate signed by it (strict-X.509 clean)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vpsbg-support test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = folder / "ca.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem = folder / "server.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = folder / "server.key"
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_pem, key_pem)
    return TLSFiles(ca_pem, context)


@attrs.frozen
class Seen:
    """One request the recording API received."""

    method: str
    path_qs: str
    headers: dict[str, str]


#: What RecordingAPI answers for any attachment.
ATTACHMENT_BYTES = b"a log line\n" * 100


class RecordingAPI:
    """``GET /v1/support/tickets/{id}`` answers the documented ticket (and ``.../attachments/
    {aid}`` the bytes ``ATTACHMENT_BYTES``); every request is recorded
    with its headers. ``fail_first`` answers that many requests 503 first; ``response_headers``
    are added to every answer."""

    def __init__(
        self,
        *,
        fail_first: int = 0,
        fail_status: int = 503,
        response_headers: dict[str, str] | None = None,
    ):
        self.seen: list[Seen] = []
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.response_headers = response_headers or {}
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.seen.append(Seen(request.method, request.path_qs, dict(request.headers)))
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.json_response(
                {"message": "busy"}, status=self.fail_status, headers=self.response_headers
            )
        if "id" not in request.match_info:
            return web.json_response([], headers=self.response_headers)
        return web.json_response(
            {**TICKET, "id": int(request.match_info["id"])}, headers=self.response_headers
        )

    async def _attachment(self, request: web.Request) -> web.Response:
        self.seen.append(Seen(request.method, request.path_qs, dict(request.headers)))
        return web.Response(body=ATTACHMENT_BYTES, content_type="text/plain")

    @contextlib.asynccontextmanager
    async def serve(self, tls: ssl.SSLContext | None = None) -> AsyncIterator[RecordingAPI]:
        app = web.Application()
        app.router.add_get("/v1/support/tickets/{id}", self._handle)
        app.router.add_get("/v1/support/tickets", self._handle)
        app.router.add_get("/v1/support/tickets/{id}/attachments/{aid}", self._attachment)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/v1"
        try:
            yield self
        finally:
            await runner.cleanup()


class ForwardProxy:
    """A forward proxy on 127.0.0.1: relays absolute-URI requests (``GET http://host/...``) and
    CONNECT tunnels, and keeps every byte the client sent it in ``received``."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.request_lines: list[str] = []
        self.url = ""
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            self.received += data
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            self.request_lines.append(line)
            method, target, _ = line.split(" ", 2)
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                up_reader, upstream = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                # The origin (aiohttp.web) accepts the absolute form, as RFC 9112 asks of it:
                # relay the bytes as they are.
                self.received += head
                hostport = target.split("/", 3)[2]
                host, _, port = hostport.rpartition(":")
                up_reader, upstream = await asyncio.open_connection(host, int(port))
                upstream.write(head)
            await asyncio.gather(self._relay(reader, upstream), self._relay(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            for w in (writer, upstream):
                if w is not None:
                    w.close()
            self._tasks.discard(task)

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[ForwardProxy]:
        server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            yield self
        finally:
            server.close()
            for task in list(self._tasks):  # relays of kept-alive connections
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)


def tokens_in(value: Any, token: str) -> bool:
    """Whether ``token`` appears anywhere in ``value`` (span attributes, events...)."""
    return token in repr(value)
