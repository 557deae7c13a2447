"""GET /tp/t.js: the built snippet, its caching and compression, and its size budget."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import brotli
import pytest
from starlette.testclient import TestClient

ROOT = Path(__file__).parent.parent.parent
BUILT = ROOT / "server" / "assets" / "t.js"
GZIP_BUDGET = 8 * 1024  # bytes min+gzip, everything included; the peer's tracker is ~31 KB


def test_served_with_etag_and_long_caching(client: TestClient) -> None:
    response = client.get("/tp/t.js", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert (
        response.headers["cache-control"] == "public, max-age=86400, stale-while-revalidate=604800"
    )
    assert response.content == BUILT.read_bytes()
    etag = response.headers["etag"]
    again = client.get("/tp/t.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize(
    ("encoding", "decode"), [("br", brotli.decompress), ("gzip", gzip.decompress)]
)
def test_compressed(client: TestClient, encoding: str, decode) -> None:  # type: ignore[no-untyped-def]
    with client.stream("GET", "/tp/t.js", headers={"Accept-Encoding": encoding}) as response:
        wire = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == encoding
    assert response.headers["vary"] == "Accept-Encoding"
    assert int(response.headers["content-length"]) == len(wire) < len(BUILT.read_bytes()) / 2
    assert decode(wire) == BUILT.read_bytes()


def test_head(client: TestClient) -> None:
    response = client.head("/tp/t.js", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.content == b""
    expected = len(gzip.compress(BUILT.read_bytes(), compresslevel=9, mtime=0))
    assert int(response.headers["content-length"]) == expected


def build(tmp_path: Path) -> dict[str, int]:
    if not shutil.which("node") or not (ROOT / "snippet" / "node_modules").is_dir():
        pytest.fail(
            "node and snippet/node_modules are needed: run `make test`, which installs them"
        )
    out = tmp_path / "t.js"
    result = subprocess.run(
        ["node", "build.mjs", str(out)],
        cwd=ROOT / "snippet",
        capture_output=True,
        text=True,
        check=True,
    )
    sizes: dict[str, int] = json.loads(result.stdout)
    assert out.read_bytes() == BUILT.read_bytes(), "server/assets/t.js is stale: run `make snippet`"
    return sizes


def test_built_snippet_is_up_to_date_and_within_budget(tmp_path: Path) -> None:
    sizes = build(tmp_path)
    assert sizes["gzip"] <= GZIP_BUDGET, sizes
