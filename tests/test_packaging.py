"""The built sdist and wheel install into an empty venv, and the installed command runs."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import vpsbg_support

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def test_sdist_and_wheel_carry_the_package(dist: Path) -> None:
    version = vpsbg_support.__version__
    wheel = dist / f"vpsbg_support-{version}-py3-none-any.whl"
    sdist = dist / f"vpsbg_support-{version}.tar.gz"
    assert wheel.exists() and sdist.exists()
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        text = archive.read(entry_points).decode()
    assert "vpsbg_support/py.typed" in names
    assert "vpsbg_support/_sync.py" in names
    # The HTML archive's own stylesheet and script are package data, not code.
    assert "vpsbg_support/archive/static/archive.css" in names
    assert "vpsbg_support/archive/static/archive.js" in names
    assert not [n for n in names if n.startswith("tests/")]
    assert "vpsbg-support = vpsbg_support.cli:main" in text
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
    assert any(m.endswith("/CHANGELOG.md") for m in members)


def test_wheel_installs_into_an_empty_venv_and_runs(dist: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    wheel = next(dist.glob("*.whl"))
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("VPSBG_")}
    clean_env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [str(bin_dir / "vpsbg-support"), "--demo", "tickets", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # not the repo: the installed package must be the one imported
        env=clean_env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    version = subprocess.run(
        [str(bin_dir / "python"), "-c", "import vpsbg_support; print(vpsbg_support.__version__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=clean_env,
    )
    assert version.stdout.strip() == vpsbg_support.__version__
