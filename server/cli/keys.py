"""``touchpoint apikey create | list | revoke``: the server API's keys."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..api.keys import ApiKeys
from ..settings import Settings
from .folders import server_folder


def apikey(settings: Settings, args: argparse.Namespace) -> int:
    """Create, list or revoke server API keys (docs/api.md#keys).

    The key file is the server's only where the server looks: in its data folder (or the file
    ``api_keys_file`` names). A folder that does not exist is no server's, so the command
    refuses rather than create a key file there that nothing reads (run outside the project
    folder, the default ``data`` would be a new ``./data``)."""
    path = settings.api_keys_path
    flag = "--api-keys-file" if settings.api_keys_file else "--data-dir"
    server_folder(path, what="keys", flag=flag)
    keys = ApiKeys(path)
    where = str(path.resolve())
    if args.action == "create":
        token = keys.create(args.name, args.scope, now=int(time.time()))
        if args.json:
            print(
                json.dumps(
                    {
                        "name": args.name,
                        "scopes": sorted(set(args.scope)),
                        "token": token,
                        "file": where,
                    },
                    indent=2,
                )
            )
        else:
            print(token)
        print(f"key {args.name} created in {where}; the token is shown only now", file=sys.stderr)
    elif args.action == "revoke":
        keys.revoke(args.name)
        if args.json:
            print(json.dumps({"name": args.name, "revoked": True, "file": where}, indent=2))
        print(f"key {args.name} revoked in {where}", file=sys.stderr)
    elif args.json:
        listed = [
            {"name": key.name, "scopes": list(key.scopes), "created_at": key.created_at}
            for key in keys.keys()
        ]
        print(json.dumps({"file": where, "keys": listed}, indent=2))
    else:
        for key in keys.keys():
            created = time.strftime("%Y-%m-%d", time.gmtime(key.created_at))
            print(f"{key.name}\t{' '.join(key.scopes)}\t{created}")
    return 0
