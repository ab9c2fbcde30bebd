"""The exact wire request of every endpoint, and what the user gets back (aioresponses)."""

from __future__ import annotations

import email.parser
import email.policy
import enum
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses
from yarl import URL

from tests._hostile import hostile
from tests.conftest import BASE, TOKEN, example
from vpsbg_support import (
    AsyncClient,
    ConfigurationError,
    InvalidParameterError,
    Order,
    Page,
    ResponseDecodeError,
    Ticket,
    __version__,
)


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


def sent(m: aioresponses, method: str, url: str) -> Any:
    """The single call aioresponses recorded for method + url."""
    calls = m.requests[(method, URL(url))]
    assert len(calls) == 1, f"expected exactly one {method} {url}, got {len(calls)}"
    return calls[0].kwargs


async def multipart_parts(form: aiohttp.FormData) -> list[tuple[str, str | None, str, bytes]]:
    """Render a FormData as it goes on the wire and parse it back: (name, filename, type, body)."""
    writer = form()

    class Sink:
        def __init__(self) -> None:
            self.data = b""

        async def write(self, chunk: bytes) -> None:
            self.data += bytes(chunk)

    sink = Sink()
    await writer.write(sink)  # type: ignore[arg-type]
    head = f"Content-Type: {writer.headers['Content-Type']}\r\n\r\n".encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + sink.data)
    parts = []
    for part in msg.iter_parts():
        cd = part.get("Content-Disposition", "")
        params = dict(part.get_params(header="content-disposition")[1:])
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        parts.append((params["name"], params.get("filename"), part.get_content_type(), payload))
        assert cd.startswith("form-data")
    return parts


class PartsRecorder:
    """An aioresponses callback that renders the multipart body at send time, as aiohttp would."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, str | None, str, bytes]] = []

    async def record(self, url: URL, **kwargs: Any) -> None:
        self.parts = await multipart_parts(kwargs["data"])


def assert_common_headers(kwargs: dict[str, Any]) -> None:
    headers = kwargs["headers"]
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith(f"vpsbg-support-python/{__version__}")


# --- configuration ------------------------------------------------------------------------


def test_token_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPSBG_API_TOKEN", "env-token")
    monkeypatch.setenv("VPSBG_BASE_URL", "https://example.test/v9")
    client = AsyncClient()
    assert client.base_url == "https://example.test/v9"
    assert client.max_retries == 2


def test_missing_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VPSBG_API_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="VPSBG_API_TOKEN") as caught:
        AsyncClient()
    assert caught.value.setting == "token"


@pytest.mark.parametrize("token", ["abc def", "ab\ncd", "t\u00f6ken"])
def test_a_mangled_token_names_the_token_setting(token: str) -> None:
    """What the CLI reads to exit 3 (a wrong token) rather than 2 (a wrong option)."""
    with pytest.raises(ConfigurationError, match="a character a token never has") as caught:
        AsyncClient(token)
    assert caught.value.setting == "token"


def test_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VPSBG_BASE_URL", raising=False)
    assert AsyncClient("t").base_url == "https://api.vpsbg.eu/v1"


def test_repr_hides_token() -> None:
    client = AsyncClient(TOKEN, base_url=BASE)
    assert TOKEN not in repr(client)
    assert TOKEN not in repr(client.tickets) and TOKEN not in repr(client._transport)


async def test_caller_session_is_used_and_left_open(mocked: aioresponses) -> None:
    mocked.get(f"{BASE}/support/plans", payload=[])
    async with aiohttp.ClientSession() as session:
        async with AsyncClient(TOKEN, base_url=BASE, session=session) as client:
            assert await client.plans.list() == []
        assert not session.closed


async def test_own_session_is_created_lazily_and_closed(mocked: aioresponses) -> None:
    mocked.get(f"{BASE}/support/plans", payload=[])
    client = AsyncClient(TOKEN, base_url=BASE)
    assert client._transport._sessions._session is None  # nothing opened before the first call
    await client.plans.list()
    session = client._transport._sessions._session
    assert session is not None and not session.closed
    await client.aclose()
    assert session.closed


# --- tickets --------------------------------------------------------------------------------


async def test_list_tickets_envelope(client: AsyncClient, mocked: aioresponses) -> None:
    body = {
        "data": [example("ticket_create_example.json")],
        "links": {
            "first": "f",
            "last": "l",
            "prev": None,
            "next": f"{BASE}/support/tickets?page=3",
        },
        "meta": {"current_page": 2, "last_page": 5, "per_page": 10, "total": 41},
    }
    mocked.get(f"{BASE}/support/tickets?page=2&per_page=10", payload=body)
    page = await client.tickets.list(page=2, per_page=10)
    kwargs = sent(mocked, "GET", f"{BASE}/support/tickets?page=2&per_page=10")
    assert_common_headers(kwargs)
    assert isinstance(page, Page)
    assert [t.id for t in page.items] == [216]
    assert (page.current_page, page.last_page, page.total, page.has_next) == (2, 5, 41, True)


async def test_list_tickets_bare_array(client: AsyncClient, mocked: aioresponses) -> None:
    item = {k: v for k, v in example("ticket_create_example.json").items() if k != "messages"}
    mocked.get(f"{BASE}/support/tickets", payload=[item])
    page = await client.tickets.list()
    assert [t.subject for t in page.items] == ["Server misbehaves"]
    assert page.items[0].messages == ()
    assert not page.has_next


async def test_iter_all_follows_pages_and_dedups(client: AsyncClient, mocked: aioresponses) -> None:
    def envelope(ids: list[int], page: int, last: int) -> dict[str, Any]:
        return {
            "data": [{"id": i, "status": "opened", "subject": f"s{i}"} for i in ids],
            "links": {"next": None if page == last else f"{BASE}/support/tickets?page={page + 1}"},
            "meta": {"current_page": page, "last_page": last},
        }

    mocked.get(f"{BASE}/support/tickets?page=1&per_page=2", payload=envelope([5, 4], 1, 3))
    # A ticket opened meanwhile shifted ticket 4 onto page 2: it must not be yielded twice.
    mocked.get(f"{BASE}/support/tickets?page=2&per_page=2", payload=envelope([4, 3], 2, 3))
    mocked.get(f"{BASE}/support/tickets?page=3&per_page=2", payload=envelope([2, 1], 3, 3))
    ids = [t.id async for t in client.tickets.iter_all(per_page=2)]
    assert ids == [5, 4, 3, 2, 1]


async def test_iter_all_stops_on_bare_array(client: AsyncClient, mocked: aioresponses) -> None:
    mocked.get(f"{BASE}/support/tickets?page=1", payload=[{"id": 1, "status": "s", "subject": "x"}])
    assert [t.id async for t in client.tickets.iter_all()] == [1]


async def test_departments_and_services(client: AsyncClient, mocked: aioresponses) -> None:
    mocked.get(
        f"{BASE}/support/departments",
        payload={"data": [{"id": 2, "name": "Technical support", "slug": "tech-support"}]},
    )
    mocked.get(
        f"{BASE}/support/services",
        payload=[{"id": 2747, "type": "server", "label": "ubuntu-16gb - 87.120.8.29", "x": 1}],
    )
    deps = await client.tickets.departments()
    services = await client.tickets.services()
    assert [(d.id, d.slug) for d in deps] == [(2, "tech-support")]
    assert services[0].id == 2747 and services[0].type == "server"
    assert services[0].extra == {"x": 1}
    assert_common_headers(sent(mocked, "GET", f"{BASE}/support/departments"))


async def test_get_ticket_drifted_example(client: AsyncClient, mocked: aioresponses) -> None:
    mocked.get(f"{BASE}/support/tickets/216", payload=example("ticket_get_example_drifted.json"))
    ticket = await client.tickets.get("216")
    assert isinstance(ticket, Ticket)
    assert ticket.user == "john doe"
    assert [m.content for m in ticket.messages] == ["Example reply message."] * 2
    assert ticket.messages[1].id is None
    assert ticket.messages[0].attachments[0].mime_type == "image/png"


async def test_create_ticket_multipart(
    client: AsyncClient, mocked: aioresponses, tmp_path: Path
) -> None:
    log = tmp_path / "df.txt"
    log.write_bytes(b"/dev/sda1 100%\n")
    recorder = PartsRecorder()
    mocked.post(
        f"{BASE}/support/tickets",
        payload=example("ticket_create_example.json"),
        callback=recorder.record,
    )
    ticket = await client.tickets.create(
        department_id=2,
        subject="Disk full",
        message="Please resize /var.",
        attachments=[log, ("shot.png", b"\x89PNG...")],
        service_id=2747,
        service_type="server",
    )
    assert ticket.id == 216 and ticket.service_id == 2747
    kwargs = sent(mocked, "POST", f"{BASE}/support/tickets")
    assert_common_headers(kwargs)
    assert kwargs["json"] is None
    parts = recorder.parts
    fields = {name: body for name, filename, _, body in parts if filename is None}
    assert fields == {
        "department_id": b"2",
        "subject": b"Disk full",
        "message": b"Please resize /var.",
        "service_id": b"2747",
        "service_type": b"server",
    }
    files = [(n, f, t, b) for n, f, t, b in parts if f is not None]
    assert files == [
        ("attachments[]", "df.txt", "text/plain", b"/dev/sda1 100%\n"),
        ("attachments[]", "shot.png", "image/png", b"\x89PNG..."),
    ]


async def test_create_without_optional_fields(client: AsyncClient, mocked: aioresponses) -> None:
    recorder = PartsRecorder()
    mocked.post(
        f"{BASE}/support/tickets",
        payload=example("ticket_create_example.json"),
        callback=recorder.record,
    )
    await client.tickets.create(department_id=2, subject="Disk", message="Hello")
    assert [p[0] for p in recorder.parts] == ["department_id", "subject", "message"]


async def test_reply(client: AsyncClient, mocked: aioresponses) -> None:
    recorder = PartsRecorder()
    mocked.post(
        f"{BASE}/support/tickets/216/messages",
        payload=example("ticket_reply_example.json"),
        callback=recorder.record,
    )
    ticket = await client.tickets.reply(216, message="Any news?", attachments=[("a.log", b"x")])
    assert ticket.service_label == "Cloud VPS 2 GB"  # the drifted `service` key
    assert recorder.parts == [
        ("message", None, "text/plain", b"Any news?"),
        ("attachments[]", "a.log", "text/plain", b"x"),
    ]


async def test_resolve_ticket_body_or_204(client: AsyncClient, mocked: aioresponses) -> None:
    resolved = {**example("ticket_create_example.json"), "status": "resolved"}
    mocked.put(f"{BASE}/support/tickets/216/resolve", payload=resolved)
    ticket = await client.tickets.resolve(216)
    assert ticket is not None and ticket.status == "resolved"
    assert sent(mocked, "PUT", f"{BASE}/support/tickets/216/resolve")["data"] is None

    mocked.put(f"{BASE}/support/tickets/7/resolve", status=204)
    assert await client.tickets.resolve(7) is None
    mocked.put(f"{BASE}/support/tickets/8/resolve", status=204)
    mocked.get(f"{BASE}/support/tickets/8", payload={**resolved, "id": 8})
    refreshed = await client.tickets.resolve(8, refresh=True)
    assert refreshed is not None and refreshed.id == 8


async def test_download_attachment_simple(
    client: AsyncClient, mocked: aioresponses, tmp_path: Path
) -> None:
    mocked.get(
        f"{BASE}/support/tickets/216/attachments/5",
        body=b"PNGDATA",
        headers={"Content-Disposition": 'attachment; filename="first.png"'},
    )
    path = await client.tickets.download_attachment(216, 5, tmp_path)
    assert path == tmp_path / "first.png"
    assert path.read_bytes() == b"PNGDATA"
    kwargs = sent(mocked, "GET", f"{BASE}/support/tickets/216/attachments/5")
    assert kwargs["headers"]["Accept"] == "*/*"
    assert kwargs["headers"]["Authorization"] == f"Bearer {TOKEN}"


# --- plans ----------------------------------------------------------------------------------


async def test_list_plans(client: AsyncClient, mocked: aioresponses) -> None:
    mocked.get(
        f"{BASE}/support/plans",
        payload=[{"key": "professional", "name": "Professional", "price": 15, "tier": 2}],
    )
    plans = await client.plans.list()
    assert plans[0].key == "professional" and plans[0].price == Decimal(15)
    assert plans[0].extra == {"tier": 2}


async def test_purchase_sends_json_and_parses_order(
    client: AsyncClient, mocked: aioresponses
) -> None:
    mocked.post(f"{BASE}/support", status=201, payload=example("order_purchase_example.json"))
    order = await client.plans.purchase(plan="professional", billing_cycle=1)
    kwargs = sent(mocked, "POST", f"{BASE}/support")
    assert_common_headers(kwargs)
    assert kwargs["json"] == {"plan": "professional", "billing_cycle": 1}
    assert isinstance(order, Order)
    assert order.id == 200158 and order.amount_with_vat == Decimal(18)
    assert order.services[0].amount_with_vat == Decimal("140.4")


async def test_renew(client: AsyncClient, mocked: aioresponses) -> None:
    mocked.post(
        f"{BASE}/support/renew", status=201, payload=example("order_renew_server_example.json")
    )
    order = await client.plans.renew(billing_cycle=3)
    assert sent(mocked, "POST", f"{BASE}/support/renew")["json"] == {"billing_cycle": 3}
    assert order.type == "renew-service" and order.payment_date is None


async def test_cancel_and_undo(client: AsyncClient, mocked: aioresponses) -> None:
    mocked.post(f"{BASE}/support/cancel", status=204)
    assert await client.plans.cancel(reason="Too expensive", now=True) is None
    assert sent(mocked, "POST", f"{BASE}/support/cancel")["json"] == {
        "now": True,
        "reason": "Too expensive",
    }
    mocked.delete(
        f"{BASE}/support/cancel", status=200, payload=example("order_purchase_example.json")
    )
    order = await client.plans.undo_cancel()
    assert order is not None and order.id == 200158
    assert sent(mocked, "DELETE", f"{BASE}/support/cancel")["json"] is None


async def test_cancel_defaults(client: AsyncClient, mocked: aioresponses) -> None:
    mocked.post(f"{BASE}/support/cancel", payload=example("order_purchase_example.json"))
    order = await client.plans.cancel()
    assert order is not None
    assert sent(mocked, "POST", f"{BASE}/support/cancel")["json"] == {"now": False}


# --- bad local input never reaches the wire ----------------------------------------------------

BAD_CALLS = [
    ("subject", lambda c: c.tickets.create(department_id=2, subject="ab", message="Hello there")),
    ("subject", lambda c: c.tickets.create(department_id=2, subject="x" * 256, message="Hello")),
    # Blanks the server trims (zero-width space, BOM, LRM) leave nothing: refused here as there.
    (
        "subject",
        lambda c: c.tickets.create(department_id=2, subject="\u200b\ufeff\u200e", message="Hello"),
    ),
    ("message", lambda c: c.tickets.create(department_id=2, subject="Disk", message="Hi")),
    ("message", lambda c: c.tickets.reply(1, message="    ok    ")),
    ("department_id", lambda c: c.tickets.create(department_id=0, subject="Disk", message="Hello")),
    (
        "department_id",
        lambda c: c.tickets.create(department_id=True, subject="Disk", message="Hello"),
    ),
    ("ticket_id", lambda c: c.tickets.get("../1")),
    ("ticket_id", lambda c: c.tickets.get(-3)),
    ("page", lambda c: c.tickets.list(page=0)),
    ("per_page", lambda c: c.tickets.list(per_page="10")),
    ("attachments", lambda c: c.tickets.reply(1, message="Hello", attachments=["/no/such/file"])),
    ("attachments", lambda c: c.tickets.reply(1, message="Hello", attachments=[("e.txt", b"")])),
    ("billing_cycle", lambda c: c.plans.renew(billing_cycle=2)),
    ("billing_cycle", lambda c: c.plans.renew(billing_cycle=36)),
    ("billing_cycle", lambda c: c.plans.purchase(plan="professional", billing_cycle=0)),
    ("billing_cycle", lambda c: c.plans.purchase(plan="professional", billing_cycle=25)),
    ("billing_cycle", lambda c: c.plans.purchase(plan="professional", billing_cycle=1.0)),
    ("plan", lambda c: c.plans.purchase(plan="", billing_cycle=1)),
    ("now", lambda c: c.plans.cancel(now="yes")),
]


@pytest.mark.parametrize(("field", "call"), BAD_CALLS)
async def test_bad_input_raises_before_sending(
    client: AsyncClient, mocked: aioresponses, field: str, call: Any
) -> None:
    with pytest.raises(InvalidParameterError) as info:
        await call(client)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    assert mocked.requests == {}


class TicketId(int, enum.Enum):
    MINE = 216


class Department(enum.IntEnum):
    TECH = 2


class Kind(str, enum.Enum):
    SERVER = "server"


async def test_enum_values_go_on_the_wire_as_their_values(
    client: AsyncClient, mocked: aioresponses
) -> None:
    # str() of an int- or str-mixin Enum is its name ("TicketId.MINE"): sent that way, a path
    # would 404 and a field would be refused.
    mocked.get(f"{BASE}/support/tickets/216", payload=example("ticket_create_example.json"))
    assert (await client.tickets.get(TicketId.MINE)).id == 216
    recorder = PartsRecorder()
    mocked.post(
        f"{BASE}/support/tickets",
        payload=example("ticket_create_example.json"),
        callback=recorder.record,
    )
    await client.tickets.create(
        department_id=Department.TECH,
        subject="Disk full",
        message="Please resize /var.",
        service_id=TicketId.MINE,
        service_type=Kind.SERVER,
    )
    fields = {name: body for name, _, _, body in recorder.parts}
    assert fields["department_id"] == b"2" and fields["service_id"] == b"216"
    assert fields["service_type"] == b"server"


async def test_text_limits_count_what_the_server_keeps_after_trimming(
    client: AsyncClient, mocked: aioresponses
) -> None:
    mocked.post(f"{BASE}/support/tickets", payload=example("ticket_create_example.json"))
    # 255 characters between blanks the server trims: within its 255 limit.
    subject = "  " + "x" * 255 + "\n"
    await client.tickets.create(department_id=2, subject=subject, message="Hello there")
    assert len(mocked.requests[("POST", URL(f"{BASE}/support/tickets"))]) == 1


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), float("nan"), True, "5"])
def test_a_timeout_must_be_a_finite_number_of_seconds(timeout: Any) -> None:
    # inf overflowed the loop's timer at the first call; nan silently meant no timeout at all.
    with pytest.raises(InvalidParameterError) as info:
        AsyncClient("t", timeout=timeout)
    assert info.value.field == "timeout"
    with pytest.raises(InvalidParameterError):
        AsyncClient("t").with_options(timeout=timeout)


async def test_purchase_accepts_any_cycle_in_range(
    client: AsyncClient, mocked: aioresponses
) -> None:
    mocked.post(f"{BASE}/support", status=201, payload=example("order_purchase_example.json"))
    await client.plans.purchase(plan="professional", billing_cycle=7)
    assert sent(mocked, "POST", f"{BASE}/support")["json"]["billing_cycle"] == 7


# --- undecodable 2xx ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"<html>oops</html>", b'{"id": "abc"}', b"[1, 2]", b'{"subject": "no id"}', b""],
)
async def test_undecodable_success_body(
    client: AsyncClient, mocked: aioresponses, body: bytes
) -> None:
    mocked.get(f"{BASE}/support/tickets/1", body=body, content_type="application/json")
    with pytest.raises(ResponseDecodeError) as info:
        await client.tickets.get(1)
    assert info.value.status == 200
    assert info.value.body == body


def test_example_files_are_valid_json() -> None:
    for path in Path(__file__).parent.joinpath("data").glob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))


async def test_iter_all_stops_when_a_server_repeats_a_page(
    client: AsyncClient, mocked: aioresponses
) -> None:
    # A broken server that always says there is a next page and serves the same tickets.
    same = {
        "data": [{"id": 2, "status": "opened", "subject": "a"}],
        "links": {"next": f"{BASE}/support/tickets?page=2"},
    }
    for page in range(1, 9):
        mocked.get(f"{BASE}/support/tickets?page={page}", payload=same)
    assert [t.id async for t in client.tickets.iter_all()] == [2]
    assert len(mocked.requests) == 4  # pages 2, 3 and 4 brought nothing new: stop


async def test_iter_all_stops_at_last_page(client: AsyncClient, mocked: aioresponses) -> None:
    def page(number: int) -> dict[str, Any]:
        return {
            "data": [{"id": 10 - number, "status": "opened", "subject": "a"}],
            "links": {"next": f"{BASE}/support/tickets?page={number + 1}"},  # wrongly set
            "meta": {"current_page": number, "last_page": 2},
        }

    mocked.get(f"{BASE}/support/tickets?page=1", payload=page(1))
    mocked.get(f"{BASE}/support/tickets?page=2", payload=page(2))
    assert [t.id async for t in client.tickets.iter_all()] == [9, 8]


async def test_a_closed_caller_session_is_a_clear_error() -> None:
    session = aiohttp.ClientSession()
    await session.close()
    async with AsyncClient(TOKEN, base_url=BASE, session=session) as client:
        with pytest.raises(ConfigurationError, match="session given to the client is closed"):
            await client.tickets.get(1)


@pytest.mark.parametrize(
    "url",
    ["http://api.vpsbg.eu/v1", "http://10.0.0.5/v1", "ftp://api.vpsbg.eu/v1", "api.vpsbg.eu/v1"],
)
def test_base_url_refuses_to_send_the_token_in_clear_text(url: str) -> None:
    with pytest.raises(ConfigurationError, match="base_url") as caught:
        AsyncClient(TOKEN, base_url=url)
    assert caught.value.setting == "base_url"


@pytest.mark.parametrize(
    "url",
    [
        "https://api.vpsbg.eu/v1",
        "http://127.0.0.1:8080/v1",
        "http://[::1]:8080/v1",
        "http://localhost/v1",
        "http://fake.test/v1",
    ],
)
def test_base_url_allows_https_and_loopback_http(url: str) -> None:
    assert AsyncClient(TOKEN, base_url=url).base_url == url.rstrip("/")


async def test_iter_all_goes_on_after_a_page_shifted_by_new_tickets(
    client: AsyncClient, mocked: aioresponses
) -> None:
    def page(ids: list[int], number: int) -> dict[str, Any]:
        return {
            "data": [{"id": i, "status": "opened", "subject": "a"} for i in ids],
            "links": {"next": f"{BASE}/support/tickets?page={number + 1}" if number < 3 else None},
            "meta": {"current_page": number, "last_page": 3},
        }

    # Two tickets were opened after page 1 was read: page 2 now repeats it entirely.
    mocked.get(f"{BASE}/support/tickets?page=1", payload=page([6, 5], 1))
    mocked.get(f"{BASE}/support/tickets?page=2", payload=page([6, 5], 2))
    mocked.get(f"{BASE}/support/tickets?page=3", payload=page([4, 3], 3))
    assert [t.id async for t in client.tickets.iter_all()] == [6, 5, 4, 3]


async def test_every_request_carries_the_headers_once_whoever_owns_the_session(
    tmp_path: Path,
) -> None:
    """A session of ours sends the client's headers by default (a plain call passes none of its
    own); streams, ``with_options`` copies and a caller's session pass theirs per request. On
    the wire each must still be there exactly once, and a caller's session is left as given."""
    seen: list[list[tuple[bytes, bytes]]] = []

    async def ticket(request: web.Request) -> web.Response:
        seen.append(list(request.raw_headers))
        return web.json_response(example("ticket_get_example_drifted.json"))

    async def attachment(request: web.Request) -> web.Response:
        seen.append(list(request.raw_headers))
        return web.Response(body=b"x" * 10, content_type="application/octet-stream")

    def one(name: bytes) -> list[bytes]:
        return [v for k, v in seen[-1] if k.lower() == name.lower()]

    routes = {"/support/tickets/216": ticket, "/support/tickets/216/attachments/5": attachment}
    async with hostile(routes) as url:
        async with AsyncClient(TOKEN, base_url=url) as client:
            await client.tickets.get(216)
            assert one(b"Authorization") == [f"Bearer {TOKEN}".encode()]
            assert one(b"Accept") == [b"application/json"]
            assert one(b"User-Agent")[0].startswith(b"vpsbg-support-python/")
            await client.tickets.download_attachment(216, 5, tmp_path)
            assert one(b"Authorization") == [f"Bearer {TOKEN}".encode()]
            assert (one(b"Accept"), one(b"Accept-Encoding")) == ([b"*/*"], [b"identity"])
            await client.with_options(extra_headers={"X-Team": "billing"}).tickets.get(216)
            assert one(b"X-Team") == [b"billing"]
            assert one(b"Authorization") == [f"Bearer {TOKEN}".encode()]
            await client.tickets.get(216)
            assert one(b"X-Team") == []  # the copy's header stays with the copy
        async with aiohttp.ClientSession() as session:
            async with AsyncClient(TOKEN, base_url=url, session=session) as client:
                await client.tickets.get(216)
            assert one(b"Authorization") == [f"Bearer {TOKEN}".encode()]
            assert one(b"Accept") == [b"application/json"]
            assert "Authorization" not in session.headers
