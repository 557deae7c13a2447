"""Popup templates: Jinja2 in a sandboxed, autoescaping environment.

Marketers edit templates in ``rules/templates/``. The sandbox blocks attribute access to Python
internals; autoescaping keeps visitor-derived values (page path, later first names) from
injecting markup.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
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
    def __init__(self, rules_templates: Path) -> None:
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
        except jinja2.TemplateNotFound:
            return [TemplateProblem("", 0, f"template {name!r} not found in rules/templates/")]
        except jinja2.TemplateSyntaxError as exc:
            return [TemplateProblem(exc.filename or name, exc.lineno, f"template: {exc.message}")]
        except (jinja2.TemplateError, jinja2.exceptions.SecurityError) as exc:
            filename = self.env.get_template(name).filename or name
            return [TemplateProblem(filename, _error_line(exc), f"template: {exc}")]
        return []

    def render(self, name: str, context: dict[str, Any]) -> str | None:
        """Render, or None (logged) when a template fails on this context at run time."""
        try:
            return self.env.get_template(name).render(context)
        except jinja2.TemplateError:
            log.exception("template %s failed to render; campaign skipped", name)
            return None


def _error_line(exc: BaseException) -> int:
    tb = exc.__traceback__
    line = 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(".html"):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
