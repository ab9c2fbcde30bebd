"""The fake as the other side of a live account: statuses, order settling, the demo agent, and
shutting down promptly whatever its clients are doing."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from vpsbg_support.demo import SupportAgent, demo_server
from vpsbg_support.testing import FakeVPSBG, FakeVPSBGThread


def test_a_fake_with_a_30_s_latency_fault_stops_in_under_a_second() -> None:
    server = FakeVPSBGThread(FakeVPSBG(tickets=1))
    server.start()
    server.faults.add(None, "latency", seconds=30)
    failures: list[BaseException] = []

    def call() -> None:
        request = urllib.request.Request(
            f"{server.url}/support/tickets", headers={"Authorization": f"Bearer {server.token}"}
        )
        try:
            urllib.request.urlopen(request, timeout=60)
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            failures.append(exc)

    client = threading.Thread(target=call, daemon=True)
    client.start()
    for _ in range(200):
        if server.faults.faults[0].fired:
            break
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    took = time.monotonic() - started
    client.join(5)
    assert took < 1.0, took
    assert failures  # the waiting client was cut off, not answered 30 s later


def test_a_client_cutting_an_upload_short_prints_no_traceback(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeVPSBG(tickets=1).run_in_thread() as server:
        host, port = server.url.split("//")[1].split("/")[0].split(":")
        head = (
            "POST /v1/support/tickets HTTP/1.1\r\nHost: fake\r\n"
            f"Authorization: Bearer {server.token}\r\n"
            "Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: 100000\r\n\r\n"
            '--XX\r\nContent-Disposition: form-data; name="attachments[]"; filename="a.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(head + b"x" * 5000)
            time.sleep(0.2)
        for _ in range(100):
            if server.requests:
                break
            time.sleep(0.02)
        assert [(r.route, r.status) for r in server.requests] == [("tickets.create", None)]
        assert len(server.state.tickets) == 1
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


async def test_set_status_and_settle_order_play_the_other_side() -> None:
    async with FakeVPSBG(tickets=2, settle_orders_after=0.2) as fake:
        ticket = fake.state.tickets[0]
        before = ticket.updated_at
        await asyncio.sleep(1.0)
        fake.state.set_status(ticket.id, "on-hold")
        assert ticket.status == "on-hold" and ticket.updated_at > before
        order = fake.state.renew(3)
        assert fake.state.order(order.id).status == "awaiting_payment"
        await asyncio.sleep(0.25)
        assert fake.state.order(order.id).status == "paid"
        other = fake.state.renew(1)
        fake.state.settle_order(other.id, status="cancelled")
        assert [o.status for o in fake.state.orders] == ["paid", "cancelled"]


async def test_the_demo_agent_opens_tickets_and_answers_new_messages() -> None:
    fake = demo_server(3)
    agent = SupportAgent(fake.state, reply_delay=0.2, customer_every=None)
    existing = fake.state.tickets[0]
    agent.step()
    assert len(existing.messages) == len(fake.state.ticket(existing.id).messages)  # history
    opened = fake.state.create_ticket(department_id=2, subject="Hi there", message="Anyone?")
    agent.step()
    assert len(opened.messages) == 1  # not yet: support takes reply_delay
    await asyncio.sleep(0.25)
    agent.step()
    assert [m.is_customer for m in opened.messages] == [True, False]
    assert opened.status == "answered"
    agent.step()
    assert len(opened.messages) == 2  # answered once

    customer = SupportAgent(fake.state, reply_delay=0.0, customer_every=5, first_ticket_after=0)
    count = len(fake.state.tickets)
    customer.step()
    assert len(fake.state.tickets) == count + 1


async def test_the_demo_server_runs_its_agent_while_serving() -> None:
    fake = demo_server(2)
    async with fake:
        assert fake._agent_task is not None and not fake._agent_task.done()  # type: ignore[attr-defined]
    assert fake._agent_task is None  # type: ignore[attr-defined]
    assert type(demo_server(2, live=False)) is FakeVPSBG
