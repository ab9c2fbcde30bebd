"""Attachments over loopback HTTP against the fake: every upload input, every download target."""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import io
import os
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO, Any

import pytest
from aioresponses import aioresponses

from tests.conftest import BASE
from vpsbg_support import (
    AsyncClient,
    Attachment,
    DownloadError,
    InvalidParameterError,
    NotFoundError,
    RateLimitError,
    _constants,
    _fs,
    _uploads,
)
from vpsbg_support._decode import BodyFailure, Decoder
from vpsbg_support._sync import Client
from vpsbg_support._uploads import Multipart, Upload, normalize_uploads
from vpsbg_support.testing import FakeVPSBG, FakeVPSBGThread

#: Bigger than one upload read (256 KiB) and one download chunk (64 KiB), still quick.
BIG = 700_000
DOWNLOAD_ROUTE = "tickets.download_attachment"


def blob(size: int, seed: int = 0) -> bytes:
    """Incompressible, position-dependent bytes: a shifted or repeated chunk cannot pass."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


@pytest.fixture
async def fake() -> AsyncIterator[FakeVPSBG]:
    async with FakeVPSBG(seed=3, tickets=2) as server:
        yield server


@pytest.fixture
async def api(fake: FakeVPSBG) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(fake.token, base_url=fake.url, max_retries=2) as c:
        yield c


@pytest.fixture
def ticket_id(fake: FakeVPSBG) -> int:
    return fake.state.tickets[0].id


def received(fake: FakeVPSBG, ticket_id: int) -> list[tuple[str, str, bytes | None]]:
    """(name, type, bytes) of the files the fake stored with the ticket's last message."""
    last = fake.state.ticket(ticket_id).messages[-1]
    return [(a.name, a.mime_type, a.content) for a in last.attachments]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- uploads --------------------------------------------------------------------------------


async def test_every_input_type_arrives_byte_identical_with_its_name_and_type(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, tmp_path: Path
) -> None:
    log, shot, data = blob(BIG, 1), blob(3000, 2), blob(BIG, 3)
    (tmp_path / "server.log").write_bytes(log)
    (tmp_path / "shot.png").write_bytes(shot)
    (tmp_path / "dump.bin").write_bytes(data)
    opened = open(tmp_path / "dump.bin", "rb")  # noqa: SIM115 -- checked still open below
    partial = io.BytesIO(b"SKIP" + data)
    partial.seek(4)

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(log), 100_000):
            yield log[start : start + 100_000]

    try:
        ticket = await api.tickets.reply(
            ticket_id,
            message="Logs and screenshots attached.",
            attachments=[
                str(tmp_path / "server.log"),
                tmp_path / "shot.png",
                ("notes.txt", b"plain bytes"),
                ("trace", b"\x00\x01custom", "application/x-trace"),
                opened,
                ("dump-from-offset.json", partial),
                ("streamed.log", pieces()),
            ],
        )
        assert not opened.closed and not partial.closed  # the caller's files stay theirs
    finally:
        opened.close()
    assert received(fake, ticket_id) == [
        ("server.log", "text/plain", log),
        ("shot.png", "image/png", shot),
        ("notes.txt", "text/plain", b"plain bytes"),
        ("trace", "application/x-trace", b"\x00\x01custom"),
        ("dump.bin", "application/octet-stream", data),
        ("dump-from-offset.json", "application/json", data),
        ("streamed.log", "text/plain", log),
    ]
    sizes = [(a.name, a.size) for a in ticket.messages[-1].attachments]
    assert sizes[0] == ("server.log", BIG) and sizes[-1] == ("streamed.log", BIG)


async def test_create_sends_attachments_too(
    fake: FakeVPSBG, api: AsyncClient, tmp_path: Path
) -> None:
    (tmp_path / "df.txt").write_bytes(b"/dev/sda1 100%\n")
    ticket = await api.tickets.create(
        department_id=fake.state.departments[0].id,
        subject="Disk full",
        message="The disk is full again.",
        attachments=[tmp_path / "df.txt", ("shot.png", b"\x89PNG")],
    )
    assert received(fake, ticket.id) == [
        ("df.txt", "text/plain", b"/dev/sda1 100%\n"),
        ("shot.png", "image/png", b"\x89PNG"),
    ]


async def render(body: Multipart) -> tuple[int | None, bytes]:
    """What aiohttp would announce as Content-Length for ``body``, and what it would send."""

    class Sink:
        def __init__(self) -> None:
            self.data = bytearray()

        async def write(self, chunk: bytes) -> None:
            self.data += chunk

    async with AsyncExitStack() as stack:
        writer = body.build(stack)()
        sink = Sink()
        await writer.write(sink)  # type: ignore[arg-type]
        return writer.size, bytes(sink.data)


async def test_sized_inputs_announce_their_exact_length_unsized_ones_go_chunked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(blob(BIG))
    moved = io.BytesIO(b"xx" + blob(5000))
    moved.seek(2)
    sized: list[Any] = [path, ("b.bin", b"12345"), ("c.bin", moved)]
    for item in sized:
        size, sent = await render(Multipart([("message", "hello")], normalize_uploads([item])))
        assert size == len(sent), item

    async def one() -> AsyncIterator[bytes]:
        yield b"abc"

    size, sent = await render(Multipart([], normalize_uploads([("d.txt", one())])))
    assert size is None and b"\r\n\r\nabc\r\n" in sent
    read_end, write_end = os.pipe()
    os.write(write_end, b"piped")
    os.close(write_end)
    with open(read_end, "rb") as pipe:
        size, sent = await render(Multipart([], normalize_uploads([("e.txt", pipe)])))
    assert size is None and b"\r\n\r\npiped\r\n" in sent


async def test_files_are_streamed_in_bounded_reads_never_read_whole(
    fake: FakeVPSBG,
    api: AsyncClient,
    ticket_id: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    content = blob(2 * 1024 * 1024 + 17)
    reads: list[int] = []

    class Recording(io.BufferedReader):
        def read(self, size: int | None = -1) -> bytes:
            reads.append(-1 if size is None else size)
            return super().read(size)

    def recording_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> IO[Any]:
        handle = builtins.open(file, mode, *args, **kwargs)  # noqa: SIM115 -- returned
        if mode == "rb" and str(file).endswith("big.bin"):
            return Recording(handle.detach())  # type: ignore[attr-defined]
        return handle

    # Shadow open() in the module that opens upload paths; everything else is untouched.
    monkeypatch.setattr(_uploads, "open", recording_open, raising=False)
    (tmp_path / "big.bin").write_bytes(content)
    await api.tickets.reply(ticket_id, message="big file", attachments=[tmp_path / "big.bin"])
    assert received(fake, ticket_id) == [("big.bin", "application/octet-stream", content)]
    assert len(reads) > 1 and all(0 < n <= 256 * 1024 for n in reads), reads


@pytest.mark.parametrize("seekable", [True, False], ids=["seekable", "pipe-like"])
async def test_caller_file_is_read_in_bounded_reads(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, seekable: bool
) -> None:
    class RecordingBytes(io.BytesIO):
        name = "/var/log/app.log"

        def __init__(self, data: bytes) -> None:
            super().__init__(data)
            self.reads: list[int] = []

        def seekable(self) -> bool:
            return seekable

        def read(self, size: int | None = -1) -> bytes:
            self.reads.append(-1 if size is None else size)
            return super().read(size)

    content = blob(BIG)
    handle = RecordingBytes(content)
    await api.tickets.reply(ticket_id, message="from a file object", attachments=[handle])
    assert received(fake, ticket_id) == [("app.log", "text/plain", content)]
    assert len(handle.reads) > 1 and all(0 < n <= 256 * 1024 for n in handle.reads)


async def test_a_retried_upload_reopens_paths_and_rewinds_files(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, tmp_path: Path
) -> None:
    # Small on purpose: the fake answers a status fault without reading the body, so a large
    # upload could meet a closed socket (an ambiguous failure, never retried for a POST).
    content = blob(2_000)
    (tmp_path / "a.log").write_bytes(content)
    handle = io.BytesIO(b"head" + content)
    handle.seek(4)
    # A 429 is retried even for a POST: the server refused it before acting on it.
    fake.faults.add("tickets.reply", "status", status=429, retry_after=0, times=1)
    await api.tickets.reply(
        ticket_id, message="second try", attachments=[tmp_path / "a.log", ("b.log", handle)]
    )
    assert fake.count("tickets.reply") == 2
    assert received(fake, ticket_id) == [
        ("a.log", "text/plain", content),
        ("b.log", "text/plain", content),
    ]


async def test_an_async_iterable_upload_is_never_sent_twice(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int
) -> None:
    async def once() -> AsyncIterator[bytes]:
        yield b"only once"

    fake.faults.add("tickets.reply", "status", status=429, retry_after=0, times=1)
    with pytest.raises(RateLimitError):
        await api.tickets.reply(ticket_id, message="streamed", attachments=[("s.txt", once())])
    assert fake.count("tickets.reply") == 1


async def _chunks() -> AsyncIterator[bytes]:
    yield b"data"


def _fifo(tmp_path: Path) -> str:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return str(path)


def _empty(tmp_path: Path) -> str:
    (tmp_path / "empty.log").touch()
    return str(tmp_path / "empty.log")


BAD_INPUTS: dict[str, Callable[[Path], Any]] = {
    "missing path": lambda tmp: tmp / "nope.log",
    "folder": lambda tmp: tmp,
    "fifo (would block)": _fifo,
    "empty file": _empty,
    "empty bytes": lambda tmp: ("e.txt", b""),
    "empty text": lambda tmp: ("e.txt", ""),
    "bytes without a name": lambda tmp: b"data",
    "nameless file object": lambda tmp: io.BytesIO(b"data"),
    "file object at its end": lambda tmp: ("x.bin", io.BytesIO(b"")),
    "text-mode file": lambda tmp: ("x.txt", io.StringIO("text")),
    "bad content type": lambda tmp: ("x.txt", b"data", "text"),
    "header injection in type": lambda tmp: ("x.txt", b"data", "text/plain\r\nX-Evil: 1"),
    "control char in name": lambda tmp: ("x\n.txt", b"data"),
    "int": lambda tmp: 42,
    "async iterable without a name": lambda tmp: _chunks(),
}


async def test_text_content_is_sent_utf8_never_read_as_a_path(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, tmp_path: Path, monkeypatch: Any
) -> None:
    # A file named like the text sits in the working folder: it must not be what is sent.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hello text").write_bytes(b"the file, not the text")
    await api.tickets.reply(
        ticket_id,
        message="Notes attached.",
        attachments=[("hello.txt", "hello text"), ("naïve.md", "café ☕", "text/markdown")],
    )
    assert received(fake, ticket_id) == [
        ("hello.txt", "text/plain", b"hello text"),
        ("naïve.md", "text/markdown", "café ☕".encode()),
    ]


@pytest.mark.parametrize("make", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
async def test_bad_inputs_raise_before_anything_is_sent(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, tmp_path: Path, make: Callable[[Path], Any]
) -> None:
    item = make(tmp_path)
    with pytest.raises(InvalidParameterError) as info:
        await api.tickets.reply(ticket_id, message="Hello there", attachments=[item])
    assert info.value.field == "attachments"
    assert fake.requests == []


async def test_a_write_only_file_object_raises_before_sending(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, tmp_path: Path
) -> None:
    with (
        open(tmp_path / "out.log", "wb") as write_only,
        pytest.raises(InvalidParameterError, match="reading"),
    ):
        await api.tickets.reply(ticket_id, message="Hello there", attachments=[write_only])
    assert fake.requests == []


async def test_an_unreadable_file_raises_before_sending(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, tmp_path: Path
) -> None:
    path = tmp_path / "secret.log"
    path.write_bytes(b"data")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK) and os.geteuid() == 0:
            pytest.skip("running as root: a mode-000 file is still readable")
        with pytest.raises(InvalidParameterError, match="cannot read"):
            await api.tickets.reply(ticket_id, message="Hello there", attachments=[path])
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert fake.requests == []


async def test_a_file_shorter_than_announced_fails_instead_of_hanging() -> None:
    upload = Upload("a.txt", "text/plain", io.BytesIO(b"12345"), "file", start=0, size=10)
    with pytest.raises(OSError, match="5 bytes short"):
        await render(Multipart([], [upload]))
    # A file that grew since it was measured is cut at the announced size.
    grown = Upload("a.txt", "text/plain", io.BytesIO(b"1234567890"), "file", start=0, size=5)
    size, sent = await render(Multipart([], [grown]))
    assert size == len(sent) and b"12345\r\n" in sent and b"6789" not in sent


# -- downloads ------------------------------------------------------------------------------


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".part")]


async def test_download_to_folder_path_and_file_object_is_byte_identical(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, tmp_path: Path
) -> None:
    content = blob(BIG, 7)
    att = fake.state.add_attachment(ticket_id, name="report.pdf", content=content)
    folder = tmp_path / "downloads"
    folder.mkdir()

    into_folder = await api.tickets.download_attachment(ticket_id, att.id, folder)
    assert into_folder == folder.resolve() / "report.pdf"
    assert into_folder.read_bytes() == content

    to_path = await api.tickets.download_attachment(ticket_id, att.id, tmp_path / "new" / "r.bin")
    assert to_path == (tmp_path / "new" / "r.bin").resolve()
    assert to_path.read_bytes() == content

    sink = io.BytesIO()
    assert await api.tickets.download_attachment(ticket_id, att.id, sink) is None
    assert sink.getvalue() == content and not sink.closed

    # A folder that does not exist yet is created when the path ends with a separator.
    created = await api.tickets.download_attachment(ticket_id, att.id, f"{tmp_path}/fresh/")
    assert created is not None and created.read_bytes() == content
    assert no_temp_files(tmp_path)


async def test_downloaded_file_gets_the_usual_permissions(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, tmp_path: Path
) -> None:
    att = fake.state.add_attachment(ticket_id, name="a.txt", content=b"abc")
    umask = os.umask(0o022)
    try:
        path = await api.tickets.download_attachment(ticket_id, att.id, tmp_path)
    finally:
        os.umask(umask)
    assert path is not None and stat.S_IMODE(path.stat().st_mode) == 0o644


@pytest.mark.parametrize("advice", ["works", "refused", "missing"])
async def test_big_downloads_start_writing_to_disk_early_and_stay_whole(
    fake: FakeVPSBG,
    api: AsyncClient,
    ticket_id: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    advice: str,
) -> None:
    # Writeback is asked for every 100 kB here: each stretch must already be in the file when
    # asked for (flushed from Python's buffer), the stretches must cover the file in order, and
    # a platform without the call or a file system refusing it must not break the download.
    monkeypatch.setattr(_constants, "WRITEBACK_EVERY", 100_000)
    asked: list[tuple[int, int, int]] = []
    real = getattr(os, "posix_fadvise", None)

    def fadvise(fd: int, offset: int, length: int, advice_code: int) -> None:
        asked.append((offset, length, os.fstat(fd).st_size))
        if advice == "refused":
            raise OSError(22, "Invalid argument")
        if real is not None:
            real(fd, offset, length, advice_code)

    if advice == "missing":
        monkeypatch.delattr(os, "posix_fadvise", raising=False)
    else:
        monkeypatch.setattr(os, "posix_fadvise", fadvise, raising=False)
    content = blob(BIG, 11)
    att = fake.state.add_attachment(ticket_id, name="dump.bin", content=content)

    path = await api.tickets.download_attachment(ticket_id, att.id, tmp_path)

    assert path is not None and path.read_bytes() == content
    assert no_temp_files(tmp_path)
    if advice == "missing":
        assert asked == []
        return
    assert len(asked) >= BIG // 200_000
    offsets = [offset for offset, _, _ in asked]
    assert offsets[0] == 0
    for (offset, length, on_disk), following in zip(asked, [*offsets[1:], None], strict=True):
        assert length >= 100_000 and on_disk >= offset + length
        assert following is None or following == offset + length


async def test_small_chunks_are_in_the_file_before_writeback_and_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks smaller than Python's write buffer stay in it until flushed: the writeback would
    # then miss them, and an fsync without a flush first left the last of them not durable.
    monkeypatch.setattr(_constants, "WRITEBACK_EVERY", 10_000)
    on_disk: list[tuple[int, int]] = []
    synced: list[int] = []
    real_fsync = os.fsync

    def fadvise(fd: int, offset: int, length: int, advice_code: int) -> None:
        on_disk.append((offset + length, os.fstat(fd).st_size))

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_size)
        real_fsync(fd)

    monkeypatch.setattr(os, "posix_fadvise", fadvise, raising=False)
    monkeypatch.setattr(os, "fsync", fsync)
    content = blob(50_500, 5)

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 1_000):
            yield content[start : start + 1_000]

    target = tmp_path / "small.bin"
    assert await _fs.write_atomically(body(), target, overwrite=False) == len(content)
    assert target.read_bytes() == content
    assert synced[0] == len(content)  # the file's fsync; the folder's follows
    assert len(on_disk) == 5 and all(size >= end for end, size in on_disk)


async def test_downloading_by_attachment_object_uses_its_size(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, tmp_path: Path
) -> None:
    att = fake.state.add_attachment(ticket_id, name="a.log", content=b"0123456789")
    ticket = await api.tickets.get(ticket_id)
    model = next(a for m in ticket.messages for a in m.attachments if a.id == att.id)
    path = await api.tickets.download_attachment(ticket_id, model, tmp_path)
    assert path == tmp_path.resolve() / "a.log" and path.read_bytes() == b"0123456789"
    wrong = Attachment(id=att.id, name="a.log", size=11)
    with pytest.raises(DownloadError, match="expected 11"):
        await api.tickets.download_attachment(ticket_id, wrong, tmp_path / "other.log")
    assert files_in(tmp_path) == ["a.log"]


HOSTILE = [
    "../../etc/passwd",
    "a/b",
    "..",
    ".",
    "...",
    "/etc/shadow",
    "..\\..\\windows\\win.ini",
    "CON",
    "con.txt",
    "LPT1.log",
    "nul\x00.txt",
    "evil\nname.txt",
    "evil\r\nX-Header: 1",
    "\u202etxt.exe",
    ".bashrc",
    "   ",
    "",
    "x" * 300 + ".txt",
    "ж" * 300,
    "trailing. . ",
]


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
async def test_hostile_names_land_safely_inside_the_folder(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, tmp_path: Path, name: str
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    att = fake.state.add_attachment(ticket_id, name=name, content=b"payload")
    path = await api.tickets.download_attachment(ticket_id, att.id, folder)
    assert path is not None and path.parent == folder.resolve()
    assert files_in(folder) == [path.name]
    assert files_in(tmp_path) == ["in"]  # nothing written beside or above the folder
    assert path.read_bytes() == b"payload"
    assert len(path.name.encode()) <= 255
    assert path.name.isprintable() and not path.name.startswith(".")
    assert path.name.partition(".")[0].upper() not in {"CON", "NUL", "LPT1"}


async def test_a_name_with_nothing_usable_falls_back_to_the_attachment_id(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, tmp_path: Path
) -> None:
    att = fake.state.add_attachment(ticket_id, name="../..", content=b"x")
    path = await api.tickets.download_attachment(ticket_id, att.id, tmp_path)
    assert path == tmp_path.resolve() / f"attachment-{att.id}"


async def test_without_content_disposition_the_attachment_name_is_used_sanitised(
    tmp_path: Path,
) -> None:
    url = f"{BASE}/support/tickets/216/attachments/5"
    with aioresponses() as mocked:
        mocked.get(url, body=b"abc", headers={"Content-Type": "text/plain"})
        mocked.get(url, body=b"ab", headers={"Content-Type": "text/plain"})
        async with AsyncClient("t", base_url=BASE, max_retries=0) as c:
            hostile = Attachment(id=5, name="../../etc/cron.d/x\n.log", size=3)
            path = await c.tickets.download_attachment(216, hostile, tmp_path)
            assert path == tmp_path.resolve() / "_.._etc_cron.d_x.log"
            with pytest.raises(DownloadError, match="received 2 bytes, expected 3"):
                await c.tickets.download_attachment(216, hostile, tmp_path / "short.log")
    assert path.read_bytes() == b"abc"
    assert files_in(tmp_path) == [path.name]


@pytest.mark.parametrize("target", ["folder", "file path", "existing file, overwrite"])
async def test_a_truncated_body_raises_and_leaves_no_file(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, tmp_path: Path, target: str
) -> None:
    att = fake.state.add_attachment(ticket_id, name="dump.bin", content=blob(BIG))
    fake.faults.add(DOWNLOAD_ROUTE, "truncate", keep_fraction=0.4)
    dest: Path = tmp_path
    if target == "file path":
        dest = tmp_path / "dump.bin"
    elif target == "existing file, overwrite":
        dest = tmp_path / "dump.bin"
        dest.write_bytes(b"previous")
    with pytest.raises(DownloadError, match="cut short"):
        await api.tickets.download_attachment(ticket_id, att.id, dest, overwrite=True)
    if target == "existing file, overwrite":
        assert files_in(tmp_path) == ["dump.bin"] and dest.read_bytes() == b"previous"
    else:
        assert files_in(tmp_path) == []


async def test_an_existing_file_is_kept_unless_overwrite(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, tmp_path: Path
) -> None:
    att = fake.state.add_attachment(ticket_id, name="report.pdf", content=b"new bytes")
    existing = tmp_path / "report.pdf"
    existing.write_bytes(b"mine")
    with pytest.raises(InvalidParameterError, match="overwrite=True") as info:
        await api.tickets.download_attachment(ticket_id, att.id, tmp_path)
    assert info.value.field == "dest"
    fake.clear_requests()
    with pytest.raises(InvalidParameterError, match="overwrite=True"):
        await api.tickets.download_attachment(ticket_id, att.id, existing)
    assert fake.requests == []  # a file path is checked before asking the server
    assert existing.read_bytes() == b"mine" and files_in(tmp_path) == ["report.pdf"]

    inode = existing.stat().st_ino
    path = await api.tickets.download_attachment(ticket_id, att.id, tmp_path, overwrite=True)
    assert path == existing.resolve() and path.read_bytes() == b"new bytes"
    assert path.stat().st_ino != inode  # replaced by a rename, never rewritten in place
    assert files_in(tmp_path) == ["report.pdf"]


async def test_a_symlink_in_the_folder_is_never_written_through(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "report.pdf").symlink_to(outside)
    att = fake.state.add_attachment(ticket_id, name="report.pdf", content=b"download")
    with pytest.raises(InvalidParameterError):
        await api.tickets.download_attachment(ticket_id, att.id, folder)
    path = await api.tickets.download_attachment(ticket_id, att.id, folder, overwrite=True)
    assert path is not None and not path.is_symlink() and path.read_bytes() == b"download"
    assert outside.read_bytes() == b"precious"


async def test_a_file_appearing_during_the_download_is_kept_unless_overwrite(
    tmp_path: Path,
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"downloaded"
        # Another process creates the file while the download is still running.
        (tmp_path / "race.txt").write_bytes(b"theirs")

    target = tmp_path / "race.txt"
    with pytest.raises(InvalidParameterError, match="overwrite=True"):
        await _fs.write_atomically(body(), target, overwrite=False)
    assert target.read_bytes() == b"theirs" and files_in(tmp_path) == ["race.txt"]
    assert await _fs.write_atomically(body(), target, overwrite=True) == 10
    assert target.read_bytes() == b"downloaded" and files_in(tmp_path) == ["race.txt"]


async def test_missing_attachment_is_not_found_and_writes_nothing(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError):
        await api.tickets.download_attachment(ticket_id, 999_999, tmp_path)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    "dest", [42, io.StringIO(), "", "a\0b"], ids=["int", "text file", "empty", "nul"]
)
async def test_unusable_destinations_raise_before_sending(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int, dest: Any
) -> None:
    with pytest.raises(InvalidParameterError) as info:
        await api.tickets.download_attachment(ticket_id, 1, dest)
    assert info.value.field == "dest"
    assert fake.requests == []


# -- stream_attachment ----------------------------------------------------------------------


async def test_stream_attachment_exposes_metadata_and_bounded_chunks(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int
) -> None:
    content = blob(BIG, 9)
    att = fake.state.add_attachment(ticket_id, name="trace.json", content=content)
    async with api.tickets.stream_attachment(ticket_id, att.id) as stream:
        assert (stream.name, stream.size) == ("trace.json", BIG)
        assert stream.content_type == "application/json"
        chunks = [chunk async for chunk in stream.iter_chunks(10_000)]
        with pytest.raises(DownloadError, match="already read"):
            async for _ in stream.iter_chunks():
                pass
    assert b"".join(chunks) == content
    assert max(map(len, chunks)) <= 10_000 and len(chunks) >= BIG // 10_000


async def test_stream_attachment_rejects_a_bad_chunk_size_and_reports_truncation(
    fake: FakeVPSBG, api: AsyncClient, ticket_id: int
) -> None:
    att = fake.state.add_attachment(ticket_id, name="a.bin", content=blob(BIG))
    async with api.tickets.stream_attachment(ticket_id, att.id) as stream:
        with pytest.raises(InvalidParameterError):
            async for _ in stream.iter_chunks(0):
                pass
    fake.faults.add(DOWNLOAD_ROUTE, "truncate", keep_fraction=0.5, times=1)
    got = 0
    async with api.tickets.stream_attachment(ticket_id, att.id) as stream:
        with pytest.raises(DownloadError, match="cut short"):
            async for chunk in stream.iter_chunks():
                got += len(chunk)
    assert 0 < got < BIG


# -- blocking facade ------------------------------------------------------------------------


@pytest.fixture
def threaded_fake() -> Iterator[FakeVPSBGThread]:
    with FakeVPSBGThread(FakeVPSBG(seed=3, tickets=1)) as server:
        yield server


def test_blocking_client_downloads_and_streams(
    threaded_fake: FakeVPSBGThread, tmp_path: Path
) -> None:
    ticket_id = threaded_fake.state.tickets[0].id
    content = blob(BIG, 5)
    att = threaded_fake.state.add_attachment(ticket_id, name="../big.log", content=content)
    with Client(threaded_fake.token, base_url=threaded_fake.url) as client:
        path = client.tickets.download_attachment(ticket_id, att.id, tmp_path)
        assert path == tmp_path.resolve() / "_big.log" and path.read_bytes() == content
        with client.tickets.stream_attachment(ticket_id, att.id) as stream:
            assert (stream.name, stream.size) == ("../big.log", BIG)
            chunks = list(stream.iter_chunks(50_000))
        assert b"".join(chunks) == content and max(map(len, chunks)) <= 50_000
        (tmp_path / "up.bin").write_bytes(content)
        client.tickets.reply(ticket_id, message="from sync", attachments=[tmp_path / "up.bin"])
    assert received(threaded_fake.fake, ticket_id)[-1][2] == content


# -- compressed bodies ------------------------------------------------------------------------


def _gzip_members(data: bytes) -> bytes:
    import gzip

    half = len(data) // 2
    return gzip.compress(data[:half]) + gzip.compress(data[half:])


def _deflate(data: bytes, raw: bool) -> bytes:
    import zlib

    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


async def _serve_encoded(
    encoding: str, body: bytes, seen: list[bytes]
) -> tuple[asyncio.AbstractServer, str]:
    """A server answering any request with ``body`` as sent, ended by closing the connection
    (no Content-Length, not chunked: only the compressed stream's own end tells it is whole)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            + f"Content-Encoding: {encoding}\r\n".encode()
            + b'Content-Disposition: attachment; filename="log.bin"\r\n'
            + b"Connection: close\r\n\r\n"
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", _gzip_members),
        ("deflate", lambda d: _deflate(d, raw=False)),
        ("deflate", lambda d: _deflate(d, raw=True)),
    ],
    ids=["gzip, two members", "deflate", "raw deflate"],
)
async def test_a_compressed_body_is_decoded_whole_and_a_cut_one_is_refused(
    tmp_path: Path, encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    content = blob(BIG, 9)
    packed = encode(content)
    seen: list[bytes] = []
    for body, whole in ((packed, True), (packed[: len(packed) * 6 // 10], False)):
        server, url = await _serve_encoded(encoding, body, seen)
        folder = tmp_path / ("whole" if whole else "cut")
        folder.mkdir()
        try:
            async with AsyncClient("t", base_url=url, max_retries=0) as client:
                if whole:
                    path = await client.tickets.download_attachment(1, 7, folder)
                    assert path is not None and path.read_bytes() == content
                else:
                    # Without a size to compare with, only the stream's end marker tells.
                    with pytest.raises(DownloadError, match="cut short"):
                        await client.tickets.download_attachment(1, 7, folder)
                    assert files_in(folder) == []
        finally:
            server.close()
            await server.wait_closed()
    # We ask for the bytes as stored; the server above compressed them anyway.
    assert all(b"\r\naccept-encoding: identity\r\n" in head.lower() for head in seen)


async def test_an_encoding_the_client_cannot_undo_is_refused_and_writes_nothing(
    tmp_path: Path,
) -> None:
    server, url = await _serve_encoded("br", b"\x0b\x02\x80hello\x03", [])
    try:
        async with AsyncClient("t", base_url=url, max_retries=0) as client:
            with pytest.raises(DownloadError, match="Content-Encoding 'br'"):
                await client.tickets.download_attachment(1, 7, tmp_path)
    finally:
        server.close()
        await server.wait_closed()
    assert files_in(tmp_path) == []


def _encodings(data: bytes) -> list[tuple[str, bytes]]:
    import gzip
    import zlib

    small_window = zlib.compressobj(9, zlib.DEFLATED, 9)
    return [
        ("gzip", gzip.compress(data)),
        ("gzip", _gzip_members(data)),
        ("gzip", gzip.compress(data) + b"\0" * 10),  # zero padding, as gunzip allows
        ("deflate", zlib.compress(data)),
        ("deflate", small_window.compress(data) + small_window.flush()),  # header not 0x78
        ("deflate", _deflate(data, raw=True)),
    ]


@pytest.mark.parametrize(
    "data",
    [b"", b"a" * 65_537, blob(5_000, 3)],
    ids=["empty", "more output than one piece", "incompressible"],
)
@pytest.mark.parametrize(("split", "size"), [(1, 1), (7, 1000), (65_536, 65_536)])
def test_the_decoder_is_exact_at_any_split_and_piece_size(
    data: bytes, split: int, size: int
) -> None:
    for encoding, body in _encodings(data):
        if split == 1 and len(body) > 6_000:
            continue  # byte by byte is for the small bodies
        decoder = Decoder.for_encoding(encoding)
        assert decoder is not None
        out = [
            p for i in range(0, len(body), split) for p in decoder.feed(body[i : i + split], size)
        ]
        decoder.finish()
        assert b"".join(out) == data, (encoding, body[:4])
        assert all(len(piece) <= size for piece in out)
        stream = body.rstrip(b"\0") if encoding == "gzip" else body
        if len(stream) > 20:
            # The last 5 bytes hold the end of the last block or the checksum: a body ending
            # there is incomplete, whatever the encoding.
            cut = Decoder.for_encoding(encoding)
            assert cut is not None
            list(cut.feed(stream[:-5], size))
            with pytest.raises(BodyFailure, match="cut short"):
                cut.finish()


@pytest.mark.parametrize(
    ("encoding", "body", "message"),
    [
        ("gzip", _gzip_members(b"log line\n" * 50) + b"X", "after the end"),
        ("gzip", _gzip_members(b"log line\n" * 50) + b"XYZ" * 10, "corrupt"),
        ("deflate", _deflate(b"one" * 100, raw=False) * 2, "after the end"),
        ("deflate", _deflate(b"one" * 100, raw=True) + b"\x01", "after the end"),
    ],
    ids=["gzip + a stray byte", "gzip + garbage", "two zlib streams", "raw deflate + a byte"],
)
def test_bytes_after_a_compressed_body_are_refused(
    encoding: str, body: bytes, message: str
) -> None:
    # Only gzip has members one after the other; anything else after the end is not the file.
    decoder = Decoder.for_encoding(encoding)
    assert decoder is not None
    with pytest.raises(BodyFailure, match=message):
        list(decoder.feed(body, 65_536))
        decoder.finish()
