"""An embedded fake of the VPSBG support API (aiohttp.web on loopback) for tests, demos, benchmarks.

``async with FakeVPSBG(seed=1, tickets=20) as fake:`` serves every route the client calls, from
in-memory state (``fake.state``), records every request (``fake.requests``) and injects faults
(``fake.faults``). ``FakeVPSBGThread`` runs one on a background thread for blocking code, and the
pytest plugin provides the ``vpsbg_fake`` and ``vpsbg_fake_factory`` fixtures.
"""

from vpsbg_support.testing._app import FakeVPSBG
from vpsbg_support.testing._faults import Fault, FaultInjector
from vpsbg_support.testing._records import Attachment, Order, Ticket, UploadedFile
from vpsbg_support.testing._state import FakeAPIError, FakeState
from vpsbg_support.testing._thread import FakeVPSBGThread
from vpsbg_support.testing._traffic import RecordedRequest

__all__ = [
    "Attachment",
    "FakeAPIError",
    "FakeState",
    "FakeVPSBG",
    "FakeVPSBGThread",
    "Fault",
    "FaultInjector",
    "Order",
    "RecordedRequest",
    "Ticket",
    "UploadedFile",
]
