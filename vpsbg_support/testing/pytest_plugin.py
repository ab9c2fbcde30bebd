"""Pytest plugin (entry point ``pytest11``): fixtures that run a ``FakeVPSBG`` for one test.

``vpsbg_fake`` is a running :class:`~vpsbg_support.testing.FakeVPSBGThread` (its own loop on a
thread, so it serves sync and async tests alike). Configure it with
``@pytest.mark.vpsbg_fake(seed=1, tickets=30, ...)`` (any ``FakeVPSBG`` keyword), or start more,
differently configured fakes with ``vpsbg_fake_factory(seed=..., tickets=...)``.

Async tests run on pytest-asyncio: with it installed and nothing configured, an ``async def`` test
that uses these fixtures is marked ``@pytest.mark.asyncio`` here, so it just runs (in
pytest-asyncio's strict mode, its default, only marked tests would).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from vpsbg_support.testing import FakeVPSBGThread

#: What ``vpsbg_fake`` serves when the test does not say otherwise.
DEFAULT_OPTIONS: dict[str, Any] = {"seed": 0, "tickets": 10}
#: Our fixtures: an ``async def`` test using any of them is run by pytest-asyncio unasked.
FIXTURES = frozenset({"vpsbg_fake", "vpsbg_fake_factory"})


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``vpsbg_fake`` marker so ``--strict-markers`` accepts it, and silence the
    one warning aiohttp's multipart reader raises about itself inside the fake (``unread_data()``
    is deprecated, and aiohttp still calls it), so ``-W error`` suites keep working."""
    config.addinivalue_line(
        "markers",
        "vpsbg_fake(**options): FakeVPSBG keyword arguments (only) for the vpsbg_fake fixture",
    )
    config.addinivalue_line("filterwarnings", "ignore:unread_data:DeprecationWarning")


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Iterator[None]:
    """Mark ``async def`` tests that use our fixtures ``asyncio`` when pytest-asyncio is there.

    ``trylast`` makes this wrapper the innermost one, so the mark is on the items before
    pytest-asyncio's own wrapper decides which items it runs. Not in its auto mode (which marks
    every async test itself), and never over a mark the test has.
    """
    result: Any = yield
    if not inspect.iscoroutinefunction(obj) or not _asyncio_needs_marks(collector.config):
        return result  # type: ignore[no-any-return]
    for item in result if isinstance(result, list) else [result]:
        wanted = FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if isinstance(item, pytest.Function) and wanted and not item.get_closest_marker("asyncio"):
            item.add_marker(pytest.mark.asyncio)
    return result  # type: ignore[no-any-return]


def _asyncio_needs_marks(config: pytest.Config) -> bool:
    """Whether pytest-asyncio is loaded and runs only the async tests marked for it."""
    if not config.pluginmanager.has_plugin("asyncio"):
        return False
    mode = config.getoption("asyncio_mode", None) or config.getini("asyncio_mode")
    return str(mode) != "auto"


@pytest.fixture
def vpsbg_fake_factory() -> Iterator[Callable[..., FakeVPSBGThread]]:
    """Start ``FakeVPSBG(**options)`` servers on background threads; all stop after the test.

    Yields:
        ``make(**options) -> FakeVPSBGThread``, taking any ``FakeVPSBG`` keyword argument.
    """
    # Imported here, not at module level: pytest loads plugins before coverage starts, and a
    # broken import in the package must not stop pytest from starting at all.
    from vpsbg_support.testing import FakeVPSBG, FakeVPSBGThread

    started: list[FakeVPSBGThread] = []

    def make(**options: Any) -> FakeVPSBGThread:
        fake = FakeVPSBGThread(FakeVPSBG(**options))
        fake.start()
        started.append(fake)
        return fake

    yield make
    for fake in reversed(started):
        fake.stop()


@pytest.fixture
def vpsbg_fake(
    request: pytest.FixtureRequest, vpsbg_fake_factory: Callable[..., FakeVPSBGThread]
) -> FakeVPSBGThread:
    """A running fake VPSBG API (seed 0, 10 tickets unless ``@pytest.mark.vpsbg_fake`` says
    otherwise), stopped after the test. Use ``.url`` and ``.token``; inspect ``.state``,
    ``.requests``; inject faults with ``.faults.add(...)``.
    """
    marker = request.node.get_closest_marker("vpsbg_fake")
    return vpsbg_fake_factory(**marker_options(marker))


def marker_options(marker: pytest.Mark | None) -> dict[str, Any]:
    """Return the ``FakeVPSBG`` options a ``vpsbg_fake`` marker asks for, over the defaults.

    Args:
        marker: the test's closest ``vpsbg_fake`` marker, or ``None``.

    Returns:
        The keyword arguments for ``FakeVPSBG``.

    Raises:
        TypeError: when the marker has positional arguments (``vpsbg_fake(20)``), which would
            otherwise be ignored without a word.
    """
    if marker is None:
        return dict(DEFAULT_OPTIONS)
    if marker.args:
        raise TypeError(
            "@pytest.mark.vpsbg_fake takes FakeVPSBG keyword arguments only, e.g. "
            f"@pytest.mark.vpsbg_fake(seed=1, tickets=20); got positional {marker.args!r}"
        )
    return {**DEFAULT_OPTIONS, **marker.kwargs}
