"""Data subject requests through the server API (docs/api.md#data-subject-requests):
``/tp/v1/api/subjects/{ref}`` exports (GET) or erases (DELETE) everything stored about one
person, ``.../consent`` shows their consent log, and ``/tp/v1/api/consent/summary`` counts
the answers per consent revision.

Unlike ``/visitors/{ref}``, a subject is found whatever their consent: a person who withdrew
it may still ask what is kept. Reads run on a worker thread with a connection of their own,
inside one read transaction (a consistent snapshot, and the event loop is not held up by
reading a long history); an erasure is one unit of the writer, so it never races the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..profiles import identity
from ..store import Connection
from ..web.responses import JSONResponse
from .endpoints import Handler, Problem

NO_STORE = {"Cache-Control": "no-store"}
T = TypeVar("T")


def _ref(request: Request) -> tuple[str, str]:
    tp = request.app.state.tp
    return identity.reference(unquote(request.path_params["ref"]), tp.identity_key)


def _nothing() -> Problem:
    return Problem(404, "nothing is stored about this reference")


async def read(request: Request, fn: Callable[[Connection], T]) -> T:
    """``fn(conn)`` on a worker thread, in one read-only snapshot of its own connection."""
    path = request.app.state.tp.settings.database_url
    return await run_in_threadpool(store.read_snapshot, path, fn)


async def export_subject(request: Request) -> Response:
    tp = request.app.state.tp
    ref, now = _ref(request), tp.now()

    def export(conn: Connection) -> dict[str, Any] | None:
        subject = store.find_subject(conn, ref)
        return None if subject is None else store.export_subject(conn, subject)

    body = await read(request, export)
    if body is None:
        raise _nothing()
    return JSONResponse({"exported_at": now, **body}, headers=NO_STORE)


async def erase_subject(request: Request) -> Response:
    tp = request.app.state.tp
    ref, now, key = _ref(request), tp.now(), tp.identity_key
    by = request.state.api_key.name
    erasure: store.Erasure | None = await tp.writer.write(
        lambda conn: store.erase(conn, ref, key=key, at=now, via="api", requested_by=by)
    )
    if erasure is None:
        raise _nothing()
    return JSONResponse(erasure_json(erasure), headers=NO_STORE)


def erasure_json(erasure: store.Erasure) -> dict[str, Any]:
    return {
        "erasure": erasure.id,
        "at": erasure.at,
        "deleted": erasure.deleted,
        "pseudonymised": erasure.pseudonymised,
        "anonymised": erasure.anonymised,
    }


async def subject_consent(request: Request) -> Response:
    tp = request.app.state.tp
    ref, key = _ref(request), tp.identity_key
    body = await read(request, lambda conn: store.consent_proof(conn, ref, key=key))
    if not body["entries"] and not body["erasures"]:
        raise _nothing()
    return JSONResponse(body, headers=NO_STORE)


async def consent_summary(request: Request) -> Response:
    bounds: dict[str, int | None] = {}
    for name in ("since", "until"):
        raw = request.query_params.get(name)
        if raw is not None and not (raw.isascii() and raw.isdigit() and len(raw) < 16):
            raise Problem(400, f"{name} must be Unix seconds (a whole number)")
        bounds[name] = int(raw) if raw is not None else None
    revisions = await read(request, lambda conn: store.consent_summary(conn, **bounds))
    return JSONResponse({"revisions": revisions}, headers=NO_STORE)


HANDLERS: dict[str, Handler] = {
    "exportSubject": export_subject,
    "eraseSubject": erase_subject,
    "subjectConsent": subject_consent,
    "consentSummary": consent_summary,
}
