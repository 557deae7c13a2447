"""The console's built browser code (server/admin/static/): current with snippet/admin/, within
its size budget, and shipped with the licences of what it bundles."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
STATIC = ROOT / "server" / "admin" / "static"
# Bytes min+gzip. uPlot is ~50 KB minified; CodeMirror's view, state, YAML grammar,
# completion and lint ~400 KB, loaded on the editor page only.
GZIP_BUDGET = {"charts.js": 32 * 1024, "editor.js": 150 * 1024}


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, int | str]]]:
    if not shutil.which("node") or not (ROOT / "snippet" / "node_modules").is_dir():
        pytest.fail(
            "node and snippet/node_modules are needed: run `make test`, which installs them"
        )
    out = tmp_path_factory.mktemp("admin-static")
    result = subprocess.run(
        ["node", "admin/build.mjs", str(out)],
        cwd=ROOT / "snippet",
        capture_output=True,
        text=True,
        check=True,
    )
    sizes: list[dict[str, int | str]] = json.loads(result.stdout)
    return out, sizes


def test_built_files_are_up_to_date(rebuilt: tuple[Path, list[dict[str, int | str]]]) -> None:
    out, _ = rebuilt
    built = sorted(path.name for path in out.iterdir())
    assert sorted(path.name for path in STATIC.iterdir()) == built
    stale = [name for name in built if (out / name).read_bytes() != (STATIC / name).read_bytes()]
    assert stale == [], f"server/admin/static/ is stale ({stale}): run `make admin-assets`"


def test_bundles_are_within_budget(rebuilt: tuple[Path, list[dict[str, int | str]]]) -> None:
    _, sizes = rebuilt
    gzip = {Path(str(entry["file"])).name: entry["gzip"] for entry in sizes}
    for name, budget in GZIP_BUDGET.items():
        assert int(gzip[name]) <= budget, (name, gzip[name])


@pytest.mark.parametrize(
    ("bundle", "packages"),
    [
        ("charts.js", ["uplot"]),
        ("charts.css", ["uplot"]),
        ("editor.js", ["@codemirror/view", "@codemirror/lang-yaml", "@lezer/yaml", "style-mod"]),
    ],
)
def test_licences_ship_with_the_bundles(bundle: str, packages: list[str]) -> None:
    licences = (STATIC / f"{bundle}.LICENSE.txt").read_text()
    for package in packages:
        assert f"\n{package} " in licences
    assert "Permission is hereby granted" in licences
    note = f"/*! {bundle} bundles third-party software: licences in {bundle}.LICENSE.txt */"
    assert (STATIC / bundle).read_text().startswith(note)
