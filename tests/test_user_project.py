"""A user's own project, set up as the docs say: async tests on our fixtures run with
pytest-asyncio installed and nothing configured (its default strict mode marks nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

#: What a user writes first: a blocking and an async test on ``vpsbg_fake``, no configuration.
USER_TESTS = """
import pytest

from vpsbg_support import AsyncClient, Client


def test_blocking(vpsbg_fake):
    with Client(vpsbg_fake.token, base_url=vpsbg_fake.url) as client:
        assert len(client.tickets.list().items) == 10


async def test_async(vpsbg_fake):
    async with AsyncClient(vpsbg_fake.token, base_url=vpsbg_fake.url) as client:
        assert len((await client.tickets.list()).items) == 10


@pytest.mark.parametrize("tickets", [1, 2])
async def test_async_factory(vpsbg_fake_factory, tickets):
    fake = vpsbg_fake_factory(tickets=tickets)
    async with AsyncClient(fake.token, base_url=fake.url) as client:
        assert len((await client.tickets.list()).items) == tickets
"""


def test_async_tests_on_our_fixtures_run_unconfigured(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    # A project of its own (its tmp folder has no ini file): pytest-asyncio in strict mode.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "ignore")
    result.assert_outcomes(passed=4)


def test_an_explicit_mark_and_auto_mode_are_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
import pytest

from vpsbg_support import AsyncClient


@pytest.mark.asyncio(loop_scope="module")
async def test_marked(vpsbg_fake):
    async with AsyncClient(vpsbg_fake.token, base_url=vpsbg_fake.url) as client:
        assert (await client.tickets.list()).items


async def test_unmarked_without_our_fixtures():
    pass
"""
    )
    strict = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "ignore")
    # Ours runs; an async test that does not use our fixtures is not ours to mark.
    strict.assert_outcomes(passed=1, failed=1)
    auto = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "ignore", "-o", "asyncio_mode=auto"
    )
    auto.assert_outcomes(passed=2)


@pytest.mark.slow
def test_a_fresh_virtualenv_with_the_library_pytest_and_pytest_asyncio(tmp_path: Path) -> None:
    """The docs' testing page, followed literally in a new virtualenv: install, write, run."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--wheel", "-o", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    wheel = next(wheels.glob("*.whl"))
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("VPSBG_", "PYTEST"))}
    clean_env.pop("PYTHONPATH", None)
    clean_env.pop("COV_CORE_SOURCE", None)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheel), "pytest", "pytest-asyncio"],
        check=True,
        capture_output=True,
        timeout=300,
        env=clean_env,
    )
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_mine.py").write_text(USER_TESTS, encoding="utf-8")
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=project,
        env=clean_env,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout
