"""``touchpoint webhooks [retry|secret]``: the webhook outbox, and endpoint secrets."""

from __future__ import annotations

import argparse
import json
import time

from .. import store
from ..errors import ConfigError, TouchpointError
from ..rules import ruleset as rules_module
from ..settings import Settings
from ..webhooks import signing


def webhooks(settings: Settings, args: argparse.Namespace) -> int:
    """List the outbox (docs/webhooks.md#the-outbox), queue failed rows again, or print a new
    endpoint secret (docs/webhooks.md#the-secret)."""
    if args.action == "secret":
        secret = signing.generate_secret()
        print(json.dumps({"secret": secret}) if args.json else secret)
        return 0
    with store.database(settings.database_url) as conn:
        if args.action == "retry":
            if bool(args.ids) == bool(args.all_failed):
                raise ConfigError("webhooks retry: give row ids or --all-failed")
            with store.immediate(conn):
                count = store.retry_webhooks(
                    conn, now=time.time(), ids=args.ids, all_failed=args.all_failed
                )
            if args.json:
                print(json.dumps({"queued": count}, indent=2))
            else:
                print(f"{count} webhook(s) queued again")
            return 0 if count or args.all_failed else 1
        counts, rows = store.webhook_outbox(conn, limit=args.limit)
    try:
        endpoints = rules_module.load(settings.rules_dir).site.webhooks
    except TouchpointError:  # the outbox is still worth seeing with broken rules
        endpoints = {}
    summary = {
        name: {
            **counts.get(name, {"pending": 0, "delivered": 0, "failed": 0}),
            "configured": name in endpoints,
            "ready": name in endpoints and endpoints[name].ready,
        }
        for name in sorted(set(counts) | set(endpoints))
    }
    if args.json:
        print(json.dumps({"endpoints": summary, "rows": rows}, indent=2))
        return 0
    print(f"{'endpoint':<20} {'pending':>8} {'delivered':>10} {'failed':>7}")
    for name, n in summary.items():
        note = ""
        if not n["configured"]:
            note = "  not in site.yaml: its rows wait"
        elif not n["ready"]:
            note = f"  {endpoints[name].secret_env} is not set: its rows wait"
        print(f"{name:<20} {n['pending']:>8} {n['delivered']:>10} {n['failed']:>7}{note}")
    if rows:
        print()
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["next_attempt_at"]))
        status = f"next attempt {when} UTC" if row["state"] == "pending" else "failed"
        if row["lease_until"] and row["lease_until"] > time.time():
            status = "being sent"
        error = f": {row['last_error']}" if row["last_error"] else ""
        print(
            f"#{row['id']} {row['endpoint']} {row['event']} — {status} after "
            f"{row['attempts']} attempt(s){error}"
        )
    return 0
