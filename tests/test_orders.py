"""client.orders: list, get, and wait until paid, against the fake and the documented bodies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from aioresponses import aioresponses

from tests.conftest import BASE, example
from vpsbg_support import (
    AsyncClient,
    Client,
    InvalidParameterError,
    NotFoundError,
    Order,
    OrderCancelledError,
    VPSBGError,
    WaitTimeoutError,
)
from vpsbg_support.testing import FakeVPSBG


@pytest.fixture
async def fake() -> AsyncIterator[FakeVPSBG]:
    async with FakeVPSBG(seed=1) as server:
        yield server


@pytest.fixture
async def client(fake: FakeVPSBG) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(fake.token, base_url=fake.url) as c:
        yield c


async def test_documented_list_fragment_and_order_parse() -> None:
    async with AsyncClient("tok-3f9a-SECRET-7c1e", base_url=BASE, max_retries=0) as c:
        with aioresponses() as mocked:
            mocked.get(
                f"{BASE}/orders?filter%5Bstatus%5D=paid%2Cawaiting_payment&page=2",
                payload=example("orders_list_fragment.json"),
            )
            mocked.get(f"{BASE}/orders/7801", payload=example("order_renew_server_example.json"))
            page = await c.orders.list(page=2, status=["paid", "awaiting_payment"])
            order = await c.orders.get("7801")
    [listed] = page.items
    assert (listed.id, listed.status, listed.amount_from_balance) == (7413, "paid", Decimal(27))
    assert listed.invoices == () and listed.payment_method is None
    assert order.status == "awaiting_payment" and len(order.services) == 2


async def test_orders_the_plan_calls_create_are_listed_and_read(
    client: AsyncClient, fake: FakeVPSBG
) -> None:
    bought = await client.plans.purchase(plan="professional", billing_cycle=3)
    renewed = await client.plans.renew(billing_cycle=6)
    page = await client.orders.list()
    assert [o.id for o in page.items] == [renewed.id, bought.id]  # newest first
    assert page.total == 2 and all(o.services == () for o in page.items)
    got = await client.orders.get(renewed.id)
    assert got == renewed
    fake.state.settle_order(bought.id)
    paid = await client.orders.list(status="paid")
    assert [o.id for o in paid.items] == [bought.id]
    assert paid.items[0].payment_date is not None
    with pytest.raises(NotFoundError):
        await client.orders.get(999_999)
    with pytest.raises(InvalidParameterError):
        await client.orders.list(status="paid,cancelled")


async def test_wait_returns_the_order_once_paid() -> None:
    async with (
        FakeVPSBG(settle_orders_after=0.3) as fake,
        AsyncClient(fake.token, base_url=fake.url) as client,
    ):
        order = await client.plans.renew(billing_cycle=3)
        assert order.status == "awaiting_payment"
        started = time.monotonic()
        paid = await client.orders.wait(order.id, until={"paid"}, timeout=5, interval=0.05)
        assert paid.status == "paid" and paid.id == order.id
        assert 0.25 < time.monotonic() - started < 3
        assert fake.count("orders.get") >= 2


async def test_wait_raises_when_the_order_is_cancelled(
    client: AsyncClient, fake: FakeVPSBG
) -> None:
    order = await client.plans.renew(billing_cycle=1)

    async def cancel_soon() -> None:
        await asyncio.sleep(0.2)
        fake.state.settle_order(order.id, status="cancelled")

    cancelling = asyncio.create_task(cancel_soon())
    with pytest.raises(OrderCancelledError) as info:
        await client.orders.wait(order.id, timeout=5, interval=0.05)
    await cancelling
    assert isinstance(info.value, VPSBGError) and info.value.order.status == "cancelled"
    # Waiting for "cancelled" itself is allowed.
    assert (await client.orders.wait(order.id, until="cancelled")).status == "cancelled"


async def test_wait_times_out_with_the_last_order_seen(
    client: AsyncClient, fake: FakeVPSBG
) -> None:
    order = await client.plans.renew(billing_cycle=1)
    fake.clear_requests()
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError) as info:
        await client.orders.wait(order.id, timeout=0.5, interval=0.05, max_interval=0.2)
    elapsed = time.monotonic() - started
    assert 0.45 < elapsed < 1.5
    assert isinstance(info.value.last, Order) and info.value.last.status == "awaiting_payment"
    # Backoff: 0.05, 0.075, 0.11, 0.17, 0.2... not the ten polls a steady 0.05 s would make.
    assert 3 <= fake.count("orders.get") <= 8


async def test_wait_rides_out_a_server_error(client: AsyncClient, fake: FakeVPSBG) -> None:
    order = await client.plans.renew(billing_cycle=1)
    fake.faults.add("orders.get", "status", status=503, times=4)  # > the client's own retries
    fake.state.settle_order(order.id)
    fast = client.with_options(max_retries=0)
    paid = await fast.orders.wait(order.id, timeout=5, interval=0.05)
    assert paid.status == "paid" and fake.count("orders.get", status=503) == 4


async def test_wait_checks_its_arguments_before_sending(
    client: AsyncClient, fake: FakeVPSBG
) -> None:
    for kwargs in ({"until": ()}, {"timeout": 0}, {"interval": -1}, {"until": [""]}):
        with pytest.raises(InvalidParameterError):
            await client.orders.wait(1, **kwargs)  # type: ignore[arg-type]
    assert fake.requests == []


def test_blocking_orders() -> None:
    with (
        FakeVPSBG(settle_orders_after=0.1).run_in_thread() as fake,
        Client(fake.token, base_url=fake.url) as client,
    ):
        order = client.plans.purchase(plan="basic", billing_cycle=1)
        assert client.orders.wait(order.id, timeout=5, interval=0.05).status == "paid"
        assert [o.id for o in client.orders.list()] == [order.id]
