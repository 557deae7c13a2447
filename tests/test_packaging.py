"""The package as pip builds it: every module of server/ and its assets are in the wheel, and
the build prints no deprecation warning (the quick start must be warning-free)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "server"


@pytest.mark.slow
def test_the_wheel_holds_every_module_and_asset(tmp_path: Path) -> None:
    # A copy, so that no build/ folder left in the checkout hides a missing package.
    source = tmp_path / "source"
    shutil.copytree(SERVER, source / "server", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-cache-dir",
            "-w",
            tmp_path,
            source,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    output = build.stdout + build.stderr
    assert "deprecated" not in output.lower(), output

    (wheel,) = tmp_path.glob("touchpoint-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        "touchpoint/" + path.relative_to(SERVER).as_posix()
        for path in SERVER.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and (
            path.suffix == ".py"
            or path.parent.name in ("assets", "templates", "static")
            or path.name == "py.typed"
        )
    }
    assert wanted - packed == set()
