"""Popup templates: Jinja2 in a sandboxed, autoescaping environment.

Marketers edit templates in ``rules/templates/``. The sandbox blocks attribute access to Python
internals; autoescaping keeps visitor-derived values (page path, later first names) from
injecting markup.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

log = logging.getLogger("touchpoint.rendering")

# The context a template can rely on; rules validation renders every template with it once so
# that a template error is reported when the rules load, not when a visitor is waiting.
SAMPLE_CONTEXT: dict[str, Any] = {
    "campaign": "sample",
    "variant": "sample",
    "page": {"path": "/", "title": ""},
    "visitor": {"known": False},
}


@dataclass(frozen=True)
class TemplateProblem:
    file: str  # empty when the problem is the template name itself
    line: int
    message: str


class Templates:
    """The templates of one ruleset, with a cache of rendered output.

    Output is cached under the values of the context variables the template actually uses, so a
    template that shows no visitor or page data is rendered once, not on every page view.
    """

    CACHE_SIZE = 4096

    def __init__(self, rules_templates: Path) -> None:
        self.uses: dict[str, tuple[str, ...]] = {}
        self.cache: OrderedDict[tuple[str, ...], str] = OrderedDict()
        self.env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(str(rules_templates)),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            auto_reload=False,
        )

    def check(self, name: str) -> list[TemplateProblem]:
        """Compile ``name`` and render it with the sample context; every problem found."""
        try:
            template = self.env.get_template(name)
            template.render(SAMPLE_CONTEXT)
            self._learn_variables(name)
        except jinja2.TemplateNotFound:
            return [TemplateProblem("", 0, f"template {name!r} not found in rules/templates/")]
        except jinja2.TemplateSyntaxError as exc:
            return [TemplateProblem(exc.filename or name, exc.lineno, f"template: {exc.message}")]
        except (jinja2.TemplateError, jinja2.exceptions.SecurityError) as exc:
            filename = self.env.get_template(name).filename or name
            return [TemplateProblem(filename, _error_line(exc), f"template: {exc}")]
        return []

    def _learn_variables(self, name: str) -> None:
        source = self.env.loader.get_source(self.env, name)[0]  # type: ignore[union-attr]
        ast = self.env.parse(source)
        # Variables used by an included or extended template are not visible here: such
        # templates are not cached at all rather than cached under too few variables.
        if not list(meta.find_referenced_templates(ast)):
            self.uses[name] = tuple(sorted(meta.find_undeclared_variables(ast)))

    def render(self, name: str, context: dict[str, Any]) -> str | None:
        """Render, or None (logged) when a template fails on this context at run time."""
        uses = self.uses.get(name)
        key = (name, *(repr(context.get(var)) for var in uses)) if uses is not None else None
        html = self.cache.get(key) if key else None
        if html is not None:
            self.cache.move_to_end(key)  # type: ignore[arg-type]
            return html
        try:
            html = self.env.get_template(name).render(context)
        except jinja2.TemplateError:
            log.exception("template %s failed to render; campaign skipped", name)
            return None
        if key is None:
            return html
        self.cache[key] = html
        if len(self.cache) > self.CACHE_SIZE:
            self.cache.popitem(last=False)
        return html


def _error_line(exc: BaseException) -> int:
    tb = exc.__traceback__
    line = 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(".html"):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
