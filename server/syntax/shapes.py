"""The shapes of request bodies: what a field may hold, checked the same way for every route
that takes it, with errors that name the field."""

from __future__ import annotations

import math
import re
from typing import Any

from ..errors import RequestError


def optional_str(data: dict[str, Any], key: str, *, max_length: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError(f"{key} must be a string")
    if len(value) > max_length:
        raise RequestError(f"{key} is longer than {max_length} characters")
    return value


def flat_values(value: Any, where: str, *, max_keys: int, name: re.Pattern[str]) -> dict[str, Any]:
    """A mapping of short names to strings (at most 256 characters), finite numbers or booleans,
    as pages send them (context, event properties); ``where`` names it in the error."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > max_keys:
        raise RequestError(f"{where} must be an object of at most {max_keys} values")
    for key, item in value.items():
        if not name.match(key):
            raise RequestError(f"{where}: {key[:64]!r}: use letters, digits, - and _")
        if isinstance(item, str):
            if len(item) > 256:
                raise RequestError(f"{where}.{key} is longer than 256 characters")
        elif isinstance(item, float) and not math.isfinite(item):
            raise RequestError(f"{where}.{key} must be a finite number")
        elif not isinstance(item, (bool, int, float)):
            raise RequestError(f"{where}.{key} must be a string, number or boolean")
    return value
