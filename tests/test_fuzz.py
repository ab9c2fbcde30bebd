"""Whatever a server answers, only ``VPSBGError`` subclasses escape: never KeyError or TypeError.

Every endpoint is fed random statuses (100-599) with random JSON, JSON shaped almost like the
documented bodies, or random bytes.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import BASE, TOKEN
from vpsbg_support import AsyncClient, errors
from vpsbg_support._retry import RetryPolicy

# aiohttp warns about the hostile Content-Disposition values fed below; they are the point here.
pytestmark = [
    pytest.mark.filterwarnings("ignore::aiohttp.BadContentDispositionHeader"),
    pytest.mark.filterwarnings("ignore::aiohttp.BadContentDispositionParam"),
]

ANY_URL = re.compile(r"^https://api\.test/v1/.*$")
NO_RETRY = RetryPolicy(max_retries=0)


async def _stream(c: AsyncClient, _: Path) -> object:
    async with c.tickets.stream_attachment(3, 4) as s:
        return [chunk async for chunk in s.iter_chunks()]


async def _iter_all(c: AsyncClient, _: Path) -> object:
    return [t async for t in c.tickets.iter_all()]


Call = Callable[[AsyncClient, Path], Awaitable[object]]

ENDPOINTS: dict[str, tuple[str, Call]] = {
    "tickets.list": ("GET", lambda c, _: c.tickets.list(page=2, per_page=5)),
    "tickets.iter_all": ("GET", _iter_all),
    "tickets.departments": ("GET", lambda c, _: c.tickets.departments()),
    "tickets.services": ("GET", lambda c, _: c.tickets.services()),
    "tickets.get": ("GET", lambda c, _: c.tickets.get(216)),
    "tickets.create": (
        "POST",
        lambda c, _: c.tickets.create(
            department_id=2,
            subject="Disk full",
            message="Please help",
            attachments=[("a.txt", b"hello")],
        ),
    ),
    "tickets.reply": ("POST", lambda c, _: c.tickets.reply(216, message="Any news?")),
    "tickets.resolve": ("PUT", lambda c, _: c.tickets.resolve(216)),
    "tickets.download_attachment": (
        "GET",
        lambda c, d: c.tickets.download_attachment(3, 4, d / "sub/", overwrite=True),
    ),
    "tickets.stream_attachment": ("GET", _stream),
    "plans.list": ("GET", lambda c, _: c.plans.list()),
    "plans.purchase": ("POST", lambda c, _: c.plans.purchase(plan="basic", billing_cycle=12)),
    "plans.renew": ("POST", lambda c, _: c.plans.renew(billing_cycle=3)),
    "plans.cancel": ("POST", lambda c, _: c.plans.cancel(reason="no", now=True)),
    "plans.undo_cancel": ("DELETE", lambda c, _: c.plans.undo_cancel()),
}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["2024-08-02T11:57:57.000000Z", "opened", "", "1", "-1", "null"])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
#: Keys of the documented bodies, so random values land where the converter looks.
KEYS = [
    "id", "status", "subject", "created_at", "updated_at", "department", "messages", "content",
    "is_customer", "attachments", "name", "size", "mimeType", "data", "links", "meta", "next",
    "current_page", "last_page", "total", "per_page", "message", "errors", "plan", "price",
    "billing_cycle", "amount", "period_from", "period_to", "type", "service_id", "service_label",
]  # fmt: skip
shaped = st.recursive(
    st.dictionaries(st.sampled_from(KEYS), scalars | st.lists(scalars, max_size=2), max_size=6),
    lambda inner: st.dictionaries(st.sampled_from(KEYS), inner | st.lists(inner, max_size=3)),
    max_leaves=4,
)
bodies = (
    json_values.map(lambda v: json.dumps(v).encode())
    | shaped.map(lambda v: json.dumps(v).encode())
    | st.fixed_dictionaries({"data": st.lists(shaped, max_size=3), "meta": shaped}).map(
        lambda v: json.dumps(v).encode()
    )
    | st.binary(max_size=64)
)
statuses = st.integers(min_value=100, max_value=599) | st.sampled_from([200, 201, 204, 429, 503])
headers = st.fixed_dictionaries(
    {},
    optional={
        "Retry-After": st.sampled_from(["0", "-1", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"]),
        "X-RateLimit-Remaining": st.sampled_from(["0", "5", "x", "-3"]),
        "Content-Disposition": st.sampled_from(
            ['attachment; filename="../../etc/passwd"', "attachment; filename*=bad''%ZZ", ";;"]
        ),
        "Content-Length": st.sampled_from(["0", "3", "999999"]),
    },
)


async def _call(name: str, status: int, body: bytes, extra: dict[str, str]) -> None:
    method, call = ENDPOINTS[name]
    with tempfile.TemporaryDirectory() as tmp, aioresponses() as mocked:
        mocked.add(ANY_URL, method=method, status=status, body=body, headers=extra)
        async with AsyncClient(TOKEN, base_url=BASE, retry_policy=NO_RETRY) as client:
            with contextlib.suppress(errors.VPSBGError):
                await call(client, Path(tmp))


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(status=statuses, body=bodies, extra=headers)
async def test_only_library_errors_escape(
    name: str, status: int, body: bytes, extra: dict[str, str]
) -> None:
    await _call(name, status, body, extra)


@pytest.mark.parametrize("name", ["tickets.get", "plans.renew", "tickets.download_attachment"])
@pytest.mark.parametrize("status", [200, 422, 500])
async def test_deeply_nested_json_is_a_library_error(name: str, status: int) -> None:
    deep = b"[" * 5_000 + b"]" * 5_000
    await _call(name, status, deep, {})
    nested: Any = "x"
    for _ in range(500):
        nested = {"message": nested}
    await _call(name, status, json.dumps({"id": 1, "extra": nested}).encode(), {})
