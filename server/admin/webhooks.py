"""The webhook outbox (docs/webhooks.md#the-outbox): deliveries waiting and failed, per
endpoint, with their last error; editors queue failed ones again, one or all, as
``touchpoint webhooks retry`` does (store/outbox.py). Rows show ids, endpoints and event types
only, never a body: a webhook's data can hold a person's profile (docs/privacy.md#webhooks)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..errors import StorageUnavailable
from . import guard, texts
from .guard import Console, read, require
from .layout import Page
from .sessions import Session
from .visitorview import when

texts.add(
    {
        "webhooks.title": ("Webhook outbox", "Webhook-Ausgang"),
        "webhooks.intro": (
            "Webhooks waiting to be sent to your systems, and those that failed after every"
            " attempt. Delivered ones are deleted after {days} days.",
            "Webhooks, die auf den Versand an Ihre Systeme warten, und solche, die nach allen"
            " Versuchen gescheitert sind. Zugestellte werden nach {days} Tagen gelöscht.",
        ),
        "webhooks.endpoints": ("Endpoints", "Empfänger"),
        "webhooks.rows": ("Pending and failed webhooks", "Wartende und gescheiterte Webhooks"),
        "webhooks.none": ("Nothing waits and nothing failed.", "Nichts wartet, nichts scheiterte."),
        "webhooks.no_endpoints": ("No endpoint and no webhook.", "Kein Empfänger, kein Webhook."),
        "webhooks.pending": ("Pending", "Wartend"),
        "webhooks.delivered": ("Delivered", "Zugestellt"),
        "webhooks.failed": ("Failed", "Gescheitert"),
        "webhooks.status": ("Status", "Status"),
        "webhooks.not_configured": (
            "not in site.yaml: its webhooks wait",
            "nicht in site.yaml: seine Webhooks warten",
        ),
        "webhooks.not_ready": (
            "{env} is not set: its webhooks wait",
            "{env} ist nicht gesetzt: seine Webhooks warten",
        ),
        "webhooks.ready": ("ready", "bereit"),
        "webhooks.state.pending": ("next attempt", "nächster Versuch"),
        "webhooks.state.sending": ("being sent", "wird gesendet"),
        "webhooks.state.failed": ("failed", "gescheitert"),
        "webhooks.retry": ("Retry", "Erneut senden"),
        "webhooks.retry_label": ("Retry webhook #{id}", "Webhook Nr. {id} erneut senden"),
        "webhooks.retry_all": ("Retry all failed", "Alle gescheiterten erneut senden"),
        "webhooks.queued": (
            "{n} webhook(s) queued again. A running server sends them within {seconds} s.",
            "{n} Webhook(s) erneut eingereiht. Ein laufender Server sendet sie binnen {seconds} s.",
        ),
        "webhooks.unavailable": (
            "The outbox cannot be written right now: nothing was queued. Try again later.",
            "Der Ausgang kann gerade nicht geschrieben werden: nichts wurde eingereiht."
            " Versuchen Sie es später noch einmal.",
        ),
        "webhooks.col.id": ("#", "Nr."),
        "webhooks.col.endpoint": ("Endpoint", "Empfänger"),
        "webhooks.col.event": ("Event", "Ereignis"),
        "webhooks.col.created": ("Queued (UTC)", "Eingereiht (UTC)"),
        "webhooks.col.attempts": ("Attempts", "Versuche"),
        "webhooks.col.state": ("State", "Zustand"),
        "webhooks.col.error": ("Last error", "Letzter Fehler"),
    }
)
LIMIT = 200  # rows shown, newest first


@require("viewer")
async def outbox(request: Request, session: Session) -> Response:
    """``GET /webhooks``: counts per endpoint and the newest pending and failed rows."""
    console = Console.of(request)
    tp = Console.tp(request)
    counts, rows = await read(request, lambda conn: store.webhook_outbox(conn, limit=LIMIT))
    endpoints = tp.rules.site.webhooks
    now = tp.now()
    summary = []
    for name in sorted(set(counts) | set(endpoints)):
        endpoint = endpoints.get(name)
        note: tuple[str, dict[str, str]]
        if endpoint is None:
            note = ("webhooks.not_configured", {})
        elif not endpoint.ready:
            note = ("webhooks.not_ready", {"env": endpoint.secret_env})
        else:
            note = ("webhooks.ready", {})
        n = counts.get(name, {"pending": 0, "delivered": 0, "failed": 0})
        summary.append({"name": name, **n, "note": note})
    for row in rows:
        row["next"] = None
        if row["lease_until"] and row["lease_until"] > now:
            row["status"] = "webhooks.state.sending"
        elif row["state"] == "pending":
            row["status"] = "webhooks.state.pending"
            row["next"] = when(row["next_attempt_at"]) + " UTC"
        else:
            row["status"] = "webhooks.state.failed"
    queued = request.query_params.get("queued", "")
    return console.layout.render(
        request,
        "webhooks.html",
        {
            "summary": summary,
            "rows": rows,
            "when": when,
            "may_retry": session.role == "editor",
            "any_failed": any(row["state"] == "failed" for row in rows),
            "queued": int(queued) if queued.isdigit() and len(queued) < 10 else None,
            "days": console.settings.webhook_keep_days,
            "poll": f"{console.settings.webhook_poll_seconds:g}",
        },
        session=session,
        section="webhooks",
    )


@require("editor")
async def retry(request: Request, session: Session) -> Response:
    """``POST /webhooks/retry``: queue one row (``id``) or every failed one (``all_failed``)
    again with a fresh count of attempts."""
    console = Console.of(request)
    fields = await guard.form(request)
    raw = fields.get("id", "")
    every = fields.get("all_failed") == "1"
    if not every and not (raw.isdigit() and len(raw) < 16):
        return console.refuse(request, "error.bad_form", status=400, session=session)
    ids = [] if every else [int(raw)]
    tp = Console.tp(request)
    now = tp.now()
    try:
        count = await tp.writer.write(
            lambda conn: store.retry_webhooks(conn, now=now, ids=ids, all_failed=every)
        )
    except StorageUnavailable:
        response = console.refuse(request, "webhooks.unavailable", status=503, session=session)
        response.headers["Retry-After"] = str(StorageUnavailable.RETRY_AFTER)
        return response
    return console.layout.redirect(f"/webhooks?queued={count}")


PAGES = [
    Page("/webhooks", outbox, nav="webhooks"),
    Page("/webhooks/retry", retry, methods=("POST",)),
]
