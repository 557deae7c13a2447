"""Rules status: every file of the rules folder with the campaigns it holds, the outcome of the
last reload (its problems and warnings as ``touchpoint check`` prints them) and which set of
rules every worker serves (rules/lastgood.py)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import Response

from ..rules import editing, profilefiles
from ..rules.campaigns import Campaign
from ..rules.ruleset import SITE_FILE
from . import texts
from .guard import Console, require
from .layout import Page
from .sessions import Session
from .users import allows

texts.add(
    {
        "rules.title": ("Rules status", "Regelstatus"),
        "rules.files": ("Files", "Dateien"),
        "rules.files_caption": (
            "{files} files, {campaigns} campaigns in the rules folder",
            "{files} Dateien, {campaigns} Kampagnen im Regelordner",
        ),
        "rules.reload": ("Last reload", "Letztes Neuladen"),
        "rules.reload_ok": ("Loaded without errors at {at}.", "Fehlerfrei geladen am {at}."),
        "rules.reload_refused": (
            "Refused at {at}: the server keeps serving the last good rules until these"
            " problems are fixed.",
            "Abgelehnt am {at}: Der Server spielt weiter die letzten guten Regeln aus, bis"
            " diese Probleme behoben sind.",
        ),
        "rules.reload_never": ("No reload recorded yet.", "Noch kein Neuladen verzeichnet."),
        "rules.reload_off": (
            "Reloading is off (setting reload_rules): a change is served after a restart.",
            "Neuladen ist aus (Einstellung reload_rules): Änderungen gelten nach einem Neustart.",
        ),
        "rules.problems": ("Problems", "Probleme"),
        "rules.warnings": ("Warnings of the rules served", "Warnungen der ausgespielten Regeln"),
        "rules.no_warnings": ("No warnings.", "Keine Warnungen."),
        "rules.accepted": (
            "Accepted set {digest}, since {at}.",
            "Angenommener Stand {digest}, seit {at}.",
        ),
        "rules.workers": ("Workers", "Prozesse"),
        "rules.workers_caption": (
            "The set of rules each server process serves",
            "Der Regelstand, den jeder Serverprozess ausspielt",
        ),
        "rules.no_workers": (
            "No worker has announced its rules.",
            "Kein Prozess hat seinen Regelstand gemeldet.",
        ),
        "rules.stale": ("serves another set", "spielt einen anderen Stand aus"),
        "rules.current": ("the accepted set", "der angenommene Stand"),
        "rules.edit": ("Edit", "Bearbeiten"),
        "rules.view": ("View", "Ansehen"),
        "rules.new": ("New file", "Neue Datei"),
        "col.file": ("File", "Datei"),
        "col.trigger": ("Trigger", "Auslöser"),
        "col.priority": ("Priority", "Priorität"),
        "col.schedule": ("Schedule", "Zeitplan"),
        "rules.col.pool": ("Coupon pool", "Gutscheinpool"),
        "col.pid": ("Process", "Prozess"),
        "col.set": ("Set", "Stand"),
        "col.since": ("Since", "Seit"),
        "kind.campaign": ("campaign", "Kampagne"),
        "kind.site": ("site settings", "Website-Einstellungen"),
        "kind.scoring": ("scoring", "Scoring"),
        "kind.lifecycle": ("lifecycle", "Lebenszyklus"),
        "kind.coupons": ("coupon pools", "Gutscheinpools"),
        "kind.template": ("template", "Vorlage"),
    }
)

# The schedules as written, by file and its state: re-read only when a file changes.
_SCHEDULES: dict[tuple[str, int, int], str] = {}


def file_kind(name: str) -> str:
    """Which schema a rules file follows: campaign, site, scoring, lifecycle, coupons or
    template."""
    if name.startswith("templates/"):
        return "template"
    if name == SITE_FILE:
        return "site"
    stem = Path(name).stem
    if stem in profilefiles.STEMS or stem == "coupons":
        return stem
    return "campaign"


def when(at: float | None, request: Request) -> str:
    """A moment in the site's time zone, to the second."""
    if at is None:
        return "—"
    tz = Console.tp(request).rules.site.timezone
    return dt.datetime.fromtimestamp(at, tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def source_file(campaign: Campaign, rules_dir: Path) -> str:
    """The campaign's file relative to the rules folder (its source is ``path:line``)."""
    path = campaign.source.rsplit(":", 1)[0]
    return os.path.relpath(path, rules_dir) if os.path.isabs(path) else path


def trigger_text(campaign: Campaign) -> str:
    if campaign.kind == "content":
        return f"slot {campaign.slot}"
    trigger = campaign.trigger
    if trigger is None:
        return "—"
    value = trigger.value
    if isinstance(value, tuple):
        value = ", ".join(f"{k}: {_plain(v)}" for k, v in value)
    return trigger.name + (f" ({value})" if value not in (None, "", True) else "")


def schedule_text(path: Path) -> str:
    """The ``schedule:`` of a campaign file as written (``from: 2026-12-01, until: ...``)."""
    try:
        stat = path.stat()
    except OSError:
        return ""
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _SCHEDULES:
        if len(_SCHEDULES) > 10_000:  # files changed many times over: start afresh
            _SCHEDULES.clear()
        try:
            data = yaml.load(
                path.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            )
        except (OSError, yaml.YAMLError):
            data = None
        schedule = data.get("schedule") if isinstance(data, dict) else None
        if isinstance(schedule, dict):
            shown = ", ".join(f"{k}: {_plain(v)}" for k, v in schedule.items())
        else:
            shown = "" if schedule is None else _plain(schedule)
        _SCHEDULES[key] = shown
    return _SCHEDULES[key]


def _plain(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(_plain(v) for v in value)
    if isinstance(value, bool):  # as YAML writes it
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class FileRow:
    name: str
    kind: str
    campaigns: list[dict[str, Any]]


def file_rows(request: Request) -> list[FileRow]:
    tp = Console.tp(request)
    rules_dir = Path(tp.settings.rules_dir)
    by_file: dict[str, list[Campaign]] = {}
    for campaign in tp.rules.campaigns:
        by_file.setdefault(source_file(campaign, rules_dir), []).append(campaign)
    rows = []
    # The YAML files first, then the templates they show.
    names = sorted(editing.files(rules_dir), key=lambda n: (n.startswith("templates/"), n))
    for name in names:
        campaigns = [
            {
                "id": c.id,
                "kind": c.kind,
                "trigger": trigger_text(c),
                "priority": c.priority,
                "schedule": schedule_text(rules_dir / name),
                "pools": ", ".join(sorted(c.pools)),
            }
            for c in by_file.get(name, [])
        ]
        rows.append(FileRow(name, file_kind(name), campaigns))
    return rows


@require("viewer")
async def status(request: Request, session: Session) -> Response:
    """``/rules``: the files and campaigns served, the last reload and the workers."""
    console = Console.of(request)
    tp = Console.tp(request)
    rules_dir = str(tp.settings.rules_dir) + "/"
    last_good = tp.last_good
    saved = last_good.saved() if last_good else None
    workers = last_good.workers() if last_good else []
    rows = file_rows(request)
    return console.layout.render(
        request,
        "rules_status.html",
        {
            "rows": rows,
            "campaign_count": sum(len(r.campaigns) for r in rows),
            "status": last_good.status() if last_good else None,
            "warnings": [str(w).removeprefix(rules_dir) for w in tp.rules.warnings],
            "saved": saved,
            "workers": workers,
            "reload_on": tp.settings.reload_rules,
            "when": lambda at: when(at, request),
            "may_edit": allows(session.role, "editor"),
        },
        session=session,
        section="rules",
    )


PAGES = [Page("/rules", status, nav="rules")]
