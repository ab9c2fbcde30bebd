"""The CLI's live commands: ``tickets watch`` until Ctrl-C, ``orders list|show|wait``."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO

import pytest

from tests import test_cli
from tests._interruptible import interruptible
from tests.test_cli import Run, assert_one_line_error
from vpsbg_support import Client
from vpsbg_support.testing import FakeVPSBGThread

pytestmark = pytest.mark.vpsbg_fake(seed=4, tickets=5, rate_limit=100_000)
in_process = test_cli.in_process  # the fixture running main() here, against the test's fake


def _lines(stream: IO[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_watch_json_prints_one_line_per_event_until_ctrl_c(vpsbg_fake: FakeVPSBGThread) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPSBG_")}
    env |= {"VPSBG_BASE_URL": vpsbg_fake.url, "VPSBG_API_TOKEN": vpsbg_fake.token}
    argv = interruptible("vpsbg_support.cli", "tickets", "watch", "--json", "--interval", "0.05")
    child = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        lines = _lines(child.stdout)
        deadline = time.monotonic() + 30
        while vpsbg_fake.count("tickets.list") == 0:  # the watch took its starting point
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.01)
        state = vpsbg_fake.state
        ticket = state.create_ticket(department_id=2, subject="Mail bounces", message="Help me")
        events = [json.loads(lines.get(timeout=20))]
        state.reply(ticket.id, "Fixed the SPF record.", is_customer=False)
        events += [json.loads(lines.get(timeout=20)) for _ in range(2)]
        state.set_status(ticket.id, "resolved")
        events.append(json.loads(lines.get(timeout=20)))
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()  # fail, never hang the suite
            child.communicate()
    assert [(e["event"], e["ticket_id"]) for e in events] == [
        ("ticket_opened", ticket.id),
        ("support_replied", ticket.id),
        ("status_changed", ticket.id),
        ("status_changed", ticket.id),
    ]
    assert events[1]["message"]["content"] == "Fixed the SPF record."
    assert (events[2]["old"], events[2]["new"]) == ("opened", "answered")
    assert (events[3]["old"], events[3]["new"]) == ("answered", "resolved")
    assert all(isinstance(e["cursor"], str) and e["cursor"] for e in events)
    assert out == ""  # nothing after the four lines
    assert_one_line_error(Run(child.returncode, "", err), 130, "interrupted")


def test_watch_text_resumes_from_a_cursor(
    vpsbg_fake: FakeVPSBGThread, in_process: Callable[..., Run]
) -> None:
    with Client(vpsbg_fake.token, base_url=vpsbg_fake.url) as client:
        cursor = client.tickets.watch_cursor()
    ticket = vpsbg_fake.state.create_ticket(department_id=1, subject="Refund", message="Please")
    # A token revoked a second later ends the watch (401 is not ridden out): exit 3.
    revoke = threading.Timer(
        1.0, lambda: vpsbg_fake.faults.add("tickets.list", "status", status=401)
    )
    revoke.start()
    run = in_process("tickets", "watch", "--cursor", cursor, "--interval", "0.05")
    revoke.join()
    assert run.code == 3, run
    assert run.out == f"#{ticket.id} Refund: opened (opened)\n"


def test_orders_list_show_and_wait(
    vpsbg_fake: FakeVPSBGThread, in_process: Callable[..., Run]
) -> None:
    order = vpsbg_fake.state.renew(3)
    listed = in_process("orders", "list", "--json")
    assert listed.code == 0, listed
    assert [o["id"] for o in listed.json()] == [order.id]
    text = in_process("orders", "list")
    assert str(order.id) in text.out and "awaiting_payment" in text.out
    shown = in_process("orders", "show", str(order.id))
    assert shown.code == 0 and f"Order {order.id}" in shown.out
    vpsbg_fake.state.settle_order(order.id)
    waited = in_process("orders", "wait", str(order.id), "--json", "--interval", "0.05")
    assert waited.code == 0 and waited.json()["status"] == "paid"

    other = vpsbg_fake.state.renew(1)
    timed_out = in_process(
        "orders", "wait", str(other.id), "--wait-timeout", "0.2", "--interval", "0.05"
    )
    assert_one_line_error(timed_out, 1, "still waiting")
    vpsbg_fake.state.settle_order(other.id, status="cancelled")
    cancelled = in_process("orders", "wait", str(other.id), "--interval", "0.05")
    assert_one_line_error(cancelled, 1, "cancelled")
    missing = in_process("orders", "show", "999999")
    assert missing.code == 5
