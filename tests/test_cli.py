"""The ``vpsbg-support`` command, run for real in a subprocess against a threaded fake."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests._interruptible import interruptible
from vpsbg_support.testing import FakeVPSBGThread

pytestmark = pytest.mark.vpsbg_fake(seed=2, tickets=6, rate_limit=100_000)


@attrs.frozen
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def vpsbg(
    *args: str,
    fake: FakeVPSBGThread | None = None,
    token: str | None = None,
    stdin: str | None = None,
    cwd: Path | None = None,
    terminal_input: bytes | None = None,
) -> Run:
    """Run the command as a user would; the fake's URL and token come from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPSBG_")}
    if fake is not None:
        env["VPSBG_BASE_URL"] = fake.url
        env["VPSBG_API_TOKEN"] = token or fake.token
    argv = [sys.executable, "-m", "vpsbg_support.cli", *args]
    if terminal_input is not None:
        # stdin is a terminal: what a person types is already waiting in its buffer.
        controller, terminal = pty.openpty()
        try:
            os.write(controller, terminal_input)
            done = subprocess.run(
                argv, stdin=terminal, capture_output=True, text=True, env=env, timeout=60
            )
        finally:
            os.close(controller)
            os.close(terminal)
    else:
        done = subprocess.run(
            argv, input=stdin or "", capture_output=True, text=True, env=env, cwd=cwd, timeout=60
        )
    return Run(done.returncode, done.stdout, done.stderr)


def assert_one_line_error(run: Run, code: int, *fragments: str) -> None:
    assert run.code == code, run
    assert run.out == ""
    assert run.err.count("\n") == 1 and run.err.startswith("vpsbg-support: error: "), run.err
    assert "Traceback" not in run.err
    for fragment in fragments:
        assert fragment in run.err


# -- tickets ------------------------------------------------------------------------------------


def test_tickets_list_json_and_text(vpsbg_fake: FakeVPSBGThread) -> None:
    listed = vpsbg("tickets", "list", "--json", fake=vpsbg_fake)
    text = vpsbg("tickets", "list", fake=vpsbg_fake)

    assert listed.code == 0 and text.code == 0
    assert [t["id"] for t in listed.json()] == [t.id for t in vpsbg_fake.state.tickets]
    newest = vpsbg_fake.state.tickets[0]
    assert text.out.splitlines()[0].split() == ["ID", "STATUS", "UPDATED", "SUBJECT"]
    assert f"{newest.id}  {newest.status}" in text.out and newest.subject in text.out


def test_tickets_show(vpsbg_fake: FakeVPSBGThread) -> None:
    ticket = vpsbg_fake.state.tickets[1]

    shown = vpsbg("--json", "tickets", "show", str(ticket.id), fake=vpsbg_fake)
    text = vpsbg("tickets", "show", str(ticket.id), fake=vpsbg_fake)

    assert shown.code == 0
    assert shown.json()["id"] == ticket.id
    assert [m["content"] for m in shown.json()["messages"]] == [m.content for m in ticket.messages]
    assert text.out.startswith(f"#{ticket.id} [{ticket.status}] {ticket.subject}\n")


def test_tickets_create_reply_resolve(vpsbg_fake: FakeVPSBGThread, tmp_path: Path) -> None:
    log = tmp_path / "boot.log"
    log.write_bytes(b"kernel: panic\n" * 100)

    created = vpsbg(
        *("tickets", "create", "--json", "--department", "2", "--subject", "Server is down"),
        *("--message", "It stopped answering at noon.", "--attach", str(log)),
        fake=vpsbg_fake,
    )
    assert created.code == 0, created
    ticket_id = created.json()["id"]
    record = vpsbg_fake.state.ticket(ticket_id)
    assert record.subject == "Server is down"
    assert record.messages[0].attachments[0].name == "boot.log"
    assert record.messages[0].attachments[0].content == log.read_bytes()

    replied = vpsbg(
        "tickets",
        "reply",
        str(ticket_id),
        "--message",
        "-",
        stdin="Any news on this?\n",
        fake=vpsbg_fake,
    )
    assert replied.code == 0, replied
    assert "Replied to ticket" in replied.out
    assert record.messages[-1].content.strip() == "Any news on this?"

    resolved = vpsbg("tickets", "resolve", str(ticket_id), fake=vpsbg_fake)
    assert resolved.code == 0 and record.status == "resolved"


def test_tickets_download_all_and_one(vpsbg_fake: FakeVPSBGThread, tmp_path: Path) -> None:
    ticket = vpsbg_fake.state.tickets[0]
    first = vpsbg_fake.state.add_attachment(ticket.id, name="shot.png", content=b"\x89PNG one")
    second = vpsbg_fake.state.add_attachment(ticket.id, name="shot.png", content=b"\x89PNG two")

    every = vpsbg(
        "--json", "tickets", "download", str(ticket.id), "-o", "all", fake=vpsbg_fake, cwd=tmp_path
    )
    one = vpsbg(
        "tickets",
        "download",
        str(ticket.id),
        str(second.id),
        "-o",
        "one",
        fake=vpsbg_fake,
        cwd=tmp_path,
    )

    assert every.code == 0 and one.code == 0, (every, one)
    paths = [Path(p) for p in every.json()]
    assert len(paths) == sum(len(m.attachments) for m in ticket.messages)
    by_name = {p.name: p.read_bytes() for p in paths}
    assert by_name[f"{first.id}-shot.png"] == b"\x89PNG one"
    assert by_name[f"{second.id}-shot.png"] == b"\x89PNG two"
    for path in paths:
        attachment_id = int(path.name.split("-")[0])
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == vpsbg_fake.state.attachment_sha256(attachment_id)
    assert (tmp_path / "one" / "shot.png").read_bytes() == b"\x89PNG two"
    assert one.out.strip() == str(tmp_path / "one" / "shot.png")


# -- plans --------------------------------------------------------------------------------------


def test_plans_list(vpsbg_fake: FakeVPSBGThread) -> None:
    run = vpsbg("plans", "list", "--json", fake=vpsbg_fake)
    assert run.code == 0
    assert [p["key"] for p in run.json()] == [p.key for p in vpsbg_fake.state.plans]


def test_money_actions_need_yes_without_a_terminal(vpsbg_fake: FakeVPSBGThread) -> None:
    refused = vpsbg("plans", "renew", "--billing-cycle", "12", fake=vpsbg_fake)
    assert_one_line_error(refused, 4, "--yes")
    assert vpsbg_fake.state.orders == []
    assert vpsbg_fake.count("plans.renew") == 0

    renewed = vpsbg("plans", "renew", "--billing-cycle", "12", "--yes", "--json", fake=vpsbg_fake)
    assert renewed.code == 0, renewed
    assert renewed.json()["type"] == "renew-service"
    assert [o.billing_cycle for o in vpsbg_fake.state.orders] == [12]

    bought = vpsbg(
        "plans", "purchase", "professional", "--billing-cycle", "3", "-y", fake=vpsbg_fake
    )
    assert bought.code == 0 and bought.out.startswith("Purchased: order ")
    cancel = vpsbg("plans", "cancel", "--reason", "moving", fake=vpsbg_fake)
    assert cancel.code == 4 and len(vpsbg_fake.state.orders) == 2


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_money_actions_ask_on_a_terminal(vpsbg_fake: FakeVPSBGThread) -> None:
    declined = vpsbg(
        "plans", "renew", "--billing-cycle", "1", fake=vpsbg_fake, terminal_input=b"n\n"
    )
    assert declined.code == 4 and "nothing was sent" in declined.err
    assert "Renew the support plan for 1 month(s)" in declined.err and "[y/N]" in declined.err
    assert vpsbg_fake.count("plans.renew") == 0

    accepted = vpsbg(
        "plans", "renew", "--billing-cycle", "1", fake=vpsbg_fake, terminal_input=b"y\n"
    )
    assert accepted.code == 0, accepted
    assert [o.billing_cycle for o in vpsbg_fake.state.orders] == [1]


# -- errors and exit codes ----------------------------------------------------------------------


def test_wrong_token_is_exit_3_and_never_printed(vpsbg_fake: FakeVPSBGThread) -> None:
    secret = "wrong-SECRET-token-42"
    run = vpsbg("tickets", "list", fake=vpsbg_fake, token=secret)
    assert_one_line_error(run, 3, "401")
    assert secret not in run.err


def test_missing_token_is_exit_3() -> None:
    run = vpsbg("tickets", "list")
    assert_one_line_error(run, 3, "VPSBG_API_TOKEN")


def test_not_found_is_exit_5(vpsbg_fake: FakeVPSBGThread) -> None:
    assert_one_line_error(vpsbg("tickets", "show", "999999", fake=vpsbg_fake), 5, "404")


def test_invalid_input_is_exit_4(vpsbg_fake: FakeVPSBGThread) -> None:
    local = vpsbg("plans", "renew", "--billing-cycle", "5", "--yes", fake=vpsbg_fake)
    assert_one_line_error(local, 4, "billing_cycle")
    assert vpsbg_fake.count("plans.renew") == 0
    remote = vpsbg(
        *("tickets", "create", "--department", "99", "--subject", "Hello"),
        *("--message", "Hello there"),
        fake=vpsbg_fake,
    )
    assert_one_line_error(remote, 4, "422", "department_id")


def test_network_failure_is_exit_6() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the command runs
    run = vpsbg(
        *("--base-url", f"http://127.0.0.1:{port}/v1", "--token", "t", "--max-retries", "0"),
        *("tickets", "list"),
    )
    assert_one_line_error(run, 6, "127.0.0.1")


def test_unusable_base_url_is_a_usage_error_not_auth() -> None:
    run = vpsbg("--base-url", "http://example.com/v1", "--token", "t0ken-SECRET", "plans", "list")
    assert_one_line_error(run, 2, "plain HTTP")
    assert "t0ken-SECRET" not in run.err


def test_usage_error_is_exit_2() -> None:
    run = vpsbg("tickets", "frobnicate")
    assert run.code == 2 and "invalid choice" in run.err
    run = vpsbg("export", "out", "--since", "last tuesday")
    assert run.code == 2 and "expected a date" in run.err


# -- export -------------------------------------------------------------------------------------


def test_export_and_partial_export(vpsbg_fake: FakeVPSBGThread, tmp_path: Path) -> None:
    for ticket in vpsbg_fake.state.tickets:
        for message in ticket.messages:
            for attachment in message.attachments:
                attachment.size = min(attachment.size, 4096)
    broken = vpsbg_fake.faults.add("tickets.get", "status", status=500, times=1)

    partial = vpsbg("export", str(tmp_path), "--max-retries", "0", fake=vpsbg_fake)

    assert partial.code == 7, partial
    assert broken.fired == 1
    assert "INCOMPLETE: 1 failure(s)" in partial.out and "HTTP 500" in partial.out
    assert not (tmp_path / "manifest.json").exists()
    assert partial.err == ""  # no progress bar when stderr is not a terminal

    finished = vpsbg(
        *("export", str(tmp_path), "--json", "--concurrency", "3", "--since", "2000-01-01"),
        fake=vpsbg_fake,
    )

    assert finished.code == 0, finished
    summary = finished.json()
    assert summary["complete"] and summary["tickets_fetched"] == 1
    assert summary["tickets"] == len(vpsbg_fake.state.tickets)
    assert json.loads((tmp_path / "manifest.json").read_text())["counts"]["tickets"] == len(
        vpsbg_fake.state.tickets
    )


def test_demo_export_needs_no_token(tmp_path: Path) -> None:
    run = vpsbg("--demo", "export", "demo-export", "--no-attachments", "--json", cwd=tmp_path)
    assert run.code == 0, run
    summary = run.json()
    assert summary["complete"] and summary["tickets"] == 300 and summary["attachments"] == 0
    lines = (tmp_path / "demo-export" / "tickets.jsonl").read_text().splitlines()
    assert len(lines) == 300


def test_ctrl_c_is_exit_130_and_the_export_resumes(
    vpsbg_fake: FakeVPSBGThread, tmp_path: Path
) -> None:
    for ticket in vpsbg_fake.state.tickets:
        for message in ticket.messages:
            for attachment in message.attachments:
                attachment.size = min(attachment.size, 4096)
    slow = vpsbg_fake.faults.add(None, "latency", seconds=0.2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPSBG_")}
    env |= {"VPSBG_BASE_URL": vpsbg_fake.url, "VPSBG_API_TOKEN": vpsbg_fake.token}
    argv = interruptible("vpsbg_support.cli", "export", str(tmp_path), "--concurrency", "1")
    child = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    journal = tmp_path / ".export-journal.jsonl"
    deadline = time.monotonic() + 30
    while not (journal.exists() and b'{"ticket":' in journal.read_bytes()):
        assert time.monotonic() < deadline and child.poll() is None, "no ticket exported"
        time.sleep(0.01)
    child.send_signal(signal.SIGINT)
    try:
        out, err = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()  # fail, never hang the suite
        child.communicate()
        raise

    assert_one_line_error(Run(child.returncode, out, err), 130, "interrupted")
    assert not (tmp_path / "manifest.json").exists()
    vpsbg_fake.faults.remove(slow)
    finished = vpsbg("export", str(tmp_path), "--json", fake=vpsbg_fake)
    assert finished.code == 0, finished
    summary = finished.json()
    assert summary["complete"] and summary["tickets_unchanged"] >= 1
    assert summary["tickets"] == len(vpsbg_fake.state.tickets)
    assert summary["tickets_not_listed"] == 0
