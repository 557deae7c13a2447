"""The sanitizer every rendered template passes (render/sanitize.py): markup that splits
differently in a browser than in Python's HTMLParser cannot carry script through it, whatever
the payload; `touchpoint check` names what it removes by line."""

from __future__ import annotations

from pathlib import Path

import html5lib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from touchpoint.render.sanitize import URL_SCHEMES, findings, sanitize
from touchpoint.render.templates import Templates

# Issue 15: each passed the HTMLParser-based check and ran alert() in Chromium.
PAYLOADS = [
    "<svg><style><img src=x onerror=alert(1)>",
    "<math><style><img src=x onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<noembed><p title="</noembed><img src=x onerror=alert(1)>">',
    "<!--><img src=x onerror=alert(1)>",
    "<!---><img src=x onerror=alert(1)>",
    "<![CDATA[><img src=x onerror=alert(1)>",
]
PARSER = html5lib.HTMLParser(tree=html5lib.getTreeBuilder("etree"), namespaceHTMLElements=False)
SCRIPT_ELEMENTS = {"script", "iframe", "object", "embed", "frame", "base", "meta", "link", "style"}


def script_in(html: str) -> list[str]:
    """What could run script in ``html`` as a browser (scripting on) parses it."""
    found = []
    for element in PARSER.parseFragment(html, scripting=True).iter():
        if not isinstance(element.tag, str):
            continue
        tag = element.tag.rsplit("}", 1)[-1].lower()
        if tag in SCRIPT_ELEMENTS or tag in ("svg", "math"):
            found.append(f"<{tag}>")
        for name, value in element.attrib.items():
            if name.lower().startswith("on"):
                found.append(f"{tag} {name}")
            url = "".join(ch for ch in str(value) if ch > " ").lower()
            if name.lower() in ("href", "src", "action", "formaction", "xlink:href", "srcdoc"):
                scheme = url.split(":", 1)[0] if ":" in url.split("/", 1)[0] else ""
                if scheme and scheme not in URL_SCHEMES:
                    found.append(f"{tag} {name}={scheme}:")
    return found


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_payloads_are_neutralised_and_refused_at_check(payload: str) -> None:
    assert script_in(payload), "the payload must carry script as a browser parses it"
    assert script_in(sanitize(payload)) == []
    refused = [f for f in findings(f"<h2>Hi</h2>\n{payload}\n") if f.script]
    assert refused and refused[0].line == 2, findings(payload)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_check_refuses_a_template_carrying_a_payload(tmp_path: Path, payload: str) -> None:
    (tmp_path / "evil.html").write_text(f"<h2>Hi {{{{ page.path }}}}</h2>\n{payload}\n")
    problems = Templates(tmp_path).check("evil.html")
    assert [(p.line, p.severity) for p in problems][:1] == [(2, "error")]
    assert "not allowed" in problems[0].message


def test_what_is_removed_but_runs_no_script_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "t.html").write_text(
        '<h2>Hi</h2>\n<marquee>x</marquee>\n<p style="color:red">y</p>'
    )
    problems = Templates(tmp_path).check("t.html")
    assert [(p.line, p.severity) for p in problems] == [(2, "warning"), (3, "warning")]
    assert "<marquee>" in problems[0].message and "style" in problems[1].message
    assert Templates(tmp_path).render("t.html", {}) == "<h2>Hi</h2>\nx\n<p>y</p>"


def test_what_a_popup_needs_survives() -> None:
    markup = (
        '<section data-tp-step="form"><form data-tp-convert action="/newsletter" method="post">'
        '<label for="e">E-mail</label><input id="e" type="email" name="email" required '
        'autocomplete="email" data-tp-error="Please."><select name="i"><option value="r">r'
        '</option></select><button class="tp-button" type="submit" aria-label="Go">Go</button>'
        '<a href="https://shop.example/x" data-tp-close>x</a><img src="/p.png" alt="p">'
        "</form></section>"
    )
    assert findings(markup) == []
    clean = sanitize(markup)
    for kept in (
        'data-tp-step="form"',
        'type="email"',
        "required",
        'autocomplete="email"',
        'aria-label="Go"',
        'href="https://shop.example/x"',
        'src="/p.png"',
        'action="/newsletter"',
    ):
        assert kept in clean, kept


# A generated corpus: fragments of markup that confuse parsers, stitched together at random.
FRAGMENTS = [
    "<svg>",
    "</svg>",
    "<math>",
    "</math>",
    "<style>",
    "</style>",
    "<noscript>",
    "</noscript>",
    "<noembed>",
    "</noembed>",
    "<template>",
    "<textarea>",
    "</textarea>",
    "<title>",
    "<xmp>",
    "<!--",
    "-->",
    "<!-->",
    "<!--->",
    "<![CDATA[",
    "]]>",
    '<p title="',
    '">',
    "'",
    '"',
    ">",
    "<img src=x onerror=alert(1)>",
    "<a href=javascript:alert(1)>",
    '<a href="&#106;avascript:x">',
    "<a href=' JaVaScRiPt:alert(1)'>",
    "<iframe srcdoc='<script>alert(1)</script>'>",
    "<script>alert(1)</script>",
    "<scr<script>ipt>",
    "<form action=data:text/html,x>",
    "<button formaction=javascript:x>",
    "<details open ontoggle=alert(1)>",
    "<body onload=x>",
    "<select><style></select><img src=x onerror=y>",
    "<table><svg><img onerror=z>",
    "<animate attributeName=href values=javascript:x>",
    "<set attributeName=onclick to=x>",
    "<object data=javascript:x>",
    "<embed src=javascript:x>",
    "<base href=javascript:/>",
    "<meta http-equiv=refresh content='0;url=javascript:x'>",
    "<link rel=import href=x>",
    "<input autofocus onfocus=x>",
    "<video><source onerror=x>",
    "text",
    "&lt;",
    "\n",
]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=12))
def test_no_generated_markup_carries_script_through(parts: list[str]) -> None:
    clean = sanitize("".join(parts))
    assert script_in(clean) == [], clean
    assert sanitize(clean) == clean  # what is clean stays as it is
