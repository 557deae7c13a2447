"""The popups' stylesheet: minified from server/assets/popup.css, sent only when a popup shows."""

from __future__ import annotations

from touchpoint.render.popups import CSS, minify, stylesheet


def test_minify_keeps_the_spaces_values_and_selectors_need() -> None:
    css = """/* a comment */
    .bar .x ,  .slide-in > .dialog {
      width: min(calc(100vw - 32px), 360px);
      box-shadow: 0 0 24px rgba(0, 0, 0, .25);
    }
    [hidden] { display: none !important; }
    @media (prefers-reduced-motion: no-preference) { .dialog { animation: tp-in .2s; } }
    """
    assert minify(css) == (
        ".bar .x,.slide-in>.dialog{width:min(calc(100vw - 32px),360px);"
        "box-shadow:0 0 24px rgba(0,0,0,.25)}[hidden]{display:none!important}"
        "@media (prefers-reduced-motion:no-preference){.dialog{animation:tp-in .2s}}"
    )


def test_the_stylesheet_is_small_and_whole() -> None:
    assert len(CSS) < 3000  # sent with every decide answer that has a popup
    assert CSS.count("{") == CSS.count("}")
    assert "/*" not in CSS and "\n" not in CSS
    for selector in (":host{all:initial}", ".modal{", ".slide-in .dialog{", ".tp-code{", ".sr{"):
        assert selector in CSS


def test_sent_only_when_a_popup_shows_something() -> None:
    assert stylesheet([]) == {}
    assert stylesheet([{"control": True}]) == {}  # a holdout shows nothing
    assert stylesheet([{"control": True}, {"control": False}]) == {"css": CSS}
