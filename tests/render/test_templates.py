"""The template sandbox and forms: what a popup form needs passes, script carried by form
markup does not (docs/rules.md#forms)."""

from __future__ import annotations

from pathlib import Path

import pytest
from touchpoint.render.templates import SAMPLE_CONTEXT, Templates, unsafe_markup

ROOT = Path(__file__).resolve().parent.parent.parent
FORM = """<section data-tp-step="form">
<form data-tp-convert action="/newsletter" method="post">
  <label for="e">E-mail</label>
  <input id="e" type="email" name="email" required autocomplete="email"
    data-tp-error="Please enter your e-mail address.">
  <label><input type="checkbox" name="tips" value="yes" checked> Tips too</label>
  <select name="interest"><option value="running">running</option></select>
  <textarea name="note" maxlength="200"></textarea>
  <input type="hidden" name="source" value="popup">
  <button class="tp-button" type="submit">Sign up</button>
  <button type="button" data-tp-next>Next</button>
  <button type="button" data-tp-copy="code">Copy</button>
</form>
</section>"""


def test_a_form_with_every_field_kind_passes() -> None:
    assert unsafe_markup(FORM) is None


@pytest.mark.parametrize(
    ("markup", "message"),
    [
        ('<form action="javascript:alert(1)">', "a javascript: URL in action is not allowed"),
        (
            '<button formaction="javascript:alert(1)">Go</button>',
            "a javascript: URL in formaction is not allowed",
        ),
        ('<input type="image" src="javascript:alert(1)">', "a javascript: URL in src"),
        ('<input name="email" autofocus onfocus="alert(1)">', "event handler attribute onfocus"),
        ('<form onsubmit="steal()">', "event handler attribute onsubmit"),
        ('<input type="submit" formaction="data:text/html,x">', "a data: URL in formaction"),
    ],
)
def test_script_in_form_markup_is_refused(markup: str, message: str) -> None:
    found = unsafe_markup(f"<h2>Hi</h2>\n{FORM}\n{markup}")
    assert found is not None
    assert found[0] == 16  # the line of the markup
    assert message in found[1]


@pytest.mark.parametrize("first_name", [None, "Ada", '"><script>alert(1)</script>'])
def test_the_example_signup_form_renders_safely(first_name: str | None) -> None:
    visitor = {**SAMPLE_CONTEXT["visitor"], "first_name": first_name}
    templates = Templates(ROOT / "rules" / "templates")
    assert templates.check("newsletter-signup.html") == []
    html = templates.render("newsletter-signup.html", {**SAMPLE_CONTEXT, "visitor": visitor})
    assert html is not None and unsafe_markup(html) is None
    assert "<script>" not in html
    if first_name == "Ada":
        assert 'value="Ada"' in html  # known data is pre-filled
