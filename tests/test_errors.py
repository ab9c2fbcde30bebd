"""Each error status maps to its class; any error body shape (or none) is handled."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aioresponses import aioresponses

from tests.conftest import BASE, TOKEN
from vpsbg_support import AsyncClient, errors


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (409, errors.APIStatusError),
        (422, errors.UnprocessableEntityError),
        (423, errors.LockedError),
        (429, errors.RateLimitError),
        (500, errors.InternalServerError),
        (502, errors.InternalServerError),
        (503, errors.InternalServerError),
    ],
)
async def test_status_maps_to_class(
    client: AsyncClient, mocked: aioresponses, status: int, cls: type[errors.APIStatusError]
) -> None:
    mocked.get(f"{BASE}/support/tickets/1", status=status, payload={"message": "Nope."})
    with pytest.raises(cls) as info:
        await client.tickets.get(1)
    err = info.value
    assert type(err) is cls
    assert isinstance(err, errors.VPSBGError)
    assert err.status == status and err.message == "Nope."
    assert err.body == {"message": "Nope."}
    assert "Nope." in str(err) and str(status) in str(err)


async def test_422_exposes_field_errors(client: AsyncClient, mocked: aioresponses) -> None:
    body = {
        "message": "The subject field must be at least 3 characters.",
        "errors": {"subject": ["The subject field must be at least 3 characters."], "x": "one"},
    }
    mocked.post(f"{BASE}/support/tickets", status=422, payload=body)
    with pytest.raises(errors.UnprocessableEntityError) as info:
        await client.tickets.create(department_id=2, subject="Disk", message="Hello")
    assert info.value.errors == {
        "subject": ["The subject field must be at least 3 characters."],
        "x": ["one"],
    }
    assert info.value.headers["Content-Type"].startswith("application/json")


async def test_429_exposes_retry_after(client: AsyncClient, mocked: aioresponses) -> None:
    mocked.get(f"{BASE}/support/plans", status=429, headers={"Retry-After": "17"}, body=b"")
    with pytest.raises(errors.RateLimitError) as info:
        await client.plans.list()
    assert info.value.retry_after == 17.0
    assert info.value.body is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><body>Bad Gateway</body></html>",
        b"[1, 2, 3]",
        b'"just a string"',
        b'{"error": "weird"}',
        b'{"message": 42, "errors": [1, 2]}',
        b"\xff\xfe\x00garbage",
    ],
)
async def test_any_error_body_shape(client: AsyncClient, mocked: aioresponses, body: bytes) -> None:
    mocked.get(f"{BASE}/support/tickets/1", status=422, body=body)
    with pytest.raises(errors.UnprocessableEntityError) as info:
        await client.tickets.get(1)
    assert isinstance(info.value.errors, dict)
    assert str(info.value).startswith("HTTP 422")


async def test_token_scrubbed_from_error_text(client: AsyncClient, mocked: aioresponses) -> None:
    mocked.get(f"{BASE}/support/tickets/1", status=401, payload={"message": f"bad token {TOKEN}"})
    with pytest.raises(errors.AuthenticationError) as info:
        await client.tickets.get(1)
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value.body)


async def test_5xx_on_post_says_to_check_before_retrying(
    client: AsyncClient, mocked: aioresponses
) -> None:
    mocked.post(f"{BASE}/support/renew", status=500, payload={"message": "Server Error"})
    with pytest.raises(errors.InternalServerError) as info:
        await client.plans.renew(billing_cycle=1)
    assert info.value.request_sent is True
    assert "check" in str(info.value)


async def test_connection_refused_is_typed_and_not_sent() -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused.
    async with AsyncClient(TOKEN, base_url="http://127.0.0.1:1/v1", max_retries=0) as client:
        with pytest.raises(errors.APIConnectionError) as info:
            await client.plans.renew(billing_cycle=1)
    assert info.value.request_sent is False
    assert TOKEN not in str(info.value)


def test_error_classes_are_exported() -> None:
    import vpsbg_support

    exported: dict[str, Any] = vars(vpsbg_support)
    for name in errors.__all__:
        if name != "status_error_class":
            assert exported[name] is getattr(errors, name)
