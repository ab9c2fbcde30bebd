"""Start ``python -m MODULE`` so that Ctrl-C (SIGINT) reaches it as it would in a terminal.

A process started as a background job (``cmd &``, some CI runners) inherits SIGINT as ignored,
and Python keeps an inherited SIG_IGN; a test that presses Ctrl-C on such a child would wait
forever. The prelude restores Python's own handler first, then runs the module as ``-m`` does.
"""

from __future__ import annotations

import subprocess
import sys

_PRELUDE = (
    "import runpy, signal, sys; "
    "signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv = sys.argv[1:]; "
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)"
)


def interruptible(module: str, *args: str) -> list[str]:
    """The command line for ``python -m module *args`` with Ctrl-C enabled."""
    return [sys.executable, "-c", _PRELUDE, module, *args]


def stop(process: subprocess.Popen[str], timeout: float) -> None:
    """Wait for ``process``; if it does not end in time, kill it so the test fails, not hangs."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
