"""Pytest plugin (entry point ``pytest11``): fixtures that run a ``FakeVPSBG`` for one test.

``vpsbg_fake`` is a running :class:`~vpsbg_support.testing.FakeVPSBGThread` (its own loop on a
thread, so it serves sync and async tests alike; async tests need pytest-asyncio). Configure it
with ``@pytest.mark.vpsbg_fake(seed=1, tickets=30, ...)`` (any ``FakeVPSBG`` keyword), or start
more, differently configured fakes with ``vpsbg_fake_factory(seed=..., tickets=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from vpsbg_support.testing import FakeVPSBGThread

#: What ``vpsbg_fake`` serves when the test does not say otherwise.
DEFAULT_OPTIONS: dict[str, Any] = {"seed": 0, "tickets": 10}


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``vpsbg_fake`` marker so ``--strict-markers`` accepts it, and silence the
    one warning aiohttp's multipart reader raises about itself inside the fake (``unread_data()``
    is deprecated, and aiohttp still calls it), so ``-W error`` suites keep working."""
    config.addinivalue_line(
        "markers",
        "vpsbg_fake(**options): FakeVPSBG keyword arguments (only) for the vpsbg_fake fixture",
    )
    config.addinivalue_line("filterwarnings", "ignore:unread_data:DeprecationWarning")


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
