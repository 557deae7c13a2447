"""What a popup or a content slot may contain: an allow-list of elements, attributes and URL
schemes, enforced on every rendered template by a sanitizer that parses markup as browsers do
(nh3, the bindings to the Ammonia crate, built on the html5ever parser), and explained at
``touchpoint check`` as ``file:line`` problems.

Python's HTMLParser splits markup differently from a browser (foreign content, ``<noscript>``,
abrupt comments, CDATA): a check built on it let ``<svg><style><img onerror=...>`` through
(issue 15). The allow-list below is the one definition; :func:`sanitize` enforces it and
:func:`findings` reports, through html5lib (the WHATWG parsing algorithm, scripting on, as in a
browser), what :func:`sanitize` takes out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import html5lib
import nh3

# Elements a popup may use: text, structure, lists, tables, images, links and forms.
TAGS = frozenset(
    """a abbr article aside b blockquote br button caption cite code col colgroup dd del details
    div dl dt em fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 header hr i img input
    ins kbd label legend li mark meter nav ol optgroup option output p pre progress q s section
    select small span strong sub summary sup table tbody td textarea tfoot th thead time tr u ul
    wbr""".split()
)
# Attributes of every element; data-* (the snippet's data-tp-*) and aria-* are allowed too.
GLOBAL_ATTRIBUTES = frozenset({"class", "id", "title", "role", "lang", "dir", "hidden", "tabindex"})
ATTRIBUTE_PREFIXES = frozenset({"data-", "aria-"})
ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "hreflang", "target", "download"}),
    "img": frozenset({"src", "alt", "width", "height", "loading", "decoding"}),
    "form": frozenset({"action", "method", "novalidate", "autocomplete", "name"}),
    "input": frozenset(
        """type name value placeholder required checked disabled readonly autocomplete inputmode
        maxlength minlength min max step pattern size multiple list form spellcheck
        enterkeyhint""".split()
    ),
    "button": frozenset({"type", "name", "value", "disabled", "form"}),
    "label": frozenset({"for", "form"}),
    "select": frozenset({"name", "required", "multiple", "disabled", "size", "autocomplete"}),
    "option": frozenset({"value", "selected", "disabled", "label"}),
    "optgroup": frozenset({"label", "disabled"}),
    "textarea": frozenset(
        """name rows cols placeholder required maxlength minlength disabled readonly autocomplete
        spellcheck wrap""".split()
    ),
    "fieldset": frozenset({"name", "disabled", "form"}),
    "output": frozenset({"for", "name", "form"}),
    "details": frozenset({"open"}),
    "time": frozenset({"datetime"}),
    "ol": frozenset({"start", "reversed", "type"}),
    "li": frozenset({"value"}),
    "td": frozenset({"colspan", "rowspan", "headers"}),
    "th": frozenset({"colspan", "rowspan", "headers", "scope", "abbr"}),
    "col": frozenset({"span"}),
    "colgroup": frozenset({"span"}),
    "meter": frozenset({"value", "min", "max", "low", "high", "optimum"}),
    "progress": frozenset({"value", "max"}),
    "blockquote": frozenset({"cite"}),
    "q": frozenset({"cite"}),
    "del": frozenset({"cite", "datetime"}),
    "ins": frozenset({"cite", "datetime"}),
}
# URL schemes a link, image or form may use; a relative URL is fine. javascript:, data:,
# vbscript: and the rest are taken out.
URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
URL_ATTRIBUTES = frozenset({"href", "src", "action", "cite", "formaction", "xlink:href", "data"})
# Elements whose presence is an attempt to run or load active content, not a formatting wish:
# ``touchpoint check`` refuses the template rather than warning (SVG animation elements can
# set an href or an event handler attribute on another element).
SCRIPT_TAGS = frozenset(
    """script iframe object embed frame frameset base meta link applet animate set animatemotion
    animatetransform use foreignobject template portal""".split()
)
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
# What a browser drops from a URL before reading its scheme (WHATWG URL: C0 controls and
# spaces at either end, tabs and newlines anywhere).
_URL_NOISE = re.compile(r"[\x00-\x20]")
_PARSER = html5lib.HTMLParser(tree=html5lib.getTreeBuilder("etree"), namespaceHTMLElements=False)


def sanitize(html: str) -> str:
    """``html`` with only what the allow-list permits: other elements are unwrapped (their
    text kept) or, for script, style and the like, dropped with their content; other attributes
    and URLs with other schemes are removed; comments go."""
    return str(
        nh3.clean(
            html,
            tags=set(TAGS),
            attributes={"*": set(GLOBAL_ATTRIBUTES), **{t: set(a) for t, a in ATTRIBUTES.items()}},
            generic_attribute_prefixes=set(ATTRIBUTE_PREFIXES),
            url_schemes=set(URL_SCHEMES),
            strip_comments=True,
            link_rel="noopener noreferrer",
        )
    )


@dataclass(frozen=True)
class Finding:
    """Something :func:`sanitize` takes out of a template's markup. ``script`` when it could
    run script (an event handler, a javascript: URL, a <script>): the template is refused."""

    line: int
    message: str
    script: bool


def findings(html: str) -> list[Finding]:
    """What :func:`sanitize` would take out of ``html``, in document order, with the line of
    ``html`` it stands on (as a browser with scripting parses it)."""
    fragment = _PARSER.parseFragment(html, scripting=True)
    lines = html.splitlines() or [""]
    found: list[Finding] = []
    for element in fragment.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        if not tag or tag == "DOCUMENT_FRAGMENT":
            continue
        name = tag.rsplit("}", 1)[-1].lower()
        if name not in TAGS:
            script = name in SCRIPT_TAGS
            message = (
                f"<{name}> is not allowed in a popup"
                if script
                else f"<{name}> is not allowed in a popup and is removed (its text stays)"
            )
            found.append(Finding(_line(lines, f"<{name}"), message, script))
        for attribute, value in element.attrib.items():
            problem = _attribute_problem(name, attribute.lower(), value)
            if problem is not None:
                where = _line(lines, value, f"{attribute}=", attribute, f"<{name}")
                found.append(Finding(where, *problem))
    return found


def _attribute_problem(tag: str, attribute: str, value: Any) -> tuple[str, bool] | None:
    if attribute.startswith("on"):
        return f"event handler attribute {attribute} is not allowed", True
    if attribute in URL_ATTRIBUTES:
        scheme = _SCHEME.match(_URL_NOISE.sub("", str(value or "")))
        if scheme and scheme.group(1).lower() not in URL_SCHEMES:
            return f"a {scheme.group(1).lower()}: URL in {attribute} is not allowed", True
    allowed = (
        attribute in GLOBAL_ATTRIBUTES
        or attribute in ATTRIBUTES.get(tag, ())
        or any(attribute.startswith(prefix) for prefix in ATTRIBUTE_PREFIXES)
    )
    if allowed or tag not in TAGS:
        return None
    return f"attribute {attribute} of <{tag}> is not allowed and is removed", False


def _line(lines: list[str], *needles: Any) -> int:
    """The first line holding the first of ``needles`` found (1 when none is)."""
    for needle in needles:
        if not needle or not isinstance(needle, str):
            continue
        lowered = needle.lower()
        for number, line in enumerate(lines, 1):
            if lowered in line.lower():
                return number
    return 1
