"""``FakeVPSBG``: the aiohttp.web server serving every route of ``ROUTES`` from ``FakeState``."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Literal, TypeVar
from urllib.parse import quote

import aiohttp
from aiohttp import hdrs, web
from yarl import URL

from vpsbg_support._constants import DEFAULT_BASE_URL
from vpsbg_support._routes import (
    ORDERS_GET,
    ORDERS_LIST,
    PLANS_CANCEL,
    PLANS_LIST,
    PLANS_PURCHASE,
    PLANS_RENEW,
    PLANS_UNDO_CANCEL,
    ROUTES,
    TICKETS_ATTACHMENT,
    TICKETS_CREATE,
    TICKETS_DEPARTMENTS,
    TICKETS_GET,
    TICKETS_LIST,
    TICKETS_REPLY,
    TICKETS_RESOLVE,
    TICKETS_SERVICES,
    Route,
)
from vpsbg_support.testing import _render as render
from vpsbg_support.testing import _validation as validate
from vpsbg_support.testing._faults import Fault, FaultInjector
from vpsbg_support.testing._names import check_route_name
from vpsbg_support.testing._render import Renderer, WireStyle
from vpsbg_support.testing._state import FakeAPIError, FakeState, TimestampPrecision, not_found
from vpsbg_support.testing._traffic import RateDecision, RateLimiter, RecordedRequest, RequestLog
from vpsbg_support.testing._uploads import RequestInput, read_input

if TYPE_CHECKING:
    from vpsbg_support.testing._thread import FakeVPSBGThread

T = TypeVar("T")
ListStyle = Literal["envelope", "array"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The base URL's path ("/v1"), so the fake's URLs look like the real API's.
API_PREFIX = URL(DEFAULT_BASE_URL).path.rstrip("/")


class _ChunkedBody(web.StreamResponse):
    """A 200 whose body is an iterator of chunks, written only when the response is sent.

    Writing lazily (rather than inside the handler) lets an ``after_handler`` fault still reset
    the connection before the first byte, or cut the body short.
    """

    def __init__(self, chunks: Iterator[bytes], size: int, headers: Mapping[str, str]) -> None:
        super().__init__(status=200, headers=headers)
        self.content_length = size
        self.chunks = chunks

    async def write_eof(self, data: bytes = b"") -> None:
        for chunk in self.chunks:
            await self.write(chunk)
        await super().write_eof(data)


def _content_disposition(name: str) -> str:
    """``attachment; filename="..."``, plus an RFC 5987 ``filename*`` when the name is not plain
    printable ASCII. The name is sent as stored (a lone surrogate, which UTF-8 cannot carry, as
    "?"): sanitising it is the client's job."""
    plain = name.isascii() and name.isprintable()
    fallback = "".join(c if c.isascii() and c.isprintable() else "_" for c in name)
    fallback = fallback.replace("\\", "\\\\").replace('"', '\\"')
    value = f'attachment; filename="{fallback}"'
    if not plain:
        value += f"; filename*=UTF-8''{quote(name, safe='', errors='replace')}"
    return value


class FakeVPSBG:
    """An embedded fake of the VPSBG support API on loopback HTTP, for tests, demos and benchmarks.

    Use it as ``async with FakeVPSBG(seed=1, tickets=20) as fake:`` and point a client at
    ``fake.url`` with ``fake.token``. Everything it serves lives in ``fake.state``; every request
    it received is in ``fake.requests`` (with the fields and JSON body sent); ``fake.faults``
    injects latency, error statuses, connection resets and truncated bodies. From blocking code
    use :class:`FakeVPSBGThread`; under pytest, the ``vpsbg_fake`` and ``vpsbg_fake_factory``
    fixtures.

    Seed your own data through ``fake.state``: ``create_ticket(department_id=2, subject=...,
    message=...)``, ``reply(ticket_id, "text", is_customer=False)`` for a staff answer,
    ``add_attachment(ticket_id, name=..., content=b"...")`` and ``resolve(ticket_id)``; play
    support's side with ``set_status(ticket_id, "on-hold")`` and the payment side with
    ``settle_order(order_id)`` (``status="cancelled"`` too) or ``settle_orders_after=``.

    Where the API is silent the fake makes choices; do not let your code depend on them:

    * ticket statuses: only ``opened`` is documented. ``customer-reply``, ``answered`` and
      ``resolved`` are the fake's inventions; treat a status as an open string.
    * the routes marked undocumented in the README, resolve's answer (the ticket, or 204 with
      ``resolve_returns_204``) and cancel's (204, or an Order with ``cancel_returns_204=False``).
    * route names (``count``, ``faults.add``) are :data:`~vpsbg_support.testing.ROUTE_NAMES`.

    Args:
        seed: seeds the generated tickets, generated attachment content and the fault RNG.
        tickets: how many tickets to generate.
        host: interface to listen on.
        port: TCP port; 0 picks a free one.
        per_page_default: page size of list routes when ``per_page`` is not given.
        per_page_max: largest accepted ``per_page`` (a bigger one is a 422).
        keep_upload_bytes: keep uploaded files in memory so downloads serve them back; when
            false only their size and sha256 are kept (downloads then serve generated bytes).
        list_style: ``"envelope"`` (Laravel's ``{data, links, meta}``) or ``"array"`` (a bare
            array of every item, unpaginated) for the list routes.
        resolve_returns_204: answer resolve with 204 instead of the ticket.
        cancel_returns_204: answer cancel with 204 (default, as the routes table says); False
            answers it with an Order (type ``custom``). Undo-cancel always answers 204.
        wire_style: ``"schema"`` (default) renders tickets as the documented schema;
            ``"documented"`` as the docs' own examples drift from it: ``message`` and
            ``from_customer`` in messages, which have no ``id`` or ``created_at``; a top-level
            ``user``; ``service`` instead of ``service_label``; no ``service_id``/``service_type``
            in a reply's answer; ``mime_type`` instead of ``mimeType``.
        timestamp_precision: ``"seconds"`` (default) as the real API (``.000000Z``; two
            changes in one second share an ``updated_at``); ``"microseconds"`` makes every
            new time distinct.
        rate_limit: requests allowed per ``rate_limit_window`` seconds before 429.
        rate_limit_window: the rate limit window, 60 seconds like the real API.
        token: the write token (default ``"fake-write-token"``).
        read_only_token: the read-only token (default ``"fake-read-token"``).
        active_plan: the account's support plan at start (``None`` for none).
        fault_seed: seeds the fault RNG (default: ``seed``).
        clock: source of "now" for new records (default: real UTC time).
        settle_orders_after: seconds after which an order placed by purchase or renew settles
            by itself (``paid``, or ``settle_orders_as``); ``None`` (default) leaves it
            ``awaiting_payment`` until ``fake.state.settle_order(order_id)``.
        settle_orders_as: the status orders settle to by themselves (default ``"paid"``).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        tickets: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        per_page_default: int = 25,
        per_page_max: int = 100,
        keep_upload_bytes: bool = True,
        list_style: ListStyle = "envelope",
        resolve_returns_204: bool = False,
        cancel_returns_204: bool = True,
        wire_style: WireStyle = "schema",
        timestamp_precision: TimestampPrecision = "seconds",
        rate_limit: int = 600,
        rate_limit_window: float = 60.0,
        token: str = "fake-write-token",
        read_only_token: str = "fake-read-token",
        active_plan: str | None = "basic",
        fault_seed: int | None = None,
        clock: Callable[[], datetime] | None = None,
        settle_orders_after: float | None = None,
        settle_orders_as: str = "paid",
    ) -> None:
        if list_style not in ("envelope", "array"):
            raise ValueError(f"list_style must be 'envelope' or 'array', not {list_style!r}")
        self._renderer = Renderer(wire_style=wire_style, timestamp_precision=timestamp_precision)
        self.state = FakeState(
            seed=seed,
            tickets=tickets,
            active_plan=active_plan,
            clock=clock,
            timestamp_precision=timestamp_precision,
            settle_orders_after=settle_orders_after,
            settle_orders_as=settle_orders_as,
        )
        self.faults = FaultInjector(seed if fault_seed is None else fault_seed)
        self.rate_limiter = RateLimiter(rate_limit, rate_limit_window)
        self.token = token
        self.read_only_token = read_only_token
        self.host = host
        self.port = port
        self.per_page_default = per_page_default
        self.per_page_max = per_page_max
        self.keep_upload_bytes = keep_upload_bytes
        self.list_style: ListStyle = list_style
        self.resolve_returns_204 = resolve_returns_204
        self.cancel_returns_204 = cancel_returns_204
        self._log = RequestLog()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._route_names: dict[web.AbstractRoute, str] = {}
        # The bodies handlers read, by id(request), until the request log takes them. Not the
        # request's own storage: aiohttp >= 3.14 warns about str keys there, and RequestKey is
        # newer than the oldest aiohttp we support.
        self._inputs: dict[int, RequestInput] = {}
        # Tasks running a handler: stop() cancels them, so a latency fault or a slow client
        # does not hold the shutdown.
        self._in_flight: set[asyncio.Task[object]] = set()

    def __repr__(self) -> str:
        # Tokens are left out on purpose: reprs end up in logs and test reports.
        return f"<FakeVPSBG url={self._url!r} tickets={len(self.state.tickets)}>"

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL to give a client, including ``/v1`` (e.g. ``http://127.0.0.1:4312/v1``).

        Raises:
            RuntimeError: when the server is not running.
        """
        if self._url is None:
            raise RuntimeError("FakeVPSBG is not running: use `async with` or await start()")
        return self._url

    async def start(self) -> None:
        """Start listening; ``url`` is valid afterwards.

        Raises:
            RuntimeError: when it is already running.
            OSError: when the host/port cannot be bound.
        """
        if self._runner is not None:
            raise RuntimeError("FakeVPSBG is already running")
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        port = runner.addresses[0][1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._runner = runner
        self._url = f"http://{host}:{port}{API_PREFIX}"

    async def stop(self) -> None:
        """Stop listening and close open connections (no error when not running)."""
        runner, self._runner, self._url = self._runner, None, None
        if runner is not None:
            for task in list(self._in_flight):
                task.cancel()
            await runner.cleanup()

    async def __aenter__(self) -> FakeVPSBG:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def run_in_thread(self) -> FakeVPSBGThread:
        """Return a :class:`FakeVPSBGThread` serving this fake; use it as a context manager."""
        from vpsbg_support.testing._thread import FakeVPSBGThread

        return FakeVPSBGThread(self)

    # -- inspection ------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a new list)."""
        return self._log.entries()

    def count(self, route: str | None, *, status: int | None = None) -> int:
        """Count received requests for a route name (``None``: paths no route serves).

        Args:
            route: one of :data:`~vpsbg_support.testing.ROUTE_NAMES`, e.g. ``"tickets.create"``.
            status: count only the requests answered with this status.

        Returns:
            How many requests were recorded.

        Raises:
            ValueError: for an unknown route name (a typo would otherwise count 0).
        """
        check_route_name(route)
        return self._log.count(route, status=status)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        self._log.clear()

    @property
    def rate_limit(self) -> int:
        """Requests allowed per rate-limit window; assign to change it while running."""
        return self.rate_limiter.limit

    @rate_limit.setter
    def rate_limit(self, value: int) -> None:
        self.rate_limiter.limit = value

    # -- the application -------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """Build the aiohttp application (also usable with ``aiohttp.test_utils.TestServer``)."""
        app = web.Application(middlewares=[self._pipeline], client_max_size=1024**4)
        handlers: dict[Route, Handler] = {
            TICKETS_LIST: self._tickets_list,
            TICKETS_DEPARTMENTS: self._departments,
            TICKETS_SERVICES: self._services,
            TICKETS_GET: self._ticket_get,
            TICKETS_CREATE: self._ticket_create,
            TICKETS_REPLY: self._ticket_reply,
            TICKETS_RESOLVE: self._ticket_resolve,
            TICKETS_ATTACHMENT: self._attachment_download,
            PLANS_LIST: self._plans_list,
            PLANS_PURCHASE: self._plan_purchase,
            PLANS_RENEW: self._plan_renew,
            PLANS_CANCEL: self._plan_cancel,
            PLANS_UNDO_CANCEL: self._plan_undo_cancel,
            ORDERS_LIST: self._orders_list,
            ORDERS_GET: self._order_get,
        }
        missing = set(ROUTES) - set(handlers)
        assert not missing, f"routes without a fake handler: {missing}"
        for route in ROUTES:
            registered = app.router.add_route(
                route.method, API_PREFIX + route.path, handlers[route]
            )
            self._route_names[registered] = route.name
        return app

    @web.middleware
    async def _pipeline(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Rate limit, auth, faults before the handler, the handler, faults after it; record."""
        route = self._route_names.get(request.match_info.route)
        fault_kind: str | None = None
        status: int | None = None
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            response, fault_kind = await self._process(request, handler, route)
            status = None if fault_kind == "reset" else response.status
            return response
        except (ConnectionError, aiohttp.ClientPayloadError):
            # The client went away mid-request (an upload cut short): nobody to answer, and
            # nothing worth aiohttp's "Error handling request" traceback.
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=499)
        finally:
            if task is not None:
                self._in_flight.discard(task)
            length = request.content_length
            received = self._inputs.pop(id(request), None)
            self._log.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    route=route,
                    status=status,
                    body_size=length if length is not None else request.content.total_bytes,
                    query=dict(request.query),
                    fault=fault_kind,
                    fields=received.form if received is not None else {},
                    json=received.json if received is not None else None,
                    files=received.files if received is not None else (),
                )
            )

    async def _process(
        self, request: web.Request, handler: Handler, route: str | None
    ) -> tuple[web.StreamResponse, str | None]:
        decision = self.rate_limiter.hit()
        response, fault_kind, finished = await self._answer(request, handler, route, decision)
        # Set here, before any truncation copies the headers, so every response carries them.
        response.headers["X-RateLimit-Limit"] = str(decision.limit)
        response.headers["X-RateLimit-Remaining"] = str(decision.remaining)
        if finished:
            return response, fault_kind
        for fault in self.faults.fire(route, "after_handler"):
            if fault.kind == "reset":
                return _abort(request), fault.kind
            return await _truncate(request, response, fault.keep_fraction), fault.kind
        return response, fault_kind

    async def _answer(
        self, request: web.Request, handler: Handler, route: str | None, decision: RateDecision
    ) -> tuple[web.StreamResponse, str | None, bool]:
        """Rate limit, auth, ``before_handler`` faults, then the handler.

        Returns:
            The response, the kind of fault that acted (if any), and whether the request is
            finished (refused or faulted: no ``after_handler`` fault may act on it).
        """
        # Behind nginx and PHP-FPM the whole request body is read before Laravel answers, so
        # every early answer drains the upload first, as the real API's would.
        if decision.retry_after is not None:
            await _drain(request)
            return _error(429, "Too Many Attempts.", retry_after=decision.retry_after), None, True
        if route is not None:
            refusal = self._check_token(request)
            if refusal is not None:
                await _drain(request)
                return refusal, None, True
        fault_kind: str | None = None
        for fault in self.faults.fire(route, "before_handler"):
            fault_kind = fault.kind
            if fault.kind == "latency":
                await asyncio.sleep(fault.seconds)
            elif fault.kind == "status":
                await _drain(request)
                return _fault_status(fault), fault_kind, True
            else:
                await _drain(request)
                return _abort(request), fault_kind, True
        return await self._run_handler(request, handler), fault_kind, False

    def _check_token(self, request: web.Request) -> web.Response | None:
        scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in (self.token, self.read_only_token):
            return _error(401, "Unauthenticated.")
        if token.strip() == self.read_only_token and request.method != "GET":
            return _error(403, "This action is unauthorized.")
        return None

    async def _run_handler(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except FakeAPIError as exc:
            return _error(exc.status, exc.message, exc.errors)
        except web.HTTPException as exc:
            # aiohttp's own 404/405 for paths and methods no route serves, in the API's shape.
            if exc.status == 404:
                message = f"The route {request.path.lstrip('/')} could not be found."
            else:
                message = f"The {request.method} method is not supported for this route."
            return _error(exc.status, message)

    # -- handlers: parse, call the state, render -------------------------------------------

    def _list(
        self, request: web.Request, items: Sequence[T], to_json: Callable[[T], render.JSONObject]
    ) -> web.Response:
        if self.list_style == "array":
            return web.json_response([to_json(item) for item in items])
        page, per_page = validate.page_fields(
            request.query, default=self.per_page_default, maximum=self.per_page_max
        )
        start = (page - 1) * per_page
        body = render.envelope(
            [to_json(item) for item in items[start : start + per_page]],
            total=len(items),
            page=page,
            per_page=per_page,
            path=request.url.with_query(None),
            keep_per_page="per_page" in request.query,
        )
        return web.json_response(body)

    async def _tickets_list(self, request: web.Request) -> web.StreamResponse:
        with self.state.lock:
            return self._list(
                request, self.state.tickets, lambda t: self._renderer.ticket(t, with_messages=False)
            )

    async def _departments(self, request: web.Request) -> web.StreamResponse:
        return self._list(request, self.state.departments, render.department)

    async def _services(self, request: web.Request) -> web.StreamResponse:
        return self._list(request, self.state.services, render.service)

    async def _plans_list(self, request: web.Request) -> web.StreamResponse:
        with self.state.lock:
            return self._list(
                request,
                self.state.plans,
                lambda p: render.plan(p, self.state.plan_status_of(p.key)),
            )

    async def _ticket_get(self, request: web.Request) -> web.StreamResponse:
        ticket_id = _path_id(request, "ticket_id", "Ticket")
        with self.state.lock:
            return web.json_response(self._renderer.ticket(self.state.ticket(ticket_id)))

    async def _read(self, request: web.Request, *, keep_bytes: bool) -> RequestInput:
        """Read the body, leaving it on the request for the request log."""
        received = await read_input(request, keep_bytes=keep_bytes)
        self._inputs[id(request)] = received
        return received

    async def _ticket_create(self, request: web.Request) -> web.StreamResponse:
        received = await self._read(request, keep_bytes=self.keep_upload_bytes)
        department_id, subject, message, service_id = validate.ticket_fields(
            received.fields, self.state, received.upload_errors
        )
        with self.state.lock:
            ticket = self.state.create_ticket(
                department_id=department_id,
                subject=subject,
                message=message,
                service_id=service_id,
                attachments=received.uploads,
            )
            return web.json_response(self._renderer.ticket(ticket))

    async def _ticket_reply(self, request: web.Request) -> web.StreamResponse:
        ticket_id = _path_id(request, "ticket_id", "Ticket")
        self.state.ticket(ticket_id)
        received = await self._read(request, keep_bytes=self.keep_upload_bytes)
        message = validate.reply_fields(received.fields, received.upload_errors)
        with self.state.lock:
            ticket = self.state.reply(ticket_id, message, received.uploads)
            return web.json_response(self._renderer.ticket(ticket, reply_answer=True))

    async def _ticket_resolve(self, request: web.Request) -> web.StreamResponse:
        ticket_id = _path_id(request, "ticket_id", "Ticket")
        with self.state.lock:
            ticket = self.state.resolve(ticket_id)
            if self.resolve_returns_204:
                return web.Response(status=204)
            return web.json_response(self._renderer.ticket(ticket))

    async def _attachment_download(self, request: web.Request) -> web.StreamResponse:
        ticket_id = _path_id(request, "ticket_id", "Ticket")
        self.state.ticket(ticket_id)
        attachment_id = _path_id(request, "attachment_id", "Attachment")
        found = self.state.attachment(attachment_id, ticket_id)
        headers: dict[str, str] = {
            hdrs.CONTENT_TYPE: found.mime_type,
            hdrs.CONTENT_DISPOSITION: _content_disposition(found.name),
        }
        return _ChunkedBody(self.state.attachment_chunks(found.id), found.size, headers)

    async def _plan_purchase(self, request: web.Request) -> web.StreamResponse:
        received = await self._read(request, keep_bytes=False)
        plan, cycle = validate.purchase_fields(received.fields, self.state)
        return web.json_response(self._renderer.order(self.state.purchase(plan, cycle)), status=201)

    async def _plan_renew(self, request: web.Request) -> web.StreamResponse:
        received = await self._read(request, keep_bytes=False)
        cycle = validate.renew_fields(received.fields)
        return web.json_response(self._renderer.order(self.state.renew(cycle)), status=201)

    async def _plan_cancel(self, request: web.Request) -> web.StreamResponse:
        received = await self._read(request, keep_bytes=False)
        reason, now = validate.cancel_fields(received.fields)
        cancellation = self.state.cancel(reason, now, with_order=not self.cancel_returns_204)
        if cancellation.order is None:
            return web.Response(status=204)
        return web.json_response(self._renderer.order(cancellation.order))

    async def _plan_undo_cancel(self, request: web.Request) -> web.StreamResponse:
        self.state.undo_cancel()
        return web.Response(status=204)

    async def _orders_list(self, request: web.Request) -> web.StreamResponse:
        wanted = request.query.get("filter[status]")
        statuses = None if wanted is None else set(wanted.split(","))
        with self.state.lock:
            orders = [
                o for o in reversed(self.state.orders) if statuses is None or o.status in statuses
            ]
            return self._list(request, orders, self._renderer.order_list_item)

    async def _order_get(self, request: web.Request) -> web.StreamResponse:
        order_id = _path_id(request, "order_id", "Order")
        with self.state.lock:
            return web.json_response(self._renderer.order(self.state.order(order_id)))


def _path_id(request: web.Request, key: str, what: str) -> int:
    raw = request.match_info[key]
    if not raw.isdigit():
        raise not_found(what)
    return int(raw)


def _error(
    status: int,
    message: str,
    errors: dict[str, list[str]] | None = None,
    *,
    retry_after: float | str | None = None,
) -> web.Response:
    headers = {}
    if retry_after is not None:
        headers[hdrs.RETRY_AFTER] = str(retry_after)
    return web.json_response(render.error(message, errors), status=status, headers=headers)


def _fault_status(fault: Fault) -> web.Response:
    retry_after = fault.retry_after
    if isinstance(retry_after, float):
        retry_after = math.ceil(retry_after) if not retry_after.is_integer() else int(retry_after)
    if fault.body is not None:
        if isinstance(fault.body, str):
            body, content_type = fault.body.encode(), "text/plain; charset=utf-8"
        else:
            body, content_type = fault.body, "application/octet-stream"
        headers = {hdrs.CONTENT_TYPE: fault.content_type or content_type}
        if retry_after is not None:
            headers[hdrs.RETRY_AFTER] = str(retry_after)
        return web.Response(status=fault.status, body=body, headers=headers)
    try:
        reason = HTTPStatus(fault.status).phrase
    except ValueError:
        reason = "Error"
    return _error(fault.status, f"{reason} (injected fault).", retry_after=retry_after)


async def _drain(request: web.Request) -> None:
    """Read and discard the whole request body, as a server behind a buffering proxy does."""
    while await request.content.readany():
        pass


def _abort(request: web.Request) -> web.StreamResponse:
    """Drop the connection at once: the client gets no response byte at all."""
    if request.transport is not None:
        request.transport.abort()
    # Sending this fails on the closed transport; aiohttp treats that as a client disconnect.
    return web.Response(status=500)


async def _truncate(
    request: web.Request, response: web.StreamResponse, keep_fraction: float
) -> web.StreamResponse:
    """Send ``response`` with its full Content-Length but only part of its body, then close."""
    chunks: Iterable[bytes]
    if isinstance(response, _ChunkedBody):
        chunks, size = response.chunks, response.content_length or 0
    elif isinstance(response, web.Response) and isinstance(response.body, bytes):
        chunks, size = [response.body], len(response.body)
    else:
        return _abort(request)
    cut = web.StreamResponse(status=response.status, headers=response.headers)
    cut.content_length = size
    await cut.prepare(request)
    budget = int(size * keep_fraction)
    for chunk in chunks:
        if budget <= 0:
            break
        await cut.write(chunk[:budget])
        budget -= len(chunk)
    # close(), not abort(): the partial body must be flushed before the FIN.
    if request.transport is not None:
        request.transport.close()
    return cut
