"""Visitor lookup, for editors only: find a person by e-mail address, customer id or visitor id
and see what is stored about them; export it, or erase it after a confirmation, with the code
the ``touchpoint export`` and ``erase`` commands run (store/subjects.py).

Looking at a person's data is processing in itself: every lookup, export and erasure, also
one that finds nobody, is written to the audit log (store/audit.py) *before* anything is shown
or done, and when that entry cannot be stored the answer is a 503 page showing nothing
(docs/privacy.md#the-consoles-audit-log). The reference goes in the form's body, never in a
URL, so an e-mail address lands in no access log or browser history.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..errors import StorageUnavailable
from ..store import Connection
from . import guard, texts
from .guard import Console, read, require
from .layout import Page
from .sessions import Session
from .visitortexts import TEXTS
from .visitorview import KINDS, Asked, BadReference, asked, decay_curve, score_now, summary, when

texts.add(TEXTS)
AUDIT_PAGE = 200  # entries per page of the audit log


def _form_page(
    request: Request,
    session: Session,
    *,
    values: dict[str, str],
    error: str | None = None,
    status: int = 200,
    **context: Any,
) -> Response:
    return Console.of(request).layout.render(
        request,
        "visitors.html",
        {
            "kinds": KINDS,
            "values": values,
            "error": error,
            "when": when,
            "missing": False,
            "consent": None,
            "erased": None,
            **context,
        },
        status=status,
        session=session,
        section="visitors",
    )


async def _asked(request: Request, session: Session) -> Asked | Response:
    """The form's reference, or the form again with the error beside the field."""
    fields = await guard.form(request)
    values = {"kind": fields.get("kind", "email"), "q": fields.get("q", "")}
    try:
        return asked(values["kind"], values["q"], Console.tp(request).identity_key)
    except BadReference as exc:
        return _form_page(request, session, values=values, error=exc.key, status=400)


async def audited(request: Request, session: Session, action: str, who: Asked) -> Response | None:
    """Write the audit entry; the 503 page (showing nothing) when it cannot be stored."""
    tp = Console.tp(request)
    now, user = tp.now(), session.name
    try:
        await tp.writer.write(
            lambda conn: store.audit(conn, at=now, user=user, action=action, ref=who.ref)
        )
    except StorageUnavailable:
        return _unavailable(request, session)
    return None


def _unavailable(request: Request, session: Session) -> Response:
    response = Console.of(request).refuse(
        request, "visitors.unavailable", status=503, session=session
    )
    response.headers["Retry-After"] = str(StorageUnavailable.RETRY_AFTER)
    return response


@require("editor")
async def search(request: Request, session: Session) -> Response:
    """``GET /visitors``: the lookup form (and the note after an erasure)."""
    erased = request.query_params.get("erased", "")
    return _form_page(
        request,
        session,
        values={"kind": "email", "q": ""},
        erased=erased if erased.isdigit() else None,
    )


@require("editor")
async def lookup(request: Request, session: Session) -> Response:
    """``POST /visitors``: audit the lookup, then show everything stored about the person."""
    who = await _asked(request, session)
    if isinstance(who, Response):
        return who
    refusal = await audited(request, session, "lookup", who)
    if refusal is not None:
        return refusal
    tp = Console.tp(request)
    now, key = tp.now(), tp.identity_key

    def gather(conn: Connection) -> dict[str, Any] | None:
        subject = store.find_subject(conn, who.ref)
        consent = store.consent_history(conn, who.ref, key=key)
        if subject is None:
            return None if not consent else {"consent": consent, "subject": None}
        return {
            "subject": summary(store.export_subject(conn, subject)),
            "profile": store.profile_of(conn, subject.primary),
            "consent": consent,
        }

    found = await read(request, gather)
    values = {"kind": who.kind, "q": who.text}
    if found is None or found["subject"] is None:
        return _form_page(
            request, session, values=values, missing=True, consent=(found or {}).get("consent")
        )
    decay = tp.rules.profile.scoring.decay
    profile = found["profile"]
    return Console.of(request).layout.render(
        request,
        "visitor.html",
        {
            "values": values,
            "found": found["subject"],
            "profile": profile,
            "consent": list(reversed(found["consent"])),
            "score_now": score_now(profile, decay, now=now) if profile else None,
            "curve": decay_curve(profile, decay, now=now) if profile else None,
            "decay": decay,
            "when": when,
        },
        session=session,
        section="visitors",
    )


@require("editor")
async def export(request: Request, session: Session) -> Response:
    """``POST /visitors/export``: the JSON ``touchpoint export`` writes, as a download."""
    who = await _asked(request, session)
    if isinstance(who, Response):
        return who
    refusal = await audited(request, session, "export", who)
    if refusal is not None:
        return refusal
    now = Console.tp(request).now()

    def gather(conn: Connection) -> dict[str, Any] | None:
        subject = store.find_subject(conn, who.ref)
        return None if subject is None else store.export_subject(conn, subject)

    body = await read(request, gather)
    if body is None:
        return _form_page(
            request, session, values={"kind": who.kind, "q": who.text}, missing=True, status=404
        )
    text = json.dumps({"exported_at": now, **body}, indent=2, ensure_ascii=False)
    filename = f"touchpoint-export-{body['visitor_ids'][0][:12]}.json"
    return Response(
        text + "\n",
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@require("editor")
async def erase(request: Request, session: Session) -> Response:
    """``POST /visitors/erase``: without ``confirm``, what would go and a button to confirm
    (an audited lookup); with it, the erasure ``touchpoint erase`` makes, audited in the same
    transaction."""
    who = await _asked(request, session)
    if isinstance(who, Response):
        return who
    fields = await guard.form(request)
    values = {"kind": who.kind, "q": who.text}
    if fields.get("confirm") != "yes":
        refusal = await audited(request, session, "lookup", who)
        if refusal is not None:
            return refusal

        def gather(conn: Connection) -> dict[str, Any] | None:
            subject = store.find_subject(conn, who.ref)
            return None if subject is None else summary(store.export_subject(conn, subject))

        found = await read(request, gather)
        if found is None:
            return _form_page(request, session, values=values, missing=True, status=404)
        return Console.of(request).layout.render(
            request,
            "visitor_erase.html",
            {"values": values, "found": found},
            session=session,
            section="visitors",
        )
    tp = Console.tp(request)
    now, key, user = tp.now(), tp.identity_key, session.name

    def work(conn: Connection) -> store.Erasure | None:
        store.audit(conn, at=now, user=user, action="erase", ref=who.ref)
        return store.erase(
            conn, who.ref, key=key, at=now, via="cli", requested_by=f"console:{user}"
        )

    try:
        erasure = await tp.writer.write(work)
    except StorageUnavailable:
        return _unavailable(request, session)
    if erasure is None:
        return _form_page(request, session, values=values, missing=True, status=404)
    return Console.of(request).layout.redirect(f"/visitors?erased={erasure.id}")


@require("editor")
async def audit_log(request: Request, session: Session) -> Response:
    """``GET /visitors/audit``: the audit log, newest first, a page at a time. ``POST``: the
    entries about one reference (who looked at this person?), given in the body as a lookup
    is; that shows no visitor data, so it is not audited itself."""
    who: Asked | None = None
    error = None
    values = {"kind": "email", "q": ""}
    if request.method == "POST":
        fields = await guard.form(request)
        values = {"kind": fields.get("kind", "email"), "q": fields.get("q", "")}
        try:
            who = asked(values["kind"], values["q"], Console.tp(request).identity_key)
        except BadReference as exc:
            error = exc.key
    raw = request.query_params.get("before", "")
    before = int(raw) if raw.isdigit() and len(raw) < 16 and who is None else None
    ref = who.ref if who is not None else None
    entries = await read(
        request,
        lambda conn: store.audit_entries(conn, limit=AUDIT_PAGE + 1, before=before, ref=ref),
    )
    return Console.of(request).layout.render(
        request,
        "visitor_audit.html",
        {
            "entries": entries[:AUDIT_PAGE],
            "older": entries[AUDIT_PAGE - 1].id if len(entries) > AUDIT_PAGE else None,
            "when": when,
            "days": Console.of(request).settings.admin_audit_days,
            "kinds": KINDS,
            "values": values,
            "error": error,
            "filtered": who is not None,
        },
        status=400 if error else 200,
        session=session,
        section="visitors",
    )


PAGES = [
    Page("/visitors", search, nav="visitors"),
    Page("/visitors", lookup, methods=("POST",)),
    Page("/visitors/export", export, methods=("POST",)),
    Page("/visitors/erase", erase, methods=("POST",)),
    Page("/visitors/audit", audit_log, methods=("GET", "POST")),
]
