"""The rules editor (docs/admin.md#editing-rules): open a rules file, check it as you type with
the checks of ``touchpoint check``, see what a change would do (the simulator against the
changed text), save it through rules/editing.py (atomic, checked, kept in the history, refused
when the file changed since it was opened), and create a new file. Editors only; a viewer
sees the file read-only."""

from __future__ import annotations

import asyncio
import functools
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from ..errors import PayloadTooLarge, RequestError
from ..rules import editing
from ..rules.schema import SCHEMAS
from ..syntax.files import Problem
from ..web.limits import read_body
from ..web.responses import JSONResponse
from . import simulator, texts
from .guard import MAX_FORM_BYTES, Console, form, require
from .layout import Page
from .rules_status import file_kind
from .sessions import Session
from .users import allows

texts.add(
    {
        "edit.title": ("{name}", "{name}"),
        "edit.kind": (
            "A {kind} file of the rules folder.",
            "Eine Datei ({kind}) des Regelordners.",
        ),
        "edit.label": ("Text of {name}", "Text von {name}"),
        "edit.new_file": (
            "A new file: it is created when you save it.",
            "Eine neue Datei: Sie wird beim Speichern angelegt.",
        ),
        "edit.read_only": (
            "You may read this file; editing needs the editor role.",
            "Sie dürfen diese Datei lesen; Bearbeiten erfordert die Rolle Bearbeiter.",
        ),
        "edit.save": ("Save", "Speichern"),
        "edit.history": ("History", "Verlauf"),
        "edit.back": ("All rules files", "Alle Regeldateien"),
        "edit.saved": (
            "Saved as version #{id}: the server serves it within the reload interval"
            " (a second or two).",
            "Als Version #{id} gespeichert: Der Server spielt sie innerhalb des"
            " Neulade-Intervalls aus (ein, zwei Sekunden).",
        ),
        "edit.saved_no_reload": (
            "Saved as version #{id}. Reloading is off: the server serves it after a restart.",
            "Als Version #{id} gespeichert. Neuladen ist aus: Der Server spielt sie nach"
            " einem Neustart aus.",
        ),
        "edit.invalid": (
            "Not saved: the rules would not load with this text. Nothing was written.",
            "Nicht gespeichert: Mit diesem Text ließen sich die Regeln nicht laden. Es wurde"
            " nichts geschrieben.",
        ),
        "edit.problems": ("Problems", "Probleme"),
        "edit.elsewhere": ("In other files", "In anderen Dateien"),
        "edit.conflict": (
            "Not saved: {name} was changed by someone else (in the console or on disk) since"
            " you opened it. Their version is shown below. Your text is kept in the editor:"
            " merge their change into it and save again.",
            "Nicht gespeichert: {name} wurde inzwischen von jemand anderem geändert (in der"
            " Konsole oder auf dem Server). Deren Fassung steht unten. Ihr Text bleibt im"
            " Editor: Führen Sie beide zusammen und speichern Sie erneut.",
        ),
        "edit.theirs": ("The version on the server now", "Die Fassung auf dem Server"),
        "edit.simulate": ("What the change would do", "Was die Änderung bewirken würde"),
        "edit.simulate_intro": (
            "The simulator with the text above, before it is saved: every campaign's"
            " outcome on a sample page.",
            "Der Simulator mit dem Text oben, vor dem Speichern: das Ergebnis jeder Kampagne"
            " auf einer Beispielseite.",
        ),
        "edit.run": ("Simulate this text", "Diesen Text simulieren"),
        "edit.not_a_file": (
            "{name} is not a rules file: a name like offer.yaml or templates/offer.html.",
            "{name} ist keine Regeldatei: ein Name wie offer.yaml oder templates/offer.html.",
        ),
        "new.title": ("New rules file", "Neue Regeldatei"),
        "new.kind": ("Kind", "Art"),
        "new.name": (
            "Name (lower-case letters, digits, - and _)",
            "Name (Kleinbuchstaben, Ziffern, - und _)",
        ),
        "new.name_hint": (
            "Campaigns and templates only: the other kinds have a fixed name.",
            "Nur für Kampagnen und Vorlagen: Die anderen Arten haben einen festen Namen.",
        ),
        "new.create": ("Create", "Anlegen"),
        "new.bad_name": (
            "Lower-case letters, digits, - and _, starting with a letter or digit.",
            "Kleinbuchstaben, Ziffern, - und _, am Anfang ein Buchstabe oder eine Ziffer.",
        ),
        "new.exists": (
            "{name} exists already: open it instead.",
            "{name} gibt es schon: Öffnen Sie sie.",
        ),
    }
)
NEW_KINDS = ("campaign", "template", "site", "scoring", "lifecycle", "coupons")
STARTERS = {
    "campaign": (
        "# A new campaign (docs/rules.md): give it a variant that shows a template of\n"
        "# templates/, then save.\n"
        "campaign: {stem}\nkind: popup\ntrigger:\n  exit_intent: {{}}\naudience:\n  page:\n"
        '    path: ["/*"]\nfrequency:\n  after_close: 7d\npriority: 0\nvariants:\n'
        "  - id: holdout\n    weight: 1\n    control: true\n"
    ),
    "template": '<div class="tp-offer">\n  <h2>{stem}</h2>\n</div>\n',
}


def rules_dir(request: Request) -> Path:
    return Path(Console.tp(request).settings.rules_dir)


def _geolocation(request: Request) -> bool:
    return Console.tp(request).geolocation is not None


def _draft(request: Request, name: str) -> editing.Draft | None:
    try:
        return editing.read(rules_dir(request), name)
    except RequestError:
        return None


def page_context(
    request: Request, session: Session, name: str, text: str, version: str
) -> dict[str, Any]:
    """What rules_edit.html needs besides the outcome of a save or a simulation."""
    kind = file_kind(name)
    console = Console.of(request)
    return {
        "name": name,
        "kind": kind,
        "text": text,
        "version": version,
        "may_edit": allows(session.role, "editor"),
        "schema_url": console.layout.url(f"/rules/schema/{kind}.json") if kind in SCHEMAS else "",
        "problems": [],
        "elsewhere": [],
        "notice": None,
        "theirs": None,
        "open_simulation": False,
        **simulator.context(request, None, simulator.values_of({}), {}),
    }


def _split(problems: list[Problem], name: str) -> tuple[list[str], list[str]]:
    """The problems of the file being edited and of the others, as ``check`` prints them."""
    mine = [str(p) for p in problems if p.file == name]
    return mine, [str(p) for p in problems if p.file != name]


def _refuse_name(request: Request, session: Session, name: str) -> Response:
    return Console.of(request).refuse(
        request, "edit.not_a_file", status=404, session=session, name=name
    )


@require("viewer")
async def edit(request: Request, session: Session) -> Response:
    """``/rules/edit?file=NAME``: the file in the editor (read-only for viewers)."""
    name = request.query_params.get("file", "")
    draft = _draft(request, name)
    if draft is None or (not draft.version and not allows(session.role, "editor")):
        return _refuse_name(request, session, name)
    text = draft.text
    if not draft.version:
        starter = STARTERS.get(file_kind(name), "")
        text = starter.format(stem=Path(name).stem)
    ctx = page_context(request, session, name, text, draft.version)
    saved = request.query_params.get("saved", "")
    if saved.isdigit():
        key = "edit.saved" if Console.tp(request).settings.reload_rules else "edit.saved_no_reload"
        ctx["notice"] = (key, {"id": saved})
    return Console.of(request).layout.render(
        request, "rules_edit.html", ctx, session=session, section="rules"
    )


@require("editor")
async def save(request: Request, session: Session) -> Response:
    """POST ``/rules/edit?file=NAME``: save the text (``action=save``), or simulate it."""
    console = Console.of(request)
    tp = Console.tp(request)
    name = request.query_params.get("file", "")
    if _draft(request, name) is None:
        return _refuse_name(request, session, name)
    fields = await form(request)
    text, version = fields.get("text", ""), fields.get("version", "")
    ctx = page_context(request, session, name, text, version)
    if fields.get("action") == "simulate":
        return await _simulate(request, session, ctx, fields)
    try:
        revision = await asyncio.to_thread(
            editing.save,
            rules_dir(request),
            editing.History(tp.settings.data_dir),
            name,
            text,
            version=version,
            author=session.name,
            at=float(tp.now()),
            geolocation=_geolocation(request),
        )
    except editing.Invalid as exc:
        ctx["problems"], ctx["elsewhere"] = _split(exc.problems, name)
        ctx["notice"] = ("edit.invalid", {})
        return console.layout.render(
            request, "rules_edit.html", ctx, status=422, session=session, section="rules"
        )
    except editing.Conflict as exc:
        # The form now carries their version: saving again is a deliberate overwrite (a merge).
        ctx["version"] = exc.current.version
        ctx["theirs"] = exc.current.text
        ctx["notice"] = ("edit.conflict", {"name": name})
        return console.layout.render(
            request, "rules_edit.html", ctx, status=409, session=session, section="rules"
        )
    query = f"?file={quote(name, safe='/')}&saved={revision.id}"
    return console.layout.redirect("/rules/edit" + query)


async def _simulate(
    request: Request, session: Session, ctx: dict[str, Any], fields: dict[str, str]
) -> Response:
    """The edit page with the simulator's trace for the changed text (nothing is written)."""
    name, text = ctx["name"], ctx["text"]
    problems, ruleset = await asyncio.to_thread(
        editing.trial, rules_dir(request), name, text, geolocation=_geolocation(request)
    )
    values = simulator.values_of(fields)
    ctx["open_simulation"] = True
    if ruleset is None:
        ctx["problems"], ctx["elsewhere"] = _split(problems, name)
        ctx["notice"] = ("edit.invalid", {})
        ctx.update(simulator.context(request, None, values, {}))
        status = 422
    else:
        refused = await simulator.audited(request, session, values)
        if refused is not None:
            return refused
        result, errors = simulator.run(
            request, ruleset, values, may_read_visitors=allows(session.role, "editor")
        )
        ctx.update(simulator.context(request, result, values, errors))
        status = 400 if errors else 200
    return Console.of(request).layout.render(
        request, "rules_edit.html", ctx, status=status, session=session, section="rules"
    )


@require("editor")
async def validate(request: Request, session: Session) -> Response:
    """POST ``/rules/validate`` ``{"text", "path"}``: the problems of the folder with that text,
    for the editor's script (snippet/admin/README.md): those of the file at their line, those
    of other files summed up at line 1."""
    try:
        body = json.loads(await read_body(request, max_bytes=MAX_FORM_BYTES))
    except PayloadTooLarge:
        return JSONResponse({"error": "too large"}, status_code=413)
    except ValueError:
        return JSONResponse({"error": "send JSON: {text, path}"}, status_code=400)
    if not isinstance(body, dict) or not all(
        isinstance(body.get(k), str) for k in ("text", "path")
    ):
        return JSONResponse({"error": "send JSON: {text, path}"}, status_code=400)
    name = body["path"]
    try:
        problems = await asyncio.to_thread(
            editing.check, rules_dir(request), name, body["text"], geolocation=_geolocation(request)
        )
    except RequestError as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)
    answer = [
        {
            "line": p.line,
            "column": p.column or None,
            "message": f"{p.key}: {p.message}" if p.key else p.message,
            "severity": p.severity,
        }
        for p in problems
        if p.file == name
    ]
    others = [str(p) for p in problems if p.file != name]
    if others:
        shown = "; ".join(others[:3]) + (
            f" (and {len(others) - 3} more)" if len(others) > 3 else ""
        )
        severity = (
            "error" if any(p.severity == "error" and p.file != name for p in problems) else "info"
        )
        answer.append(
            {"line": 1, "column": None, "message": f"in other files: {shown}", "severity": severity}
        )
    return JSONResponse({"problems": answer, "others": others})


@functools.cache
def _schema(kind: str) -> bytes:
    return json.dumps(SCHEMAS[kind](), separators=(",", ":")).encode()


@require("viewer")
async def schema(request: Request, session: Session) -> Response:
    """``/rules/schema/KIND.json``: the JSON Schema of a kind of rules file (``touchpoint
    schema KIND``), for the editor's completion."""
    kind = request.path_params["kind"]
    if kind not in SCHEMAS:
        return JSONResponse({"error": f"no schema {kind!r}"}, status_code=404)
    return Response(_schema(kind), media_type="application/schema+json")


@require("editor")
async def new(request: Request, session: Session) -> Response:
    """``/rules/new``: a name and a kind (GET: the form; POST: on to the editor)."""
    console = Console.of(request)
    values = {"kind": "campaign", "name": ""}
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    if request.method == "POST":
        fields = await form(request)
        values = {k: fields.get(k, "").strip() for k in values}
        kind = values["kind"] if values["kind"] in NEW_KINDS else "campaign"
        stem = values["name"].removesuffix(".yaml").removesuffix(".html")
        name = {"campaign": f"{stem}.yaml", "template": f"templates/{stem}.html"}.get(
            kind, f"{kind}.yaml"
        )
        draft = _draft(request, name) if "/" not in stem else None
        if draft is None or (kind in STARTERS and not stem):
            errors["name"] = ("new.bad_name", {})
        elif draft.version:
            errors["name"] = ("new.exists", {"name": name})
        else:
            return console.layout.redirect(f"/rules/edit?file={quote(name, safe='/')}")
    return console.layout.render(
        request,
        "rules_new.html",
        {"values": values, "errors": errors, "kinds": NEW_KINDS},
        status=400 if errors else 200,
        session=session,
        section="rules",
    )


PAGES = [
    Page("/rules/edit", edit),
    Page("/rules/edit", save, methods=("POST",)),
    Page("/rules/validate", validate, methods=("POST",)),
    Page("/rules/schema/{kind}.json", schema),
    Page("/rules/new", new, methods=("GET", "POST")),
]
