"""Steering the connection on both clients: proxies, CA bundles, trace configs, default headers;
and the loop an AsyncClient belongs to. Every server here is ours, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.instrumentation.aiohttp_client import create_trace_config
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests._observe_servers import ForwardProxy, RecordingAPI, TLSFiles, make_tls
from vpsbg_support import (
    AsyncClient,
    Client,
    ClientClosedError,
    ConfigurationError,
    InvalidParameterError,
    Ticket,
    TLSVerificationError,
    WrongEventLoopError,
)

TOKEN = "tok-3f9a-SECRET-7c1e-0123456789"
ENV_NAMES = (
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy",
    "ALL_PROXY", "all_proxy", "VPSBG_CA_BUNDLE", "SSL_CERT_FILE",
)  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


async def get_ticket(blocking: bool, **options: Any) -> Ticket:
    """``client.tickets.get(216)`` on a fresh AsyncClient, or on a Client in a worker thread."""
    if blocking:

        def run() -> Ticket:
            with Client(TOKEN, max_retries=1, **options) as client:
                return client.tickets.get(216)

        return await asyncio.to_thread(run)
    async with AsyncClient(TOKEN, max_retries=1, **options) as client:
        return await client.tickets.get(216)


both_clients = pytest.mark.parametrize("blocking", [False, True], ids=["async", "blocking"])


# --- proxies -------------------------------------------------------------------------------


@both_clients
async def test_a_proxy_relays_plain_http_to_a_loopback_api(blocking: bool) -> None:
    async with RecordingAPI().serve() as api, ForwardProxy().serve() as proxy:
        ticket = await get_ticket(blocking, base_url=api.url, proxy=proxy.url)
    assert ticket.id == 216
    host = api.url.removesuffix("/v1")
    assert proxy.request_lines == [f"GET {host}/v1/support/tickets/216 HTTP/1.1"]
    assert [seen.path_qs for seen in api.seen] == ["/v1/support/tickets/216"]


@both_clients
async def test_an_https_api_is_tunnelled_so_the_proxy_never_sees_the_token(
    blocking: bool, tls: TLSFiles
) -> None:
    async with RecordingAPI().serve(tls.server_context) as api, ForwardProxy().serve() as proxy:
        ticket = await get_ticket(blocking, base_url=api.url, proxy=proxy.url, ca_bundle=tls.ca_pem)
    assert ticket.id == 216
    assert proxy.request_lines == [f"CONNECT {api.url.split('/')[2]} HTTP/1.1"]
    assert api.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN.encode() not in proxy.received and len(proxy.received) > 100


async def test_trust_env_takes_the_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tls: TLSFiles
) -> None:
    async with RecordingAPI().serve(tls.server_context) as api, ForwardProxy().serve() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        await get_ticket(False, base_url=api.url, ca_bundle=tls.ca_pem)
        assert proxy.request_lines == []  # trust_env is off by default
        await get_ticket(False, base_url=api.url, ca_bundle=tls.ca_pem, trust_env=True)
        assert len(proxy.request_lines) == 1 and proxy.request_lines[0].startswith("CONNECT ")


@both_clients
@pytest.mark.parametrize("proxy", ["http://proxy.example:3128", "http://10.0.0.1:3128"])
async def test_plain_http_never_goes_through_a_proxy_off_this_machine(
    blocking: bool, proxy: str
) -> None:
    make = Client if blocking else AsyncClient
    with pytest.raises(ConfigurationError, match="clear text"):
        make(TOKEN, base_url="http://127.0.0.1:8080/v1", proxy=proxy)
    # The same proxy in front of HTTPS only relays encrypted bytes.
    client = make(TOKEN, base_url="https://api.vpsbg.eu/v1", proxy=proxy)
    if isinstance(client, Client):
        client.close()


@pytest.mark.parametrize("name", ["HTTP_PROXY", "http_proxy"])
async def test_plain_http_ignores_no_environment_proxy_off_this_machine(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "http://user:secret@proxy.example:3128")
    with pytest.raises(ConfigurationError, match="clear text") as caught:
        AsyncClient(TOKEN, base_url="http://127.0.0.1:8080/v1", trust_env=True)
    assert "secret" not in str(caught.value)
    AsyncClient(TOKEN, base_url="http://127.0.0.1:8080/v1")  # trust_env off: not read
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    AsyncClient(TOKEN, base_url="http://127.0.0.1:8080/v1", trust_env=True)


async def test_an_environment_proxy_on_loopback_is_used_for_plain_http(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with RecordingAPI().serve() as api, ForwardProxy().serve() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        client = AsyncClient(TOKEN, base_url=api.url, trust_env=True)
        # Read once, at construction: a proxy set later is not picked up per request.
        monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
        async with client:
            await client.tickets.get(1)
        assert len(proxy.request_lines) == 1
        # Nor is one set after a client that found none: it would see the token in clear.
        monkeypatch.delenv("HTTP_PROXY")
        client = AsyncClient(TOKEN, base_url=api.url, trust_env=True, max_retries=0)
        monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
        async with client:
            await client.tickets.get(2)
    assert len(proxy.request_lines) == 1 and len(api.seen) == 2


@pytest.mark.parametrize("proxy", ["socks5://127.0.0.1:1080", "127.0.0.1:3128", "http://"])
def test_a_proxy_must_be_an_http_url(proxy: str) -> None:
    with pytest.raises(ConfigurationError, match="proxy must be"):
        AsyncClient(TOKEN, proxy=proxy)


def test_session_options_go_on_a_given_session_instead() -> None:
    import aiohttp

    with pytest.raises(ConfigurationError, match="set them on that session"):
        AsyncClient(TOKEN, session=aiohttp.ClientSession.__new__(aiohttp.ClientSession),
                    proxy="http://127.0.0.1:3128")  # fmt: skip


# --- TLS trust -----------------------------------------------------------------------------


@both_clients
async def test_a_private_ca_fails_typed_without_ca_bundle_and_works_with_it(
    blocking: bool, tls: TLSFiles
) -> None:
    async with RecordingAPI().serve(tls.server_context) as api:
        with pytest.raises(TLSVerificationError, match="ca_bundle") as caught:
            await get_ticket(blocking, base_url=api.url)
        assert caught.value.request_sent is False
        assert api.seen == []
        assert (await get_ticket(blocking, base_url=api.url, ca_bundle=tls.ca_pem)).id == 216
        assert (await get_ticket(blocking, base_url=api.url, ca_bundle=str(tls.ca_pem))).id == 216


@pytest.mark.parametrize("variable", ["VPSBG_CA_BUNDLE", "SSL_CERT_FILE"])
async def test_the_ca_bundle_falls_back_to_the_environment(
    monkeypatch: pytest.MonkeyPatch, tls: TLSFiles, variable: str
) -> None:
    async with RecordingAPI().serve(tls.server_context) as api:
        monkeypatch.setenv(variable, str(tls.ca_pem))
        assert (await get_ticket(False, base_url=api.url)).id == 216


async def test_vpsbg_ca_bundle_comes_before_ssl_cert_file(
    monkeypatch: pytest.MonkeyPatch, tls: TLSFiles, tmp_path: Path
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    monkeypatch.setenv("VPSBG_CA_BUNDLE", str(tls.ca_pem))
    AsyncClient(TOKEN)  # SSL_CERT_FILE is not even read
    monkeypatch.delenv("VPSBG_CA_BUNDLE")
    with pytest.raises(ConfigurationError, match=r"missing\.pem.*SSL_CERT_FILE"):
        AsyncClient(TOKEN)


async def test_an_ssl_context_is_used_as_given(tls: TLSFiles) -> None:
    context = ssl.create_default_context(cafile=tls.ca_pem)
    async with RecordingAPI().serve(tls.server_context) as api:
        assert (await get_ticket(True, base_url=api.url, ssl_context=context)).id == 216


def test_a_bad_ca_bundle_fails_at_construction(tmp_path: Path, tls: TLSFiles) -> None:
    with pytest.raises(ConfigurationError, match=r"nope\.pem.*from ca_bundle"):
        AsyncClient(TOKEN, ca_bundle=tmp_path / "nope.pem")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="junk"):
        Client(TOKEN, ca_bundle=tmp_path / "junk.pem")
    with pytest.raises(ConfigurationError, match="not both"):
        AsyncClient(TOKEN, ca_bundle=tls.ca_pem, ssl_context=ssl.create_default_context())


# --- tracing -------------------------------------------------------------------------------


@pytest.fixture
def spans() -> Iterator[tuple[Callable[[], Any], InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield (lambda: create_trace_config(tracer_provider=provider)), exporter
    provider.shutdown()


@both_clients
async def test_opentelemetry_records_one_span_per_attempt_without_the_token(
    blocking: bool, spans: tuple[Callable[[], Any], InMemorySpanExporter]
) -> None:
    make_config, exporter = spans
    async with RecordingAPI(fail_first=1).serve() as api:
        ticket = await get_ticket(blocking, base_url=api.url, trace_configs=[make_config()])
    assert ticket.id == 216
    finished = exporter.get_finished_spans()
    assert len(finished) == len(api.seen) == 2  # the 503, then the retry
    statuses = [
        span.attributes.get("http.response.status_code", span.attributes.get("http.status_code"))
        for span in finished
    ]
    assert statuses == [503, 200]
    for span in finished:
        text = repr(dict(span.attributes or {})) + repr(span.events) + span.name
        assert TOKEN not in text
        assert "/v1/support/tickets/216" in repr(dict(span.attributes or {}))


# --- default headers -----------------------------------------------------------------------


@both_clients
async def test_default_headers_reach_every_request(blocking: bool) -> None:
    headers = {"X-Team": "billing", "user-agent": "billing-bot/1.0"}
    async with RecordingAPI().serve() as api:
        await get_ticket(blocking, base_url=api.url, default_headers=headers)
    seen = api.seen[0].headers
    assert seen["X-Team"] == "billing"
    assert seen["User-Agent"] == "billing-bot/1.0"  # replaced, not sent twice
    assert seen["Authorization"] == f"Bearer {TOKEN}" and seen["Accept"] == "application/json"


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer other"}, {"proxy-authorization": "x"}, {"X-A": "1\r\nX-B: 2"},
     {"Bad Name": "1"}, {"X-A": 1}],
)  # fmt: skip
def test_default_headers_cannot_replace_the_token_or_smuggle_lines(headers: Any) -> None:
    with pytest.raises(InvalidParameterError, match="default_headers"):
        AsyncClient(TOKEN, default_headers=headers)


# --- the loop a client belongs to ----------------------------------------------------------


def test_an_async_client_belongs_to_the_loop_it_was_first_used_on() -> None:
    async def scenario() -> None:
        async with RecordingAPI().serve() as api:
            client = AsyncClient(TOKEN, base_url=api.url)
            await client.tickets.get(1)

            async def on_another_loop() -> None:
                await client.tickets.get(2)

            with pytest.raises(WrongEventLoopError, match="loop it was first used on") as caught:
                await asyncio.to_thread(asyncio.run, on_another_loop())
            assert "Create one AsyncClient per event loop" in str(caught.value)
            assert "blocking Client" in str(caught.value)
            await client.tickets.get(3)  # still fine on its own loop
            await client.aclose()
            assert [seen.path_qs[-1] for seen in api.seen] == ["1", "3"]

    asyncio.run(scenario())


async def test_closed_and_a_call_on_a_closed_client() -> None:
    async with RecordingAPI().serve() as api:
        client = AsyncClient(TOKEN, base_url=api.url)
        derived = client.with_options(max_retries=0)
        assert not client.closed and not derived.closed
        async with client:
            await client.tickets.get(1)
        assert client.closed and derived.closed
        with pytest.raises(ClientClosedError, match="create a new client"):
            await derived.tickets.get(1)
        assert len(api.seen) == 1
        with Client(TOKEN, base_url=api.url) as blocking:
            assert not blocking.closed
        assert blocking.closed


async def test_a_given_session_reading_an_outside_proxy_is_refused_for_plain_http(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aiohttp

    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    async with aiohttp.ClientSession(trust_env=True) as session:
        with pytest.raises(ConfigurationError, match="clear text"):
            AsyncClient(TOKEN, base_url="http://127.0.0.1:8080/v1", session=session)
        AsyncClient(TOKEN, base_url="https://api.vpsbg.eu/v1", session=session)  # tunnelled
    async with aiohttp.ClientSession() as session:  # trust_env off: the environment is not read
        AsyncClient(TOKEN, base_url="http://127.0.0.1:8080/v1", session=session)
