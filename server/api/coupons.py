"""The coupon routes of the server API (docs/coupons.md): codes loaded into an imported pool
(``POST /tp/v1/api/coupons/{pool}/codes``, JSON or CSV), the stock per pool
(``GET /tp/v1/api/coupons``) and redemptions (``POST /tp/v1/api/coupons/redeem``), which the
shop sends when an order used a code.
"""

from __future__ import annotations

import asyncio
import csv

from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..coupons import pools as coupons
from ..coupons import stock as couponstock
from ..store import Connection
from ..web.limits import read_body, read_json
from ..web.responses import JSONResponse
from . import couponspec
from .endpoints import Handler, Problem, reference


async def import_coupons(request: Request) -> Response:
    """Codes for an imported pool: ``{"codes": [...]}``, or a CSV body (``text/csv``)."""
    tp = request.app.state.tp
    name = request.path_params["pool"]
    pool = tp.rules.pools.get(name)
    if pool is None:
        raise Problem(404, f"no pool {name!r} in coupons.yaml")
    if pool.codes != "imported":
        raise Problem(422, f"pool {name} has {pool.codes} codes: only an imported pool takes codes")
    limit = tp.settings.api_max_body_bytes
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    position = "line"
    if media in ("text/csv", "text/plain"):
        try:
            text = (await read_body(request, max_bytes=limit)).decode("utf-8-sig")
            rows = list(couponstock.csv_rows(text.splitlines(keepends=True)))
        except UnicodeDecodeError:
            raise Problem(400, "the CSV body is not UTF-8 text") from None
        except csv.Error as exc:
            raise Problem(400, f"the CSV body cannot be read: {exc}") from None
    else:
        data = await read_json(request, max_bytes=limit)
        if set(data) != {"codes"}:
            raise Problem(400, 'a JSON body is {"codes": ["CODE-1", ...]}; or send text/csv')
        try:
            rows, position = couponstock.json_rows(data["codes"]), "index"
        except ValueError as exc:
            raise Problem(422, str(exc)) from None
    now = tp.now()
    report = await tp.writer.write(lambda conn: store.import_codes(conn, name, rows, now=now))
    if report.added:
        tp.stock.refilled()
    return JSONResponse(report.as_json(position))


async def coupon_stock(request: Request) -> Response:
    tp = request.app.state.tp
    # Counting reads whole indexes of a large pool: off the event loop, on a connection of its own.
    stats = await asyncio.to_thread(_coupon_stats, tp.settings.database_url)
    pools = couponstock.stock(tp.rules.pools, stats)
    return JSONResponse({"pools": pools}, headers={"Cache-Control": "no-store"})


def _coupon_stats(path: str) -> dict[str, store.PoolStats]:
    conn = store.connect(path)
    try:
        return store.coupon_stats(conn)
    finally:
        conn.close()


async def redeem_coupon(request: Request) -> Response:
    tp = request.app.state.tp
    values, ref = couponspec.parse_redemption(
        await read_json(request, max_bytes=tp.settings.api_max_body_bytes)
    )
    who = reference(ref, tp.identity_key) if ref else None
    rules = tp.rules
    pools, endpoints, now = rules.pools, rules.site.webhooks, tp.now()

    def redeem(conn: Connection) -> tuple[store.Redemption, int]:
        visitor_id = store.find_visitor(conn, *who) if who else None  # unknown: not credited
        done = store.redeem_coupon(
            conn,
            pools,
            values["code"],
            values["order_id"],
            values.get("value"),
            values.get("currency"),
            now,
            visitor_id=visitor_id,
        )
        if not done.replay and done.campaign is not None:
            campaign = rules.by_id.get(done.campaign)
            version = campaign.version if campaign is not None else 1
            on = store.day(now, rules.site.timezone)
            goal = done.campaign in rules.goals
            store.count_redemption(conn, done, on, version, goal=goal)
        return done, coupons.queue_redeemed(conn, endpoints, done, now=now)

    done, queued = await tp.writer.write(redeem)
    tp.webhooks_queued(queued)
    # A retried request gets the first answer again (no second webhook), marked as such.
    headers = {"Idempotent-Replayed": "true"} if done.replay else {}
    return JSONResponse(done.as_json(), headers=headers)


HANDLERS: dict[str, Handler] = {
    "importCoupons": import_coupons,
    "couponStock": coupon_stock,
    "redeemCoupon": redeem_coupon,
}
