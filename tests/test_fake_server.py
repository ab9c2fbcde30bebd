"""FakeVPSBG over loopback HTTP with raw aiohttp: the behaviour our tests and users rely on."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any, get_args

import aiohttp
import attrs
import pytest

from tests._interruptible import interruptible, stop
from vpsbg_support import AsyncClient, Ticket, errors
from vpsbg_support._routes import ROUTES
from vpsbg_support.testing import (
    ROUTE_NAMES,
    Attachment,
    FakeVPSBG,
    FakeVPSBGThread,
    RouteName,
)
from vpsbg_support.testing.pytest_plugin import marker_options

JSON = dict[str, Any]


@pytest.fixture
async def fake() -> AsyncIterator[FakeVPSBG]:
    async with FakeVPSBG(seed=1, tickets=30) as server:
        yield server


@pytest.fixture
async def http(fake: FakeVPSBG) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {fake.token}", "Accept": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield session


def ticket_form(**overrides: str) -> aiohttp.FormData:
    fields = {"department_id": "2", "subject": "Disk is full", "message": "Please help me."}
    fields.update(overrides)
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    return form


def attach(fake: FakeVPSBG, **kwargs: Any) -> tuple[Attachment, str]:
    """Attach a file to the newest ticket; return it and its download URL."""
    ticket_id = fake.state.tickets[0].id
    attachment = fake.state.add_attachment(ticket_id, **kwargs)
    return attachment, f"{fake.url}/support/tickets/{ticket_id}/attachments/{attachment.id}"


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


# -- auth ----------------------------------------------------------------------------------


async def test_missing_or_wrong_token_is_401(fake: FakeVPSBG) -> None:
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(fake.url + "/support/tickets") as response:
            assert response.status == 401
            assert await response.json() == {"message": "Unauthenticated."}
        bad = {"Authorization": "Bearer not-the-token"}
        async with anonymous.get(fake.url + "/support/plans", headers=bad) as response:
            assert response.status == 401


async def test_read_only_token_reads_but_cannot_write(fake: FakeVPSBG) -> None:
    headers = {"Authorization": f"Bearer {fake.read_only_token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(fake.url + "/support/tickets") as response:
            assert response.status == 200
        async with session.post(fake.url + "/support/renew", json={"billing_cycle": 1}) as resp:
            assert resp.status == 403
            assert "message" in await resp.json()
    assert fake.state.orders == []


# -- validation and 404 --------------------------------------------------------------------


async def test_create_ticket_validation_lists_every_field_laravel_style(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    form = ticket_form(department_id="99", subject="Hi", message="shrt", service_id="1")
    async with http.post(fake.url + "/support/tickets", data=form) as response:
        assert response.status == 422
        body = await response.json()
    assert set(body["errors"]) == {"department_id", "subject", "message", "service_id"}
    assert body["errors"]["subject"] == ["The subject field must be at least 3 characters."]
    assert body["message"].startswith("The selected department id is invalid. (and 3 more")
    assert len(fake.state.tickets) == 30


async def test_create_ticket_requires_fields_and_an_integer_department(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    form = aiohttp.FormData({"department_id": "two", "subject": " " * 10})
    async with http.post(fake.url + "/support/tickets", data=form) as response:
        body = await response.json()
    assert response.status == 422
    assert body["errors"] == {
        "department_id": ["The department id field must be an integer."],
        "subject": ["The subject field is required."],
        "message": ["The message field is required."],
    }


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/support/renew", {"billing_cycle": 5}, "billing_cycle"),
        ("/support/renew", {}, "billing_cycle"),
        ("/support", {"plan": "professional", "billing_cycle": 25}, "billing_cycle"),
        ("/support", {"plan": "gold", "billing_cycle": 3}, "plan"),
        ("/support/cancel", {"now": "maybe"}, "now"),
    ],
)
async def test_plan_bodies_are_validated(
    fake: FakeVPSBG, http: aiohttp.ClientSession, path: str, payload: JSON, field: str
) -> None:
    async with http.post(fake.url + path, json=payload) as response:
        assert response.status == 422
        assert list((await response.json())["errors"]) == [field]
    assert fake.state.orders == []


@pytest.mark.parametrize("query", ["page=0", "per_page=101", "per_page=x"])
async def test_bad_paging_parameters_are_422(
    fake: FakeVPSBG, http: aiohttp.ClientSession, query: str
) -> None:
    async with http.get(f"{fake.url}/support/tickets?{query}") as response:
        assert response.status == 422


@pytest.mark.parametrize(
    "path",
    [
        "/support/tickets/999999",
        "/support/tickets/abc",
        "/support/tickets/1001/attachments/1",
        "/no/such/route",
    ],
)
async def test_unknown_things_are_404_with_a_json_message(
    fake: FakeVPSBG, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(fake.url + path) as response:
        assert response.status == 404
        assert isinstance((await response.json())["message"], str)


async def test_attachment_of_another_ticket_is_404(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    first, second = fake.state.tickets[:2]
    attachment = fake.state.add_attachment(first.id, name="a.txt", content=b"x")
    url = f"{fake.url}/support/tickets/{second.id}/attachments/{attachment.id}"
    async with http.get(url) as response:
        assert response.status == 404


# -- listing -------------------------------------------------------------------------------


async def test_pages_cover_every_ticket_once_newest_first(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    url: str | None = fake.url + "/support/tickets?per_page=7"
    seen: list[int] = []
    pages = 0
    while url is not None:
        page = await get_json(http, url)
        assert all("messages" not in item for item in page["data"])
        assert page["meta"]["total"] == 30 and page["meta"]["per_page"] == 7
        seen += [item["id"] for item in page["data"]]
        url = page["links"]["next"]
        assert url is None or url.startswith(fake.url)
        pages += 1
    assert pages == 5 == page["meta"]["last_page"]
    assert page["links"]["prev"] is not None
    assert seen == sorted((t.id for t in fake.state.tickets), reverse=True)


async def test_default_page_size_and_empty_page_past_the_end(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    first = await get_json(http, fake.url + "/support/tickets")
    assert len(first["data"]) == 25 and first["links"]["prev"] is None
    beyond = await get_json(http, fake.url + "/support/tickets?page=9")
    assert beyond["data"] == [] and beyond["meta"]["from"] is None


async def test_array_list_style_serves_a_bare_array_of_everything() -> None:
    async with FakeVPSBG(tickets=30, list_style="array") as fake:
        headers = {"Authorization": f"Bearer {fake.token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            tickets = await get_json(http, fake.url + "/support/tickets")
            departments = await get_json(http, fake.url + "/support/departments")
    assert isinstance(tickets, list) and len(tickets) == 30
    assert {d["slug"] for d in departments} == {"billing", "tech-support", "sales"}


async def test_catalog_lists(fake: FakeVPSBG, http: aiohttp.ClientSession) -> None:
    departments = (await get_json(http, fake.url + "/support/departments"))["data"]
    assert {"id": 2, "name": "Technical support", "slug": "tech-support"} in departments
    services = (await get_json(http, fake.url + "/support/services"))["data"]
    assert {s["type"] for s in services} == {"server", "shared-hosting"}
    plans = (await get_json(http, fake.url + "/support/plans"))["data"]
    assert [p["status"] for p in plans if p["key"] == "basic"] == ["active"]
    assert all(p["price_with_vat"] == round(p["price"] * 1.2, 2) for p in plans)


async def test_get_ticket_has_the_documented_shape(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    ticket = fake.state.tickets[0]
    body = await get_json(http, f"{fake.url}/support/tickets/{ticket.id}")
    assert set(body) >= {"id", "status", "subject", "created_at", "updated_at", "department"}
    assert body["created_at"].endswith("Z")
    assert len(body["messages"]) == len(ticket.messages)
    message = body["messages"][0]
    assert set(message) == {"id", "content", "is_customer", "created_at", "attachments"}


# -- tickets: create, reply, resolve, download ---------------------------------------------


async def test_create_ticket_with_two_files_records_names_bytes_and_types(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    form = ticket_form(service_id="2747", service_type="server")
    form.add_field(
        "attachments[]", b"line 1\nline 2\n", filename="app.log", content_type="text/plain"
    )
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    form.add_field("attachments[]", png, filename="shot.png", content_type="image/png")
    async with http.post(fake.url + "/support/tickets", data=form) as response:
        assert response.status == 200
        body = await response.json()
    assert body["status"] == "opened" and body["department"] == "tech-support"
    assert body["service_id"] == 2747 and body["service_type"] == "server"
    [message] = body["messages"]
    assert message["is_customer"] is True and message["content"] == "Please help me."
    log, shot = message["attachments"]
    assert (log["name"], log["size"], log["mimeType"]) == ("app.log", 14, "text/plain")
    assert (shot["name"], shot["size"], shot["mimeType"]) == ("shot.png", len(png), "image/png")
    assert log["id"] != shot["id"]
    assert fake.state.attachment_bytes(shot["id"]) == png
    assert fake.state.attachment(shot["id"]).upload_sha256 == hashlib.sha256(png).hexdigest()
    assert fake.state.tickets[0].id == body["id"]


async def test_uploads_without_kept_bytes_record_size_and_digest() -> None:
    async with FakeVPSBG(keep_upload_bytes=False) as fake:
        form = ticket_form()
        form.add_field("attachments[]", b"a" * 300_000, filename="big.bin")
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {fake.token}"}) as http,
            http.post(fake.url + "/support/tickets", data=form) as response,
        ):
            body = await response.json()
    stored = fake.state.attachment(body["messages"][0]["attachments"][0]["id"])
    assert stored.content is None and stored.size == 300_000
    assert stored.upload_sha256 == hashlib.sha256(b"a" * 300_000).hexdigest()


async def test_reply_appends_a_customer_message_and_bumps_updated_at(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    ticket = fake.state.tickets[3]
    before = await get_json(http, f"{fake.url}/support/tickets/{ticket.id}")
    form = aiohttp.FormData({"message": "Any news on this?"})
    form.add_field("attachments[]", b"trace", filename="trace.txt", content_type="text/plain")
    async with http.post(f"{fake.url}/support/tickets/{ticket.id}/messages", data=form) as resp:
        assert resp.status == 200
        after = await resp.json()
    assert len(after["messages"]) == len(before["messages"]) + 1
    last = after["messages"][-1]
    assert last["is_customer"] is True and last["content"] == "Any news on this?"
    assert last["attachments"][0]["name"] == "trace.txt"
    assert after["updated_at"] > before["updated_at"]
    assert after["status"] == "customer-reply"


async def test_reply_to_missing_ticket_is_404_and_short_message_422(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    form = aiohttp.FormData({"message": "Hello there"})
    async with http.post(f"{fake.url}/support/tickets/5/messages", data=form) as response:
        assert response.status == 404
    ticket_id = fake.state.tickets[0].id
    short = aiohttp.FormData({"message": "hey"})
    async with http.post(f"{fake.url}/support/tickets/{ticket_id}/messages", data=short) as resp:
        assert resp.status == 422
        assert "message" in (await resp.json())["errors"]


async def test_resolve_returns_the_resolved_ticket(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    ticket_id = fake.state.tickets[0].id
    async with http.put(f"{fake.url}/support/tickets/{ticket_id}/resolve") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "resolved"
    body = await get_json(http, f"{fake.url}/support/tickets/{ticket_id}")
    assert body["status"] == "resolved"


async def test_resolve_can_answer_204() -> None:
    async with FakeVPSBG(tickets=1, resolve_returns_204=True) as fake:
        ticket_id = fake.state.tickets[0].id
        headers = {"Authorization": f"Bearer {fake.token}"}
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.put(f"{fake.url}/support/tickets/{ticket_id}/resolve") as response,
        ):
            assert response.status == 204
            assert await response.read() == b""
    assert fake.state.ticket(ticket_id).status == "resolved"


async def test_download_serves_bytes_with_hostile_name_unchanged(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    _, url = attach(fake, name="../../etc/passwd", content=b"root:x:0")
    async with http.get(url) as response:
        assert response.status == 200
        assert await response.read() == b"root:x:0"
        assert response.headers["Content-Length"] == "8"
        assert response.headers["Content-Type"] == "application/octet-stream"
        disposition = response.headers["Content-Disposition"]
    assert disposition == 'attachment; filename="../../etc/passwd"'


async def test_download_non_ascii_name_adds_rfc5987_filename(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    _, url = attach(fake, name='отчёт "1".pdf', content=b"%PDF")
    async with http.get(url) as response:
        assert response.headers["Content-Type"] == "application/pdf"
        disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="_____ \\"1\\".pdf"; filename*=UTF-8')
    assert response.content_disposition is not None
    assert response.content_disposition.filename == 'отчёт "1".pdf'


async def test_download_of_a_name_utf8_cannot_carry_is_served_not_a_500(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    _, url = attach(fake, name="cut \ud83d.log", content=b"log")
    async with http.get(url) as response:
        assert response.status == 200 and await response.read() == b"log"
        assert response.content_disposition is not None
        assert response.content_disposition.filename == "cut ?.log"


async def test_big_generated_attachment_streams_with_matching_digest(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    size = 8 * 1024 * 1024
    attachment, url = attach(fake, name="disk.img", size=size)
    digest = hashlib.sha256()
    received = 0
    async with http.get(url) as response:
        assert response.headers["Content-Length"] == str(size)
        async for chunk in response.content.iter_chunked(64 * 1024):
            digest.update(chunk)
            received += len(chunk)
    assert received == size
    assert digest.hexdigest() == fake.state.attachment_sha256(attachment.id)
    assert attachment.content is None


def test_generated_content_is_deterministic_and_text_is_printable() -> None:
    one, two = FakeVPSBG(seed=4, tickets=1), FakeVPSBG(seed=4, tickets=1)
    ticket_id = one.state.tickets[0].id
    a = one.state.add_attachment(ticket_id, name="x.log", size=100_000)
    b = two.state.add_attachment(ticket_id, name="x.log", size=100_000)
    assert one.state.attachment_bytes(a.id) == two.state.attachment_bytes(b.id)
    assert all(0x20 <= c < 0x7F or c == 0x0A for c in one.state.attachment_bytes(a.id))
    other = FakeVPSBG(seed=5, tickets=1)
    c = other.state.add_attachment(ticket_id, name="x.log", size=100_000)
    assert other.state.attachment_sha256(c.id) != one.state.attachment_sha256(a.id)
    with pytest.raises(ValueError):
        one.state.add_attachment(ticket_id, name="x", content=b"1", size=1)


# -- support plans -------------------------------------------------------------------------


async def test_purchase_renew_cancel_undo_change_the_plan_and_create_orders(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        fake.url + "/support", json={"plan": "professional", "billing_cycle": 3}
    ) as response:
        assert response.status == 201
        order = await response.json()
    assert (order["type"], order["status"], order["amount"]) == (
        "new-service",
        "awaiting_payment",
        75,
    )
    assert order["amount_with_vat"] == 90 and order["tax_rate"] == 1.2
    assert order["invoices"][0]["order_ids"] == [order["id"]]
    assert order["services"][0]["service_billing_cycle"] == 3
    assert fake.state.active_plan == "professional"

    async with http.post(fake.url + "/support/renew", json={"billing_cycle": 12}) as response:
        assert response.status == 201
        renewal = await response.json()
    assert (renewal["type"], renewal["amount"], renewal["amount_with_vat"]) == (
        "renew-service",
        300,
        360,
    )

    # Cancel and undo answer 204 with no body, as the routes table says, and place no order.
    async with http.post(fake.url + "/support/cancel", json={"reason": "too dear"}) as response:
        assert response.status == 204 and await response.read() == b""
    plans = (await get_json(http, fake.url + "/support/plans"))["data"]
    assert {p["key"]: p["status"] for p in plans}["professional"] == "cancel_requested"

    async with http.delete(fake.url + "/support/cancel") as response:
        assert response.status == 204 and await response.read() == b""
    assert fake.state.plan_status == "active"
    async with http.delete(fake.url + "/support/cancel") as response:
        assert response.status == 422

    assert [o.type for o in fake.state.orders] == ["new-service", "renew-service"]
    [cancellation] = fake.state.cancellations
    assert (cancellation.plan_key, cancellation.reason, cancellation.now) == (
        "professional",
        "too dear",
        False,
    )
    assert cancellation.withdrawn_at is not None and cancellation.order is None


async def test_cancel_can_answer_with_a_documented_order_type() -> None:
    async with FakeVPSBG(cancel_returns_204=False) as fake:
        headers = {"Authorization": f"Bearer {fake.token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(fake.url + "/support/cancel", json={}) as response:
                assert response.status == 200
                order = await response.json()
            async with http.delete(fake.url + "/support/cancel") as response:
                assert response.status == 204
    # "custom" is in the documented list of order types; "cancel-service" is not.
    assert (order["type"], order["amount"]) == ("custom", 0)
    assert [o.id for o in fake.state.orders] == [order["id"]]
    assert fake.state.cancellations[0].order == fake.state.orders[0]


async def test_cancel_now_drops_the_plan_so_renew_is_refused() -> None:
    async with FakeVPSBG() as fake:
        headers = {"Authorization": f"Bearer {fake.token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(fake.url + "/support/cancel", json={"now": True}) as response:
                assert response.status == 204
            async with http.post(fake.url + "/support/renew", json={"billing_cycle": 1}) as resp:
                assert resp.status == 422
            plans = (await get_json(http, fake.url + "/support/plans"))["data"]
    assert fake.state.active_plan is None
    assert {p["status"] for p in plans} == {"available"}


async def test_a_pending_cancellation_seeded_through_the_state_can_be_undone() -> None:
    # Users seed state directly; the undo must not fail with 500 for want of a recorded cancel.
    async with FakeVPSBG() as fake:
        fake.state.plan_status = "cancel_requested"
        headers = {"Authorization": f"Bearer {fake.token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.delete(fake.url + "/support/cancel") as response:
                assert response.status == 204
            async with http.delete(fake.url + "/support/cancel") as response:
                assert response.status == 422  # nothing pending any more
    assert fake.state.plan_status == "active" and fake.state.cancellations == []


# -- faults --------------------------------------------------------------------------------


async def test_status_fault_answers_before_the_handler_with_retry_after(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    fault = fake.faults.add("plans.renew", "status", status=503, retry_after=2, times=1)
    async with http.post(fake.url + "/support/renew", json={"billing_cycle": 1}) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "2"
        assert "message" in await response.json()
    assert fake.state.orders == []
    async with http.post(fake.url + "/support/renew", json={"billing_cycle": 1}) as response:
        assert response.status == 201
    assert fault.fired == 1 and len(fake.state.orders) == 1


async def test_latency_fault_delays_but_answers(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    fake.faults.add(None, "latency", seconds=0.05)
    body = await get_json(http, fake.url + "/support/departments")
    assert len(body["data"]) == 3
    assert fake.requests[-1].fault == "latency"


async def test_reset_after_handler_hides_a_side_effect_that_happened(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    fake.faults.add("plans.purchase", "reset")
    with pytest.raises(aiohttp.ClientError):
        async with http.post(fake.url + "/support", json={"plan": "basic", "billing_cycle": 1}):
            pass
    assert len(fake.state.orders) == 1
    assert fake.requests[-1].status is None and fake.requests[-1].fault == "reset"


async def test_reset_before_handler_reads_the_upload_and_changes_nothing(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    fake.faults.add("tickets.create", "reset", when="before_handler")
    form = ticket_form()
    form.add_field("attachments[]", b"z" * 200_000, filename="z.bin")
    with pytest.raises(aiohttp.ClientError):
        async with http.post(fake.url + "/support/tickets", data=form):
            pass
    assert len(fake.state.tickets) == 30
    assert fake.requests[-1].body_size > 200_000


async def test_truncate_fault_cuts_json_and_download_bodies(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    ticket_url = f"{fake.url}/support/tickets/{fake.state.tickets[0].id}"
    _, download_url = attach(fake, name="a.bin", size=300_000)
    fake.faults.add(None, "truncate", times=2)
    for url in (ticket_url, download_url):
        with pytest.raises(aiohttp.ClientPayloadError):
            async with http.get(url) as response:
                assert response.status == 200
                await response.read()
    await get_json(http, ticket_url)


async def test_probabilistic_faults_follow_the_fault_seed() -> None:
    def pattern() -> list[int]:
        faults = FakeVPSBG(seed=7).faults
        faults.add(None, "status", probability=0.5)
        return [len(faults.fire("tickets.list", "before_handler")) for _ in range(40)]

    first = pattern()
    assert first == pattern()
    assert 0 < sum(first) < 40


def test_fault_configuration_is_checked() -> None:
    faults = FakeVPSBG().faults
    with pytest.raises(ValueError):
        faults.add("tickets.nope", "status")
    with pytest.raises(ValueError):
        faults.add(None, "status", probability=2)
    faults.add("tickets.get", "status")
    faults.clear()
    assert faults.faults == []


# -- rate limit and the request record -----------------------------------------------------


async def test_rate_limit_headers_and_429_when_exhausted() -> None:
    async with FakeVPSBG(rate_limit=2) as fake, aiohttp.ClientSession() as http:
        async with http.get(fake.url + "/support/plans") as response:
            assert response.status == 401
            assert response.headers["X-RateLimit-Limit"] == "2"
            assert response.headers["X-RateLimit-Remaining"] == "1"
        async with http.get(fake.url + "/support/plans") as response:
            assert response.headers["X-RateLimit-Remaining"] == "0"
        async with http.get(fake.url + "/support/plans") as response:
            assert response.status == 429
            assert 1 <= int(response.headers["Retry-After"]) <= 60


async def test_requests_are_recorded_without_the_token(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    await get_json(http, fake.url + "/support/tickets?page=2")
    async with http.post(fake.url + "/support/renew", json={"billing_cycle": 1}):
        pass
    async with http.get(fake.url + "/nope"):
        pass
    first, renew, unknown = fake.requests
    assert (first.method, first.route, first.status) == ("GET", "tickets.list", 200)
    assert first.query == {"page": "2"}
    assert renew.route == "plans.renew" and renew.status == 201 and renew.body_size > 0
    assert unknown.route is None and unknown.status == 404
    assert fake.count("tickets.list") == 1 and fake.count("plans.renew", status=201) == 1
    assert fake.token not in repr(fake.requests) and fake.token not in repr(fake)


# -- determinism and generated data --------------------------------------------------------


async def test_same_seed_serves_identical_json() -> None:
    bodies = []
    for seed in (3, 3, 4):
        async with FakeVPSBG(seed=seed, tickets=12) as fake:
            headers = {"Authorization": f"Bearer {fake.token}"}
            async with aiohttp.ClientSession(headers=headers) as http:
                listing = await get_json(http, fake.url + "/support/tickets?per_page=100")
                ids = [item["id"] for item in listing["data"]]
                tickets = [await get_json(http, f"{fake.url}/support/tickets/{i}") for i in ids]
            bodies.append(json.dumps([listing["data"], tickets]))
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]


def test_generated_tickets_are_realistic() -> None:
    state = FakeVPSBG(seed=11, tickets=40).state
    statuses = {t.status for t in state.tickets}
    assert statuses <= {"opened", "answered", "customer-reply", "resolved"}
    assert len(statuses) >= 3
    attachments = 0
    for ticket in state.tickets:
        assert 1 <= len(ticket.messages) <= 20
        assert [m.is_customer for m in ticket.messages][:2] == [True, False][: len(ticket.messages)]
        times = [m.created_at for m in ticket.messages]
        assert times == sorted(times) and ticket.updated_at == times[-1]
        attachments += sum(len(m.attachments) for m in ticket.messages)
    assert attachments > 0


def test_every_route_is_served() -> None:
    app = FakeVPSBG().make_app()
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    assert {(r.method, "/v1" + r.path) for r in ROUTES} <= served


# -- blocking use: the thread helper and the pytest fixture --------------------------------


def urlopen_json(url: str, token: str, method: str = "GET") -> tuple[int, Any]:
    request = urllib.request.Request(
        url, method=method, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_thread_helper_serves_blocking_clients_and_takes_config_from_this_thread() -> None:
    with FakeVPSBGThread(FakeVPSBG(seed=2, tickets=3)) as fake:
        status, body = urlopen_json(fake.url + "/support/tickets", fake.token)
        assert status == 200 and body["meta"]["total"] == 3
        fake.faults.add("tickets.list", "status", status=502, times=1)
        assert urlopen_json(fake.url + "/support/tickets", fake.token)[0] == 502
        assert fake.count("tickets.list") == 2
        url = fake.url
    with pytest.raises(RuntimeError):
        _ = fake.url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)


async def test_thread_helper_works_inside_an_async_test() -> None:
    with FakeVPSBG(tickets=2).run_in_thread() as fake:
        headers = {"Authorization": f"Bearer {fake.token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            body = await get_json(http, fake.url + "/support/tickets")
    assert body["meta"]["total"] == 2


def test_vpsbg_fake_fixture_in_a_sync_test(vpsbg_fake: FakeVPSBGThread) -> None:
    ticket = vpsbg_fake.state.tickets[0]
    status, body = urlopen_json(f"{vpsbg_fake.url}/support/tickets/{ticket.id}", vpsbg_fake.token)
    assert status == 200 and body["subject"] == ticket.subject
    status, _ = urlopen_json(
        f"{vpsbg_fake.url}/support/tickets/{ticket.id}/resolve", vpsbg_fake.token, "PUT"
    )
    assert status == 200 and vpsbg_fake.state.ticket(ticket.id).status == "resolved"


@pytest.mark.vpsbg_fake(seed=9, tickets=4, list_style="array")
def test_vpsbg_fake_marker_configures_the_fixture(vpsbg_fake: FakeVPSBGThread) -> None:
    status, body = urlopen_json(vpsbg_fake.url + "/support/tickets", vpsbg_fake.token)
    assert status == 200 and len(body) == 4


def test_vpsbg_fake_factory_starts_several_fakes(vpsbg_fake_factory: Any) -> None:
    one = vpsbg_fake_factory(seed=1, tickets=1)
    two = vpsbg_fake_factory(seed=1, tickets=2, token="other-token")
    assert one.url != two.url
    assert urlopen_json(two.url + "/support/tickets", "other-token")[1]["meta"]["total"] == 2
    assert urlopen_json(one.url + "/support/tickets", "other-token")[0] == 401


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child needs a console group")
def test_command_line_serves_until_ctrl_c() -> None:
    command = interruptible("vpsbg_support.testing", "--port", "0", "--tickets", "2")
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().split(" at ")[1].strip()
            token = process.stdout.readline().split(":")[1].strip()
            status, body = urlopen_json(url + "/support/tickets", token)
            assert status == 200 and body["meta"]["total"] == 2
        finally:
            process.send_signal(signal.SIGINT)
            stop(process, timeout=10)
        assert process.returncode == 0


def test_a_positional_marker_argument_is_refused_not_ignored() -> None:
    with pytest.raises(TypeError, match=r"keyword arguments only.*\(20,\)"):
        marker_options(pytest.mark.vpsbg_fake(20).mark)
    assert marker_options(pytest.mark.vpsbg_fake(tickets=3).mark) == {"seed": 0, "tickets": 3}
    assert marker_options(None) == {"seed": 0, "tickets": 10}


# -- what differs between the fake and the real API, on demand ------------------------------

FIXED = datetime(2025, 3, 1, 12, 0, 0, 654321, tzinfo=timezone.utc)


async def create_and_reply(fake: FakeVPSBG) -> tuple[JSON, JSON]:
    """Open a ticket then reply to it over HTTP (in the same instant when the clock is fixed)."""
    headers = {"Authorization": f"Bearer {fake.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(fake.url + "/support/tickets", data=ticket_form()) as response:
            created: JSON = await response.json()
        form = aiohttp.FormData({"message": "Any news on this?"})
        url = f"{fake.url}/support/tickets/{created['id']}/messages"
        async with http.post(url, data=form) as response:
            replied: JSON = await response.json()
    return created, replied


async def test_timestamps_have_whole_seconds_like_the_real_api() -> None:
    async with FakeVPSBG(clock=lambda: FIXED) as fake:
        created, replied = await create_and_reply(fake)
        ticket = fake.state.ticket(created["id"])
        # A time a test sets by hand is rendered the same way.
        ticket.messages[0].created_at = FIXED
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {fake.token}"}) as http:
            again = await get_json(http, f"{fake.url}/support/tickets/{ticket.id}")
    second = "2025-03-01T12:00:00.000000Z"
    assert created["created_at"] == created["updated_at"] == second
    # Two changes in one second share an updated_at, as in production.
    assert replied["updated_at"] == created["updated_at"]
    assert [m["created_at"] for m in replied["messages"]] == [second, second]
    assert again["messages"][0]["created_at"] == second
    assert ticket.updated_at == FIXED.replace(microsecond=0)  # the state matches the wire


async def test_microsecond_precision_keeps_changes_in_one_second_apart() -> None:
    async with FakeVPSBG(clock=lambda: FIXED, timestamp_precision="microseconds") as fake:
        created, replied = await create_and_reply(fake)
    assert created["created_at"].startswith("2025-03-01T12:00:00.6543")
    assert replied["updated_at"] > created["updated_at"]  # lexical order is time order here


def test_unknown_styles_are_refused() -> None:
    with pytest.raises(ValueError, match="wire_style"):
        FakeVPSBG(wire_style="drifted")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timestamp_precision"):
        FakeVPSBG(timestamp_precision="millis")  # type: ignore[arg-type]


async def test_documented_wire_style_serves_the_drift_of_the_docs_examples() -> None:
    async with FakeVPSBG(seed=1, tickets=3, wire_style="documented") as fake:
        ticket = fake.state.tickets[0]
        fake.state.add_attachment(ticket.id, name="df.txt", content=b"100%")
        headers = {"Authorization": f"Bearer {fake.token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            body = await get_json(http, f"{fake.url}/support/tickets/{ticket.id}")
            listed = (await get_json(http, fake.url + "/support/tickets"))["data"]
        created, replied = await create_and_reply(fake)
    assert body["user"] == "john doe" and "service" in body and "service_label" not in body
    assert {"service_id", "service_type"} <= set(body)
    for message in body["messages"]:
        assert set(message) == {"message", "from_customer", "attachments"}
    assert body["messages"][-1]["attachments"][-1] == {
        "id": fake.state.tickets[1].messages[-1].attachments[-1].id,
        "name": "df.txt",
        "size": 4,
        "mime_type": "text/plain",
    }
    assert all("service" in item and "messages" not in item for item in listed)
    assert {"service_id", "service_type"} <= set(created)
    assert not {"service_id", "service_type", "service_label"} & set(replied)


def as_documented(ticket: Ticket, *, reply: bool = False) -> Ticket:
    """A schema-style model with what the documented style drops or adds."""
    messages = tuple(attrs.evolve(m, id=None, created_at=None) for m in ticket.messages)
    changed = attrs.evolve(ticket, user="john doe", messages=messages)
    return attrs.evolve(changed, service_type=None, service_id=None) if reply else changed


async def read_through_the_client(fake: FakeVPSBG) -> list[Ticket]:
    """List, get, create and reply with the library's AsyncClient."""
    async with AsyncClient(fake.token, base_url=fake.url) as client:
        listed = [t async for t in client.tickets.iter_all()]
        full = [await client.tickets.get(t.id) for t in listed]
        created = await client.tickets.create(
            department_id=2,
            subject="Disk full",
            message="Please help me.",
            service_id=2747,
            service_type="server",
            attachments=[("df.txt", b"/dev/sda1 100%\n")],
        )
        replied = await client.tickets.reply(created.id, message="Any news on this?")
    return [*listed, *full, created, replied]


async def test_the_client_reads_both_wire_styles_into_the_same_models() -> None:
    async with (
        FakeVPSBG(seed=5, tickets=6, clock=lambda: FIXED) as schema,
        FakeVPSBG(seed=5, tickets=6, clock=lambda: FIXED, wire_style="documented") as documented,
    ):
        plain = await read_through_the_client(schema)
        drifted = await read_through_the_client(documented)
    replied = plain[-1]
    assert replied.messages[0].id is not None and replied.service_id == 2747
    assert all(t.extra == {} and all(m.extra == {} for m in t.messages) for t in plain)
    assert drifted == [as_documented(t) for t in plain[:-1]] + [as_documented(replied, reply=True)]
    assert drifted[-1].service_label == "ubuntu-16gb - 87.120.8.29"
    assert drifted[-1].attachments[0].mime_type == "text/plain"


# -- faults a proxy in front of the API would cause ------------------------------------------


async def test_a_status_fault_can_send_a_proxy_error_page(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    page = "<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
    fake.faults.add("tickets.get", "status", status=502, body=page, content_type="text/html")
    fake.faults.add("plans.list", "status", status=503, body=b"\xff\x00", retry_after=5)
    async with http.get(f"{fake.url}/support/tickets/{fake.state.tickets[0].id}") as response:
        assert response.status == 502 and response.headers["Content-Type"] == "text/html"
        assert await response.text() == page
    async with http.get(fake.url + "/support/plans") as response:
        assert response.status == 503 and response.headers["Retry-After"] == "5"
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert await response.read() == b"\xff\x00"
    async with AsyncClient(fake.token, base_url=fake.url, max_retries=0) as client:
        with pytest.raises(errors.APIStatusError) as info:
            await client.tickets.get(fake.state.tickets[0].id)
    assert info.value.status == 502


def test_a_body_is_only_for_status_faults() -> None:
    faults = FakeVPSBG().faults
    with pytest.raises(ValueError, match="status"):
        faults.add(None, "reset", body="<html></html>")
    with pytest.raises(ValueError, match="needs a body"):
        faults.add(None, "status", content_type="text/html")
    assert faults.faults == []


# -- route names ------------------------------------------------------------------------------


def test_route_names_are_public_and_a_typo_is_an_error() -> None:
    assert ROUTE_NAMES == tuple(route.name for route in ROUTES) == get_args(RouteName)
    with FakeVPSBGThread() as fake:
        with pytest.raises(ValueError, match=r"plan\.renew.*plans\.renew"):
            fake.count("plan.renew")
        with pytest.raises(ValueError, match="valid names"):
            fake.faults.add("plans.renw", "status")
        assert fake.count("plans.renew") == 0 and fake.count(None) == 0


# -- what the request log keeps of a body ----------------------------------------------------


async def test_requests_record_form_fields_json_and_file_metadata(
    fake: FakeVPSBG, http: aiohttp.ClientSession
) -> None:
    form = ticket_form(service_id="2747", service_type="server")
    form.add_field(
        "attachments[]", b"/dev/sda1 100%\n", filename="df.txt", content_type="text/plain"
    )
    async with http.post(fake.url + "/support/tickets", data=form) as response:
        assert response.status == 200
    async with http.post(fake.url + "/support/cancel", json={"reason": "too expensive"}):
        pass
    fake.faults.add("plans.renew", "status", status=503, times=1)
    async with http.post(fake.url + "/support/renew", json={"billing_cycle": 1}):
        pass
    await get_json(http, fake.url + "/support/plans")

    create, cancel, refused, listing = fake.requests
    assert create.fields == {
        "department_id": "2",
        "subject": "Disk is full",
        "message": "Please help me.",
        "service_id": "2747",
        "service_type": "server",
    }
    assert create.json is None
    [sent] = create.files
    assert (sent.name, sent.size, sent.mime_type, sent.content) == (
        "df.txt",
        15,
        "text/plain",
        None,
    )
    assert sent.sha256 == hashlib.sha256(b"/dev/sda1 100%\n").hexdigest()
    assert cancel.json == {"reason": "too expensive"} and cancel.fields == {}
    assert fake.state.cancellations[0].reason == "too expensive"
    # Refused before the handler read it: nothing of the body is claimed.
    assert (refused.status, refused.json, refused.fields) == (503, None, {})
    assert (listing.json, listing.fields, listing.files) == (None, {}, ())
    assert fake.token not in repr(fake.requests)
