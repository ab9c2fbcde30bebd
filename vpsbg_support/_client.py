"""``AsyncClient``: the real implementation; owns the pipeline and exposes the resources."""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import attrs

from vpsbg_support import _constants as C
from vpsbg_support._pipeline import Pipeline
from vpsbg_support._ratelimit import RateLimitSnapshot
from vpsbg_support._retry import RetryPolicy
from vpsbg_support._session_options import (
    SessionOptions,
    check_default_headers,
    check_extra_query,
    check_given_session,
    is_local_host,
    resolve_session_options,
)
from vpsbg_support._validate import check_int
from vpsbg_support.errors import ConfigurationError
from vpsbg_support.hooks import EventHooks
from vpsbg_support.resources import AsyncOrders, AsyncPlans, AsyncTickets


def token_is_plausible(token: str) -> bool:
    """Whether ``token`` (stripped) is made of the visible ASCII characters every bearer token
    is made of (Sanctum's ``12|...``, JWTs and base64 included)."""
    return all("!" <= char <= "~" for char in token)


def _check_base_url(url: str) -> None:
    """HTTPS only, except for hosts that cannot be someone else's server: plain HTTP would send
    the bearer token in clear text. Loopback and RFC 6761 test names (the fake) may use HTTP."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        if is_local_host(parts.hostname):
            return
        raise ConfigurationError(
            f"base_url {url!r} uses plain HTTP, which would send the API token in clear text;"
            " use https:// (plain HTTP is allowed only for loopback and test hosts)",
            setting="base_url",
        )
    raise ConfigurationError(f"base_url must be an https:// URL (got {url!r})", setting="base_url")


class AsyncClient:
    """Async client for the VPSBG support API.

    ``async with AsyncClient() as client: await client.tickets.get(216)``

    Retry policy: GET, PUT and DELETE are retried (up to ``max_retries`` times, exponential
    backoff with full jitter) on connection errors, timeouts, 408, 429, 500, 502, 503 and 504.
    POST requests (open, reply, purchase, renew, cancel) are retried only when they provably never
    reached the server (connection refused, DNS failure, connect timeout) or on 429. They are
    never re-sent after an ambiguous failure: the error then has ``request_sent=True``.
    ``Retry-After`` is honoured (seconds or HTTP date) up to 60 s; longer raises RateLimitError.
    A wait one call was told holds the client's other calls for at most that long too.
    JSON bodies are read up to ``max_response_size`` bytes (decoded); never whole into memory.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | aiohttp.ClientTimeout = C.DEFAULT_TIMEOUT,
        max_retries: int = C.DEFAULT_MAX_RETRIES,
        session: aiohttp.ClientSession | None = None,
        user_agent: str | None = None,
        trust_env: bool = False,
        sleep_budget: float | None = None,
        raise_on_rate_limit: bool = False,
        retry_policy: RetryPolicy | None = None,
        max_response_size: int = C.MAX_RESPONSE_SIZE,
        proxy: str | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] | None = None,
        default_headers: Mapping[str, str] | None = None,
        event_hooks: Mapping[str, Sequence[Callable[[Any], Any]]] | None = None,
    ) -> None:
        """Create a client. No connection is made until the first call.

        Args:
            token: the API token; read from ``VPSBG_API_TOKEN`` when None.
            base_url: the API root; ``VPSBG_BASE_URL`` or ``https://api.vpsbg.eu/v1`` when None.
            timeout: seconds for a whole request (connect at most 10 s), or an
                ``aiohttp.ClientTimeout``. Downloads apply it between chunks, not to the whole file.
            max_retries: retries after the first attempt, for what is safe to retry.
            session: an aiohttp session to use (proxies, custom TLS...); it is not closed by us.
            user_agent: replaces the default ``vpsbg-support-python/<version> ...`` User-Agent.
            trust_env: let our own session read proxy settings (``HTTPS_PROXY``, ``NO_PROXY``...)
                and .netrc.
            sleep_budget: total seconds one call may sleep between retries (None: no cap).
            raise_on_rate_limit: raise RateLimitError on 429 instead of sleeping and retrying.
            retry_policy: the whole retry policy (backoff delays, Retry-After cap...), instead of
                ``max_retries``, ``sleep_budget`` and ``raise_on_rate_limit``.
            max_response_size: the largest JSON body accepted, in bytes once decompressed
                (32 MiB by default); a larger one raises ResponseTooLargeError, read no further.
                Downloads are bounded by their announced size instead.
            proxy: an ``http://`` (or ``https://``) proxy for every request. An ``https``
                base URL is tunnelled through it (CONNECT), so the proxy never sees the token.
            ca_bundle: a PEM file (or directory) of the CAs to trust instead of the system's;
                else ``VPSBG_CA_BUNDLE``, else ``SSL_CERT_FILE``, when set.
            ssl_context: the whole TLS configuration, instead of ``ca_bundle``.
            trace_configs: aiohttp ``TraceConfig``s for our session, e.g. OpenTelemetry's
                ``create_trace_config()``: they see every HTTP attempt.
            default_headers: headers added to every request (``{"X-Team": "billing"}``); they
                may replace ``User-Agent`` and ``Accept``, never ``Authorization``.
            event_hooks: ``{"request": [...], "response": [...]}``: functions (or coroutine
                functions) called with a :class:`~vpsbg_support.hooks.RequestInfo` before
                each HTTP attempt and a :class:`~vpsbg_support.hooks.ResponseInfo` when its
                headers arrive; token-free. They run on the client's event loop.

        Raises:
            ConfigurationError: no token given and ``VPSBG_API_TOKEN`` is not set, the token
                holds characters no token has (spaces, control or non-ASCII characters), a CA
                bundle cannot be loaded, a plain-HTTP base URL would reach a proxy that is not
                on this machine, or (AsyncClient) ``session`` is given with ``proxy``,
                ``ca_bundle``, ``ssl_context`` or ``trace_configs`` (set those on it instead).
            ValueError: ``max_retries`` is negative, ``timeout`` is not a finite number of
                seconds above 0 (InvalidParameterError), ``retry_policy`` is given
                together with one of the three settings it replaces, ``default_headers``
                holds a bad name or value, or ``event_hooks`` an unknown event or something
                not callable (InvalidParameterError).
        """
        token = token if token is not None else os.environ.get(C.ENV_TOKEN)
        if not token or not token.strip():
            raise ConfigurationError(
                f"No API token: pass token=... to the client or set {C.ENV_TOKEN}. Create one in"
                " the VPSBG client area under your user name -> API tokens.",
                setting="token",
            )
        token = token.strip()
        if not token_is_plausible(token):
            # A stray newline or a non-ASCII byte from a copy-paste would otherwise fail at the
            # first request, in an exception quoting the whole header. Never quote the token.
            raise ConfigurationError(
                "The API token contains a character a token never has (a space, a control"
                " character or a non-ASCII character): check how it was copied.",
                setting="token",
            )
        url = base_url or os.environ.get(C.ENV_BASE_URL) or C.DEFAULT_BASE_URL
        _check_base_url(url)
        if retry_policy is None:
            policy = RetryPolicy(
                max_retries=max_retries,
                sleep_budget=sleep_budget,
                raise_on_rate_limit=raise_on_rate_limit,
            )
        elif (max_retries, sleep_budget, raise_on_rate_limit) != (
            C.DEFAULT_MAX_RETRIES,
            None,
            False,
        ):
            raise ValueError(
                "pass either retry_policy or max_retries/sleep_budget/raise_on_rate_limit"
            )
        else:
            policy = retry_policy
        if session is None:
            options = resolve_session_options(
                base_url=url,
                proxy=proxy,
                ca_bundle=ca_bundle,
                ssl_context=ssl_context,
                trust_env=trust_env,
                trace_configs=trace_configs,
            )
        elif (proxy, ca_bundle, ssl_context, trace_configs) != (None, None, None, None):
            raise ConfigurationError(
                "proxy, ca_bundle, ssl_context and trace_configs configure the client's own"
                " session: with session=..., set them on that session instead"
            )
        else:
            check_given_session(url, session)
            options = SessionOptions()
        self._transport = Pipeline(
            token=token,
            base_url=url,
            timeout=timeout,
            retry=policy,
            session=session,
            user_agent=user_agent,
            session_options=options,
            default_headers=check_default_headers(default_headers),
            max_response_size=check_int("max_response_size", max_response_size),
            event_hooks=EventHooks.of(event_hooks),
        )
        self._init_resources()

    def _init_resources(self) -> None:
        self.tickets = AsyncTickets(self._transport)
        """Tickets: list, get, create, reply, resolve, attachments."""
        self.plans = AsyncPlans(self._transport)
        """Support plans: list, purchase, renew, cancel, undo_cancel."""
        self.orders = AsyncOrders(self._transport)
        """Orders: list, get, wait until paid."""

    @property
    def base_url(self) -> str:
        """The API root this client calls."""
        return self._transport.base_url

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called (or the ``async with`` block ended); a call on a
        closed client raises ClientClosedError."""
        return self._transport.closed

    @property
    def rate_limit(self) -> RateLimitSnapshot:
        """What this client knows of its rate limit now: requests remaining, when a wait ends,
        whether the server sends the headers at all (shared with ``with_options`` copies)."""
        return self._transport.limiter.snapshot()

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt, for what is safe to retry."""
        return self._transport.retry.max_retries

    @property
    def timeout(self) -> aiohttp.ClientTimeout:
        """The timeout of each request (``total``, ``connect``...)."""
        return self._transport.timeout

    @property
    def retry_policy(self) -> RetryPolicy:
        """How this client retries (see :class:`~vpsbg_support._retry.RetryPolicy`)."""
        return self._transport.retry

    def with_options(
        self,
        *,
        timeout: float | aiohttp.ClientTimeout | None = None,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str | int] | None = None,
    ) -> AsyncClient:
        """A client with other timeout, retry, header or query settings, sharing this one's
        connection pool, rate limiter and event hooks.

        ``await client.with_options(max_retries=0).plans.renew(billing_cycle=1)``

        Args:
            timeout: seconds for a whole request, or an ``aiohttp.ClientTimeout``.
            max_retries: retries after the first attempt (applied on top of ``retry_policy``).
            retry_policy: a whole retry policy to use instead of this client's.
            extra_headers: headers added to every request of the new client (as
                ``default_headers``: never ``Authorization``).
            extra_query: query parameters added to every request of the new client; a call's
                own parameters (``page``...) win over them.

        Returns:
            A new client; closing either one closes the shared pool.

        Raises:
            ValueError: ``max_retries`` is negative, ``timeout`` is not a finite number of
                seconds above 0, or ``extra_headers``/``extra_query`` hold a bad name or value
                (InvalidParameterError).
        """
        clone = object.__new__(AsyncClient)
        retry = retry_policy
        if max_retries is not None:
            retry = attrs.evolve(retry or self._transport.retry, max_retries=max_retries)
        clone._transport = self._transport.with_options(
            timeout=timeout,
            retry=retry,
            extra_headers=check_default_headers(extra_headers, "extra_headers"),
            extra_query=check_extra_query(extra_query),
        )
        clone._init_resources()
        return clone

    async def aclose(self) -> None:
        """Close the connection pool (unless the session was given by the caller)."""
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self.base_url!r}, token='***')"
