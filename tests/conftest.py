"""Shared fixtures: documented example bodies, a client wired to a fake base URL."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aioresponses.core
import pytest

from vpsbg_support import AsyncClient

DATA = Path(__file__).parent / "data"
TOKEN = "tok-3f9a-SECRET-7c1e"
BASE = "https://api.test/v1"


class _CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 predates aiohttp 3.14's required ``stream_writer`` argument."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _NoWriter())
        super().__init__(*args, **kwargs)


class _NoWriter:
    output_size = 0


if "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters:
    aioresponses.core.ClientResponse = _CompatResponse  # type: ignore[misc]


def example(name: str) -> Any:
    """A documented example body, as copied from the VPSBG docs into tests/data."""
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture
async def client() -> AsyncIterator[AsyncClient]:
    async with AsyncClient(TOKEN, base_url=BASE, max_retries=0) as c:
        yield c
