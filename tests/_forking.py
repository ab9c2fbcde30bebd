"""Run a function in a forked child and read back what it reports, with a hang guard."""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Callable

__all__ = ["run_in_fork"]


def run_in_fork(child: Callable[[], str], *, timeout: float) -> tuple[int, str]:
    """Fork; in the child, run ``child`` and send its string back through a pipe.

    The child never returns into pytest: it leaves with ``os._exit`` (0 when ``child`` returned,
    1 when it raised). A child that reports nothing within ``timeout`` seconds (for example one
    waiting forever on the parent's event loop, whose thread does not exist after the fork) is
    killed, so a regression fails the test instead of hanging the run.

    Args:
        child: what to run in the child; its return value is the report.
        timeout: seconds to wait for the child's report and exit (a hang guard).

    Returns:
        The child's exit code (-9 when it was killed) and its report.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.close(read_end)
            os.write(write_end, child().encode("utf-8"))
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    chunks: list[bytes] = []
    with os.fdopen(read_end, "rb") as pipe:
        while select.select([pipe], [], [], timeout)[0]:
            chunk = os.read(pipe.fileno(), 65_536)
            if not chunk:
                break
            chunks.append(chunk)
        else:
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode("utf-8")
