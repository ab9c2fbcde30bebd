"""An archive's attachment files kept right: trusted, hashed again, or downloaded again.

A file is trusted without reading it only while it keeps the size, mtime and inode it had when
its sha256 was computed; otherwise it is hashed again, and downloaded again if its bytes differ.
A download streams into a temporary file beside the target (never through a link), fsynced and
renamed into place; its sha256 is then computed from the file on disk, and only then is its row
recorded.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import attrs

from vpsbg_support import _settle
from vpsbg_support.archive._folder import ArchiveFolder, identity, same_file
from vpsbg_support.archive._store import FileRow, Store, WantedFile
from vpsbg_support.archive._times import stamp
from vpsbg_support.errors import DownloadError, ExportError
from vpsbg_support.models import Attachment

if TYPE_CHECKING:
    from vpsbg_support import AsyncClient


class FileKeeper:
    """The attachment files of one export run."""

    def __init__(self, client: AsyncClient, folder: ArchiveFolder, store: Store, run_id: int):
        self.client = client
        self.folder = folder
        self.store = store
        self.run_id = run_id

    async def ensure(self, ticket_id: int, wanted: WantedFile, row: FileRow | None) -> int | None:
        """Make sure an attachment's file is on disk with its recorded bytes.

        Args:
            ticket_id: the ticket.
            wanted: the attachment, as the ticket names it.
            row: the file as recorded, if it was.

        Returns:
            None when the file was already right, else the bytes downloaded.

        Raises:
            APIError: the download failed (after retries).
            ExportError: the file cannot be written.
        """
        path = wanted.path
        if row is not None and row.path == path:
            found = self.folder.lstat(path)
            if same_file(row.stat, found):
                return None
            if found is not None:
                try:
                    size, digest, status = await asyncio.to_thread(self.folder.hash, path)
                except ExportError:
                    size, digest, status = -1, "", None
                if status is not None and (size, digest) == (row.size, row.sha256):
                    fresh = attrs.evolve(row, stat=identity(status))
                    self.store.put_file(fresh, name="", downloaded_at=None, run_id=None)
                    return None
        return await self._download(ticket_id, wanted)

    async def _download(self, ticket_id: int, wanted: WantedFile) -> int:
        aid, path = wanted.attachment_id, wanted.path
        attachment = Attachment(id=aid, name=wanted.name, size=wanted.size)
        policy = self.client.retry_policy
        attempt = 0
        while True:
            try:
                async with self.client.tickets.stream_attachment(ticket_id, attachment) as stream:
                    with self.folder.replacing(path) as out:
                        async for chunk in stream.iter_chunks():
                            out.write(chunk)
                break
            except DownloadError:
                # A body cut mid-stream is past the client's retries (it retries up to the
                # headers); nothing was kept, and a GET is safe to repeat: start over.
                if attempt >= policy.max_retries:
                    raise
                attempt += 1
                await asyncio.sleep(min(policy.max_delay, policy.initial_delay * 2**attempt))
        size, digest, status = await asyncio.to_thread(self.folder.hash, path)
        row = FileRow(
            ticket_id=ticket_id,
            attachment_id=aid,
            path=path,
            size=size,
            sha256=digest,
            stat=identity(status),
        )
        self.store.put_file(
            row, name=attachment.name, downloaded_at=stamp(_settle.now()), run_id=self.run_id
        )
        return size
