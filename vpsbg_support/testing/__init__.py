"""An embedded fake of the VPSBG support API (aiohttp.web on loopback) for tests, demos, benchmarks.

``async with FakeVPSBG(seed=1, tickets=20) as fake:`` serves every route the client calls, from
in-memory state (``fake.state``), records every request (``fake.requests``) and injects faults
(``fake.faults``). ``FakeVPSBGThread`` runs one on a background thread for blocking code, and the
pytest plugin provides the ``vpsbg_fake`` and ``vpsbg_fake_factory`` fixtures. ``ROUTE_NAMES``
(and the ``RouteName`` literal type) are the names ``count`` and ``faults.add`` take.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vpsbg_support.testing._app import FakeVPSBG
    from vpsbg_support.testing._faults import Fault, FaultInjector
    from vpsbg_support.testing._names import ROUTE_NAMES, RouteName
    from vpsbg_support.testing._records import (
        Attachment,
        Cancellation,
        Order,
        Ticket,
        UploadedFile,
    )
    from vpsbg_support.testing._state import FakeAPIError, FakeState
    from vpsbg_support.testing._thread import FakeVPSBGThread
    from vpsbg_support.testing._traffic import RecordedRequest

__all__ = [
    "ROUTE_NAMES",
    "Attachment",
    "Cancellation",
    "FakeAPIError",
    "FakeState",
    "FakeVPSBG",
    "FakeVPSBGThread",
    "Fault",
    "FaultInjector",
    "Order",
    "RecordedRequest",
    "RouteName",
    "Ticket",
    "UploadedFile",
]

# Imported on first use: pytest imports this package whenever it loads our pytest11 plugin (in
# every project that installs vpsbg-support), which must stay cheap and must not import
# aiohttp.web before coverage starts.
_HOMES = {
    "FakeVPSBG": "_app",
    "Fault": "_faults",
    "FaultInjector": "_faults",
    "ROUTE_NAMES": "_names",
    "RouteName": "_names",
    "Attachment": "_records",
    "Cancellation": "_records",
    "Order": "_records",
    "Ticket": "_records",
    "UploadedFile": "_records",
    "FakeAPIError": "_state",
    "FakeState": "_state",
    "FakeVPSBGThread": "_thread",
    "RecordedRequest": "_traffic",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
