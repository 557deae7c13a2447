"""Popup templates: Jinja2 in a sandboxed, autoescaping environment, its output sanitized.

Marketers edit templates in ``rules/templates/``. The sandbox blocks attribute access to Python
internals; autoescaping keeps visitor-derived values (page path, first names) from injecting
markup; every rendered output then passes the sanitizer's allow-list (render/sanitize.py), so
markup that could run script never reaches a page, whatever branch of a template produced it.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .sanitize import findings, sanitize

log = logging.getLogger("touchpoint.rendering")

# The context a template can rely on; rules validation renders every template with it once so
# that a template error is reported when the rules load, not when a visitor is waiting.
# The values a page conventionally pushes with touchpoint('context', ...): templates can use
# them without checking they exist (they are None when the page did not push them).
CONTEXT_DEFAULTS: dict[str, Any] = {
    "cart_value": None,
    "items": None,
    "page_type": None,
    "category": None,
    "product": None,
    "logged_in": None,
}
SAMPLE_CONTEXT: dict[str, Any] = {
    "campaign": "sample",
    "variant": "sample",
    "page": {"path": "/", "title": ""},
    "visitor": {
        "known": False,
        "returning": False,
        "first_name": None,
        "last_category": None,
        "last_product": None,
        "top_interest": None,
        "language": "en",
    },
    "context": CONTEXT_DEFAULTS,
}


KNOWN_NAMES = frozenset(SAMPLE_CONTEXT)


@dataclass(frozen=True)
class TemplateProblem:
    file: str  # empty when the problem is the template name itself
    line: int
    message: str
    severity: str = "error"  # or "warning": the sanitizer removes it, the template still shows


class Templates:
    """The templates of one ruleset, with a cache of rendered output.

    Output is cached under the values of the context variables the template actually uses, so a
    template that shows no visitor or page data is rendered once, not on every page view.
    """

    CACHE_SIZE = 4096
    context_defaults = CONTEXT_DEFAULTS

    def __init__(self, rules_templates: Path) -> None:
        self.uses: dict[str, tuple[str, ...]] = {}
        self.checked: dict[str, list[TemplateProblem]] = {}
        self.cache: OrderedDict[tuple[str, bytes], str] = OrderedDict()
        # Immutable: a template cannot change the dicts it is given (say, the shared context
        # defaults) and with them what every later page view renders.
        self.env = ImmutableSandboxedEnvironment(
            loader=jinja2.FileSystemLoader(str(rules_templates)),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            auto_reload=False,
        )

    def check(self, name: str) -> list[TemplateProblem]:
        """Compile ``name``, check its variables and markup, render it with the sample context.
        Checked once per load, however many variants use the template."""
        if name not in self.checked:
            self.checked[name] = self._check(name)
        return self.checked[name]

    def _check(self, name: str) -> list[TemplateProblem]:
        try:
            template = self.env.get_template(name)
            source = self.env.loader.get_source(self.env, name)[0]  # type: ignore[union-attr]
            ast = self.env.parse(source)
            file = template.filename or name
            used = meta.find_undeclared_variables(ast)
            unknown = used - KNOWN_NAMES - set(self.env.globals)
            if unknown:
                names, known = ", ".join(sorted(unknown)), ", ".join(sorted(KNOWN_NAMES))
                return [TemplateProblem(file, 1, f"unknown variable(s) {names} (known: {known})")]
            found = findings(template.render(SAMPLE_CONTEXT))
            script = next((f for f in found if f.script), None)
            if script is not None:
                return [TemplateProblem(file, script.line, f"template: {script.message}")]
        except jinja2.TemplateNotFound:
            return [TemplateProblem("", 0, f"template {name!r} not found in rules/templates/")]
        except jinja2.TemplateSyntaxError as exc:
            return [TemplateProblem(exc.filename or name, exc.lineno, f"template: {exc.message}")]
        except Exception as exc:  # the sandbox's SecurityError, or any error the render raised
            filename = self.env.get_template(name).filename or name
            return [TemplateProblem(filename, _error_line(exc), f"template: {exc}")]
        # Variables used by an included or extended template are not visible in this one:
        # such templates are never cached rather than cached under too few variables.
        if not list(meta.find_referenced_templates(ast)):
            self.uses[name] = tuple(sorted(used))
        return [TemplateProblem(file, f.line, f"template: {f.message}", "warning") for f in found]

    def render(self, name: str, context: dict[str, Any]) -> str | None:
        """Render and sanitize (render/sanitize.py), or None (logged) when the template fails.
        The cache holds sanitized output, so a page view pays for the sanitizer only when the
        values the template shows change."""
        uses = self.uses.get(name)
        key = None
        if uses is not None:
            # A digest, not the values: the cache holds no visitor data (first names ...).
            values = repr(tuple(context.get(var) for var in uses)).encode()
            key = (name, hashlib.blake2b(values, digest_size=16).digest())
        html = self.cache.get(key) if key else None
        if html is not None:
            self.cache.move_to_end(key)  # type: ignore[arg-type]
            return html
        try:
            html = self.env.get_template(name).render(context)
        except Exception:  # a template must never turn a page view into a 500
            log.exception("template %s failed to render; campaign skipped", name)
            return None
        html = sanitize(html)
        if key is None:
            return html
        self.cache[key] = html
        if len(self.cache) > self.CACHE_SIZE:
            self.cache.popitem(last=False)
        return html


def unsafe_markup(html: str) -> tuple[int, str] | None:
    """(line, reason) of the first markup in ``html`` that could run script, or None: what
    ``touchpoint check`` refuses a template for (the rest the sanitizer removes is a warning)."""
    script = next((f for f in findings(html) if f.script), None)
    return None if script is None else (script.line, script.message)


def _error_line(exc: BaseException) -> int:
    tb = exc.__traceback__
    line = 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(".html"):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
