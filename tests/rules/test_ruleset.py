"""Loading the rules files: every mistake reported with file, line and a hint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from touchpoint.render.templates import Templates
from touchpoint.rules import couponfiles
from touchpoint.rules import ruleset as rules
from touchpoint.rules.campaigns import CampaignFile
from touchpoint.rules.ruleset import RulesError, parse_duration
from touchpoint.rules.site import load_site
from touchpoint.syntax.matchers import glob_regex

from ..conftest import ROOT

EXAMPLES = ROOT / "rules"
NOT_CAMPAIGNS = ("site", "scoring", "lifecycle", "coupons")

GOOD = """\
campaign: spring
kind: popup
trigger: {after_seconds: 5}
variants:
  - {id: a, template: first-order-coupon.html}
"""


def problems(rules_dir: Path, name: str, text: str) -> list[str]:
    (rules_dir / name).write_text(text)
    with pytest.raises(RulesError) as info:
        rules.load(rules_dir)
    return [str(p) for p in info.value.problems]


def test_defaults_and_priority_order(rules_dir: Path) -> None:
    (rules_dir / "b.yaml").write_text(GOOD.replace("spring", "b-low"))
    (rules_dir / "c.yaml").write_text(GOOD.replace("spring", "c-high") + "priority: 50\n")
    (rules_dir / "a.yaml").write_text(GOOD.replace("spring", "a-low"))
    ruleset = rules.load(rules_dir)
    assert [c.id for c in ruleset.campaigns] == ["c-high", "first-order-coupon", "a-low", "b-low"]
    low = ruleset.by_id["a-low"]
    assert (low.after_close, low.after_convert, low.paths) == (86400, None, ())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD + "frequency:\n  after_close: 7 days\n",
            "x.yaml:7:3: frequency.after_close: expected a duration like 7d, 12h, 30m or never,"
            " got '7 days' — write `7d`",
        ),
        (GOOD + "audiance: {}\n", "x.yaml:6:1: audiance: unknown key — did you mean `audience`?"),
        (GOOD + "frequency: {after_closed: 1d}\n", "did you mean `after_close`?"),
        (GOOD.replace("kind: popup", "kind: banner"), "x.yaml:2:1: kind: must be one of popup"),
        (GOOD.replace("spring", "Spring Sale!"), "x.yaml:1:1: campaign: required: an id"),
        (
            GOOD.replace("{after_seconds: 5}", "{on_hover: 1}"),
            "x.yaml:3:11: trigger.on_hover: unknown key (expected one of: after_seconds,",
        ),
        (
            GOOD.replace("{after_seconds: 5}", "{after_seconds: soon}"),
            "x.yaml:3:11: trigger.after_seconds: a number of seconds from 0 to 86400",
        ),
        (
            GOOD.replace("first-order-coupon.html", "missing.html"),
            "x.yaml:5:13: variants.0.template: template 'missing.html' not found",
        ),
        (GOOD + "priority: high\n", "x.yaml:6:1: priority: must be a whole number"),
        (
            GOOD + "audience:\n  page:\n    path: products/*\n",
            "x.yaml:8:5: audience.page.path: path patterns start with /, e.g. /products/*",
        ),
        (
            GOOD.replace("variants:\n  - {id: a, template: first-order-coupon.html}\n", ""),
            "x.yaml:1:1: variants: required: a list of variants",
        ),
        (GOOD + "priority: 1\npriority: 2\n", "x.yaml:7:1: priority: key appears twice"),
        (GOOD + "goal: {event: sale}\n", "x.yaml:6:8: goal.event: required: one of purchase,"),
        (
            GOOD + "goal: {event: purchase, name: shoes}\n",
            "x.yaml:6:25: goal.name: only form_submit, custom and click events have a name",
        ),
        (
            GOOD + "goal: {event: page_view, path: checkout}\n",
            "x.yaml:6:26: goal.path: a path pattern or a list of them",
        ),
        (
            GOOD + "goal: {event: purchase, within: never}\n",
            "x.yaml:6:25: goal.within: a window like 7d after the exposure",
        ),
        ("campaign: [unclosed\n", "x.yaml:2:1: YAML syntax:"),
        ("- just\n- a list\n", "x.yaml:1:1: a rules file must be a YAML mapping"),
        (
            GOOD + "audience: {visitor.stage: leed}\n",
            "x.yaml:6:12: audience.visitor.stage: 'leed' is not one of visitor, lead,",
        ),
        (GOOD + "audience: {visitor.stage: leed}\n", "did you mean `lead`?"),
        (
            GOOD + "audience: {pgae.path: /x}\n",
            "x.yaml:6:12: audience.pgae.path: unknown condition `pgae.path` — did you mean"
            " `page.path`?",
        ),
        (
            GOOD + "audience: {utm.source: {matches: '(unclosed'}}\n",
            "audience.utm.source: invalid regular expression: missing ), unterminated subpattern",
        ),
        (
            GOOD + "audience: {campaign.nope.seen: true}\n",
            "x.yaml:6:12: audience.campaign.nope.seen: unknown campaign 'nope'",
        ),
        (
            GOOD + "audience: {visitor.interests.golf: {gte: 2}}\n",
            "unknown interest 'golf' (interests: none defined in site.yaml)",
        ),
        (
            GOOD + "audience: {country: [AT, UK]}\n",
            "x.yaml:6:12: audience.country: 'UK' is not an ISO 3166-1 alpha-2 country code like"
            " AT — did you mean `GB`?",
        ),
        (GOOD + "audience: {country: [AT, NO]}\n", 'write Norway as "NO", in quotes'),
        (GOOD + "audience: {country: Austria}\n", "'Austria' is not an ISO 3166-1 alpha-2"),
        (GOOD + "audience: {visitor.visits: {gte: two}}\n", "`gte` needs a number, got 'two'"),
        (GOOD + "audience: {visitor.visits: {atleast: 2}}\n", "unknown comparison `atleast`"),
        (GOOD + "schedule: {from: someday}\n", "'someday' is not a date like 2026-12-24"),
        (GOOD + "schedule: {weekdays: [monday]}\n", "weekdays are written mon, tue,"),
        (GOOD + "schedule: {hours: '9-18'}\n", 'hours are written like "09:00-18:00"'),
        (GOOD + "slot: hero\n", "slot: only content campaigns fill a slot"),
        (GOOD.replace("kind: popup", "kind: content"), "slot: required for content"),
        (GOOD + "style: popover\n", "style: must be one of modal, slide-in, bar-top"),
        (GOOD + "version: 0\n", "version: a whole number from 1"),
        (GOOD + "frequency: {max_per_session: 0}\n", "frequency.max_per_session: a whole number"),
        (GOOD.replace("{after_seconds: 5}", "{scroll_percent: 150}"), "a percentage of the"),
        (GOOD.replace("{after_seconds: 5}", "{click: '<b>'}"), "a CSS selector like"),
        (GOOD.replace("{after_seconds: 5}", "{event: 'two words'}"), "trigger.event: the event"),
        (GOOD.replace("{after_seconds: 5}", "{nth_page_view: 0}"), "which page view of the visit"),
        (
            GOOD.replace("template: first-order-coupon.html}", "control: true}"),
            "at least one variant that shows something needs a weight",
        ),
    ],
)
def test_problems_name_file_line_and_key(rules_dir: Path, text: str, expected: str) -> None:
    found = problems(rules_dir, "x.yaml", text)
    assert any(p.endswith(expected) or expected in p for p in found), found
    assert all(str(rules_dir / "x.yaml") in p for p in found)


def test_dotted_and_nested_conditions_are_the_same(rules_dir: Path) -> None:
    nested = GOOD + "audience:\n  visitor: {attributes: {late_payer: true}}\n  page: {path: /a}\n"
    dotted = GOOD + "audience: {visitor.attributes.late_payer: true, page.path: /a}\n"
    texts = []
    for text in (nested, dotted):
        (rules_dir / "x.yaml").write_text(text)
        texts.append(rules.load(rules_dir).by_id["spring"].audience.text)
    assert texts[0] == texts[1]
    assert "visitor.attributes.late_payer is true" in texts[0]


def test_template_errors_point_into_the_template(rules_dir: Path) -> None:
    (rules_dir / "templates" / "broken.html").write_text("<h2>Hi</h2>\n<p>{% if %}</p>\n")
    found = problems(rules_dir, "x.yaml", GOOD.replace("first-order-coupon.html", "broken.html"))
    assert len(found) == 1
    assert (
        f"{rules_dir / 'templates' / 'broken.html'}:2:1: variants.0.template: template:"
        in (found[0])
    )


def test_template_using_unknown_variables_is_an_error(rules_dir: Path) -> None:
    (rules_dir / "templates" / "typo.html").write_text("<h2>Hi {{ vistor.name }}</h2>\n")
    found = problems(rules_dir, "x.yaml", GOOD.replace("first-order-coupon.html", "typo.html"))
    assert (
        "unknown variable(s) vistor (known: campaign, context, page, variant, visitor)" in found[0]
    )


def test_sandbox_blocks_python_internals(rules_dir: Path) -> None:
    (rules_dir / "templates" / "evil.html").write_text("{{ campaign.__class__.__mro__ }}\n")
    found = problems(rules_dir, "x.yaml", GOOD.replace("first-order-coupon.html", "evil.html"))
    assert "template:" in found[0]


def test_templates_autoescape(rules_dir: Path) -> None:
    (rules_dir / "templates" / "echo.html").write_text("<p>{{ page.path }}</p>\n")
    (rules_dir / "x.yaml").write_text(GOOD.replace("first-order-coupon.html", "echo.html"))
    templates = rules.load(rules_dir).templates
    html = templates.render("echo.html", {"page": {"path": "/<script>alert(1)</script>"}})
    assert html == "<p>/&lt;script&gt;alert(1)&lt;/script&gt;</p>"


def test_duplicate_campaign_ids_across_files(rules_dir: Path) -> None:
    (rules_dir / "a.yaml").write_text(GOOD)
    found = problems(rules_dir, "b.yaml", GOOD)
    assert found == [
        f"{rules_dir / 'b.yaml'}:1:1: campaign: campaign id already used in {rules_dir / 'a.yaml'}"
    ]


def test_all_problems_are_reported_at_once(rules_dir: Path) -> None:
    (rules_dir / "a.yaml").write_text(GOOD + "priority: x\n")
    found = problems(rules_dir, "b.yaml", GOOD.replace("kind: popup", "kind: x"))
    assert len(found) == 2


def test_missing_rules_folder(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="rules folder not found"):
        rules.load(tmp_path / "nope")


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from("smhd"))
def test_durations(number: int, unit: str) -> None:
    assert (
        parse_duration(f"{number}{unit}") == number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    )


@pytest.mark.parametrize("bad", ["7", "7 d", "d7", "-1d", "1w", "", None, True, 3.5])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/products/*", "/products/shoe", True),
        ("/products/*", "/products/a/b", False),
        ("/products/**", "/products/a/b", True),
        ("/p?", "/p1", True),
        ("/a.html", "/aXhtml", False),
        ("/cart", "/cart/", False),
    ],
)
def test_globs(pattern: str, path: str, matches: bool) -> None:
    assert bool(re.fullmatch(glob_regex(pattern, segments=True), path)) is matches


@pytest.mark.parametrize(
    ("replacement", "key"),
    [
        ("{after_seconds: .nan}", "trigger.after_seconds"),
        ("{after_seconds: .inf}", "trigger.after_seconds"),
        ("{after_seconds: true}", "trigger.after_seconds"),
        ("{exit_intent: {min_seconds: true}}", "trigger.exit_intent.min_seconds"),
        ("{exit_intent: {min_seconds: -1}}", "trigger.exit_intent.min_seconds"),
    ],
)
def test_seconds_must_be_real_numbers(rules_dir: Path, replacement: str, key: str) -> None:
    found = problems(rules_dir, "x.yaml", GOOD.replace("{after_seconds: 5}", replacement))
    assert f": {key}: a number of seconds" in found[0]


def test_empty_path_list_is_a_mistake_not_everywhere(rules_dir: Path) -> None:
    found = problems(rules_dir, "x.yaml", GOOD + "audience: {page: {path: []}}\n")
    assert "audience.page.path: must be a pattern like /products/* or a list of them" in found[0]


def test_control_characters_are_reported_with_their_line(rules_dir: Path) -> None:
    found = problems(rules_dir, "x.yaml", GOOD + "priority: 1\x07\n")
    assert found == [f"{rules_dir / 'x.yaml'}:6:12: YAML: character #x0007 is not allowed"]


@pytest.mark.parametrize(
    ("markup", "message"),
    [
        ('<img src="x" onerror="alert(1)">', "event handler attribute onerror is not allowed"),
        ('<a href=" JavaScript:alert(1)">x</a>', "a javascript: URL in href is not allowed"),
        ("<script>alert(1)</script>", "<script> is not allowed in a popup"),
        ('<iframe src="/x"></iframe>', "<iframe> is not allowed in a popup"),
        ('<a href="\x01javascript:alert(1)">x</a>', "a javascript: URL in href is not allowed"),
        ('<a href="data:text/html,x">x</a>', "a data: URL in href is not allowed"),
        (
            '<svg><a><animate attributeName="href" values="javascript:alert(1)"/></a></svg>',
            "<animate> is not allowed in a popup",
        ),
        (
            '<svg><set attributeName="onmouseover" to="alert(1)"/></svg>',
            "<set> is not allowed in a popup",
        ),
    ],
)
def test_templates_cannot_carry_script(rules_dir: Path, markup: str, message: str) -> None:
    (rules_dir / "templates" / "evil.html").write_text(f"<h2>Hi</h2>\n{markup}\n")
    found = problems(rules_dir, "x.yaml", GOOD.replace("first-order-coupon.html", "evil.html"))
    assert found == [
        f"{rules_dir / 'templates' / 'evil.html'}:2:1: variants.0.template: template: {message}"
    ]


def test_unknown_variable_in_an_untaken_branch(rules_dir: Path) -> None:
    (rules_dir / "templates" / "t.html").write_text(
        "{% if visitor.known %}{{ frist_name }}{% endif %}"
    )
    found = problems(rules_dir, "x.yaml", GOOD.replace("first-order-coupon.html", "t.html"))
    assert (
        "unknown variable(s) frist_name (known: campaign, context, page, variant, visitor)"
        in found[0]
    )


def test_python_errors_in_templates_are_problems(rules_dir: Path) -> None:
    (rules_dir / "templates" / "t.html").write_text("<p>\n{{ 1 // 0 }}</p>")
    found = problems(rules_dir, "x.yaml", GOOD.replace("first-order-coupon.html", "t.html"))
    where = f"{rules_dir / 'templates' / 't.html'}:2:1: variants.0.template"
    assert found == [f"{where}: template: integer division or modulo by zero"]


def test_unsafe_markup_in_a_branch_is_sanitized_at_render(rules_dir: Path) -> None:
    """A branch the sample context does not reach at check is sanitized when it renders: the
    script goes, the rest shows (issue 15; before, the whole campaign was skipped)."""
    (rules_dir / "templates" / "t.html").write_text(
        '<h2>Hi</h2>{% if page.path == "/x" %}<img src=x onerror="alert(1)">{% endif %}'
    )
    (rules_dir / "x.yaml").write_text(GOOD.replace("first-order-coupon.html", "t.html"))
    templates = rules.load(rules_dir).templates
    assert templates.render("t.html", {"page": {"path": "/"}}) == "<h2>Hi</h2>"
    assert templates.render("t.html", {"page": {"path": "/x"}}) == '<h2>Hi</h2><img src="x">'


def test_a_template_cannot_change_what_later_renders_see(rules_dir: Path) -> None:
    (rules_dir / "templates" / "t.html").write_text(
        '{{ context.update(cart_value="<b>x</b>") or "" }}<p>{{ context.cart_value }}</p>'
    )
    found = problems(rules_dir, "x.yaml", GOOD.replace("first-order-coupon.html", "t.html"))
    assert "template:" in found[0] and "update" in found[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("session_idle: never\n", "session_idle: a visit must end some time"),
        ("session_idle: 0\n", "session_idle: a visit must end some time"),
        ("popups: {min_gap: never}\n", "popups.min_gap: a duration like 10m"),
    ],
)
def test_site_settings_that_cannot_work(rules_dir: Path, text: str, message: str) -> None:
    found = problems(rules_dir, "site.yaml", text)
    assert message in found[0]


def test_exit_intent_signals_can_be_switched_off_one_by_one(rules_dir: Path) -> None:
    text = GOOD.replace(
        "{after_seconds: 5}", "{exit_intent: {min_seconds: 3, mobile: false, tab_return: false}}"
    )
    (rules_dir / "x.yaml").write_text(text)
    trigger = rules.load(rules_dir).by_id["spring"].trigger
    assert trigger is not None
    assert trigger.client() == {
        "on": "exit_intent",
        "min_seconds": 3,
        "desktop": True,
        "mobile": False,
        "tab_return": False,
    }
    # Exit intent on desktops only does not compete with exit intent on every device.
    assert trigger.key == "exit_intent (desktop)"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("{mobil: false}", "trigger.exit_intent.mobil: unknown key — did you mean `mobile`?"),
        ("{desktop: 1}", "trigger.exit_intent.desktop: true or false"),
        (
            "{desktop: false, mobile: false, tab_return: false}",
            "trigger.exit_intent: every signal is switched off",
        ),
    ],
)
def test_exit_intent_options_are_checked(rules_dir: Path, options: str, expected: str) -> None:
    text = GOOD.replace("{after_seconds: 5}", f"{{exit_intent: {options}}}")
    found = problems(rules_dir, "x.yaml", text)
    assert any(":3:" in line and expected in line for line in found), found


COUNTRY = GOOD + "audience:\n  any:\n    - country: [AT, CH]\n    - language: de-AT\n"


def test_country_conditions_warn_without_a_geolocation_source(rules_dir: Path) -> None:
    """Without a source the country is never known: check says so at each condition rather
    than letting the campaign silently never show (issue 6)."""
    (rules_dir / "x.yaml").write_text(COUNTRY)
    (warning,) = rules.load(rules_dir, geolocation=False).warnings
    assert str(warning) == (
        f"{rules_dir / 'x.yaml'}:8:7: warning: audience.any.0.country: no geolocation source"
        " configured (setting geoip_database) — this condition is never true"
    )
    assert rules.load(rules_dir, geolocation=True).warnings == ()
    assert rules.load(rules_dir).warnings == ()  # the caller did not say: no warning


def cuts(text: str) -> list[str]:
    """Every way a write in place leaves ``text`` half done: cut at each line's start, in its
    middle and at its end."""
    out = {""}
    at = 0
    for line in text.splitlines(keepends=True):
        out |= {text[:at], text[: at + len(line) // 2], text[: at + len(line) - 1]}
        at += len(line)
    return sorted(out, key=len)


@pytest.mark.parametrize(
    "example", sorted(p.name for p in EXAMPLES.glob("*.yaml") if p.stem not in NOT_CAMPAIGNS)
)
def test_a_half_written_campaign_file_is_a_campaign_or_an_error_never_nothing(
    tmp_path: Path, example: str
) -> None:
    """Cut anywhere, a campaign file gives either a campaign (which the reloader only publishes
    once the folder holds still) or an error at a line of the file: never a silently missing
    campaign, as an empty or comment-only file was."""
    site = load_site(EXAMPLES / "site.yaml", [])
    pools, _ = couponfiles.load_pools(EXAMPLES)
    templates = Templates(EXAMPLES / "templates")
    path = tmp_path / example
    for text in cuts((EXAMPLES / example).read_text()):
        path.write_text(text)
        found: list[rules.Problem] = []
        campaign = CampaignFile(path, found, site, pools).campaign(templates)
        errors = [p for p in found if p.severity == "error"]
        lines = text.count("\n") + 2  # a syntax error can point just past the end
        assert campaign is not None or any(
            p.file == str(path) and 1 <= p.line <= lines for p in errors
        ), f"{example} cut to {len(text)} characters: no campaign and no error ({found})"


@pytest.mark.parametrize("name", ["site.yaml", "scoring.yaml", "lifecycle.yaml", "coupons.yaml"])
def test_an_empty_settings_file_is_an_error_not_the_defaults(rules_dir: Path, name: str) -> None:
    """Emptied for a moment by a write in place, site.yaml would drop the consent texts and the
    webhooks, coupons.yaml every pool: an error, like an empty campaign file."""
    assert problems(rules_dir, name, "# nothing yet\n") == [
        f"{rules_dir / name}:1:1: the file is empty (or only comments): write its settings,"
        " or delete the file"
    ]


SEGMENTS = st.sampled_from(["shop", "shoes", "sale", "a.html", "b.html", ""])


@given(
    patterns=st.lists(
        st.lists(SEGMENTS, min_size=1, max_size=3).map(lambda s: "/" + "/".join(s))
        | st.lists(SEGMENTS, min_size=0, max_size=2).map(lambda s: "/" + "/".join([*s, "*"])),
        min_size=1,
        max_size=6,
    ),
    paths=st.lists(st.lists(SEGMENTS, max_size=4).map(lambda s: "/" + "/".join(s)), max_size=30),
)
def test_the_path_index_finds_every_campaign_a_page_may_show_and_remembers_boundedly(
    tmp_path_factory: pytest.TempPathFactory, patterns: list[str], paths: list[str]
) -> None:
    rules_dir = tmp_path_factory.mktemp("rules")
    for name in ("first-order-coupon.html",):
        (rules_dir / "templates").mkdir(exist_ok=True)
        (rules_dir / "templates" / name).write_text("<p>hi</p>")
    for n, pattern in enumerate(patterns):
        (rules_dir / f"c{n}.yaml").write_text(
            GOOD.replace("spring", f"c{n}") + f"priority: {n % 3}\naudience:\n"
            f"  page: {{path: '{pattern}'}}\n"
        )
    ruleset = rules.load(rules_dir)
    for path in [*paths, *paths]:  # each asked twice: the second answer is remembered
        got = ruleset.candidates(path)
        matching = [
            c
            for c in ruleset.campaigns
            if not c.paths or any(glob_matches(p, path) for p in c.paths)
        ]
        assert set(matching) <= set(got)
        assert list(got) == [c for c in ruleset.campaigns if c in got]  # priority order
    assert len(ruleset._candidates) <= rules.CANDIDATE_PATHS


def glob_matches(pattern: str, path: str) -> bool:
    return re.fullmatch(glob_regex(pattern, segments=True), path) is not None


def test_remembered_candidates_are_bounded(
    rules_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "CANDIDATE_PATHS", 8)
    ruleset = rules.load(rules_dir)
    for n in range(100):  # a visitor inventing paths cannot grow the memory
        assert ruleset.candidates(f"/x/{n}") == ruleset.candidates(f"/x/{n}")
        assert len(ruleset._candidates) <= 8
