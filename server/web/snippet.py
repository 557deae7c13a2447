"""``GET /tp/t.js``: the snippet, precompressed once, cached by browsers and revalidated by ETag.

The URL is fixed in every site's HTML, so it cannot be fingerprinted; a day of freshness plus a
week of stale-while-revalidate keeps it off the critical path while updates still arrive.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import brotli
from starlette.requests import Request
from starlette.responses import Response

SNIPPET = Path(__file__).parent.parent / "assets" / "t.js"
CACHE_CONTROL = "public, max-age=86400, stale-while-revalidate=604800"


@dataclass(frozen=True)
class Asset:
    raw: bytes
    gzip: bytes
    brotli: bytes
    etag: str

    @classmethod
    def load(cls, path: Path = SNIPPET) -> Asset:
        raw = path.read_bytes()
        return cls(
            raw=raw,
            gzip=gzip.compress(raw, compresslevel=9, mtime=0),
            brotli=brotli.compress(raw, quality=11),
            etag='"' + hashlib.sha256(raw).hexdigest()[:20] + '"',
        )


async def serve(request: Request) -> Response:
    asset: Asset = request.app.state.tp.snippet
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": asset.etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    accepted = request.headers.get("accept-encoding", "")
    body = asset.raw
    if "br" in accepted:
        body, headers["Content-Encoding"] = asset.brotli, "br"
    elif "gzip" in accepted:
        body, headers["Content-Encoding"] = asset.gzip, "gzip"
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        body = b""
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)
