"""Coupons in the console: every pool's stock as ``touchpoint coupons list`` shows it (codes
left, the low-stock warning of coupons.yaml's ``low_stock``), and per pool and campaign the
codes revealed, redeemed and the revenue per currency in a range of days (from the rollups,
results/breakdowns.py)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..coupons import stock
from ..results import breakdowns, report
from ..rules.ruleset import Ruleset
from ..store import Connection
from . import texts
from .guard import Console, read, require
from .layout import Page
from .results import asked_range, revenue_text
from .sessions import Session

texts.add(
    {
        "coupons.title": ("Coupons", "Gutscheine"),
        "coupons.stock": ("Stock of each pool, now", "Bestand je Pool, jetzt"),
        "coupons.used": (
            "Codes revealed and redeemed per pool and campaign, {since} to {until}",
            "Gezeigte und eingelöste Codes je Pool und Kampagne, {since} bis {until}",
        ),
        "coupons.unlimited": ("unlimited", "unbegrenzt"),
        "coupons.low": ("Low: below {low_stock}", "Knapp: unter {low_stock}"),
        "coupons.ok": ("enough", "ausreichend"),
        "coupons.removed": ("not in coupons.yaml", "nicht in coupons.yaml"),
        "coupons.none": (
            "No coupon pool in coupons.yaml and no codes stored.",
            "Kein Gutschein-Pool in coupons.yaml und keine Codes gespeichert.",
        ),
        "coupons.unused": (
            "No campaign hands out codes of a pool.",
            "Keine Kampagne gibt Codes eines Pools aus.",
        ),
        "coupons.low_note": (
            "A pool is low when fewer codes are left than its low_stock in coupons.yaml.",
            "Ein Pool ist knapp, wenn weniger Codes übrig sind als sein low_stock in coupons.yaml.",
        ),
        "col.pool": ("Pool", "Pool"),
        "col.codes": ("Codes", "Codes"),
        "col.left": ("Left", "Übrig"),
        "col.total": ("Of", "Von"),
        "col.assigned": ("Handed out", "Ausgegeben"),
        "col.redeemed_all": ("Redeemed (all time)", "Eingelöst (insgesamt)"),
        "col.state": ("Stock", "Bestand"),
    }
)


def total(row: dict[str, Any]) -> int | None:
    """All the codes a pool has or may have: what was loaded (imported: free and handed out),
    or a generated pool's limit; None when it cannot run out."""
    if row["codes"] in ("imported", None):
        return int(row["free"] + row["assigned"])
    if row["codes"] == "generated" and row["limit"] is not None:
        return int(row["limit"])
    return None


def _read(
    conn: Connection, rules: Ruleset, days: report.Range | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    pools = stock.stock(rules.pools, store.coupon_stats(conn))
    used = breakdowns.pool_campaigns(conn, rules, days) if days else []
    return pools, used


@require("viewer")
async def coupons_page(request: Request, session: Session) -> Response:
    """``/coupons``: each pool's stock, and what its campaigns did with it in the range."""
    console = Console.of(request)
    days, values, errors = asked_range(request)
    rules = Console.tp(request).rules
    pools, used = await read(request, lambda conn: _read(conn, rules, days))
    return console.layout.render(
        request,
        "coupons.html",
        {
            "days": days,
            "values": values,
            "errors": errors,
            "pools": pools,
            "used": used,
            "total": total,
            "revenue": revenue_text,
        },
        session=session,
        section="coupons",
    )


PAGES = [Page("/coupons", coupons_page, nav="coupons")]
