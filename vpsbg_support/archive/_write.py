"""Writing the archive's view files: atomic and fsynced, never through a symbolic link.

A file is written to a temporary file beside it, fsynced, then renamed over the old one (the
rename replaces a symbolic link itself, never its target); the folder is fsynced after. Folders
the views create inside the archive folder must be real folders: a symbolic link there could
send the pages anywhere on the disk, so it is refused.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from vpsbg_support._files import _fsync_folder, flush_to_disk, replacing
from vpsbg_support.errors import InvalidParameterError

__all__ = ["read_file", "real_folder", "sync_folder", "write_file", "write_if_changed"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def real_folder(path: Path) -> Path:
    """Create ``path`` (one level) if missing and make sure it is a real folder.

    Args:
        path: the folder, whose parent exists.

    Returns:
        ``path``.

    Raises:
        InvalidParameterError: ``path`` is a symbolic link or not a folder.
    """
    with contextlib.suppress(FileExistsError):
        os.mkdir(path)
    if path.is_symlink() or not path.is_dir():
        raise InvalidParameterError(
            "dest", f"{path} is a symbolic link or not a folder; the archive never writes there"
        )
    return path


def read_file(path: Path, limit: int = -1) -> bytes | None:
    """The bytes of a regular file (up to ``limit``), or None when missing, a link or unreadable.

    Args:
        path: the file.
        limit: read at most this many bytes; -1 for all.

    Returns:
        Its bytes, or None.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_BINARY", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read(limit)


def write_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (the folder is synced by :func:`sync_folder`).

    Args:
        path: the target file.
        data: its new content.
    """
    with replacing(path, overwrite=True) as out:
        out.write(data)
        flush_to_disk(out)


def sync_folder(path: Path) -> None:
    """Make the renames done in a folder durable."""
    _fsync_folder(path)


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``path`` (atomically, durably) unless it already holds exactly ``data``.

    Args:
        path: the target file.
        data: its content.

    Returns:
        True when the file was written.
    """
    if read_file(path) == data:
        return False
    write_file(path, data)
    sync_folder(path.parent)
    return True
