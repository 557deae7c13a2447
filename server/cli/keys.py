"""``touchpoint apikey create | list | revoke``: the server API's keys."""

from __future__ import annotations

import argparse
import sys
import time

from ..api.keys import ApiKeys
from ..settings import Settings


def apikey(settings: Settings, args: argparse.Namespace) -> int:
    """Create, list or revoke server API keys (docs/api.md#keys)."""
    keys = ApiKeys(settings.api_keys_path)
    if args.action == "create":
        token = keys.create(args.name, args.scope, now=int(time.time()))
        print(token)
        print(f"key {args.name} created; the token above is shown only now", file=sys.stderr)
    elif args.action == "revoke":
        keys.revoke(args.name)
        print(f"key {args.name} revoked", file=sys.stderr)
    else:
        for key in keys.keys():
            created = time.strftime("%Y-%m-%d", time.gmtime(key.created_at))
            print(f"{key.name}\t{' '.join(key.scopes)}\t{created}")
    return 0
