"""Every public method a user calls documents its parameters, what it returns and what it raises,
on the async API and on the generated blocking one alike."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest

import vpsbg_support
from vpsbg_support import export
from vpsbg_support._sync import Plans, Tickets
from vpsbg_support.resources import AsyncPlans, AsyncTickets

#: Classes users construct themselves: their __init__ is documented too.
CONSTRUCTED = [vpsbg_support.AsyncClient, vpsbg_support.Client]
#: Classes users receive from the library: their public methods are documented.
RECEIVED = [
    AsyncTickets,
    AsyncPlans,
    Tickets,
    Plans,
    vpsbg_support.AttachmentStream,
    vpsbg_support.SyncAttachmentStream,
]
NO_RAISES = {"close", "aclose"}


def public_callables() -> Iterator[tuple[str, Any]]:
    for cls in CONSTRUCTED + RECEIVED:
        for name, member in vars(cls).items():
            if name.startswith("_") and not (name == "__init__" and cls in CONSTRUCTED):
                continue
            if callable(member):
                yield f"{cls.__name__}.{name}", member
    yield "export.export_tickets", export.export_tickets


CALLABLES = list(public_callables())


def test_the_surface_is_covered() -> None:
    names = {name for name, _ in CALLABLES}
    assert {"AsyncTickets.create", "Tickets.create", "Client.__init__"} <= names


@pytest.mark.parametrize(("name", "func"), CALLABLES, ids=[n for n, _ in CALLABLES])
def test_public_callable_is_documented(name: str, func: Any) -> None:
    doc = inspect.getdoc(func) or ""
    assert doc, f"{name} has no docstring"
    signature = inspect.signature(func)
    params = [p for p in signature.parameters if p != "self"]
    if params:
        assert "Args:" in doc, f"{name} does not document its parameters"
        for param in params:
            assert f"{param}:" in doc or f"{param} " in doc, f"{name}: {param} undocumented"
    returns = signature.return_annotation
    if name.endswith("__init__") or returns in (None, "None"):
        pass
    else:
        assert "Returns:" in doc or "Yields:" in doc, f"{name} does not say what it returns"
    if name.rsplit(".", 1)[-1] not in NO_RAISES:
        assert "Raises:" in doc, f"{name} does not say what it raises"
