"""JSON responses encoded with orjson: the decide answer carries rendered HTML, and the standard
library's encoder spends more time escaping it than the rest of the request takes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
