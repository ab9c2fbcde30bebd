"""The blocking Client against the fake server: README usage, threads, nested loops, fork."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import pytest

from tests._forking import run_in_fork
from vpsbg_support import Client, SyncAttachmentStream
from vpsbg_support._loop_thread import LoopClosedError
from vpsbg_support.errors import (
    AuthenticationError,
    ConfigurationError,
    InternalServerError,
    InvalidParameterError,
    NotFoundError,
)
from vpsbg_support.models import Ticket
from vpsbg_support.testing import FakeVPSBGThread


@pytest.fixture
def client(vpsbg_fake: FakeVPSBGThread) -> Iterator[Client]:
    with Client(token=vpsbg_fake.token, base_url=vpsbg_fake.url, max_retries=0) as c:
        yield c


def test_readme_usage(vpsbg_fake: FakeVPSBGThread, tmp_path: Path) -> None:
    record = vpsbg_fake.state.tickets[2]
    attachment = vpsbg_fake.state.add_attachment(record.id, name="df.log", size=200_000)

    with Client(token=vpsbg_fake.token, base_url=vpsbg_fake.url) as client:
        ticket = client.tickets.get(record.id)
        subjects = {t.id: t.subject for t in client.tickets.iter_all(per_page=3)}
        path = client.tickets.download_attachment(record.id, attachment.id, tmp_path)

    assert isinstance(ticket, Ticket)
    assert (ticket.id, ticket.subject) == (record.id, record.subject)
    assert subjects == {t.id: t.subject for t in vpsbg_fake.state.tickets}
    assert path == tmp_path / "df.log"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == vpsbg_fake.state.attachment_sha256(attachment.id)
    assert client.closed


def test_stream_attachment_yields_a_blocking_stream(
    vpsbg_fake: FakeVPSBGThread, client: Client
) -> None:
    record = vpsbg_fake.state.tickets[0]
    attachment = vpsbg_fake.state.add_attachment(record.id, name="big.log", size=300_001)
    digest = hashlib.sha256()

    with client.tickets.stream_attachment(record.id, attachment.id) as stream:
        assert isinstance(stream, SyncAttachmentStream)
        assert (stream.name, stream.size) == ("big.log", attachment.size)
        for chunk in stream.iter_chunks(65_536):
            digest.update(chunk)

    assert digest.hexdigest() == vpsbg_fake.state.attachment_sha256(attachment.id)


def test_breaking_out_of_iter_all_stops_paging(vpsbg_fake: FakeVPSBGThread, client: Client) -> None:
    for ticket in client.tickets.iter_all(per_page=2):
        assert ticket.id
        break

    assert vpsbg_fake.count("tickets.list") == 1
    assert len(client.tickets.list(per_page=2).items) == 2  # the client is still usable


def test_export_tickets_as_a_client_method(
    vpsbg_fake: FakeVPSBGThread, client: Client, tmp_path: Path
) -> None:
    summary = client.export_tickets(tmp_path / "archive", attachments=False, concurrency=4)

    assert summary.complete
    assert summary.tickets == len(vpsbg_fake.state.tickets)
    assert summary.manifest is not None and summary.manifest.exists()


def test_sixteen_threads_share_one_client(vpsbg_fake: FakeVPSBGThread, client: Client) -> None:
    ids = [t.id for t in vpsbg_fake.state.tickets]

    def work(worker: int) -> list[int]:
        return [client.tickets.get(ids[(worker + i) % len(ids)]).id for i in range(10)]

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(work, range(16)))

    assert results == [[ids[(w + i) % len(ids)] for i in range(10)] for w in range(16)]
    assert vpsbg_fake.count("tickets.get") == 160


def test_call_from_inside_a_running_event_loop(vpsbg_fake: FakeVPSBGThread, client: Client) -> None:
    record = vpsbg_fake.state.tickets[1]

    async def notebook_cell() -> str:
        return client.tickets.get(record.id).subject

    assert asyncio.run(notebook_cell()) == record.subject


def test_errors_have_the_async_api_classes(vpsbg_fake: FakeVPSBGThread, client: Client) -> None:
    with pytest.raises(NotFoundError) as info:
        client.tickets.get(987_654)
    assert info.value.status == 404

    with pytest.raises(InvalidParameterError) as bad:
        client.tickets.get(0)
    assert bad.value.field == "ticket_id"

    with (
        Client(token="wrong-token", base_url=vpsbg_fake.url) as stranger,
        pytest.raises(AuthenticationError),
    ):
        stranger.plans.list()


def test_missing_token_fails_in_the_constructor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VPSBG_API_TOKEN", raising=False)
    before = threading.active_count()

    with pytest.raises(ConfigurationError, match="No API token"):
        Client(base_url="http://127.0.0.1:9")

    assert threading.active_count() == before  # the loop thread was not left running


def test_closed_client_refuses_calls_and_repr_hides_the_token(
    vpsbg_fake: FakeVPSBGThread,
) -> None:
    client = Client(token=vpsbg_fake.token, base_url=vpsbg_fake.url)
    assert vpsbg_fake.token not in repr(client)
    assert vpsbg_fake.url in repr(client)

    client.close()

    with pytest.raises(LoopClosedError):
        client.plans.list()
    assert vpsbg_fake.token not in repr(client)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked_child_uses_its_own_client(vpsbg_fake: FakeVPSBGThread, client: Client) -> None:
    record = vpsbg_fake.state.tickets[4]
    client.tickets.get(record.id)  # the parent's loop and session are in use

    def child() -> str:
        subject = client.tickets.get(record.id).subject
        client.close()
        return subject

    code, reported = run_in_fork(child, timeout=30.0)

    assert (code, reported) == (0, record.subject)
    assert client.tickets.get(record.id).subject == record.subject  # parent unaffected
    assert vpsbg_fake.count("tickets.get") == 3


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_error_inside_stream_attachment_block_propagates_and_closes_the_response(
    vpsbg_fake: FakeVPSBGThread, client: Client, error: type[BaseException]
) -> None:
    record = vpsbg_fake.state.tickets[0]
    attachment = vpsbg_fake.state.add_attachment(record.id, name="big.log", size=1_000_000)

    with (
        pytest.raises(error),
        client.tickets.stream_attachment(record.id, attachment.id) as stream,
    ):
        response = stream._async._body._resp  # what the user's block must not leave open
        next(iter(stream.iter_chunks(1024)))
        assert not response.closed
        raise error  # (KeyboardInterrupt: Ctrl-C landing in the user's block)

    assert response.closed
    assert client.tickets.get(record.id).id == record.id  # the loop survived


def test_a_blocking_iterator_can_move_between_threads(
    vpsbg_fake: FakeVPSBGThread, client: Client
) -> None:
    tickets = client.tickets.iter_all(per_page=2)
    first = next(tickets)

    with ThreadPoolExecutor(1) as pool:
        second = pool.submit(next, tickets).result(timeout=30)
        pool.submit(cast(Generator[Ticket, None, None], tickets).close).result(timeout=30)

    assert [first.id, second.id] == [t.id for t in vpsbg_fake.state.tickets[:2]]
    assert vpsbg_fake.count("tickets.list") == 1
    assert client.tickets.get(first.id).id == first.id


def test_with_options_changes_retries_and_shares_the_loop(vpsbg_fake: FakeVPSBGThread) -> None:
    record = vpsbg_fake.state.tickets[0]
    client = Client(token=vpsbg_fake.token, base_url=vpsbg_fake.url, max_retries=0)
    patient = client.with_options(max_retries=2, timeout=5)
    del client  # the derived client keeps the loop and pool alive on its own
    assert patient.max_retries == 2 and patient.timeout.total == 5
    vpsbg_fake.faults.add("tickets.get", "status", status=503, times=1)
    assert patient.tickets.get(record.id).id == record.id  # retried past the 503
    impatient = patient.with_options(max_retries=0)
    vpsbg_fake.faults.add("tickets.get", "status", status=503, times=1)
    with pytest.raises(InternalServerError):
        impatient.tickets.get(record.id)
    assert vpsbg_fake.count("tickets.get") == 3
    assert [t.id for t in impatient.tickets.iter_all()][:1] == [vpsbg_fake.state.tickets[0].id]
    impatient.close()  # one loop, one pool: closing either closes both
    assert patient.closed
    with pytest.raises(LoopClosedError):
        patient.tickets.get(record.id)


def test_with_options_refuses_bad_settings_at_once(client: Client) -> None:
    with pytest.raises(InvalidParameterError):
        client.with_options(timeout=float("inf"))
    with pytest.raises(ValueError):
        client.with_options(max_retries=-1)


def test_with_options_in_a_forked_child_uses_the_child_s_client(
    vpsbg_fake: FakeVPSBGThread, client: Client
) -> None:
    record = vpsbg_fake.state.tickets[1]
    quick = client.with_options(timeout=10)
    quick.tickets.get(record.id)

    def child() -> str:
        subject = quick.tickets.get(record.id).subject
        quick.close()
        return subject

    assert run_in_fork(child, timeout=30.0) == (0, record.subject)
    assert quick.tickets.get(record.id).subject == record.subject
