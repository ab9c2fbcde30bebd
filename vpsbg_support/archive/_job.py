"""One export run: list, read and download with a pool of workers, into ``archive.sqlite``.

Re-runs: every listed ticket already in the archive is checked (read again if its
``updated_at`` changed, or if its copy is unsettled: see ``_settle``; missing or damaged
attachment files fetched again), whatever ``since`` says; ``since`` only limits which tickets
are added. A body read again byte-identical adds no version. A run that did not complete leaves
its ``since`` in ``runs``, and the next run exports at least that window too. Tickets the server
no longer lists are kept and recorded as gone.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from vpsbg_support import _constants as C
from vpsbg_support import _settle
from vpsbg_support.archive._api import get_raw_ticket
from vpsbg_support.archive._attachments import FileKeeper
from vpsbg_support.archive._folder import ArchiveFolder, FolderLock
from vpsbg_support.archive._migrate import migrate_journal
from vpsbg_support.archive._results import (
    MANIFEST_FILE,
    ExportFailure,
    ExportProgress,
    ExportSummary,
    ProgressCallback,
    attachment_path,
)
from vpsbg_support.archive._store import DB_FILE, KnownTicket, Store, WantedFile
from vpsbg_support.archive._text import messages_text
from vpsbg_support.archive._times import as_utc, parse_stamp, stamp
from vpsbg_support.archive._views import write_views
from vpsbg_support.errors import (
    AuthenticationError,
    ExportError,
    InvalidParameterError,
    OtherSourceError,
    PermissionDeniedError,
    VPSBGError,
)
from vpsbg_support.models import Ticket

if TYPE_CHECKING:
    from vpsbg_support import AsyncClient

_T = TypeVar("_T")


async def export_tickets(
    client: AsyncClient,
    dest: str | os.PathLike[str],
    *,
    concurrency: int = C.EXPORT_CONCURRENCY,
    attachments: bool = True,
    since: datetime | date | None = None,
    progress: ProgressCallback | None = None,
    per_page: int | None = None,
    allow_other_source: bool = False,
    source: str | None = None,
) -> ExportSummary:
    """Export every ticket of the account, with its messages and attachments, into ``dest``.

    Lists every ticket (all pages), then reads each one with at most ``concurrency`` requests in
    flight, recording every distinct version in ``dest/archive.sqlite``. Re-running on the same
    folder resumes an interrupted run and is incremental: a ticket whose ``updated_at`` matches
    the archived version is not read again (unless that version was read within a second of its
    ``updated_at``, which the API gives to the second only), and attachment files whose bytes
    still match their recorded sha256 are not downloaded again. A ticket or attachment that
    still fails after the client's retries is reported in ``failures`` (the run goes on;
    ``manifest.json`` is then not written); run again to finish it.

    ``await export_tickets(client, "archive/", concurrency=16)``

    Args:
        client: the client to read with (its retry settings apply to every request).
        dest: the export folder, created if needed.
        concurrency: requests in flight at once, at least 1.
        attachments: download attachments (False: tickets only).
        since: add only tickets updated at or after this moment (a naive datetime or a date
            is taken as UTC); tickets exported earlier into ``dest`` are kept and kept up to
            date, and what an unfinished earlier run was exporting is finished.
        progress: called (on the event loop, so keep it quick) whenever a page is listed, a
            ticket is finished or an attachment downloaded.
        per_page: tickets per list request (the API's default when None).
        allow_other_source: export into an archive written from another base URL (refused
            otherwise, before anything is changed).
        source: what the archive records as where its tickets come from, and compares on
            later runs (default: the client's ``base_url``). For a server whose URL changes
            from run to run while its account stays the same (``--demo`` names itself so).

    Returns:
        An ExportSummary; ``summary.complete`` is False when something failed.

    Raises:
        InvalidParameterError: a bad argument, or another export is running into ``dest``.
        OtherSourceError: the archive was written from another base URL; nothing changed.
        ExportError: the folder or ``archive.sqlite`` cannot be written (a full disk, a file
            where a folder is expected, a symbolic link in the way): the message names the
            path; what was done is kept for the next run.
        AuthenticationError / PermissionDeniedError: the token was refused (nothing can work).
        APIStatusError / APIConnectionError: listing the tickets failed after retries; what was
            exported so far is kept for the next run.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidParameterError("concurrency", f"must be an integer >= 1, got {concurrency!r}")
    job = _ExportJob(
        client,
        Path(dest),
        concurrency=concurrency,
        attachments=attachments,
        since=as_utc(since),
        progress=progress,
        per_page=per_page,
        allow_other_source=allow_other_source,
        source=source,
    )
    return await job.run()


def _widest(windows: Iterable[datetime | None]) -> datetime | None:
    """The ``since`` that covers every window: the earliest, None (everything) if any is None."""
    earliest: datetime | None = None
    for since in windows:
        if since is None:
            return None
        earliest = since if earliest is None else min(earliest, since)
    return earliest


_INT64 = range(-(2**63), 2**63)


def _storable(*ids: int) -> bool:
    """Whether SQLite can hold every id (a signed 64-bit integer)."""
    return all(i in _INT64 for i in ids)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"


class _ExportJob:
    """One run of :func:`export_tickets`."""

    def __init__(
        self,
        client: AsyncClient,
        dest: Path,
        *,
        concurrency: int,
        attachments: bool,
        since: datetime | None,
        progress: ProgressCallback | None,
        per_page: int | None,
        allow_other_source: bool,
        source: str | None,
    ) -> None:
        self.client = client
        self.dest = dest
        self.concurrency = concurrency
        self.with_attachments = attachments
        self.since = since
        self.progress = progress
        self.per_page = per_page
        self.allow_other_source = allow_other_source
        self.source = source or client.base_url
        self.failures: list[ExportFailure] = []
        self.failed_tickets: set[int] = set()
        self.started_at = _settle.now()
        self.seen: set[int] = set()
        #: every archived ticket: id -> (updated_at, settled); the rest is read per ticket
        self.known: dict[int, tuple[str | None, bool]] = {}
        self.listed = 0
        self.listing_done = False
        self.done = 0
        self.fetched = 0
        self.unchanged = 0
        self.downloaded = 0
        self.files_unchanged = 0
        self.bytes = 0
        self.run_id = 0
        self._folder: ArchiveFolder | None = None
        self._keeper: FileKeeper | None = None

    async def run(self) -> ExportSummary:
        folder = self._folder = ArchiveFolder(self.dest, create=True)
        try:
            lock = FolderLock(folder)
            lock.acquire()
            try:
                store = await _in_thread(lambda: self._open(folder))
                try:
                    self._keeper = FileKeeper(self.client, folder, store, self.run_id)
                    await self._pump(store)
                    return await _in_thread(lambda: self._finish(folder, store))
                except OtherSourceError:
                    store.forget_run(self.run_id)  # refused: as if it never ran
                    raise
                finally:
                    store.close()
            finally:
                lock.release()
        finally:
            folder.close()

    def _open(self, folder: ArchiveFolder) -> Store:
        """Open (or create, or migrate into) the store; check the source; load what resuming
        needs; clean leftovers of a killed run."""
        for name in (DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm"):
            folder.check_plain_file(name)
        fresh = folder.lstat(DB_FILE) is None
        store = Store(self.dest / DB_FILE)
        try:
            source = self.source
            if fresh:
                migrate_journal(folder, store)
            recorded = store.meta("source")
            if recorded is not None and recorded != source and not self.allow_other_source:
                raise OtherSourceError(
                    f"{self.dest} is an archive of {recorded}, not of {source}: export into"
                    " another folder, or pass --allow-other-source (allow_other_source=True)"
                    " to mix them",
                    recorded=recorded,
                    given=source,
                )
            if recorded is None:
                store.set_meta("source", source)
            folder.remove_leftovers()
            unfinished = [None if s is None else parse_stamp(s) for s in store.unfinished_windows()]
            # What an unfinished run was exporting is finished by this one, whatever its since.
            self.since = _widest([self.since, *unfinished])
            self.run_id = store.start_run(
                started_at=stamp(self.started_at),
                source=source,
                since=None if self.since is None else stamp(self.since),
                attachments=self.with_attachments,
            )
            self.known = store.ticket_states()
        except BaseException:
            store.close()
            raise
        return store

    # -- one lister feeding a pool of workers ----------------------------------------------

    async def _pump(self, store: Store) -> None:
        # Bounded: the lister waits while the workers are busy, so memory and tasks stay
        # constant however many tickets the account has.
        queue: asyncio.Queue[Ticket | None] = asyncio.Queue(maxsize=self.concurrency * 4)
        tasks = [asyncio.create_task(self._list(queue))]
        tasks += [asyncio.create_task(self._work(queue, store)) for _ in range(self.concurrency)]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                error = None if task.cancelled() else task.exception()
                if error is not None:
                    raise error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            store.commit()

    async def _list(self, queue: asyncio.Queue[Ticket | None]) -> None:
        # Same account? Ticket ids are global at VPSBG, so another account's listing holds
        # none of the archive's tickets. Until one archived ticket is listed, nothing is handed
        # to the workers (so nothing is written); a listing that ends without one is refused.
        same_account = not self.known or self.allow_other_source
        pending: list[Ticket] = []
        async for listed in self.client.tickets.iter_all(per_page=self.per_page):
            self.seen.add(listed.id)
            same_account = same_account or listed.id in self.known
            updated = listed.updated_at
            # A ticket already archived is always looked at, whatever ``since``.
            if (
                self.since is not None
                and updated is not None
                and updated < self.since
                and listed.id not in self.known
            ):
                continue
            self.listed += 1
            pending.append(listed)
            if same_account:
                for ticket in pending:
                    await queue.put(ticket)
                pending.clear()
            self._report()
        if not same_account and self.seen:
            raise OtherSourceError(
                f"{self.dest} is an archive of another account: {self.client.base_url} lists"
                f" none of its {len(self.known)} tickets (ticket ids are unique across"
                " accounts). Export into another folder, or pass --allow-other-source"
                " (allow_other_source=True) if they were all deleted on the server",
                recorded=self.client.base_url,
                given=self.client.base_url,
            )
        for ticket in pending:
            await queue.put(ticket)
        self.listing_done = True
        self._report()
        for _ in range(self.concurrency):
            await queue.put(None)

    async def _work(self, queue: asyncio.Queue[Ticket | None], store: Store) -> None:
        while (listed := await queue.get()) is not None:
            await self._export_ticket(listed, store)
            self.done += 1
            self._report()
            store.maybe_commit()

    async def _export_ticket(self, listed: Ticket, store: Store) -> None:
        state = self.known.get(listed.id)
        wanted: list[WantedFile] | None = None
        if (
            state is not None
            and listed.updated_at is not None
            and state[0] == stamp(listed.updated_at)
            and state[1]
        ):
            self.unchanged += 1
        else:
            known = None if state is None else store.known_ticket(listed.id)
            try:
                wanted = await self._fetch(listed.id, known, store)
            except ExportError:
                raise  # archive.sqlite cannot be written: nothing else can be
            except VPSBGError as exc:
                self._fail(listed.id, None, exc)
                return
            self.fetched += 1
        if self.with_attachments:
            if wanted is None:
                wanted = store.ticket_files(listed.id)
            files = store.files(listed.id)
            assert self._keeper is not None
            for file in wanted:
                try:
                    got = await self._keeper.ensure(listed.id, file, files.get(file.attachment_id))
                except VPSBGError as exc:
                    self._fail(listed.id, file.attachment_id, exc)
                    continue
                if got is None:
                    self.files_unchanged += 1
                else:
                    self.downloaded += 1
                    self.bytes += got
                    self._report()

    def _fail(self, ticket_id: int, attachment_id: int | None, exc: VPSBGError) -> None:
        if isinstance(exc, AuthenticationError | PermissionDeniedError):
            raise exc  # a refused token fails every request: stop the whole run
        self.failures.append(
            ExportFailure(ticket_id=ticket_id, attachment_id=attachment_id, error=_one_line(exc))
        )
        self.failed_tickets.add(ticket_id)

    async def _fetch(
        self, ticket_id: int, known: KnownTicket | None, store: Store
    ) -> list[WantedFile]:
        """Read one ticket and record its body as the API sent it.

        Returns:
            The attachments the ticket names.

        Raises:
            ResponseDecodeError: the body is not JSON, or not a ticket.
        """
        requested_at = _settle.now()
        response = await get_raw_ticket(self.client, ticket_id)
        # The server may have read the ticket any time during the call, retries included.
        ticket = response.parse()
        if not _storable(ticket.id, *(a.id for a in ticket.attachments)):
            raise response.decode_error("an id out of the range an archive can store (64 bits)")
        served = _settle.served_at(response.date, requested_at, response.elapsed)
        files = [
            WantedFile(
                attachment_id=a.id, name=a.name, path=attachment_path(ticket.id, a), size=a.size
            )
            for a in ticket.attachments
        ]
        updated = None if ticket.updated_at is None else stamp(ticket.updated_at)
        store.add_version(
            ticket_id=ticket.id,
            raw=response.body,
            updated_at=updated,
            fetched_at=stamp(_settle.now()),
            # Without updated_at the ticket is read again every run anyway.
            settled=ticket.updated_at is None or _settle.is_settled(ticket.updated_at, served),
            run_id=self.run_id,
            subject=ticket.subject,
            status=ticket.status,
            messages=len(ticket.messages),
            files=files,
            text=messages_text(ticket),
            known=known,
        )
        return files

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(
                ExportProgress(
                    listed=self.listed,
                    listing_done=self.listing_done,
                    done=self.done,
                    failed=len(self.failed_tickets),
                    attachments=self.downloaded,
                    bytes=self.bytes,
                )
            )

    # -- the end: gone tickets, tickets.jsonl, then (only when complete) the manifest ------

    def _finish(self, folder: ArchiveFolder, store: Store) -> ExportSummary:
        at = stamp(_settle.now())
        gone = sorted(self.known.keys() - self.seen)
        if self.listing_done:
            store.mark_gone(self.run_id, gone, at)
            store.mark_listed(sorted(self.seen & self.known.keys()))
        store.commit_durably()
        complete = not self.failures
        finished_at = _settle.now()
        views = write_views(
            folder,
            store,
            complete=complete,
            with_attachments=self.with_attachments,
            manifest={
                "exported_at": stamp(finished_at),
                "started_at": stamp(self.started_at),
                "base_url": self.client.base_url,
                "since": None if self.since is None else stamp(self.since),
                "attachments_included": self.with_attachments,
            },
        )
        complete = complete and not views.damaged
        failures = list(self.failures)
        for path in views.damaged:
            failures.append(
                ExportFailure(
                    ticket_id=int(path.split("/")[1]),
                    attachment_id=None,
                    error=f"{path}: changed on disk while the export ran; run it again",
                )
            )
        store.finish_run(
            self.run_id,
            finished_at=stamp(finished_at),
            complete=complete,
            listed=self.listed,
            fetched=self.fetched,
            unchanged=self.unchanged,
            downloaded=self.downloaded,
            bytes=self.bytes,
            failures=len(failures),
        )
        return ExportSummary(
            dest=self.dest,
            complete=complete,
            tickets=views.tickets,
            messages=views.messages,
            attachments=views.attachments,
            attachment_bytes=views.attachment_bytes,
            tickets_listed=self.listed,
            tickets_fetched=self.fetched,
            tickets_unchanged=self.unchanged,
            tickets_not_listed=len(gone),
            attachments_downloaded=self.downloaded,
            attachments_unchanged=self.files_unchanged,
            bytes_downloaded=self.bytes,
            failures=tuple(failures),
            started_at=self.started_at,
            finished_at=finished_at,
            manifest=self.dest / MANIFEST_FILE if complete else None,
            run_id=self.run_id,
        )


async def _in_thread(work: Callable[[], _T]) -> _T:
    """Run blocking file work in a thread; on cancellation, wait for it to end first.

    A thread cannot be stopped: returning early would release the folder lock while it still
    writes into the folder.
    """
    future = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


__all__ = ["FolderLock", "export_tickets"]
