"""The shapes of request bodies, declared once: each route's validator and its JSON Schema in
the OpenAPI document (docs/openapi.json) come from the same :class:`Shape`, so they cannot
disagree. Used by the public routes (web/) and the server API (api/). Pure: no I/O, no clock.

A field's problem is a :class:`~touchpoint.errors.FieldError` naming the field by its path in
the body (``page.path``, ``events[2].value``): the public routes answer it as
``{"error": "events[2].value must be a number from 0 to 100"}``, the server API as an RFC 9457
problem with ``errors: [{"field", "message"}]``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ..errors import FieldError

# Flat values (a page's context, event properties, line items): short names to strings of at
# most this many characters, finite numbers or booleans.
MAX_VALUE_LENGTH = 256
KINDS = (
    "string",
    "url",
    "currency",
    "number",
    "time",
    "boolean",
    "choice",
    "names",
    "flat",
    "items",
    "object",
    "token",
    "lenient",
)


@dataclass(frozen=True)
class Field:
    """One field of a request body.

    ``kind`` is one of :data:`KINDS`: ``string`` (``blank`` allows ""; ``pattern`` with
    ``hint`` saying what it wants), ``url`` (http or https), ``currency`` (ISO 4217), ``number``
    (finite; ``minimum`` and ``maximum``), ``time`` (Unix seconds), ``boolean``, ``choice``
    (one of ``choices``), ``names`` (a list of at most ``max_items`` strings matching
    ``pattern`` or among ``choices``, ``noun`` naming them), ``flat`` (an object of at most
    ``max_items`` flat values, its keys matching ``pattern``), ``items`` (a list of such
    objects), ``object`` (the nested ``shape``), ``token`` (an opaque string the server made,
    such as a signed link, checked where it is read; ``hint`` for any problem) and ``lenient``
    (a string, cut to ``max_length``, used when it is one and ignored otherwise: a hint such as
    a page's language).
    """

    name: str
    kind: str
    help: str = ""
    required: bool = False
    max_length: int = 256
    blank: bool = False
    pattern: re.Pattern[str] | None = None
    hint: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    max_items: int = 32
    noun: str = "names"
    shape: Shape | None = None

    def schema(self) -> dict[str, Any]:
        """The field's JSON Schema."""
        return {**_schema(self), **({"description": self.help} if self.help else {})}


@dataclass(frozen=True)
class Shape:
    """A JSON object's fields. ``closed`` refuses keys that are not fields (naming the shape
    as ``what``); otherwise they are ignored, as a browser's script may send more."""

    fields: tuple[Field, ...]
    closed: bool = False
    what: str = ""
    constants: Mapping[str, str] = field(default_factory=dict)  # e.g. {"type": "dwell"}

    def parse(self, data: Any, *, where: str = "", status: int = 400) -> dict[str, Any]:
        """The values of the fields present in ``data`` (an object), checked; raises
        FieldError with ``status`` for the first problem, the field named by its path below
        ``where``."""
        if self.closed:
            allowed = (*self.constants, *(f.name for f in self.fields))
            for key in data:
                if key not in allowed:
                    at = where or "body"
                    raise FieldError(
                        at,
                        f"unknown key {str(key)[:64]!r} for {self.what}",
                        status=status,
                        detail=f"{at}: unknown key {str(key)[:64]!r} for {self.what}"
                        f" (expected {', '.join(allowed)})",
                    )
        values: dict[str, Any] = {}
        for f in self.fields:
            path = f"{where}.{f.name}" if where else f.name
            value = data.get(f.name)
            if value is None:
                if f.required:
                    _fail(path, _missing(f), status)
                continue
            values[f.name] = check(f, value, path, status=status)
        return values

    def schema(self) -> dict[str, Any]:
        """The shape's JSON Schema."""
        properties = {name: {"const": value} for name, value in self.constants.items()}
        properties.update({f.name: f.schema() for f in self.fields})
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        required = [*self.constants, *(f.name for f in self.fields if f.required)]
        if required:
            schema["required"] = required
        if self.closed:
            schema["additionalProperties"] = False
        return schema


def _missing(f: Field) -> str:
    """What a required field that is missing is told: its ``hint`` says what it wants."""
    if f.kind == "object":
        return f"must be an object{f.hint}"
    return f.hint or "is required"


def _fail(path: str, message: str, status: int) -> NoReturn:
    raise FieldError(path, message, status=status, detail=f"{path} {message}")


def check(f: Field, value: Any, path: str | None = None, *, status: int = 422) -> Any:
    """``value`` if it fits ``f`` (numbers as float, ``time`` as int); raises FieldError."""
    path = path or f.name
    if f.kind == "token":
        if not isinstance(value, str) or len(value) > f.max_length:
            _fail(path, f.hint or "must be a token", status)
        return value
    if f.kind == "lenient":
        return value[: f.max_length] if isinstance(value, str) else None
    if f.kind in ("string", "url", "currency"):
        if not isinstance(value, str):
            _fail(path, "must be a string", status)
        if "\x00" in value:
            _fail(path, "must not contain a NUL character", status)
        if not (f.blank or value.strip()):
            _fail(path, f.hint or "is required", status)
        if len(value) > f.max_length:
            _fail(path, f"is longer than {f.max_length} characters", status)
        if f.kind == "url" and not value.startswith(("https://", "http://")):
            _fail(path, "must be an http(s) URL", status)
        if f.kind == "currency" and not (len(value) == 3 and value.isascii() and value.isupper()):
            _fail(path, "must be a three-letter ISO 4217 code such as EUR", status)
        if f.pattern is not None and not f.pattern.match(value):
            _fail(path, f.hint or f"must match {f.pattern.pattern}", status)
        return value
    if f.kind == "number":
        ranged = f.minimum is not None and f.maximum is not None
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (math.isfinite(value))
        ):
            _fail(
                path,
                f"must be a number from {f.minimum:g} to {f.maximum:g}"
                if ranged
                else "must be a finite number",
                status,
            )
        if ranged and not f.minimum <= value <= f.maximum:  # type: ignore[operator,unused-ignore]
            _fail(path, f"must be a number from {f.minimum:g} to {f.maximum:g}", status)
        return float(value) if not ranged else value
    if f.kind == "time":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            _fail(path, "must be Unix seconds (a whole number)", status)
        return value
    if f.kind == "boolean":
        if not isinstance(value, bool):
            _fail(path, "must be true or false", status)
        return value
    if f.kind == "choice":
        if value not in f.choices:
            _fail(path, f"must be one of {', '.join(f.choices)}", status)
        return value
    if f.kind == "names":
        return _names(f, value, path, status)
    if f.kind == "flat":
        return flat(value, path, max_keys=f.max_items, name=f.pattern, status=status)
    if f.kind == "items":
        if not isinstance(value, list) or len(value) > f.max_items:
            _fail(path, f"must be a list of at most {f.max_items} objects", status)
        return [
            flat(item, f"{path}[{i}]", max_keys=32, name=f.pattern, status=status)
            for i, item in enumerate(value)
        ]
    assert f.kind == "object" and f.shape is not None, f.kind
    if not isinstance(value, dict):
        _fail(path, f"must be an object{f.hint}", status)
    return f.shape.parse(value, where=path, status=status)


def _names(f: Field, value: Any, path: str, status: int) -> list[str]:
    if (
        not isinstance(value, list)
        or len(value) > f.max_items
        or not all(isinstance(v, str) for v in value)
    ):
        _fail(path, f"must be a list of at most {f.max_items} {f.noun}", status)
    if f.choices:
        unknown = sorted(set(value) - set(f.choices))
        if unknown:
            message = f"unknown {f.noun}: {', '.join(unknown)} (known: {', '.join(f.choices)})"
            raise FieldError(path, message, status=status, detail=message)
    elif f.pattern is not None and not all(f.pattern.match(v) for v in value):
        raise FieldError(path, f.hint, status=status, detail=f"{f.noun} {f.hint}")
    return list(value)


def flat(
    value: Any, where: str, *, max_keys: int, name: re.Pattern[str] | None, status: int = 400
) -> dict[str, Any]:
    """A mapping of short names (matching ``name``) to strings of at most
    :data:`MAX_VALUE_LENGTH` characters, finite numbers or booleans, as pages and shops send
    them (context, event properties, line items); ``where`` names it in the error."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > max_keys:
        _fail(where, f"must be an object of at most {max_keys} values", status)
    for key, item in value.items():
        if name is not None and not name.match(key):
            raise FieldError(
                f"{where}.{key[:64]}",
                "use letters, digits, - and _",
                status=status,
                detail=f"{where}: {key[:64]!r}: use letters, digits, - and _",
            )
        if isinstance(item, str):
            if "\x00" in item:
                _fail(f"{where}.{key}", "must not contain a NUL character", status)
            if len(item) > MAX_VALUE_LENGTH:
                _fail(f"{where}.{key}", f"is longer than {MAX_VALUE_LENGTH} characters", status)
        elif isinstance(item, float) and not math.isfinite(item):
            _fail(f"{where}.{key}", "must be a finite number", status)
        elif not isinstance(item, (bool, int, float)):
            _fail(f"{where}.{key}", "must be a string, number or boolean", status)
    return value


def _schema(f: Field) -> dict[str, Any]:
    if f.kind in ("token", "lenient"):
        return {"type": "string", "maxLength": f.max_length}
    if f.kind == "string":
        schema: dict[str, Any] = {"type": "string", "maxLength": f.max_length}
        if not f.blank:
            schema["minLength"] = 1
        if f.pattern is not None:
            schema["pattern"] = f.pattern.pattern
        return schema
    if f.kind == "url":
        return {"type": "string", "format": "uri", "maxLength": f.max_length}
    if f.kind == "currency":
        return {"type": "string", "pattern": "^[A-Z]{3}$"}
    if f.kind == "number":
        bounds = {"minimum": f.minimum, "maximum": f.maximum}
        return {"type": "number", **{k: v for k, v in bounds.items() if v is not None}}
    if f.kind == "time":
        return {"type": "integer", "minimum": 0}
    if f.kind == "boolean":
        return {"type": "boolean"}
    if f.kind == "choice":
        return {"enum": list(f.choices)}
    if f.kind == "names":
        item: dict[str, Any] = {"enum": list(f.choices)} if f.choices else {"type": "string"}
        if f.pattern is not None and not f.choices:
            item["pattern"] = f.pattern.pattern
        return {"type": "array", "maxItems": f.max_items, "items": item}
    flat_object = {
        "type": "object",
        "maxProperties": f.max_items if f.kind == "flat" else 32,
        "additionalProperties": {
            "anyOf": [
                {"type": "string", "maxLength": MAX_VALUE_LENGTH},
                {"type": "number"},
                {"type": "boolean"},
            ]
        },
    }
    if f.pattern is not None:
        flat_object["propertyNames"] = {"pattern": f.pattern.pattern}
    if f.kind == "flat":
        return flat_object
    if f.kind == "items":
        return {"type": "array", "maxItems": f.max_items, "items": flat_object}
    assert f.shape is not None
    return f.shape.schema()
