"""The archive folder's files, opened relative to the folder and never through a symbolic link.

Every path inside the archive is walked one component at a time from a descriptor of the
folder (``dir_fd``), each opened with ``O_NOFOLLOW``: a symbolic link planted at any component
(a sub-folder, the file itself) is refused or replaced, never followed, so nothing is written
outside the folder. Files are written to a temporary name, fsynced, and renamed over their
target (a rename replaces a link, it does not write through it), then the folder is fsynced.

Every ``OSError`` becomes an :class:`~vpsbg_support.errors.ExportError` naming the path (a full
disk, a file where a folder is expected, a link where a file is expected).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from vpsbg_support import _constants as C
from vpsbg_support.archive._results import LOCK_FILE
from vpsbg_support.errors import ExportError, InvalidParameterError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_BINARY = getattr(os, "O_BINARY", 0)


def _describe(exc: OSError, shown: str) -> str:
    if exc.errno == errno.ENOSPC:
        return f"{shown}: no space left on the device; free some and run the export again"
    if exc.errno == errno.ENOTDIR:
        return f"{shown}: a file is in the way where a folder is expected"
    if exc.errno == errno.ELOOP:
        return f"{shown}: is a symbolic link; the archive never writes through one"
    if exc.errno == errno.EISDIR:
        return f"{shown}: a folder is in the way where a file is expected"
    reason = exc.strerror or exc.__class__.__name__
    return f"{shown}: {reason}"


class ArchiveFolder:
    """An open archive folder: safe relative opens, atomic writes, stats and hashes.

    Args:
        root: the folder; created (with its parents) when ``create`` is True. The folder itself
            may be a symbolic link chosen by the user; nothing inside it may be.
    """

    def __init__(self, root: Path, *, create: bool) -> None:
        self.root = root
        try:
            if create:
                if os.path.lexists(root) and not os.path.isdir(root):
                    raise ExportError(
                        f"{root}: a file is in the way where the archive folder is expected",
                        path=str(root),
                    )
                root.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(root, os.O_RDONLY | _DIRECTORY)
        except OSError as exc:
            raise self._error(exc, "") from None

    def close(self) -> None:
        """Release the folder's descriptor."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ArchiveFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, exc: OSError, relative: str) -> ExportError:
        shown = str(self.root / relative) if relative else str(self.root)
        return ExportError(_describe(exc, shown), path=shown)

    # -- walking ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _parent(self, relative: str, *, create: bool) -> Iterator[tuple[int, str]]:
        """The descriptor of ``relative``'s folder (walked without following links) and its
        last component."""
        parts = relative.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise InvalidParameterError("path", f"{relative!r} is not a path inside the archive")
        fds: list[int] = []
        current = self._fd
        try:
            for depth, part in enumerate(parts[:-1]):
                try:
                    current = _open_folder(part, current, create=create)
                except OSError as exc:
                    if exc.errno in (errno.ENOTDIR, errno.ELOOP) and _is_link(part, current):
                        # Linux says ENOTDIR for a link opened with O_NOFOLLOW | O_DIRECTORY.
                        link = OSError(errno.ELOOP, "is a symbolic link")
                        raise self._error(link, "/".join(parts[: depth + 1])) from None
                    raise
                fds.append(current)
            yield current, parts[-1]
        finally:
            for fd in fds:
                os.close(fd)

    def lstat(self, relative: str) -> os.stat_result | None:
        """The file's status without following a link; None when it (or a folder) is missing."""
        try:
            with self._parent(relative, create=False) as (folder, name):
                return os.stat(name, dir_fd=folder, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError, ExportError):
            return None  # a file or a link where a folder should be: the file is not there
        except OSError as exc:
            raise self._error(exc, relative) from None

    def exists_as_link(self, relative: str) -> bool:
        """Whether a symbolic link sits at ``relative``."""
        found = self.lstat(relative)
        return found is not None and stat.S_ISLNK(found.st_mode)

    # -- reading ------------------------------------------------------------------------------

    def hash(self, relative: str) -> tuple[int, str, os.stat_result]:
        """Size and hex sha256 of the file's bytes, and its status when they were read.

        Raises:
            ExportError: missing, a link, a folder, or unreadable.
        """
        try:
            with self._parent(relative, create=False) as (folder, name):
                fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _BINARY, dir_fd=folder)
                with os.fdopen(fd, "rb") as handle:
                    before = os.fstat(handle.fileno())
                    if not stat.S_ISREG(before.st_mode):
                        raise OSError(errno.EISDIR, "not a regular file")
                    digest = hashlib.sha256()
                    size = 0
                    while chunk := handle.read(C.ARCHIVE_HASH_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                    return size, digest.hexdigest(), before
        except OSError as exc:
            raise self._error(exc, relative) from None

    # -- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def replacing(self, relative: str) -> Iterator[IO[bytes]]:
        """A new temporary file beside ``relative``, renamed over it (replacing a link rather
        than writing through it) once the block ends without an error and the bytes are
        flushed to disk; removed if the block raises.

        Raises:
            ExportError: any OSError, naming ``relative``.
        """
        try:
            with self._parent(relative, create=True) as (folder, name):
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY
                while True:
                    temp = f".{name[:40]}.{secrets.token_hex(4)}.part"
                    try:
                        fd = os.open(temp, flags, 0o666, dir_fd=folder)
                        break
                    except FileExistsError:
                        continue
                try:
                    with os.fdopen(fd, "wb") as out:
                        yield out
                        out.flush()
                        os.fsync(out.fileno())
                    os.replace(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(temp, dir_fd=folder)
                    raise
                _fsync_fd(folder)
        except OSError as exc:
            raise self._error(exc, relative) from None

    def write(self, relative: str, chunks: Iterable[bytes]) -> None:
        """Write ``chunks`` atomically at ``relative`` (see :meth:`replacing`)."""
        with self.replacing(relative) as out:
            for chunk in chunks:
                out.write(chunk)

    def remove(self, relative: str) -> None:
        """Remove a file (or a link) if present, without following a link."""
        try:
            with self._parent(relative, create=False) as (folder, name):
                os.unlink(name, dir_fd=folder)
                _fsync_fd(folder)
        except (FileNotFoundError, NotADirectoryError, ExportError):
            return
        except OSError as exc:
            raise self._error(exc, relative) from None

    def remove_leftovers(self) -> None:
        """Delete temporary ``.part`` files a killed run left in the folder and its
        ``attachments/<ticket>/`` folders (never following a link)."""
        for top in self._listdir(""):
            if top.endswith(".part"):
                self.remove(top)
        for ticket in self._listdir(C.ARCHIVE_ATTACHMENTS_DIR):
            for name in self._listdir(f"{C.ARCHIVE_ATTACHMENTS_DIR}/{ticket}"):
                if name.startswith(".") and name.endswith(".part"):
                    self.remove(f"{C.ARCHIVE_ATTACHMENTS_DIR}/{ticket}/{name}")

    def _listdir(self, relative: str) -> list[str]:
        try:
            if not relative:
                return os.listdir(self._fd)
            with self._parent(relative + "/x", create=False) as (folder, _):
                return os.listdir(folder)
        except (OSError, ExportError):
            return []

    def open_lock(self, relative: str) -> int:
        """A descriptor of the lock file (created if needed, never through a link)."""
        try:
            with self._parent(relative, create=True) as (folder, name):
                return os.open(name, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644, dir_fd=folder)
        except OSError as exc:
            raise self._error(exc, relative) from None

    def check_plain_file(self, relative: str) -> None:
        """Refuse a symbolic link or a folder at ``relative`` (for files opened by name, such
        as SQLite's)."""
        found = self.lstat(relative)
        if found is not None and not stat.S_ISREG(found.st_mode):
            what = "a symbolic link" if stat.S_ISLNK(found.st_mode) else "not a regular file"
            shown = str(self.root / relative)
            raise ExportError(f"{shown}: is {what}; the archive never uses one", path=shown)


class FolderLock:
    """An exclusive lock on the export folder, released by the OS if the process dies."""

    def __init__(self, folder: ArchiveFolder) -> None:
        self._folder = folder
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise InvalidParameterError if another export holds it."""
        fd = self._folder.open_lock(LOCK_FILE)
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock; one export per folder is on the caller
            self._fd = fd
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise InvalidParameterError(
                "dest", f"another export is running into {self._folder.root}"
            ) from None
        self._fd = fd

    def release(self) -> None:
        """Release the lock."""
        if self._fd is not None:
            os.close(self._fd)  # closing the file releases the flock
            self._fd = None


def _open_folder(name: str, parent: int, *, create: bool) -> int:
    flags = os.O_RDONLY | _DIRECTORY | _NOFOLLOW
    try:
        return os.open(name, flags, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            raise
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o777, dir_fd=parent)
    return os.open(name, flags, dir_fd=parent)


def _is_link(name: str, parent: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _fsync_fd(fd: int) -> None:
    """Make a rename in the folder durable (POSIX); best effort where refused."""
    with contextlib.suppress(OSError):
        os.fsync(fd)


def same_file(recorded: tuple[int, int, int] | None, now: os.stat_result | None) -> bool:
    """Whether a file's (size, mtime_ns, inode) is the one recorded when it was hashed."""
    if recorded is None or now is None or not stat.S_ISREG(now.st_mode):
        return False
    return recorded == (now.st_size, now.st_mtime_ns, now.st_ino)


def identity(found: os.stat_result) -> tuple[int, int, int]:
    """(size, mtime_ns, inode): what :func:`same_file` compares."""
    return found.st_size, found.st_mtime_ns, found.st_ino
