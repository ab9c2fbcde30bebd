"""Every AsyncClient method over real loopback HTTP against FakeVPSBG, checking server state."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from vpsbg_support import (
    AsyncClient,
    AuthenticationError,
    DownloadError,
    NotFoundError,
    PermissionDeniedError,
    Ticket,
    UnprocessableEntityError,
)
from vpsbg_support.testing import FakeVPSBG


@pytest.fixture
async def fake() -> AsyncIterator[FakeVPSBG]:
    async with FakeVPSBG(seed=7, tickets=30, per_page_default=10) as server:
        yield server


@pytest.fixture
async def client(fake: FakeVPSBG) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(fake.token, base_url=fake.url, max_retries=0) as c:
        yield c


async def test_list_and_iter_all_cover_every_ticket_once(
    fake: FakeVPSBG, client: AsyncClient
) -> None:
    first = await client.tickets.list(page=1, per_page=7)
    assert len(first.items) == 7 and first.has_next and first.total == 30
    ids = [t.id async for t in client.tickets.iter_all(per_page=7)]
    assert sorted(ids) == sorted(t.id for t in fake.state.tickets)
    assert len(ids) == len(set(ids)) == 30
    assert fake.count("tickets.list") == 1 + 5  # 30 tickets at 7 per page: 5 pages


async def test_iter_all_with_bare_array_lists(client: AsyncClient) -> None:
    async with FakeVPSBG(seed=1, tickets=12, list_style="array") as fake:
        async with AsyncClient(fake.token, base_url=fake.url) as c:
            ids = [t.id async for t in c.tickets.iter_all()]
        assert sorted(ids) == sorted(t.id for t in fake.state.tickets)


async def test_get_matches_server_state(fake: FakeVPSBG, client: AsyncClient) -> None:
    record = fake.state.tickets[3]
    ticket = await client.tickets.get(record.id)
    assert ticket.id == record.id and ticket.subject == record.subject
    assert ticket.status == record.status
    assert ticket.department == record.department.slug
    assert [m.content for m in ticket.messages] == [m.content for m in record.messages]
    assert [m.is_customer for m in ticket.messages] == [m.is_customer for m in record.messages]
    served = [a.id for m in ticket.messages for a in m.attachments]
    assert served == [a.id for m in record.messages for a in m.attachments]
    assert ticket.updated_at == record.updated_at


async def test_departments_services_plans(fake: FakeVPSBG, client: AsyncClient) -> None:
    departments = await client.tickets.departments()
    assert {d.id for d in departments} >= {2}
    services = await client.tickets.services()
    assert services and all(s.type for s in services)
    plans = await client.plans.list()
    keys = {p.key for p in plans}
    assert fake.state.active_plan in keys
    assert all(isinstance(p.price, Decimal) for p in plans)


async def test_create_with_attachments_then_reply_download_resolve(
    fake: FakeVPSBG, client: AsyncClient, tmp_path: Path
) -> None:
    log = tmp_path / "df.txt"
    log.write_bytes(b"Filesystem  Use%\n/dev/sda1   100%\n" * 1000)
    png = bytes(range(256)) * 64
    service = fake.state.services[0] if hasattr(fake.state, "services") else None
    ticket = await client.tickets.create(
        department_id=2,
        subject="Disk full",
        message="Please resize /var.",
        attachments=[log, ("screen.png", png)],
        service_id=service.id if service else None,
        service_type=service.type if service else None,
    )
    assert isinstance(ticket, Ticket) and ticket.subject == "Disk full"
    record = fake.state.ticket(ticket.id)
    stored = record.messages[0].attachments
    assert [(a.name, a.mime_type, a.size) for a in stored] == [
        ("df.txt", "text/plain", log.stat().st_size),
        ("screen.png", "image/png", len(png)),
    ]
    assert stored[0].content == log.read_bytes() and stored[1].content == png
    assert fake.count("tickets.create") == 1

    replied = await client.tickets.reply(ticket.id, message="Any news on this?")
    assert len(replied.messages) == 2 and replied.messages[-1].content == "Any news on this?"
    assert len(fake.state.ticket(ticket.id).messages) == 2

    attachment = replied.messages[0].attachments[1]
    path = await client.tickets.download_attachment(ticket.id, attachment, f"{tmp_path}/dl/")
    assert path == tmp_path / "dl" / "screen.png"
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(png).digest()

    resolved = await client.tickets.resolve(ticket.id)
    assert resolved is not None and resolved.status == "resolved"
    assert fake.state.ticket(ticket.id).status == "resolved"


async def test_stream_attachment(fake: FakeVPSBG, client: AsyncClient) -> None:
    ticket = fake.state.tickets[0]
    attachment = fake.state.add_attachment(ticket.id, name="big.log", size=3 * 1024 * 1024 + 5)
    digest = hashlib.sha256()
    async with client.tickets.stream_attachment(ticket.id, attachment.id) as stream:
        assert (stream.name, stream.size) == ("big.log", attachment.size)
        assert stream.content_type is not None and stream.content_type.startswith("text/plain")
        async for chunk in stream.iter_chunks(100_000):
            assert len(chunk) <= 100_000
            digest.update(chunk)
    assert digest.hexdigest() == fake.state.attachment_sha256(attachment.id)


async def test_resolve_204_with_refresh() -> None:
    async with FakeVPSBG(seed=2, tickets=3, resolve_returns_204=True) as fake:
        async with AsyncClient(fake.token, base_url=fake.url) as c:
            tid = fake.state.tickets[0].id
            assert await c.tickets.resolve(tid) is None
            again = await c.tickets.resolve(tid, refresh=True)
        assert again is not None and again.status == "resolved"


async def test_plan_money_actions_make_exactly_one_order_each(
    fake: FakeVPSBG, client: AsyncClient
) -> None:
    before = len(fake.state.orders)
    bought = await client.plans.purchase(plan="professional", billing_cycle=3)
    assert bought.status and bought.id == fake.state.orders[-1].id
    assert bought.amount == Decimal(str(fake.state.orders[-1].amount))
    assert fake.state.active_plan == "professional"

    renewed = await client.plans.renew(billing_cycle=6)
    assert renewed.type == "renew-service"

    cancelled = await client.plans.cancel(reason="Moving providers")
    assert cancelled is None  # 204, as the routes table says
    assert fake.state.plan_status_of("professional") == "cancel_requested"
    statuses = {p.key: p.status for p in await client.plans.list()}
    assert statuses["professional"] == "cancel_requested"

    undone = await client.plans.undo_cancel()
    assert undone is None
    assert fake.state.plan_status_of("professional") == "active"
    assert len(fake.state.orders) == before + 2
    assert [c.reason for c in fake.state.cancellations] == ["Moving providers"]
    for route in ("plans.purchase", "plans.renew", "plans.cancel", "plans.undo_cancel"):
        assert fake.count(route) == 1


async def test_cancel_204_gives_none() -> None:
    async with (
        FakeVPSBG(seed=2, cancel_returns_204=True) as fake,
        AsyncClient(fake.token, base_url=fake.url) as c,
    ):
        assert await c.plans.cancel(now=True) is None
        assert fake.state.active_plan is None


async def test_server_side_validation_and_errors(fake: FakeVPSBG, client: AsyncClient) -> None:
    with pytest.raises(UnprocessableEntityError) as info:
        await client.tickets.create(department_id=999, subject="Disk", message="Hello there")
    assert "department_id" in info.value.errors
    with pytest.raises(NotFoundError):
        await client.tickets.get(987654)
    with pytest.raises(UnprocessableEntityError):
        await client.plans.undo_cancel()  # nothing pending
    assert len(fake.state.tickets) == 30  # nothing was created by the rejected call


async def test_bad_and_read_only_tokens(fake: FakeVPSBG) -> None:
    async with AsyncClient("wrong", base_url=fake.url) as c:
        with pytest.raises(AuthenticationError):
            await c.tickets.list()
    async with AsyncClient(fake.read_only_token, base_url=fake.url) as c:
        assert (await c.tickets.list()).items
        with pytest.raises(PermissionDeniedError):
            await c.plans.renew(billing_cycle=1)
    assert not [o for o in fake.state.orders if o.type == "renew-service"]


async def test_large_download_is_byte_identical(
    fake: FakeVPSBG, client: AsyncClient, tmp_path: Path
) -> None:
    # Many chunks and a real fsync: the file is complete, exact, and alone in its folder.
    ticket = fake.state.tickets[0]
    attachment = fake.state.add_attachment(ticket.id, name="dump.bin", size=20 * 1024 * 1024 + 3)
    path = await client.tickets.download_attachment(ticket.id, attachment.id, tmp_path / "d.bin")
    assert path is not None and path.stat().st_size == attachment.size
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    assert digest.hexdigest() == fake.state.attachment_sha256(attachment.id)
    assert [p.name for p in tmp_path.iterdir()] == ["d.bin"]  # no .part left behind


@pytest.fixture
def cut_once(fake: FakeVPSBG) -> tuple[int, int]:
    """(ticket id, attachment id) of a 300 kB attachment whose first download is cut short."""
    ticket = fake.state.tickets[0]
    attachment = fake.state.add_attachment(ticket.id, name="log.txt", size=300_000)
    fake.faults.add("tickets.download_attachment", "truncate", times=1)
    return ticket.id, attachment.id


async def test_a_download_cut_once_is_fetched_again_for_a_path(
    fake: FakeVPSBG, cut_once: tuple[int, int], tmp_path: Path
) -> None:
    async with AsyncClient(fake.token, base_url=fake.url, max_retries=2) as c:
        path = await c.tickets.download_attachment(*cut_once, tmp_path)
    assert path is not None
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fake.state.attachment_sha256(
        cut_once[1]
    )
    assert fake.count("tickets.download_attachment") == 2
    assert [p.name for p in tmp_path.iterdir()] == ["log.txt"]


async def test_a_cut_download_into_a_file_object_is_not_repeated(
    fake: FakeVPSBG, cut_once: tuple[int, int], tmp_path: Path
) -> None:
    async with AsyncClient(fake.token, base_url=fake.url, max_retries=2) as c:
        with (tmp_path / "out").open("wb") as out, pytest.raises(DownloadError):
            await c.tickets.download_attachment(*cut_once, out)
    # The bytes already written stay the caller's; sending them again would corrupt the file.
    assert fake.count("tickets.download_attachment") == 1
