"""The ``vpsbg-support`` command, run for real in a subprocess against a threaded fake (or, where
the process boundary does not matter, through ``main()`` in this process, which is faster)."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from aioresponses import aioresponses

from tests._interruptible import interruptible
from vpsbg_support import cli
from vpsbg_support.cli import main
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
    stdout: int | None = None,
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
    elif stdout is not None:
        # stdout is a file descriptor of the caller's (e.g. a pipe nobody reads).
        done = subprocess.run(
            argv, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env, timeout=60
        )
    else:
        done = subprocess.run(
            argv, input=stdin or "", capture_output=True, text=True, env=env, cwd=cwd, timeout=60
        )
    return Run(done.returncode, done.stdout or "", done.stderr)


@pytest.fixture
def in_process(
    vpsbg_fake: FakeVPSBGThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., Run]:
    """Run the command through ``main()`` here, pointed at the test's fake."""
    monkeypatch.setenv("VPSBG_BASE_URL", vpsbg_fake.url)
    monkeypatch.setenv("VPSBG_API_TOKEN", vpsbg_fake.token)

    def run(*args: str) -> Run:
        code = main(list(args))
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


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
    assert [t["id"] for t in listed.json()["items"]] == [t.id for t in vpsbg_fake.state.tickets]
    newest = vpsbg_fake.state.tickets[0]
    assert text.out.splitlines()[0].split() == ["ID", "STATUS", "UPDATED", "SUBJECT"]
    assert f"{newest.id}  {newest.status}" in text.out and newest.subject in text.out
    # One page holds them all: no hint about more.
    assert listed.err == "" and text.err == ""
    # The list answer carries no messages: no "messages": [] that would read as "none".
    assert all("messages" not in t for t in listed.json()["items"])


def test_tickets_list_says_when_more_pages_follow(in_process: Callable[..., Run]) -> None:
    first = in_process("tickets", "list", "--per-page", "4")
    last = in_process("--json", "tickets", "list", "--per-page", "4", "--page", "2")
    every = in_process("--json", "tickets", "list", "--per-page", "4", "--all")

    assert first.code == 0 and len(first.out.splitlines()) == 1 + 4
    assert first.err == "page 1 of 2 (use --page / --all)\n"
    assert last.code == 0 and last.err == ""
    assert last.json() | {"items": None} == {
        **{"items": None, "page": 2, "last_page": 2, "per_page": 4, "total": 6},
        "has_next": False,
    }
    assert len(last.json()["items"]) == 2
    assert every.code == 0 and every.err == ""
    assert every.json() | {"items": None} == {
        **{"items": None, "page": None, "last_page": None, "per_page": None, "total": 6},
        "has_next": False,
    }
    assert len(every.json()["items"]) == 6
    on_first = in_process("--json", "tickets", "list", "--per-page", "4").json()
    assert on_first["has_next"] and on_first["page"] == 1 and len(on_first["items"]) == 4


def test_tickets_departments_and_services(
    vpsbg_fake: FakeVPSBGThread, in_process: Callable[..., Run]
) -> None:
    departments = in_process("--json", "tickets", "departments")
    services = in_process("tickets", "services", "--json")
    text = in_process("tickets", "departments")
    services_text = in_process("tickets", "services")

    assert departments.code == 0 and services.code == 0 and text.code == 0
    assert services_text.code == 0
    server = vpsbg_fake.state.services[0]
    assert [str(server.id), server.type, server.label] in [
        re.split(r"\s{2,}", line) for line in services_text.out.splitlines()
    ]
    assert [(d["id"], d["name"]) for d in departments.json()] == [
        (d.id, d.name) for d in vpsbg_fake.state.departments
    ]
    assert [(s["id"], s["type"]) for s in services.json()] == [
        (s.id, s.type) for s in vpsbg_fake.state.services
    ]
    rows = [re.split(r"\s{2,}", line) for line in text.out.splitlines()]
    tech = next(d for d in vpsbg_fake.state.departments if d.slug == "tech-support")
    assert rows[0] == ["ID", "NAME", "SLUG"] and [str(tech.id), tech.name, tech.slug] in rows
    # The id listed is the one create takes.
    created = in_process(
        *("--json", "tickets", "create", "--department", str(tech.id), "--subject", "Hello"),
        *(
            "--message",
            "Hello there",
            "--service-id",
            str(server.id),
            "--service-type",
            server.type,
        ),
    )
    assert created.code == 0, created
    assert created.json()["department"] == "tech-support"


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
    assert not any(item["skipped"] for item in every.json())
    paths = [Path(item["path"]) for item in every.json()]
    assert [item["attachment_id"] for item in every.json()] == [
        a.id for m in ticket.messages for a in m.attachments
    ]
    assert len(paths) == sum(len(m.attachments) for m in ticket.messages)
    by_name = {p.name: p.read_bytes() for p in paths}
    assert by_name[f"{first.id}-shot.png"] == b"\x89PNG one"
    assert by_name[f"{second.id}-shot.png"] == b"\x89PNG two"
    for path in paths:
        attachment_id = int(path.name.split("-")[0])
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == vpsbg_fake.state.attachment_sha256(attachment_id)
    assert (tmp_path / "one" / f"{second.id}-shot.png").read_bytes() == b"\x89PNG two"
    assert one.out.strip() == str(tmp_path / "one" / f"{second.id}-shot.png")


def test_tickets_download_again_skips_what_is_there(
    vpsbg_fake: FakeVPSBGThread, tmp_path: Path
) -> None:
    ticket = vpsbg_fake.state.tickets[0]
    first = vpsbg_fake.state.add_attachment(ticket.id, name="a.log", content=b"first log")
    vpsbg_fake.state.add_attachment(ticket.id, name="b.log", content=b"second log")
    download = ("tickets", "download", str(ticket.id), "-o", str(tmp_path))
    assert vpsbg(*download, fake=vpsbg_fake).code == 0
    one = ("tickets", "download", str(ticket.id), str(first.id), "-o", str(tmp_path / "one"))
    assert vpsbg(*one, fake=vpsbg_fake).code == 0
    fetched = vpsbg_fake.count("tickets.download_attachment")

    again = vpsbg("--json", *download, fake=vpsbg_fake)
    one_again = vpsbg(*one, fake=vpsbg_fake)

    assert again.code == 0, again
    assert all(item["skipped"] for item in again.json())
    assert len(again.json()) == sum(len(m.attachments) for m in ticket.messages)
    assert one_again.code == 0, one_again
    skipped = tmp_path / "one" / f"{first.id}-a.log"
    assert one_again.out == f"{skipped}  (skipped: already there, same size)\n"
    assert vpsbg_fake.count("tickets.download_attachment") == fetched


def test_tickets_download_refuses_a_different_file_unless_overwrite(
    vpsbg_fake: FakeVPSBGThread, tmp_path: Path
) -> None:
    ticket = vpsbg_fake.state.tickets[0]
    note = vpsbg_fake.state.add_attachment(ticket.id, name="note.txt", content=b"from support")
    mine = tmp_path / f"{note.id}-note.txt"
    mine.write_bytes(b"my own notes, longer than the attachment")
    download = ("tickets", "download", str(ticket.id), str(note.id), "-o", str(tmp_path))

    refused = vpsbg(*download, fake=vpsbg_fake)

    assert_one_line_error(refused, 4, str(mine), "--overwrite")
    assert "overwrite=True" not in refused.err
    assert mine.read_bytes() == b"my own notes, longer than the attachment"
    assert vpsbg_fake.count("tickets.download_attachment") == 0

    replaced = vpsbg("--json", *download, "--overwrite", fake=vpsbg_fake)

    assert replaced.code == 0, replaced
    assert not any(item["skipped"] for item in replaced.json())
    assert mine.read_bytes() == b"from support"


def test_one_attachment_never_passes_for_another_of_the_same_name_and_size(
    vpsbg_fake: FakeVPSBGThread, tmp_path: Path
) -> None:
    # "log.txt" of the same size in two tickets, into one folder: a size check on the name
    # alone would have reported the second as "skipped" while the file held the first's bytes.
    first_ticket, second_ticket = vpsbg_fake.state.tickets[:2]
    first = vpsbg_fake.state.add_attachment(first_ticket.id, name="log.txt", content=b"AAAA")
    second = vpsbg_fake.state.add_attachment(second_ticket.id, name="log.txt", content=b"BBBB")
    for ticket, attachment in ((first_ticket, first), (second_ticket, second)):
        run = vpsbg(
            "--json", "tickets", "download", str(ticket.id), str(attachment.id), "-o",
            str(tmp_path), fake=vpsbg_fake,
        )  # fmt: skip
        assert run.code == 0 and not run.json()[0]["skipped"], run
    assert (tmp_path / f"{first.id}-log.txt").read_bytes() == b"AAAA"
    assert (tmp_path / f"{second.id}-log.txt").read_bytes() == b"BBBB"


def test_a_re_run_skips_even_when_the_server_names_the_file_otherwise(
    vpsbg_fake: FakeVPSBGThread, tmp_path: Path
) -> None:
    # The server's Content-Disposition name sanitises differently from the ticket's: the
    # file is where the CLI looks for it on the next run all the same.
    ticket = vpsbg_fake.state.tickets[0]
    odd = vpsbg_fake.state.add_attachment(ticket.id, name="bad\ud800.txt", content=b"odd")
    download = ("tickets", "download", str(ticket.id), str(odd.id), "-o", str(tmp_path))
    assert vpsbg(*download, fake=vpsbg_fake).code == 0
    again = vpsbg("--json", *download, fake=vpsbg_fake)
    assert again.code == 0 and again.json()[0]["skipped"], again


def test_a_file_appearing_after_the_check_is_kept_and_the_error_names_overwrite(
    vpsbg_fake: FakeVPSBGThread,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    in_process: Callable[..., Run],
) -> None:
    ticket = vpsbg_fake.state.tickets[0]
    shot = vpsbg_fake.state.add_attachment(ticket.id, name="shot.png", content=b"\x89PNG")
    mine = tmp_path / f"{shot.id}-shot.png"
    mine.write_bytes(b"mine")
    # Another process creates the file between the CLI's check and the download: the
    # library refuses it, and the refusal must speak the CLI's language.
    monkeypatch.setattr(cli.tickets, "_already_there", lambda path, attachment: None)

    run = in_process("tickets", "download", str(ticket.id), str(shot.id), "-o", str(tmp_path))

    assert run.code == 4
    assert (
        run.err == f"vpsbg-support: error: {mine} already exists; pass --overwrite to replace it\n"
    )
    assert mine.read_bytes() == b"mine"


# -- plans --------------------------------------------------------------------------------------


def test_plans_list(vpsbg_fake: FakeVPSBGThread) -> None:
    run = vpsbg("plans", "list", "--json", fake=vpsbg_fake)
    assert run.code == 0
    assert [p["key"] for p in run.json()] == [p.key for p in vpsbg_fake.state.plans]


def test_money_actions_need_yes_without_a_terminal(vpsbg_fake: FakeVPSBGThread) -> None:
    refused = vpsbg("plans", "renew", "--billing-cycle", "12", fake=vpsbg_fake)
    assert_one_line_error(refused, 2, "--yes")
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
    assert_one_line_error(cancel, 2, "--yes")
    assert len(vpsbg_fake.state.orders) == 2


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_money_actions_ask_on_a_terminal(vpsbg_fake: FakeVPSBGThread) -> None:
    declined = vpsbg(
        "plans", "renew", "--billing-cycle", "1", fake=vpsbg_fake, terminal_input=b"n\n"
    )
    assert declined.code == 1 and declined.out == ""
    assert declined.err.endswith("vpsbg-support: error: aborted, nothing was sent\n")
    # The price of the account's plan (basic: 10 a month, 20 % VAT), looked up before asking.
    assert declined.err.startswith(
        "Renew the support plan for 1 month(s). Price: 10.00 EUR (12.00 EUR with VAT): Basic,"
        " 1 x 10.00 EUR a month, before any promo. This creates an order that costs money."
        " Proceed? [y/N] "
    )
    assert vpsbg_fake.count("plans.renew") == 0 and vpsbg_fake.count("plans.list") == 1

    accepted = vpsbg(
        "plans", "renew", "--billing-cycle", "1", fake=vpsbg_fake, terminal_input=b"y\n"
    )
    assert accepted.code == 0, accepted
    assert [o.billing_cycle for o in vpsbg_fake.state.orders] == [1]
    assert " 10.00 EUR (12.00 EUR with VAT), status " in accepted.out

    bought = vpsbg(
        *("plans", "purchase", "professional", "--billing-cycle", "3"),
        fake=vpsbg_fake,
        terminal_input=b"n\n",
    )
    assert bought.code == 1
    assert "Price: 75.00 EUR (90.00 EUR with VAT): Professional, 3 x 25.00 EUR a month" in (
        bought.err
    )


def test_cancel_and_undo_with_yes(
    vpsbg_fake: FakeVPSBGThread, in_process: Callable[..., Run]
) -> None:
    assert in_process("--yes", "plans", "purchase", "basic", "--billing-cycle", "1").code == 0

    cancelled = in_process("plans", "cancel", "--reason", "moving", "--yes", "--timeout", "5")
    assert vpsbg_fake.state.plan_status == "cancel_requested"
    undone = in_process("plans", "undo-cancel")  # keeps the plan: nothing to confirm

    assert cancelled.code == 0 and cancelled.out.startswith("Cancellation requested")
    assert undone.code == 0 and undone.out.startswith("Cancellation withdrawn")
    assert vpsbg_fake.state.plan_status == "active"
    listed = in_process("plans", "list")
    assert [line.split()[0] for line in listed.out.splitlines()] == [
        "PLAN",
        *(p.key for p in vpsbg_fake.state.plans),
    ]


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_cancel_asks_without_claiming_it_costs_money(vpsbg_fake: FakeVPSBGThread) -> None:
    later = vpsbg("plans", "cancel", fake=vpsbg_fake, terminal_input=b"\n")
    now = vpsbg("plans", "cancel", "--now", fake=vpsbg_fake, terminal_input=b"no\n")

    assert later.code == 1 and now.code == 1
    assert later.err.startswith(
        "Cancel the support plan at the end of the paid period. The plan stays until the paid"
        " period ends, then ends. Proceed? [y/N] "
    )
    assert now.err.startswith("Cancel the support plan now. The plan ends at once")
    assert "money" not in later.err + now.err
    assert vpsbg_fake.count("plans.cancel") == 0


# -- errors and exit codes ----------------------------------------------------------------------


def test_wrong_token_is_exit_3_and_never_printed(vpsbg_fake: FakeVPSBGThread) -> None:
    secret = "wrong-SECRET-token-42"
    run = vpsbg("tickets", "list", fake=vpsbg_fake, token=secret)
    assert_one_line_error(run, 3, "401")
    assert secret not in run.err


def test_missing_token_is_exit_3_and_names_the_option() -> None:
    run = vpsbg("tickets", "list")
    assert_one_line_error(run, 3, "--token", "VPSBG_API_TOKEN")
    assert "AsyncClient" not in run.err


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
    # Said once: the field errors only repeat the message here.
    assert_one_line_error(remote, 4, "HTTP 422: The selected department id is invalid.")
    assert remote.err.count("department id is invalid") == 1


def test_a_422_shows_the_field_errors_the_message_leaves_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = {
        "message": "The subject has already been taken. (and 1 more error)",
        "errors": {
            "subject": ["The subject has already been taken."],
            "service_id": ["The selected service id is invalid."],
        },
    }
    with aioresponses() as api:
        api.post("https://api.test/v1/support/tickets", status=422, payload=body)
        code = main(
            [
                *("--base-url", "https://api.test/v1", "--token", "t0ken"),
                *("tickets", "create", "--department", "2", "--subject", "Hello"),
                *("--message", "Hello there"),
            ]
        )
    assert code == 4
    assert capsys.readouterr().err == (
        "vpsbg-support: error: HTTP 422: The subject has already been taken. (and 1 more error)"
        " (service_id: The selected service id is invalid.)\n"
    )


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


def test_a_mangled_token_is_an_auth_error_and_is_not_echoed() -> None:
    # Exit 3, as exit_code_for(ConfigurationError) says and the README's "a wrong one" row.
    run = vpsbg("--base-url", "https://api.test/v1", "--token", "t0ken SECRET", "plans", "list")
    assert_one_line_error(run, 3, "token")
    assert "SECRET" not in run.err


def test_an_empty_token_option_falls_back_to_the_environment(vpsbg_fake: FakeVPSBGThread) -> None:
    # `--token "$T"` with T empty in a script: the environment's token, as without --token.
    run = vpsbg("--token", "", "plans", "list", fake=vpsbg_fake)
    assert run.code == 0, run


def test_usage_error_is_exit_2() -> None:
    run = vpsbg("tickets", "frobnicate")
    assert run.code == 2 and "invalid choice" in run.err
    run = vpsbg("export", "out", "--since", "last tuesday")
    assert run.code == 2 and "expected a date" in run.err


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--max-retries", "-3", "tickets", "list"], "--max-retries: must be at least 0, got -3"),
        (["tickets", "list", "--timeout", "0"], "--timeout: must be a number of seconds above 0"),
        (["--timeout", "nan", "plans", "list"], "--timeout: must be a number of seconds above 0"),
        (["--timeout", "soon", "plans", "list"], "expected a number of seconds, got 'soon'"),
        (["--max-retries", "two", "plans", "list"], "expected a whole number, got 'two'"),
        (["export", "out", "--concurrency", "0"], "--concurrency: must be at least 1, got 0"),
        (["tickets", "list", "--per-page", "0"], "--per-page: must be at least 1, got 0"),
        (["tickets", "list", "--per-page", "1000"], "--per-page: must be at most 100, got 1000"),
        (["export", "out", "--per-page", "101"], "--per-page: must be at most 100, got 101"),
        (["--demo", "--token", "t0ken", "plans", "list"], "--demo runs against an embedded"),
        (["plans", "list", "--demo", "--base-url", "https://x/v1"], "drop --token and --base-url"),
    ],
)
def test_bad_option_values_are_usage_errors(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.startswith("usage: vpsbg-support") and complaint in err
    assert "t0ken" not in err


def test_help_documents_every_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "1 error (also: a question answered no, nothing was sent)" in text
    assert "130 interrupted" in text and "plain-text line on stderr, with --json too" in text


def test_a_path_that_cannot_be_written_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    dest = tmp_path / "a-file" / "export"
    run = vpsbg("--demo", "export", str(dest), "--no-attachments")
    assert_one_line_error(run, 7, f"{dest}: a file is in the way where a folder is expected")
    assert "NotADirectoryError" not in run.err and "Errno" not in run.err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
def test_a_closed_stdout_ends_quietly(vpsbg_fake: FakeVPSBGThread) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # like `| head -1` that has already exited
    try:
        run = vpsbg("--json", "tickets", "list", "--all", fake=vpsbg_fake, stdout=writer)
    finally:
        os.close(writer)
    assert run.code == 1
    assert run.err == ""


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
    # What a glance at the first line must tell: it is not done.
    assert partial.out.startswith("INCOMPLETE export: so far ")
    assert "1 failure(s); run the same command again" in partial.out and "HTTP 500" in partial.out
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


def tickets_archived(dest: Path) -> int:
    """Tickets committed to ``dest/archive.sqlite`` so far."""
    if not (dest / "archive.sqlite").exists():
        return 0
    try:
        with sqlite3.connect(f"{(dest / 'archive.sqlite').as_uri()}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0])
    except sqlite3.Error:
        return 0


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
    deadline = time.monotonic() + 30
    while not tickets_archived(tmp_path):
        assert time.monotonic() < deadline and child.poll() is None, "no ticket exported"
        time.sleep(0.01)
    child.send_signal(signal.SIGINT)
    try:
        out, err = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()  # fail, never hang the suite
        child.communicate()
        raise

    assert_one_line_error(
        Run(child.returncode, out, err), 130, "interrupted; run the same command again to finish"
    )
    assert not (tmp_path / "manifest.json").exists()
    vpsbg_fake.faults.remove(slow)
    finished = vpsbg("export", str(tmp_path), "--json", fake=vpsbg_fake)
    assert finished.code == 0, finished
    summary = finished.json()
    assert summary["complete"] and summary["tickets_unchanged"] >= 1
    assert summary["tickets"] == len(vpsbg_fake.state.tickets)
    assert summary["tickets_not_listed"] == 0
