"""A small AST mutation runner: does the test suite notice when the retry and rate-limit code is
broken on purpose?

For a module it enumerates mutants (a comparison flipped, ``and``/``or`` swapped, a ``not``
dropped, ``+``/``-`` swapped, a constant changed, ``max``/``min`` swapped, a statement or an ``if``
branch dropped), then runs a fast pytest selection once per mutant and records whether a test
failed (killed), none did (survived), or the run hung (timeout, counted as killed).

Nothing is written to the source tree: each mutant runs in a child forked from a process that has
already imported pytest and the heavy dependencies; in the child an import hook hands Python the
mutated code object for the target module, so the file on disk, its ``.pyc`` and any parallel run
never see it (Ctrl-C leaves nothing to restore).

    python scripts/mutate.py                       # every module in MODULES, 2 jobs
    python scripts/mutate.py --module vpsbg_support/_retry.py --jobs 1
    python scripts/mutate.py --module vpsbg_support/_retry.py --list
    python scripts/mutate.py --module vpsbg_support/_retry.py --tests tests/test_retry_policy.py

Exits 1 when a module scores below ``--min-score`` (default 95%).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import importlib.abc
import importlib.util
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FrameType, ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Module -> the tests that guard it, fastest first (-x stops at the first failure), and which
# functions/classes to mutate (all of the module when empty).
# "equivalent" names survivors that no test can kill, with the reason (printed beside them; they
# still count against the score).


@dataclass(frozen=True)
class Target:
    tests: tuple[str, ...]
    only: tuple[str, ...] = ()
    equivalent: dict[str, str] = field(default_factory=dict)
    #: Below --min-score fails the run (False: reported only).
    gated: bool = True


_FINALIZED = (
    "the last reference to the generator goes when the method returns, and the loop's"
    " async-generator finalizer closes it one step later: the same cleanup, a step later"
)

FAST = ("tests/test_retry_policy.py", "tests/test_retry_mutants.py", "tests/test_pipeline_parts.py")
# The pipeline's own loopback tests; test_hostile.py is left out: its child processes (RSS limits,
# Ctrl-C) take ~50 s and never see the mutant.
PIPELINE = (
    *FAST,
    "tests/test_pipeline_mutants.py",
    "tests/test_resilience.py",
    "tests/test_client_wire.py",
    "tests/test_errors.py",
)

MODULES: dict[str, Target] = {
    "vpsbg_support/_retry.py": Target(
        tests=FAST,
        equivalent={
            "parse_retry_after: value = value.strip() -> pass": "float() and"
            " parsedate_to_datetime() both ignore surrounding whitespace",
            "parse_retry_after: return None -> pass": "a blank value fails float() and"
            " parsedate_to_datetime() alike, which also give None",
            "backoff_delay: 32 -> 33": "the exponent cap only prevents overflow; it shows only"
            " when max_delay > initial_delay * 2**32 (136 years for a 1 s initial delay)",
        },
    ),
    "vpsbg_support/_ratelimit.py": Target(tests=PIPELINE),
    "vpsbg_support/_pipeline.py": Target(
        tests=PIPELINE,
        equivalent={
            "Pipeline.request: False -> True": "restartable is read only when a DownloadError"
            " is thrown back into the attempts, which only download() does",
            "Pipeline.stream: False -> True": "same: a stream's reader raises out of the context"
            " manager, never back into the attempts",
            "Pipeline.request: await attempts.aclose() -> pass": _FINALIZED,
            "Pipeline.stream: await attempts.aclose() -> pass": _FINALIZED,
            "Pipeline.download: await attempts.aclose() -> pass": _FINALIZED,
            "_raise_unchained: error.__context__ = None -> pass": "only Python 3.10 sets a"
            " context there (a task resumed with an exception runs inside the wake-up's except)",
        },
    ),
    # Only the classification: which transport errors prove nothing was sent, which are timeouts.
    # Six mutants: one equivalent alone puts it under 95%, so it is reported, not gated.
    "vpsbg_support/_http.py": Target(
        tests=PIPELINE,
        only=("never_sent", "is_timeout"),
        gated=False,
        equivalent={
            "is_timeout: isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError)"
            " -> isinstance(exc, asyncio.TimeoutError)": "aiohttp.ServerTimeoutError is a"
            " subclass of asyncio.TimeoutError",
        },
    ),
    "vpsbg_support/_failures.py": Target(
        tests=PIPELINE,
        equivalent={
            "body_failure: 0 -> 1": "the default limit is read only for too_large, and every"
            " too_large caller passes its limit",
        },
    ),
}

# --assert=plain: pytest's rewriting hook would otherwise import the package (marked for rewrite as
# a pytest11 plugin's distribution) ahead of the mutant's hook.
HOOK_BYPASSED = 99
PYTEST_ARGS = ("-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--assert=plain")

# --- enumerating and applying mutants ------------------------------------------------------

_CMP_SWAPS: dict[type[ast.cmpop], tuple[type[ast.cmpop], ...]] = {
    ast.Lt: (ast.LtE, ast.GtE),
    ast.LtE: (ast.Lt, ast.Gt),
    ast.Gt: (ast.GtE, ast.LtE),
    ast.GtE: (ast.Gt, ast.Lt),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
}
_BIN_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Pow: ast.Mult,
}
_CALL_SWAPS = {"max": "min", "min": "max"}
_LOGGERS = {"logger", "logging", "log", "_logger", "LOG"}


@dataclass(frozen=True)
class Mutant:
    index: int
    line: int
    end_line: int
    where: str
    before: str
    after: str

    @property
    def key(self) -> str:
        """How a survivor is named in ``Target.equivalent``: ``where: before -> after``."""
        return f"{self.where}: {self.before} -> {self.after}"

    def describe(self) -> str:
        return f"L{self.line} [{self.where}] `{self.before}` -> `{self.after}`"


def _short(node: ast.AST) -> str:
    text = ast.unparse(node).splitlines()[0] if not isinstance(node, ast.cmpop) else ""
    return text if len(text) <= 70 else text[:67] + "..."


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _is_logging(stmt: ast.stmt) -> bool:
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return False
    func = stmt.value.func
    while isinstance(func, ast.Attribute):
        func = func.value
    return isinstance(func, ast.Name) and func.id in _LOGGERS


_DROPPABLE = (
    ast.Expr,
    ast.Assign,
    ast.AnnAssign,
    ast.AugAssign,
    ast.Return,
    ast.Raise,
    ast.Continue,
    ast.Break,
    ast.Pass,
)


def _trivial(body: list[ast.stmt]) -> bool:
    return not body or (len(body) == 1 and isinstance(body[0], _DROPPABLE))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", "")
    return name == "TYPE_CHECKING"


def _union_members(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.Tuple):
        return list(node.elts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union_members(node.left) + _union_members(node.right)
    return [node]


def _union(members: list[ast.expr]) -> ast.expr:
    out = members[0]
    for member in members[1:]:
        out = ast.BinOp(out, ast.BitOr(), member)
    return out


def _tail_returns(body: list[ast.stmt]) -> set[int]:
    """The ``return``/``return None`` statements after which a function would end anyway."""
    if not body:
        return set()
    last = body[-1]
    if isinstance(last, ast.Return):
        value = last.value
        returns_none = value is None or (isinstance(value, ast.Constant) and value.value is None)
        return {id(last)} if returns_none else set()
    if isinstance(last, ast.If):
        return _tail_returns(last.body) | _tail_returns(last.orelse)
    if isinstance(last, ast.With | ast.AsyncWith):
        return _tail_returns(last.body)
    if isinstance(last, ast.Try):
        found = _tail_returns(last.orelse or last.body)
        for handler in last.handlers:
            found |= _tail_returns(handler.body)
        return found
    return set()


def _is_type_alias(stmt: ast.Assign) -> bool:
    """``T = TypeVar("T")`` and the like: typing, not behaviour."""
    value = stmt.value
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id in ("TypeVar", "ParamSpec", "NewType", "TypeAliasType")
    )


def _is_dunder_all(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Assign | ast.AnnAssign) and any(
        isinstance(t, ast.Name) and t.id == "__all__"
        for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
    )


class Mutator(ast.NodeTransformer):
    """Walks a module in a fixed order, offering every mutation point.

    With ``target=None`` it only records the points (``self.mutants``); with ``target=N`` it
    returns the tree with point N applied (and records the points all the same).
    """

    def __init__(self, only: Sequence[str] = (), target: int | None = None) -> None:
        self.only = tuple(only)
        self.target = target
        self.mutants: list[Mutant] = []
        self._scope: list[str] = []
        self._compared: set[int] = set()
        self._tail_returns: set[int] = set()
        self._class_body = False

    # -- helpers --

    @property
    def _where(self) -> str:
        return ".".join(self._scope) or "<module>"

    def _active(self) -> bool:
        if not self.only:
            return True
        where = self._where
        return any(where == o or where.startswith(o + ".") for o in self.only)

    def _offer(self, node: ast.AST, before: str, after: str) -> bool:
        """Record a mutation point; True when it is the one to apply."""
        if not self._active():
            return False
        index = len(self.mutants)
        line = getattr(node, "lineno", 0)
        end = getattr(node, "end_lineno", None) or line
        self.mutants.append(Mutant(index, line, end, self._where, before, after))
        return index == self.target

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> ast.AST:
        self._scope.append(node.name)
        try:
            # Decorators, annotations and docstrings are not behaviour: leave them out.
            body = node.body[1:] if node.body and _is_docstring(node.body[0]) else node.body
            if isinstance(node, ast.ClassDef):
                node.bases = [self.visit(b) for b in node.bases]
            else:
                self.visit(node.args)
                self._tail_returns |= _tail_returns(node.body)
            first = node.body[: len(node.body) - len(body)]
            outer, self._class_body = self._class_body, isinstance(node, ast.ClassDef)
            try:
                node.body = first + self._stmts(body)
            finally:
                self._class_body = outer
        finally:
            self._scope.pop()
        return node

    def _stmts(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in stmts:
            result = self.visit(stmt)
            if isinstance(result, list):
                out.extend(result)
            elif result is not None:
                out.append(result)
        return out or [ast.Pass()]

    # -- scopes and things left alone --

    def visit_Module(self, node: ast.Module) -> ast.AST:
        body = node.body[1:] if node.body and _is_docstring(node.body[0]) else node.body
        node.body = node.body[: len(node.body) - len(body)] + self._stmts(body)
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped  # type: ignore[assignment]

    def visit_arguments(self, node: ast.arguments) -> ast.AST:
        node.defaults = [self.visit(d) for d in node.defaults]
        node.kw_defaults = [d if d is None else self.visit(d) for d in node.kw_defaults]
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None and not _is_dunder_all(node):
            node.value = self.visit(node.value)
        return self._drop(node) if node.value is not None else node

    def visit_Import(self, node: ast.Import) -> ast.AST:
        return node

    visit_ImportFrom = visit_Import  # type: ignore[assignment]

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return node  # message text; its numbers are formats, not behaviour

    # -- statements --

    def _drop(self, node: ast.stmt) -> ast.stmt:
        # A class's field declarations are structure: dropping one only breaks the import.
        if self._class_body and isinstance(node, ast.Assign | ast.AnnAssign):
            return node
        if self._offer(node, _short(node), "pass"):
            return ast.copy_location(ast.Pass(), node)
        return node

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        if _is_logging(node) or isinstance(node.value, ast.Constant):
            return node  # a log line, a docstring, a Protocol's `...`
        self.generic_visit(node)
        return self._drop(node)

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        if _is_dunder_all(node) or _is_type_alias(node):
            return node
        self.generic_visit(node)
        return self._drop(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        swap = _BIN_SWAPS.get(type(node.op))
        if swap is not None:
            mutated = copy.copy(node)
            mutated.op = swap()
            if self._offer(node, _short(node), _short(mutated)):
                return mutated
        return self._drop(node)

    def visit_Return(self, node: ast.Return) -> ast.AST:
        self.generic_visit(node)
        if id(node) in self._tail_returns:
            return node  # dropping it falls off the end: the same None
        return self._drop(node)

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        self.generic_visit(node)
        return self._drop(node)

    visit_Continue = visit_Break = visit_Raise  # type: ignore[assignment]

    def visit_If(self, node: ast.If) -> ast.AST:
        if _is_type_checking(node):
            return node
        node.test = self.visit(node.test)
        node.body = self._stmts(node.body)
        node.orelse = self._stmts(node.orelse) if node.orelse else []
        line = f"if {_short(node.test)}:"
        # A branch of one droppable statement is already covered by dropping that statement.
        if not _trivial(node.body) and self._offer(node, line + " <body>", line + " pass"):
            node.body = [ast.copy_location(ast.Pass(), node.body[0])]
        if not _trivial(node.orelse) and self._offer(
            node, line + " ... else: <body>", line + " ... (no else)"
        ):
            node.orelse = []
        return node

    # -- expressions --

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        # A string compared with (or listed in a tuple compared with) is worth changing.
        for side in (node.left, *node.comparators):
            items = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
            self._compared.update(id(item) for item in items)
        self.generic_visit(node)
        for i, op in enumerate(node.ops):
            for swap in _CMP_SWAPS.get(type(op), ()):
                mutated = copy.copy(node)
                mutated.ops = [*node.ops[:i], swap(), *node.ops[i + 1 :]]
                if self._offer(node, _short(node), _short(mutated)):
                    return mutated
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        mutated = copy.copy(node)
        mutated.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        if self._offer(node, _short(node), _short(mutated)):
            return mutated
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not | ast.USub) and self._offer(
            node, _short(node), _short(node.operand)
        ):
            return node.operand
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        swap = _BIN_SWAPS.get(type(node.op))
        texts = (ast.JoinedStr,)
        if swap is None or any(
            isinstance(side, texts)
            or (isinstance(side, ast.Constant) and isinstance(side.value, str))
            for side in (node.left, node.right)
        ):
            return node
        mutated = copy.copy(node)
        mutated.op = swap()
        if self._offer(node, _short(node), _short(mutated)):
            return mutated
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        # isinstance(x, A | B) / isinstance(x, (A, B)): forget one of the classes.
        if isinstance(node.func, ast.Name) and node.func.id == "isinstance" and len(node.args) == 2:
            members = _union_members(node.args[1])
            for i in range(len(members) if len(members) > 1 else 0):
                rest = members[:i] + members[i + 1 :]
                mutated = copy.copy(node)
                mutated.args = [node.args[0], _union(rest)]
                if self._offer(node, _short(node), _short(mutated)):
                    return ast.copy_location(mutated, node)
        if isinstance(node.func, ast.Name) and node.func.id in _CALL_SWAPS:
            mutated = copy.copy(node)
            mutated.func = ast.Name(_CALL_SWAPS[node.func.id], ast.Load())
            if self._offer(node, _short(node), _short(mutated)):
                return ast.copy_location(mutated, node)
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        options: list[Any] = []
        if isinstance(value, bool):
            options = [not value]
        elif isinstance(value, int | float):
            options = [value + 1] + ([type(value)(0)] if value != 0 else [])
        elif isinstance(value, str) and id(node) in self._compared:
            options = ["X" + value]
        for option in options:
            if self._offer(node, repr(value), repr(option)):
                return ast.copy_location(ast.Constant(option), node)
        return node


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def enumerate_mutants(path: Path, only: Sequence[str]) -> list[Mutant]:
    mutator = Mutator(only)
    mutator.visit(parse(path))
    return mutator.mutants


def mutated_code(path: Path, only: Sequence[str], index: int) -> CodeType:
    tree = Mutator(only, target=index).visit(parse(path))
    ast.fix_missing_locations(tree)
    return compile(tree, str(path), "exec")


# --- running the tests against one mutant ------------------------------------------------------


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


def _preload() -> None:
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
        status = int(pytest.main(args, plugins=[recorder] if recorder else None))
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


# --- the command ------------------------------------------------------------------------------


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


def _score(outcomes: Sequence[Outcome]) -> float:
    killed = sum(o.result in ("killed", "timeout") for o in outcomes)
    return 100.0 * killed / len(outcomes) if outcomes else 100.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", help="module file (repeatable)")
    parser.add_argument("--tests", nargs="+", help="test files/ids instead of the module's map")
    parser.add_argument("--only", nargs="+", help="qualified names to mutate (default: the map)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, help="seconds per mutant (default: from baseline)")
    parser.add_argument(
        "--test-timeout",
        type=float,
        default=5.0,
        help="seconds per test (pytest-timeout): a mutant that hangs one test fails it fast",
    )
    parser.add_argument("--min-score", type=float, default=95.0)
    parser.add_argument(
        "--all-tests",
        action="store_true",
        help="run every test for each mutant (default: only the tests that run its lines)",
    )
    parser.add_argument("--list", action="store_true", help="list mutants, run nothing")
    parser.add_argument("--mutant", type=int, nargs="+", help="run only these mutant numbers")
    parser.add_argument("--keep-logs", metavar="DIR", help="keep every run's pytest output here")
    args = parser.parse_args(argv)

    modules = args.module or list(MODULES)
    failed = False
    workdir = Path(args.keep_logs or tempfile.mkdtemp(prefix="mutate-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if not args.list:
        _preload()
    started = time.monotonic()
    summary: list[str] = []
    try:
        for rel in modules:
            rel = str(Path(rel).resolve().relative_to(ROOT)) if Path(rel).is_absolute() else rel
            target = MODULES.get(rel, Target(tests=()))
            only = tuple(args.only or target.only)
            tests = tuple(args.tests or target.tests)
            mutants = enumerate_mutants(ROOT / rel, only)
            if args.mutant:
                mutants = [m for m in mutants if m.index in args.mutant]
            if args.list:
                for m in mutants:
                    print(f"#{m.index} {m.describe()}")
                continue
            if not tests:
                raise SystemExit(f"mutate: no tests mapped for {rel}; pass --tests")
            print(f"== {rel}: {len(mutants)} mutants; tests: {' '.join(tests)}", flush=True)
            record = workdir / f"{Path(rel).stem}-lines.json"
            (base,) = run_all(
                rel,
                [(None, tests, 1800.0)],
                only,
                jobs=1,
                test_timeout=args.test_timeout,
                workdir=workdir,
                record=record,
            )
            if base.result != "survived":
                log = workdir / f"{Path(rel).stem}-base.log"
                print(log.read_text(errors="replace")[-3000:] if log.exists() else "")
                raise SystemExit(f"mutate: the tests fail on the unmutated {rel}: fix them first")
            module_started = time.monotonic()
            outcomes: list[Outcome] = []
            runs: list[tuple[Mutant | None, Sequence[str], float]] = []
            lines = json.loads(record.read_text())
            for m in mutants:
                chosen = tests if args.all_tests else select_tests(lines, m)
                # Twice what the chosen tests took in the (traced, so slower) baseline, plus
                # the start: a hang costs little more than the tests themselves.
                took = sum(lines["durations"].get(t, 0.0) for t in chosen)
                limit = args.timeout or (5.0 + 2 * (base.seconds if args.all_tests else took))
                if chosen:
                    runs.append((m, chosen, limit))
                else:  # no test runs this line: nothing to start
                    outcomes.append(Outcome(m, "uncovered"))
            for outcome in run_all(
                rel,
                runs,
                only,
                jobs=args.jobs,
                test_timeout=args.test_timeout,
                workdir=workdir,
                keep_logs=bool(args.keep_logs),
            ):
                outcomes.append(outcome)
                print(
                    {"killed": ".", "timeout": "T", "survived": "S"}.get(outcome.result, "E"),
                    end="",
                    flush=True,
                )
            print()
            outcomes.sort(key=lambda o: o.mutant.index if o.mutant else -1)
            score = _score(outcomes)
            counts = {
                k: sum(o.result == k for o in outcomes)
                for k in ("killed", "timeout", "survived", "uncovered", "error")
            }
            line = (
                f"{rel}: {score:.1f}% killed ({counts['killed'] + counts['timeout']}/"
                f"{len(outcomes)}; {counts['timeout']} by timeout, {counts['survived']} survived"
                + (f", {counts['uncovered']} not reached" if counts["uncovered"] else "")
                + (f", {counts['error']} errors" if counts["error"] else "")
                + f"; {time.monotonic() - module_started:.0f}s)"
                + ("" if target.gated else " [not gated]")
            )
            print(line)
            summary.append(line)
            for o in outcomes:
                if o.result in ("survived", "uncovered", "error") and o.mutant is not None:
                    why = target.equivalent.get(o.mutant.key)
                    note = f"  (equivalent: {why})" if why else ""
                    print(f"  {o.result}: #{o.mutant.index} {o.mutant.describe()}{note}")
            if (target.gated and score < args.min_score) or counts["error"]:
                failed = True
    except KeyboardInterrupt:
        print("\nmutate: interrupted (the source tree was never modified)")
        return 130
    finally:
        if not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
    if summary:
        print(f"\n== summary ({time.monotonic() - started:.0f}s, {args.jobs} jobs)")
        print("\n".join(summary))
        if failed:
            print(f"mutate: a module is below {args.min_score:g}% (or had errors)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
