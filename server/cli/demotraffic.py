"""``touchpoint demo-traffic``: synthetic visitors played through the demo shop's campaigns over
HTTP, so that a newcomer sees real reports on a fresh ``make run`` (docs/reports.md#demo-data).

Every request goes through the public routes, as the snippet would send it (consent, decide,
events, coupon reveals), and with ``--api-key`` through the server API as the shop would
(purchases, redemptions): the rollups count them exactly as they count real visitors. The
visitors are synthetic: their browser says ``TouchpointDemoTraffic`` and the command refuses
a server that does not serve the demo shop (``serve --demo``). Never on by default.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from typing import Any

import httpx2 as httpx

from ..errors import ConfigError
from ..settings import Settings

AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0"
    " Safari/537.36 TouchpointDemoTraffic/1.0 (synthetic)"
)
# The demo shop's pages as their snippet asks for them: the context each pushes, its slots.
PAGES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "/demo/": ({"page_type": "home"}, ["hero"]),
    "/demo/category/running.html": ({"page_type": "category", "category": "Running"}, []),
    "/demo/products/trail-runner.html": (
        {"page_type": "product", "category": "Running", "product": "Trail Runner X"},
        [],
    ),
    "/demo/cart.html": ({"page_type": "cart", "items": 1}, ["cart-note"]),
}
CONSENT_ALL = ["measurement", "personalisation", "marketing"]
# How the synthetic visitors behave: the share that sees an armed popup's trigger fire, closes
# it, and converts per variant, and the share that buys after seeing a variant (the best of
# those they saw). The cart note's free returns sell better than its free shipping: what its
# experiment (rules/cart-note.yaml) should find with a couple of thousand visitors.
SEEN, CLOSED = 0.7, 0.45
CONVERTS = {"default": 0.08, "holdout": 0.0}
BUYS = {"default": 0.1, "holdout": 0.08, "free-shipping": 0.12, "free-returns": 0.2}


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "demo-traffic",
        help="play synthetic visitors through the demo shop, for reports to show (demo only)",
        description="Plays synthetic visitors through the demo shop's campaigns over HTTP:"
        " consent, page views, popups seen, closed and converted, coupons revealed and (with"
        " --api-key) purchases and redemptions. For a demo database only: the visitors are"
        " stored like real ones.",
        parents=parents,
    )
    command.add_argument(
        "--url", default="http://127.0.0.1:8000", help="the server (default: %(default)s)"
    )
    command.add_argument("--visitors", type=int, default=1000, help="how many (default: 1000)")
    command.add_argument(
        "--api-key", help="a key with events:write and coupons:redeem, for purchases"
    )
    command.add_argument("--seed", type=int, help="the random seed, to play the same visitors")


def command(settings: Settings, args: argparse.Namespace) -> int:
    if not 1 <= args.visitors <= 100_000:
        raise ConfigError("--visitors: from 1 to 100000")
    base = args.url.rstrip("/")
    prefix = base + settings.prefix
    chance = random.Random(args.seed)
    try:
        with httpx.Client(headers={"User-Agent": AGENT}, timeout=10) as probe:
            if probe.get(base + "/demo/").status_code != 200:
                raise ConfigError(
                    f"{base} serves no demo shop: start it with `touchpoint serve --demo`"
                )
        api = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else None
        played: Counter[str] = Counter()
        for i in range(args.visitors):
            _visitor(prefix, chance, api, played)
            if (i + 1) % 100 == 0:
                print(f"\r{i + 1} of {args.visitors} synthetic visitors", end="", file=sys.stderr)
    except httpx.HTTPError as exc:
        raise ConfigError(f"{base}: {exc}") from None
    print(file=sys.stderr)
    if args.json:
        print(json.dumps(dict(sorted(played.items()))))
    else:
        print(", ".join(f"{count} {what}" for what, count in sorted(played.items())))
    return 0


def _visitor(
    prefix: str, chance: random.Random, api: dict[str, str] | None, played: Counter[str]
) -> None:
    with httpx.Client(headers={"User-Agent": AGENT}, timeout=10) as client:
        played["visitors"] += 1
        if chance.random() < 0.2:  # rejects: nothing is stored about them
            client.post(prefix + "/v1/consent", json={"granted": []})
            return
        client.post(prefix + "/v1/consent", json={"granted": CONSENT_ALL}).raise_for_status()
        visitor = (client.cookies.get("tp_vid") or "").split(".")[0]
        exposed: list[tuple[str, str]] = []
        codes: list[str] = []
        for path in chance.sample(list(PAGES), k=chance.randint(1, len(PAGES))):
            context, slots = PAGES[path]
            if path.endswith("cart.html"):
                context = {**context, "cart_value": chance.choice((30, 80, 129))}
            answer = client.post(
                prefix + "/v1/decide",
                json={"page": {"path": path}, "context": context, "slots": slots},
            )
            answer.raise_for_status()
            decided = answer.json()
            for popup in decided.get("popups", []):
                if chance.random() < SEEN:
                    exposed.append(_seen(client, prefix, popup, chance, played, codes))
            for content in decided.get("slots", {}).values():
                exposed.append(_filled(client, prefix, content, played))
        if api and exposed and chance.random() < max(_rate(BUYS, v) for _, v in exposed):
            order = f"demo-{chance.getrandbits(48):012x}"
            money = {"value": round(chance.uniform(40, 180), 2), "currency": "EUR"}
            purchase = {"type": "purchase", "visitor_id": visitor, "order_id": order, **money}
            client.post(prefix + "/v1/api/events", json=purchase, headers=api).raise_for_status()
            played["purchases"] += 1
            for code in codes[:1]:  # the order used the code the visitor was given
                redeem = {"code": code, "order_id": order, "visitor_id": visitor, **money}
                if client.post(
                    prefix + "/v1/api/coupons/redeem", json=redeem, headers=api
                ).is_success:
                    played["codes redeemed"] += 1


def _seen(
    client: httpx.Client,
    prefix: str,
    popup: dict[str, Any],
    chance: random.Random,
    played: Counter[str],
    codes: list[str],
) -> tuple[str, str]:
    campaign, variant = popup["campaign"], popup["variant"]
    held = popup.get("control", False)
    kind = "exposure" if held else "impression"
    events = [{"type": kind, "campaign": campaign, "variant": variant}]
    played["popups seen" if not held else "held back"] += 1
    if not held:
        if chance.random() < _rate(CONVERTS, variant):
            events.append({"type": "convert", "campaign": campaign, "variant": variant})
            played["conversions"] += 1
        elif chance.random() < CLOSED:
            events.append({"type": "close", "campaign": campaign, "variant": variant})
    client.post(prefix + "/v1/events", json={"events": events})
    if len(events) > 1 and events[1]["type"] == "convert":  # a coupon popup shows its code
        reveal = {"campaign": campaign, "variant": variant}
        answer = client.post(prefix + "/v1/coupons/reveal", json=reveal)
        if answer.status_code == 200:
            codes.append(answer.json()["code"])
            played["codes revealed"] += 1
    return campaign, variant


def _filled(
    client: httpx.Client, prefix: str, content: dict[str, Any], played: Counter[str]
) -> tuple[str, str]:
    """A slot the page filled (or kept, for a holdout), reported as the snippet reports it."""
    campaign, variant = content["campaign"], content["variant"]
    held = content.get("control", False)
    kind = "exposure" if held else "impression"
    client.post(
        prefix + "/v1/events",
        json={"events": [{"type": kind, "campaign": campaign, "variant": variant}]},
    )
    played["slots held back" if held else "slots filled"] += 1
    return campaign, variant


def _rate(rates: dict[str, float], variant: str) -> float:
    return rates.get(variant, rates["default"])
