"""The history of a rules file (rules/editing.py's :class:`~touchpoint.rules.editing.History`):
every saved version with who saved it and when, an old version's text, and a one-click restore
(a save of the old text, checked and conflict-safe like any other; editors only)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from ..errors import RequestError
from ..rules import editing
from . import texts
from .guard import Console, form, require
from .layout import Page
from .rules_editor import rules_dir
from .rules_status import when
from .sessions import Session
from .users import allows

texts.add(
    {
        "history.title": ("History of {name}", "Verlauf von {name}"),
        "history.caption": (
            "Every version saved, the newest first",
            "Jede gespeicherte Version, die neueste zuerst",
        ),
        "history.empty": (
            "No version of this file was saved from the console yet.",
            "Von dieser Datei wurde noch keine Version in der Konsole gespeichert.",
        ),
        "history.view": ("View #{id}", "#{id} ansehen"),
        "history.restore": ("Restore #{id}", "#{id} wiederherstellen"),
        "history.current": ("what the file holds now", "der jetzige Inhalt"),
        "history.revision": ("{name}, version #{id}", "{name}, Version #{id}"),
        "history.by": (
            "Saved by {author} at {at}: {action}",
            "Gespeichert von {author} am {at}: {action}",
        ),
        "history.refused": (
            "Not restored: {reason}",
            "Nicht wiederhergestellt: {reason}",
        ),
        "history.open": ("View or restore", "Ansehen oder wiederherstellen"),
        "col.version": ("Version", "Version"),
        "col.when": ("When", "Wann"),
        "col.who": ("Who", "Wer"),
        "col.action": ("Action", "Aktion"),
    }
)


def _history(request: Request) -> editing.History:
    return editing.History(Console.tp(request).settings.data_dir)


def _known(request: Request, name: str) -> editing.Draft | None:
    try:
        draft = editing.read(rules_dir(request), name)
    except RequestError:
        return None
    return draft if draft.version or _history(request).revisions(name) else None


@require("viewer")
async def history(request: Request, session: Session) -> Response:
    """``/rules/history?file=NAME``: the versions, each with view and restore."""
    console = Console.of(request)
    name = request.query_params.get("file", "")
    draft = _known(request, name)
    if draft is None:
        return console.refuse(request, "edit.not_a_file", status=404, session=session, name=name)
    return console.layout.render(
        request,
        "rules_history.html",
        {
            "name": name,
            "version": draft.version,
            "revisions": _history(request).revisions(name),
            "when": lambda at: when(at, request),
            "may_edit": allows(session.role, "editor"),
            "refused": None,
        },
        session=session,
        section="rules",
    )


@require("viewer")
async def revision(request: Request, session: Session) -> Response:
    """``/rules/revision?file=NAME&id=N``: an old version's text."""
    console = Console.of(request)
    name = request.query_params.get("file", "")
    number = request.query_params.get("id", "")
    try:
        if _known(request, name) is None or not number.isdigit():
            raise RequestError("no such version", status=404)
        old = _history(request).revision(name, int(number))
        text = _history(request).text(old)
    except (RequestError, OSError):
        return console.refuse(request, "edit.not_a_file", status=404, session=session, name=name)
    return console.layout.render(
        request,
        "rules_revision.html",
        {"name": name, "revision": old, "text": text, "when": lambda at: when(at, request)},
        session=session,
        section="rules",
    )


@require("editor")
async def restore(request: Request, session: Session) -> Response:
    """POST ``/rules/restore`` (file, id, version): save an old version again."""
    console = Console.of(request)
    tp = Console.tp(request)
    fields = await form(request)
    name, number = fields.get("file", ""), fields.get("id", "")
    if _known(request, name) is None or not number.isdigit():
        return console.refuse(request, "edit.not_a_file", status=404, session=session, name=name)
    try:
        revision = await asyncio.to_thread(
            editing.restore,
            rules_dir(request),
            _history(request),
            name,
            int(number),
            version=fields.get("version", ""),
            author=session.name,
            at=float(tp.now()),
            geolocation=tp.geolocation is not None,
        )
    except RequestError as exc:  # Conflict (409), Invalid (422), no such version (404)
        draft = _known(request, name)
        return console.layout.render(
            request,
            "rules_history.html",
            {
                "name": name,
                "version": draft.version if draft else "",
                "revisions": _history(request).revisions(name),
                "when": lambda at: when(at, request),
                "may_edit": True,
                "refused": str(exc),
            },
            status=exc.status,
            session=session,
            section="rules",
        )
    return console.layout.redirect(f"/rules/edit?file={quote(name, safe='/')}&saved={revision.id}")


PAGES = [
    Page("/rules/history", history),
    Page("/rules/revision", revision),
    Page("/rules/restore", restore, methods=("POST",)),
]
