"""Running the tests against one mutant: a warm fork per run, an import hook serving the
mutated code, the tests that reach its lines, and a timeout."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType, ModuleType
from typing import Any

import pytest

from mutation.operators import Mutant, mutated_code

ROOT = Path(__file__).resolve().parent.parent.parent

#: The child's exit status when the module was imported around the hook (nothing was tested).
HOOK_BYPASSED = 99
# --assert=plain: pytest's rewriting hook would otherwise import the package (marked for rewrite as
# a pytest11 plugin's distribution) ahead of the mutant's hook.
PYTEST_ARGS = ("-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--assert=plain")


class _MutantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the mutated code object for one module name; everything else imports normally."""

    def __init__(self, name: str, path: Path, code: CodeType) -> None:
        self.name, self.path, self.code = name, path, code

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        return importlib.util.spec_from_file_location(fullname, self.path, loader=self)

    def create_module(self, spec: Any) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        exec(self.code, module.__dict__)


def _module_name(rel: str) -> str:
    return rel.removesuffix(".py").replace("/", ".").removesuffix(".__init__")


def preload() -> None:
    """Import what every run needs but the package under test, so each fork starts warm."""
    for name in (
        "pytest",
        "_pytest.python",
        "pytest_asyncio",
        "pytest_timeout",
        "aiohttp",
        "aiohttp.web",
        "attrs",
        "cattrs",
        "multidict",
        "yarl",
        "aioresponses",
        "hypothesis",
    ):
        with contextlib.suppress(ImportError):
            __import__(name)
    leaked = [m for m in sys.modules if m == "vpsbg_support" or m.startswith("vpsbg_support.")]
    if leaked:
        raise SystemExit(f"mutate: preloading imported {leaked[0]}; the fork server cannot work")


def _child(
    rel: str,
    code: CodeType | None,
    tests: Sequence[str],
    log: Path,
    tmp: Path,
    test_timeout: float,
    record: Path | None = None,
) -> None:
    """In the forked child: install the hook, run pytest, exit with its status; with ``record``,
    write there which lines of the module each test ran (and how long it took)."""
    os.setsid()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    status = 3
    try:
        finder = None if code is None else _MutantFinder(_module_name(rel), ROOT / rel, code)
        if finder is not None:
            sys.meta_path.insert(0, finder)
        import pytest

        os.chdir(ROOT)
        args = [*PYTEST_ARGS, f"--timeout={test_timeout:g}", f"--basetemp={tmp}", *tests]
        recorder = None if record is None else _LineRecorder(str(ROOT / rel))
        plugins: list[object] = [recorder] if recorder else [_ExitOnFirstFailure()]
        status = int(pytest.main(args, plugins=plugins))
        if recorder is not None and record is not None:
            recorder.stop()
            record.write_text(json.dumps(recorder.report()))
        module = sys.modules.get(_module_name(rel))
        if finder is not None and module is not None and module.__loader__ is not finder:
            print(f"mutate: {_module_name(rel)} was imported around the mutant's hook")
            status = HOOK_BYPASSED
    except BaseException:
        import traceback

        traceback.print_exc()
        status = 3
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


class _ExitOnFirstFailure:
    """A failed test is all a mutant's run has to tell: exit at once, skipping the teardown a
    broken module can hang in (a server waiting for a handler the mutant left stuck)."""

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            print(f"mutate: killed by {report.nodeid} ({report.when})")
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)


class _LineRecorder:
    """A pytest plugin tracing which lines of one file each test runs (all threads)."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.current: str | None = None
        self.lines: dict[str, set[int]] = {}
        self.durations: dict[str, float] = {}
        self.order: list[str] = []
        sys.settrace(self._trace)
        threading.settrace(self._trace)

    def stop(self) -> None:
        sys.settrace(None)
        threading.settrace(None)  # type: ignore[arg-type]

    def _trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        return self._line if frame.f_code.co_filename == self.filename else None

    def _line(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.lines.setdefault(self.current or "", set()).add(frame.f_lineno)
        return self._line

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> Iterator[None]:
        self.current = item.nodeid
        self.order.append(item.nodeid)
        started = time.perf_counter()
        yield
        self.durations[item.nodeid] = time.perf_counter() - started
        self.current = None

    def report(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "durations": self.durations,
            "lines": {k: sorted(v) for k, v in self.lines.items()},
        }


@dataclass
class Outcome:
    mutant: Mutant | None
    result: str = ""  # killed | survived | timeout | error
    seconds: float = 0.0


@dataclass
class _Running:
    outcome: Outcome
    pid: int
    started: float
    tmp: Path
    limit: float


def run_all(
    rel: str,
    runs: Sequence[tuple[Mutant | None, Sequence[str], float]],
    only: Sequence[str],
    *,
    jobs: int,
    test_timeout: float = 0,
    workdir: Path,
    keep_logs: bool = False,
    record: Path | None = None,
) -> Iterator[Outcome]:
    """Run each mutant's tests (mutant ``None``: the unmutated module), ``jobs`` at a time."""
    queue = list(runs)
    running: dict[int, _Running] = {}
    try:
        while queue or running:
            while queue and len(running) < jobs:
                mutant, tests, limit = queue.pop(0)
                code = None if mutant is None else mutated_code(ROOT / rel, only, mutant.index)
                tag = "base" if mutant is None else str(mutant.index)
                tmp = workdir / f"t{tag}"
                log = workdir / f"{Path(rel).stem}-{tag}.log"
                sys.stdout.flush()
                pid = os.fork()
                if pid == 0:
                    _child(rel, code, tests, log, tmp, test_timeout, record)
                running[pid] = _Running(Outcome(mutant), pid, time.monotonic(), tmp, limit)
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                now = time.monotonic()
                for run in list(running.values()):
                    if now - run.started > run.limit:
                        _kill(run.pid)
                        os.waitpid(run.pid, 0)
                        del running[run.pid]
                        run.outcome.result = "timeout"
                        run.outcome.seconds = now - run.started
                        shutil.rmtree(run.tmp, ignore_errors=True)
                        yield run.outcome
                time.sleep(0.02)
                continue
            run = running.pop(pid)
            code = os.waitstatus_to_exitcode(wait_status)
            run.outcome.seconds = time.monotonic() - run.started
            # pytest: 0 all passed, 1 tests failed, 2 interrupted (a collection error), 3
            # internal error, 4 a plugin (ours) failed to import; a signal (negative) is a crash.
            run.outcome.result = (
                "survived" if code == 0 else "error" if code == HOOK_BYPASSED else "killed"
            )
            shutil.rmtree(run.tmp, ignore_errors=True)
            if not keep_logs and run.outcome.result == "killed":
                tag = "base" if run.outcome.mutant is None else run.outcome.mutant.index
                (workdir / f"{Path(rel).stem}-{tag}.log").unlink(missing_ok=True)
            yield run.outcome
    finally:
        for run in running.values():
            _kill(run.pid)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(run.pid, 0)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def select_tests(record: dict[str, Any], mutant: Mutant) -> list[str]:
    """The tests that run any line of ``mutant``, fastest first (``-x`` stops at the first
    failure); all of them when a line also runs outside a test (at import: a default, a
    constant, a class attribute), none when no test reaches it."""
    span = set(range(mutant.line, mutant.end_line + 1))
    order: list[str] = record["order"]
    durations: dict[str, float] = record["durations"]
    lines = {name: set(seen) for name, seen in record["lines"].items()}
    if span & lines.get("", set()):
        chosen = list(order)
    else:
        chosen = [name for name in order if span & lines.get(name, set())]
    return sorted(chosen, key=lambda name: durations.get(name, 0.0))


def score_of(outcomes: Sequence[Outcome]) -> float:
    killed = sum(o.result in ("killed", "timeout") for o in outcomes)
    return 100.0 * killed / len(outcomes) if outcomes else 100.0
