"""Sanitising message HTML on worker processes while the pages are assembled and written.

nh3 holds the GIL while it cleans, and a full render cleans every message once: the bulk of
its CPU. So the distinct HTML bodies of a batch of pages go to a few worker processes (plain
strings there and back: cheap to pickle), and the page assembly then looks each one up. The
pages are the same bytes either way: a worker runs the very :func:`sanitize_message` the
calling process would. A render of fewer bodies than a chunk starts no process at all; a
platform where processes cannot start renders in the calling process.

Each worker is ``python -m vpsbg_support.archive._prepare``: a fresh interpreter speaking
length-prefixed ``marshal``-ed lists of strings over its stdin and stdout. Not
``multiprocessing``: its ``spawn`` and ``forkserver`` re-run the caller's ``__main__`` in every
worker (a script without an ``if __name__ == "__main__"`` guard would export again), and
``fork`` copies a process whose other threads may hold locks.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import queue
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

from vpsbg_support._constants import HTML_RENDER_CHUNK, HTML_RENDER_PROCESSES
from vpsbg_support.archive._htmltext import html_to_text, looks_like_html
from vpsbg_support.archive._sanitize import sanitize_many

__all__ = ["Prepared", "Preparer", "texts_many"]

#: What keeps a worker from being used: it could not start, or died.
_POOL_ERRORS = (OSError, EOFError, ValueError)
_HEADER = 8
#: A message on a worker's pipe is at most this long (a batch's bodies are a few MiB).
_LARGEST = 1 << 30
#: A worker that does not exit this long after its input closed is killed.
_EXIT_WAIT = 5.0


def texts_many(contents: list[str]) -> list[str]:
    """:func:`html_to_text` over a list (the CSV's first messages, on a worker)."""
    return [html_to_text(content) for content in contents]


_FUNCTIONS: dict[str, Callable[[list[str]], list[str]]] = {
    "sanitize": sanitize_many,
    "text": texts_many,
}


def _send(out: IO[bytes], value: tuple[str, list[str]] | list[str]) -> None:
    data = marshal.dumps(value)
    out.write(len(data).to_bytes(_HEADER, "big") + data)
    out.flush()


def _receive(source: IO[bytes]) -> object:
    header = source.read(_HEADER)
    if len(header) < _HEADER:
        raise EOFError("the worker's pipe closed")
    size = int.from_bytes(header, "big")
    if size > _LARGEST:
        raise ValueError("the pipe announced more than a batch can hold")
    data = source.read(size)
    if len(data) < size:
        raise EOFError("the worker's pipe closed")
    return marshal.loads(data)


class _Worker:
    """One worker process and the pipes to it (used by one thread at a time)."""

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, path) if p)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "vpsbg_support.archive._prepare"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def call(self, kind: str, items: list[str]) -> list[str]:
        assert self._process.stdin is not None and self._process.stdout is not None
        _send(self._process.stdin, (kind, items))
        answer = _receive(self._process.stdout)
        if not isinstance(answer, list) or len(answer) != len(items):
            raise ValueError("the worker answered something else")
        return answer

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self._process.stdin is not None:
                self._process.stdin.close()
        try:
            self._process.wait(_EXIT_WAIT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


class _Pool:
    """Worker processes, each driven by a thread of its own (which waits on its pipe)."""

    def __init__(self, processes: int) -> None:
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._workers: list[_Worker] = []
        try:
            for _ in range(processes):
                self._workers.append(_Worker())
        except BaseException:
            self.close()
            raise
        for worker in self._workers:
            self._idle.put(worker)
        self._threads = ThreadPoolExecutor(processes, thread_name_prefix="vpsbg-archive-prep")

    def submit(self, kind: str, items: list[str]) -> Future[list[str]]:
        return self._threads.submit(self._call, kind, items)

    def _call(self, kind: str, items: list[str]) -> list[str]:
        worker = self._idle.get()
        try:
            return worker.call(kind, items)
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        if hasattr(self, "_threads"):
            self._threads.shutdown(wait=True, cancel_futures=True)
        for worker in self._workers:
            worker.close()


#: A part of a list sent to a worker: where it starts and ends, and the worker's answer.
_Part = tuple[int, int, "Future[list[str]]"]


def _gather(
    items: list[str], parts: list[_Part], local: Callable[[list[str]], list[str]]
) -> list[str]:
    """The workers' answers in order; a part whose worker broke is done here."""
    result: list[str] = []
    for start, end, future in parts:
        try:
            result.extend(future.result())
        except _POOL_ERRORS:
            result.extend(local(items[start:end]))
    return result


class Prepared:
    """The sanitised bodies of one batch, ready (or being made ready) on the workers."""

    def __init__(self, contents: list[str], parts: list[_Part]) -> None:
        self._contents = contents
        self._parts = parts

    def result(self) -> Mapping[str, str]:
        """The sanitised HTML of each body sent, by body (waits for the workers)."""
        done = _gather(self._contents, self._parts, sanitize_many)
        return dict(zip(self._contents, done, strict=True))


class Preparer:
    """Sends batches of message bodies to worker processes; a context manager.

    Args:
        processes: worker processes to use; 1 or less uses none.
        chunk: bodies sent to a worker at once, at least; fewer are left to the caller.
    """

    def __init__(self, processes: int | None = None, chunk: int | None = None) -> None:
        self._processes = HTML_RENDER_PROCESSES if processes is None else processes
        self._chunk = max(1, HTML_RENDER_CHUNK if chunk is None else chunk)
        self._pool: _Pool | None = None
        self._broken = self._processes <= 1

    def __enter__(self) -> Preparer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _workers(self) -> _Pool | None:
        if self._pool is None and not self._broken:
            try:
                self._pool = _Pool(self._processes)
            except _POOL_ERRORS:
                self._broken = True
        return self._pool

    def sanitize(self, contents: Iterable[str | None]) -> Prepared:
        """Start sanitising the distinct HTML bodies among ``contents`` on the workers.

        Returns:
            A handle whose ``result()`` maps each body sent to its safe HTML; bodies not sent
            (plain text, or too few to be worth a worker) are for :func:`sanitize_message`.
        """
        distinct = list(dict.fromkeys(c for c in contents if c and looks_like_html(c)))
        parts = self._spread(distinct, "sanitize")
        return Prepared(distinct, parts) if parts else Prepared([], [])

    def texts(self, contents: list[str]) -> list[str]:
        """:func:`html_to_text` of each of ``contents``, on the workers when they are many."""
        parts = self._spread(contents, "text")
        return _gather(contents, parts, texts_many) if parts else texts_many(contents)

    def _spread(self, items: list[str], kind: str) -> list[_Part]:
        """Send ``items`` to the workers in a part per worker; none when too few or no pool."""
        if len(items) < self._chunk:
            return []
        pool = self._workers()
        if pool is None:
            return []
        size = max(self._chunk, -(-len(items) // self._processes))
        parts: list[_Part] = []
        try:
            for start in range(0, len(items), size):
                end = min(len(items), start + size)
                parts.append((start, end, pool.submit(kind, items[start:end])))
        except _POOL_ERRORS:
            self._broken = True
            for _, _, future in parts:
                future.cancel()
            return []
        return parts


def _serve(source: IO[bytes], out: IO[bytes]) -> None:
    """A worker's loop: answer each ``(kind, items)`` until the input closes."""
    while True:
        try:
            request = _receive(source)
        except EOFError:
            return
        if not (isinstance(request, tuple) and len(request) == 2):
            raise ValueError("not a request")
        kind, items = request
        _send(out, _FUNCTIONS[str(kind)](list(items)))


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
