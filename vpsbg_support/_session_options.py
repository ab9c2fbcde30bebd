"""How the client's own aiohttp session connects: proxy, TLS trust, trace configs, default headers.

Everything is resolved and checked once, when the client is built, so that a wrong path or an
unsafe proxy fails there rather than at the first request; :func:`build_session` then makes the
session on the loop that runs the requests.

The token is never sent in clear text to a host that could be someone else's: a plain-HTTP base
URL is allowed only for loopback and test hosts (see ``PLAIN_HTTP_SUFFIXES``), and then only
through no proxy or a proxy on such a host. For a plain-HTTP base URL the proxy is read from the
environment here, once, and aiohttp is told not to read it again per request. An ``http://``
proxy in front of an ``https://`` base URL is fine: it only relays the encrypted CONNECT tunnel.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import ssl
import urllib.request
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

import aiohttp
import attrs

from vpsbg_support import _constants as C
from vpsbg_support.errors import ConfigurationError, InvalidParameterError

__all__ = [
    "SessionOptions",
    "build_session",
    "check_given_session",
    "check_default_headers",
    "check_extra_query",
    "is_local_host",
    "resolve_session_options",
]

#: An HTTP header name (RFC 9110 token).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: Header names default_headers may not set: the token is the client's own business.
_RESERVED_HEADERS = frozenset({"authorization", "proxy-authorization"})


@attrs.frozen(kw_only=True)
class SessionOptions:
    """What the client's own aiohttp session is built with.

    Attributes:
        proxy: the proxy every request goes through, if any.
        ssl_context: the TLS settings (trusted CAs), or None for aiohttp's defaults.
        trust_env: whether aiohttp reads proxies and .netrc from the environment per request.
        trace_configs: aiohttp ``TraceConfig``s (e.g. OpenTelemetry's) given to the session.
    """

    proxy: str | None = None
    ssl_context: ssl.SSLContext | None = attrs.field(default=None, repr=False)
    trust_env: bool = False
    trace_configs: tuple[aiohttp.TraceConfig, ...] = attrs.field(default=(), repr=False)


def is_local_host(host: str) -> bool:
    """Whether ``host`` cannot be someone else's server: loopback, ``localhost``, or an RFC 6761
    test name, which may be reached over plain HTTP."""
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(C.PLAIN_HTTP_SUFFIXES):
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    return False


def resolve_session_options(
    *,
    base_url: str,
    proxy: str | None,
    ca_bundle: str | os.PathLike[str] | None,
    ssl_context: ssl.SSLContext | None,
    trust_env: bool,
    trace_configs: Iterable[aiohttp.TraceConfig] | None,
    environ: Mapping[str, str] = os.environ,
) -> SessionOptions:
    """Check and resolve the connection settings of a client.

    Raises:
        ConfigurationError: a proxy that is not an http(s) URL, a proxy that would receive the
            token in clear text, both ``ca_bundle`` and ``ssl_context``, or a CA bundle that
            cannot be loaded.
    """
    if proxy is not None:
        _check_proxy_url(proxy)
    base = urlsplit(base_url)
    if base.scheme == "http":
        # The request, Authorization header included, would reach the proxy unencrypted.
        if proxy is None and trust_env:
            proxy = _env_proxy_for(base.hostname or "", environ)
        if proxy is not None and not is_local_host(urlsplit(proxy).hostname or ""):
            raise ConfigurationError(
                f"base_url {base_url!r} is plain HTTP and the proxy {_without_userinfo(proxy)!r}"
                " is not on this machine: the API token would travel in clear text. Use an"
                " https:// base URL (a proxy then only relays the encrypted connection)."
            )
        # Read once above: aiohttp must not pick another proxy from the environment later.
        trust_env = False
    return SessionOptions(
        proxy=proxy,
        ssl_context=_ssl_context(ca_bundle, ssl_context, environ),
        trust_env=trust_env,
        trace_configs=tuple(trace_configs or ()),
    )


def check_given_session(base_url: str, session: aiohttp.ClientSession) -> None:
    """A caller's session with ``trust_env`` must not send a plain-HTTP base URL's requests
    (the token in clear) to a proxy off this machine from the environment.

    Raises:
        ConfigurationError: it would.
    """
    base = urlsplit(base_url)
    if base.scheme == "http" and session.trust_env:
        proxy = _env_proxy_for(base.hostname or "", os.environ)
        if proxy is not None and not is_local_host(urlsplit(proxy).hostname or ""):
            raise ConfigurationError(
                f"base_url {base_url!r} is plain HTTP and the session given reads the proxy"
                f" {_without_userinfo(proxy)!r} from the environment (trust_env=True): the API"
                " token would travel in clear text. Use an https:// base URL."
            )


def build_session(
    options: SessionOptions, headers: Mapping[str, str] | None = None
) -> aiohttp.ClientSession:
    """A new session with ``options`` (call it on the loop that will run the requests), sending
    ``headers`` on every request unless a request gives its own."""
    return aiohttp.ClientSession(
        headers=headers,
        proxy=options.proxy,
        trust_env=options.trust_env,
        trace_configs=list(options.trace_configs) or None,
        connector=aiohttp.TCPConnector(
            limit=C.CONNECTION_POOL_LIMIT,
            ssl=options.ssl_context if options.ssl_context is not None else True,
        ),
    )


def check_default_headers(
    headers: Mapping[str, str] | None, field: str = "default_headers"
) -> dict[str, str]:
    """Validate ``default_headers`` and spell each name one way (``x-team`` -> ``X-Team``), so
    that one header can never be sent twice under two spellings.

    Raises:
        InvalidParameterError: a name is not a header name, a value is not a one-line string,
            or a name is ``Authorization`` (the client sends the token itself).
    """
    out: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise InvalidParameterError(field, f"{name!r} is not a header name")
        if name.lower() in _RESERVED_HEADERS:
            raise InvalidParameterError(
                field, f"{name} is set by the client itself (from the token)"
            )
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            raise InvalidParameterError(field, f"the value of {name} must be a string on one line")
        out["-".join(part.capitalize() for part in name.split("-"))] = value
    return out


def check_extra_query(query: Mapping[str, str | int] | None) -> dict[str, str | int]:
    """Validate ``extra_query``: string names, string or integer values.

    Raises:
        InvalidParameterError: a name that is not a non-empty string, or another value.
    """
    out: dict[str, str | int] = {}
    for name, value in (query or {}).items():
        if not isinstance(name, str) or not name:
            raise InvalidParameterError("extra_query", f"{name!r} is not a parameter name")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidParameterError(
                "extra_query", f"the value of {name} must be a string or an integer"
            )
        out[name] = value
    return out


def _check_proxy_url(proxy: str) -> None:
    parts = urlsplit(proxy)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"proxy must be an http:// or https:// URL (got {_without_userinfo(proxy)!r})"
        )


def _without_userinfo(url: str) -> str:
    """The URL without ``user:password@``, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _env_proxy_for(host: str, environ: Mapping[str, str]) -> str | None:
    """The proxy aiohttp's ``trust_env`` would use for a plain-HTTP request to ``host``."""
    proxies = {
        key[:-6].lower(): value
        for key, value in sorted(environ.items())  # http_proxy wins over HTTP_PROXY
        if key.lower().endswith("_proxy") and value and key.lower() != "no_proxy"
    }
    proxy = proxies.get("http")
    if proxy is None:
        return None
    no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
    # Not in typeshed, but what aiohttp's trust_env (through urllib's proxy_bypass) applies.
    if urllib.request.proxy_bypass_environment(host, {"no": no_proxy}):  # type: ignore[attr-defined]
        return None
    return proxy


def _ssl_context(
    ca_bundle: str | os.PathLike[str] | None,
    ssl_context: ssl.SSLContext | None,
    environ: Mapping[str, str],
) -> ssl.SSLContext | None:
    if ssl_context is not None:
        if ca_bundle is not None:
            raise ConfigurationError("pass ca_bundle or ssl_context, not both")
        return ssl_context
    sources = (
        ("ca_bundle", ca_bundle),
        (C.ENV_CA_BUNDLE, environ.get(C.ENV_CA_BUNDLE)),
        ("SSL_CERT_FILE", environ.get("SSL_CERT_FILE")),
    )
    for source, path in sources:
        if not path:
            continue
        path = os.fspath(path)
        try:
            if os.path.isdir(path):
                return ssl.create_default_context(capath=path)
            return ssl.create_default_context(cafile=path)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigurationError(
                f"cannot load the CA bundle {path!r} (from {source}): {exc}"
            ) from None
    return None
