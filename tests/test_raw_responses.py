"""``with_raw_response`` on both clients: the response as received, and the usual result from
``parse()``; for JSON, multipart and download calls, through real loopback HTTP to the fake."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vpsbg_support import (
    AsyncClient,
    BodyNotKeptError,
    Client,
    NotFoundError,
    Order,
    RawResponse,
    ResponseDecodeError,
    Ticket,
)
from vpsbg_support.testing import FakeVPSBGThread

both_clients = pytest.mark.parametrize("blocking", [False, True], ids=["async", "blocking"])


async def on_client(fake: FakeVPSBGThread, blocking: bool, use: Callable[[Any], Any]) -> Any:
    """``use(client)`` on a fresh AsyncClient (awaited) or Client (in a worker thread)."""
    if blocking:

        def run() -> Any:
            with Client(fake.token, base_url=fake.url, max_retries=1) as client:
                return use(client)

        return await asyncio.to_thread(run)
    async with AsyncClient(fake.token, base_url=fake.url, max_retries=1) as client:
        return await use(client)


@both_clients
async def test_a_json_call_gives_status_headers_body_and_the_parsed_model(
    vpsbg_fake: FakeVPSBGThread, blocking: bool
) -> None:
    record = vpsbg_fake.state.tickets[0]
    raw = await on_client(
        vpsbg_fake, blocking, lambda c: c.tickets.with_raw_response.get(record.id)
    )
    assert isinstance(raw, RawResponse)
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("application/json")  # any case
    assert (raw.method, raw.url) == ("GET", f"{vpsbg_fake.url}/support/tickets/{record.id}")
    assert raw.retries_taken == 0 and raw.elapsed > 0
    assert raw.json()["id"] == record.id == json.loads(raw.content)["id"]
    assert f'"id":{record.id}' in raw.text().replace(" ", "")
    ticket = raw.parse()
    assert isinstance(ticket, Ticket) and ticket.subject == record.subject
    plain = await on_client(vpsbg_fake, blocking, lambda c: c.tickets.get(record.id))
    assert ticket == plain


@both_clients
async def test_retries_taken_counts_the_attempts_before_the_answer(
    vpsbg_fake: FakeVPSBGThread, blocking: bool
) -> None:
    vpsbg_fake.faults.add("tickets.list", "status", status=503, times=1)
    raw = await on_client(vpsbg_fake, blocking, lambda c: c.tickets.with_raw_response.list())
    assert raw.retries_taken == 1
    assert raw.parse().items


@both_clients
async def test_a_multipart_call_gives_the_raw_answer_to_the_upload(
    vpsbg_fake: FakeVPSBGThread, blocking: bool
) -> None:
    def create(client: Any) -> Any:
        return client.tickets.with_raw_response.create(
            department_id=vpsbg_fake.state.departments[0].id,
            subject="Disk full",
            message="Please have a look.",
            attachments=[("df.txt", b"/dev/sda1 100%")],
        )

    raw = await on_client(vpsbg_fake, blocking, create)
    assert raw.method == "POST" and 200 <= raw.status_code < 300
    ticket = raw.parse()
    assert isinstance(ticket, Ticket) and ticket.subject == "Disk full"
    assert raw.json()["id"] == ticket.id
    uploaded = vpsbg_fake.requests[-1].files
    assert [f.name for f in uploaded] == ["df.txt"]


@both_clients
async def test_a_download_gives_headers_and_the_path_but_keeps_no_body(
    vpsbg_fake: FakeVPSBGThread, blocking: bool, tmp_path: Path
) -> None:
    record = vpsbg_fake.state.tickets[1]
    attachment = vpsbg_fake.state.add_attachment(record.id, name="df.log", size=150_000)

    def download(client: Any) -> Any:
        return client.tickets.with_raw_response.download_attachment(
            record.id, attachment.id, tmp_path
        )

    raw = await on_client(vpsbg_fake, blocking, download)
    assert raw.status_code == 200 and raw.method == "GET"
    assert int(raw.headers["Content-Length"]) == 150_000
    path = raw.parse()
    assert path == tmp_path / "df.log"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == vpsbg_fake.state.attachment_sha256(
        attachment.id
    )
    for read in (lambda: raw.content, raw.text, raw.json):
        with pytest.raises(BodyNotKeptError, match="streamed to its destination"):
            read()


@both_clients
async def test_every_plans_call_has_a_raw_twin(vpsbg_fake: FakeVPSBGThread, blocking: bool) -> None:
    raw = await on_client(
        vpsbg_fake, blocking, lambda c: c.plans.with_raw_response.renew(billing_cycle=1)
    )
    assert raw.method == "POST" and isinstance(raw.parse(), Order)
    plans = await on_client(vpsbg_fake, blocking, lambda c: c.plans.with_raw_response.list())
    assert plans.parse() and plans.json() is not None


@both_clients
async def test_a_body_that_is_not_the_documented_shape_is_still_shown(
    vpsbg_fake: FakeVPSBGThread, blocking: bool
) -> None:
    vpsbg_fake.faults.add(
        "tickets.get", "status", status=200, body="<html>maintenance</html>",
        content_type="text/html", times=1,
    )  # fmt: skip
    record = vpsbg_fake.state.tickets[0]
    raw = await on_client(
        vpsbg_fake, blocking, lambda c: c.tickets.with_raw_response.get(record.id)
    )
    assert raw.status_code == 200 and "maintenance" in raw.text()
    with pytest.raises(ResponseDecodeError):
        raw.parse()


@both_clients
async def test_an_error_status_raises_as_the_plain_call_does(
    vpsbg_fake: FakeVPSBGThread, blocking: bool
) -> None:
    with pytest.raises(NotFoundError):
        await on_client(vpsbg_fake, blocking, lambda c: c.tickets.with_raw_response.get(999_999))


async def test_concurrent_raw_calls_each_get_their_own_response(
    vpsbg_fake: FakeVPSBGThread,
) -> None:
    ids = [t.id for t in vpsbg_fake.state.tickets[:6]]
    async with AsyncClient(vpsbg_fake.token, base_url=vpsbg_fake.url) as client:
        raws = await asyncio.gather(*(client.tickets.with_raw_response.get(i) for i in ids))
    assert [raw.json()["id"] for raw in raws] == ids == [raw.parse().id for raw in raws]


async def test_undo_cancel_whose_answer_was_lost_shows_the_422_it_settled_on(
    vpsbg_fake: FakeVPSBGThread,
) -> None:
    # As in test_resilience: the withdrawal's answer is lost twice, the retry is told 422, and
    # the plain call returns None. Its raw twin shows that 422 rather than inventing a 2xx.
    vpsbg_fake.faults.add("plans.undo_cancel", "reset", when="after_handler", times=2)
    async with AsyncClient(vpsbg_fake.token, base_url=vpsbg_fake.url) as client:
        await client.plans.cancel()
        raw = await client.plans.with_raw_response.undo_cancel()
    assert raw.status_code == 422 and raw.method == "DELETE"
    assert raw.parse() is None and raw.json() is not None


@both_clients
async def test_orders_have_raw_twins_too(vpsbg_fake: FakeVPSBGThread, blocking: bool) -> None:
    if blocking:

        def use(client: Any) -> Any:
            order = client.plans.renew(billing_cycle=1)
            return order, client.orders.with_raw_response.get(order.id)

    else:

        def use(client: Any) -> Any:
            async def run() -> Any:
                order = await client.plans.renew(billing_cycle=1)
                return order, await client.orders.with_raw_response.get(order.id)

            return run()

    order, raw = await on_client(vpsbg_fake, blocking, use)
    assert raw.status_code == 200 and raw.url.endswith(f"/{order.id}")
    assert isinstance(raw.parse(), Order) and raw.parse().id == order.id
