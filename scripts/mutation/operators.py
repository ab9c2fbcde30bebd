"""The mutants: which changes to a module are tried, found and applied on its AST."""

from __future__ import annotations

import ast
import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import Any

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
