"""The generated blocking classes mirror the async API exactly, and the staleness check bites."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from vpsbg_support import _sync

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "generate_sync.py"
SYNC_FILE = ROOT / "vpsbg_support" / "_sync.py"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_sync", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_sync"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def pairs(gen: ModuleType) -> Iterator[tuple[Any, type, type]]:
    for spec in gen.SPECS:
        async_cls = getattr(importlib.import_module(spec.module), spec.async_name)
        yield spec, async_cls, getattr(_sync, spec.sync_name)


def async_members(gen: ModuleType, spec: Any, async_cls: type) -> dict[str, Any]:
    members = {}
    for name, member in gen.public_callables(async_cls).items():
        if (spec.async_name, name) in gen.SKIPPED:
            continue
        if spec.kind == "root" and name in gen.ROOT_BY_BASE:
            continue
        if gen.is_async_api(member) or name == "__init__":
            members[name] = member
    return members


def function_of(member: Any) -> Callable[..., Any]:
    target: Any = member.fget if isinstance(member, property) else member
    function: Callable[..., Any] = getattr(target, "__func__", target)
    return function


def test_every_async_member_has_a_twin_with_the_same_signature_and_doc(gen: ModuleType) -> None:
    checked = 0
    for spec, async_cls, sync_cls in pairs(gen):
        for name, member in async_members(gen, spec, async_cls).items():
            twin = inspect.getattr_static(sync_cls, name)
            a_sig = inspect.signature(function_of(member))
            s_sig = inspect.signature(function_of(twin))
            dropped = gen.EXCLUDED_PARAMS.get((spec.async_name, name), {})
            a_params = [p for p in a_sig.parameters.values() if p.name not in dropped]
            assert [(p.name, p.kind, p.default) for p in a_params] == [
                (p.name, p.kind, p.default) for p in s_sig.parameters.values()
            ], f"{spec.sync_name}.{name}"
            assert [gen.map_names(str(p.annotation)) for p in a_params] == [
                str(p.annotation) for p in s_sig.parameters.values()
            ], f"{spec.sync_name}.{name}"
            a_doc = gen.drop_doc_args(inspect.getdoc(function_of(member)) or "", set(dropped))
            assert inspect.getdoc(function_of(twin)) == gen.sync_docstring(a_doc)
            checked += 1
    assert checked >= 17  # 8 ticket methods, 5 plan methods, the client's, the stream's


def test_bound_functions_become_client_methods_without_the_client_argument(
    gen: ModuleType,
) -> None:
    assert gen.BOUND_FUNCTIONS, "export_tickets is offered on Client"
    for bound in gen.BOUND_FUNCTIONS:
        function = getattr(importlib.import_module(bound.module), bound.name)
        twin = getattr(_sync.Client, bound.sync_name or bound.name)
        a_params = list(inspect.signature(function).parameters.values())[1:]
        s_params = list(inspect.signature(twin).parameters.values())[1:]
        assert [(p.name, p.kind, p.default) for p in a_params] == [
            (p.name, p.kind, p.default) for p in s_params
        ]
        node = gen.SourceModule(bound.module).find(bound.name)
        assert inspect.getdoc(twin) == gen.sync_docstring(gen.bound_doc(bound, node))
        assert "client:" not in (inspect.getdoc(twin) or "")


def test_return_annotations_are_mapped(gen: ModuleType) -> None:
    tickets = _sync.Tickets
    assert inspect.signature(tickets.get).return_annotation == "Ticket"
    assert inspect.signature(tickets.iter_all).return_annotation == "Iterator[Ticket]"
    assert (
        inspect.signature(tickets.stream_attachment).return_annotation
        == "AbstractContextManager[SyncAttachmentStream]"
    )
    assert inspect.signature(_sync.Plans.cancel).return_annotation == "Order | None"
    assert inspect.getattr_static(_sync.Client, "tickets").fget.__annotations__ == {
        "return": "Tickets"
    }


def test_client_init_mirrors_async_client_without_the_session(gen: ModuleType) -> None:
    from vpsbg_support._client import AsyncClient

    async_params = list(inspect.signature(AsyncClient.__init__).parameters)
    sync_params = list(inspect.signature(_sync.Client.__init__).parameters)

    assert sync_params == [p for p in async_params if p != "session"]
    assert "session:" not in (inspect.getdoc(_sync.Client.__init__) or "")
    assert "Blocking client" in (_sync.Client.__doc__ or "")


def run_check(*extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--check", *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_check_passes_on_the_committed_file() -> None:
    proc = run_check()
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_fails_with_a_diff_on_a_tampered_copy(tmp_path: Path) -> None:
    tampered = tmp_path / "_sync.py"
    text = SYNC_FILE.read_text(encoding="utf-8")
    tampered.write_text(text.replace("One ticket with all", "One ticket, with all"), "utf-8")

    proc = run_check("--target", str(tampered))

    assert proc.returncode == 1
    assert '-        """One ticket, with all' in proc.stdout
    assert '+        """One ticket with all' in proc.stdout
    assert "stale" in proc.stderr


@pytest.mark.parametrize(
    ("committed", "tampered"),
    [
        ("per_page: int | None = None", "per_page: int | None = 50"),  # a default
        ("def get(self, ticket_id: int | str)", "def get(self, ticket_id: int)"),  # annotation
        ("Mark a ticket as resolved.", "Mark a ticket resolved."),  # a docstring
    ],
    ids=["default", "annotation", "docstring"],
)
def test_check_fails_on_any_hand_edit(tmp_path: Path, committed: str, tampered: str) -> None:
    text = SYNC_FILE.read_text(encoding="utf-8")
    assert committed in text
    target = tmp_path / "_sync.py"
    target.write_text(text.replace(committed, tampered, 1), "utf-8")

    proc = run_check("--target", str(target))

    assert proc.returncode == 1
    assert "stale" in proc.stderr
    diff = proc.stdout.splitlines()
    assert any(line.startswith("-") and tampered in line for line in diff)
    assert any(line.startswith("+") and committed in line for line in diff)


def test_check_does_not_depend_on_the_working_directory(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_stray_generated_files_are_found(gen: ModuleType, tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    current = package / "_sync.py"
    current.write_text(gen.HEADER, "utf-8")
    (package / "sub" / "_sync_old.py").write_text(gen.HEADER + "class Client: ...\n", "utf-8")
    (package / "plain.py").write_text('"""Hand-written."""\n', "utf-8")

    assert gen.stray_generated_files(package, current) == [package / "sub" / "_sync_old.py"]
    assert gen.stray_generated_files(gen.PACKAGE, gen.TARGET) == []


def test_check_names_an_extra_method(tmp_path: Path) -> None:
    extra = '''
    def frobnicate(self) -> None:
        """Gone from the async API long ago."""
        return None
'''
    text = SYNC_FILE.read_text(encoding="utf-8")
    anchor = "class Plans(SyncResource):"
    head, tail = text.split(anchor)
    tampered = tmp_path / "_sync.py"  # the method goes at the end of Tickets, before Plans
    tampered.write_text(head.rstrip("\n") + "\n" + extra + "\n\n" + anchor + tail, "utf-8")

    proc = run_check("--target", str(tampered))

    assert proc.returncode == 1
    assert "Tickets.frobnicate: extra" in proc.stderr


def test_check_names_a_missing_twin(tmp_path: Path) -> None:
    text = SYNC_FILE.read_text(encoding="utf-8")
    start = text.index("    def undo_cancel(")
    end = text.index("\n\nclass ", start)
    tampered = tmp_path / "_sync.py"
    tampered.write_text(text[:start].rstrip() + "\n" + text[end:], "utf-8")

    proc = run_check("--target", str(tampered))

    assert proc.returncode == 1
    assert "Plans.undo_cancel: no blocking twin" in proc.stderr


SYNTHETIC = '''
"""A stand-in async API module for generator tests."""

from __future__ import annotations

from collections.abc import AsyncIterator


class AsyncThing:
    """Things."""

    async def fetch(self, key: str, *, fresh: bool = False) -> int:
        """Fetch one."""
        return 1

    async def walk(self, step: int = 2) -> AsyncIterator[str]:
        """Walk them."""
        yield "x"

    def helper(self) -> int:
        """A public sync method nobody decided about."""
        return 0


async def export_all(client: object, dest: str, *, limit: int | None = None) -> int:
    """Export everything to ``dest``."""
    return 0
'''


@pytest.fixture
def synthetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "synthetic_async_api.py").write_text(textwrap.dedent(SYNTHETIC), "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "synthetic_async_api"


def test_generator_refuses_a_public_member_without_a_decision(
    gen: ModuleType, synthetic: str
) -> None:
    spec = gen.ClassSpec(synthetic, "AsyncThing", "Thing", "resource")

    with pytest.raises(gen.GenerationError, match=r"AsyncThing.helper has no blocking twin"):
        gen.read_class(spec, gen.SourceModule(synthetic))


def test_generator_renders_coroutines_generators_and_bound_functions(
    gen: ModuleType, synthetic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(gen.SKIPPED, ("AsyncThing", "helper"), "test")
    module = gen.SourceModule(synthetic)
    imports = gen.Imports()
    cls = gen.read_class(gen.ClassSpec(synthetic, "AsyncThing", "Thing", "resource"), module)
    fetch, walk = cls.methods

    assert "return self._runner.run(self._async.fetch(key, fresh=fresh))" in gen.render_method(
        fetch, module, imports
    )
    rendered_walk = gen.render_method(walk, module, imports)
    assert "def walk(self, step: int = 2) -> Iterator[str]:" in rendered_walk
    assert "return self._runner.iterate(self._async.walk(step))" in rendered_walk

    node = module.find("export_all")
    bound = gen.Method("export_all", node, "coroutine", "Export everything to ``dest``.")
    rendered = gen.render_method(bound, module, imports, bound_function="export_all")
    assert "def export_all(self, dest: str, *, limit: int | None = None) -> int:" in rendered
    assert "return self._runner.run(export_all(self._async, dest, limit=limit))" in rendered
