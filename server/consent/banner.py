"""The consent banner: the ``consent:`` section of ``rules/site.yaml`` and the banner's texts.

Three modes say who asks the visitor (docs/embedding.md#consent):

- ``builtin``: the snippet shows Touchpoint's own banner, with the texts served from here (the
  snippet carries none, which keeps it small);
- ``external``: the site's consent tool calls ``touchpoint('consent', ...)``; no banner;
- ``tcf``: the snippet reads an IAB TCF v2.2 consent management platform through ``__tcfapi``.

Texts ship in English and German; ``texts:`` in site.yaml overrides any of them per language or
adds a language (keys it leaves out fall back to English). The server renders the banner's
markup and styles, so the snippet carries neither; the snippet only wires up the buttons and
switches (snippet/src/banner.js).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from html import escape
from typing import Any

from ..render import popups
from ..syntax.files import YamlFile
from ..syntax.matchers import parse_duration

MODES = ("builtin", "external", "tcf")
KEYS = ("mode", "privacy_policy", "tcf_timeout", "texts")
LANGUAGE = re.compile(r"^[a-z]{2,3}$")
MAX_TEXT = 600
MAX_TCF_TIMEOUT = 30  # seconds; a CMP that takes longer has failed

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your privacy choices",
        "intro": "With your consent we measure visits, tailor offers to your interests and"
        " remember which offers you have closed. Nothing is stored until you choose, and you"
        " can change your mind at any time.",
        "policy": "Privacy policy",
        "accept_all": "Accept all",
        "reject_all": "Reject all",
        "settings": "Settings",
        "save": "Save choices",
        "close": "Close",
        "gpc": "Your browser sends a Global Privacy Control signal: personalisation and"
        " marketing stay off unless you switch them on in the settings.",
        "necessary": "Necessary",
        "necessary_help": "Remembers your choice. Always on.",
        "measurement": "Measurement",
        "measurement_help": "Counts page views and how pages are used.",
        "personalisation": "Personalisation",
        "personalisation_help": "A profile of your visits and interests to tailor content.",
        "marketing": "Marketing popups",
        "marketing_help": "Remembers which offers you saw or closed.",
    },
    "de": {
        "title": "Ihre Datenschutz-Einstellungen",
        "intro": "Mit Ihrer Einwilligung messen wir Besuche, passen Angebote an Ihre Interessen"
        " an und merken uns, welche Angebote Sie geschlossen haben. Bis Sie wählen, wird nichts"
        " gespeichert; Sie können Ihre Wahl jederzeit ändern.",
        "policy": "Datenschutzerklärung",
        "accept_all": "Alle akzeptieren",
        "reject_all": "Alle ablehnen",
        "settings": "Einstellungen",
        "save": "Auswahl speichern",
        "close": "Schließen",
        "gpc": "Ihr Browser sendet ein Global-Privacy-Control-Signal: Personalisierung und"
        " Marketing bleiben aus, außer Sie schalten sie in den Einstellungen ein.",
        "necessary": "Notwendig",
        "necessary_help": "Speichert Ihre Wahl. Immer aktiv.",
        "measurement": "Messung",
        "measurement_help": "Zählt Seitenaufrufe und wie Seiten genutzt werden.",
        "personalisation": "Personalisierung",
        "personalisation_help": "Ein Profil Ihrer Besuche und Interessen, um Inhalte anzupassen.",
        "marketing": "Marketing-Popups",
        "marketing_help": "Merkt sich, welche Angebote Sie gesehen oder geschlossen haben.",
    },
}
TEXT_KEYS = tuple(TEXTS["en"])
CATEGORIES = ("measurement", "personalisation", "marketing")  # in the order the banner shows

# Added to the popups' styles (server/assets/popup.css): a dialog at the bottom, buttons of one
# size side by side that wrap on narrow screens, and switches.
CSS = (
    ".consent{align-items:flex-end}"
    ".consent .dialog{width:min(100vw - 16px,640px);margin:8px;padding:24px}"
    ".row{display:flex;flex-wrap:wrap;gap:8px;margin-top:16px}.row .tp-button{flex:1 1 10em}"
    ".cat{display:flex;align-items:center;gap:12px;padding:10px 0;border-top:1px solid #e5e7eb}"
    ".cat span{flex:1}.cat small{display:block;color:#4b5563;font-size:.875em;font-weight:400}"
    "input{appearance:none;-webkit-appearance:none;position:relative;flex:none;width:44px;"
    "height:24px;margin:0;border-radius:12px;background:#6b7280;cursor:pointer}"
    'input:before{content:"";position:absolute;top:3px;left:3px;width:18px;height:18px;'
    "border-radius:50%;background:#fff}input:checked{background:#15803d}"
    "input:checked:before{left:23px}input:disabled{opacity:.55;cursor:default}a{color:inherit}"
    "@media (max-width:480px){.consent .dialog{padding:20px 16px 16px}.consent h2{font-size:1.2em}"
    ".row .tp-button{flex-basis:100%}}"
)

STYLES = popups.CSS + CSS  # the banner shares the popups' mount, and so their styles


@dataclass(frozen=True)
class ConsentConfig:
    mode: str = "builtin"
    privacy_policy: str | None = None
    tcf_timeout: int = 3  # seconds the snippet waits for the CMP; no answer means no consent
    texts: dict[str, dict[str, str]] = field(default_factory=lambda: TEXTS)

    def banner(self, language: str) -> dict[str, Any]:
        """The banner for ``language`` (a tag like ``de-AT`` or an Accept-Language header), in
        its texts or else English: the markup and styles the snippet shows."""
        return self._banners[pick_language(language, self.texts)]

    @cached_property
    def _banners(self) -> dict[str, dict[str, Any]]:
        # Rendered once per ruleset: every page view of a visitor yet to answer carries one.
        return {
            lang: {"lang": lang, "html": render(texts, self.privacy_policy), "css": STYLES}
            for lang, texts in self.texts.items()
        }


def render(texts: dict[str, str], policy: str | None) -> str:
    """The banner's markup. The snippet shows the close button and the GPC note when they apply,
    ticks the switches of what is granted, and swaps "Settings" for "Save choices"."""
    t = {key: escape(value) for key, value in texts.items()}

    def switch(name: str, attributes: str) -> str:
        return (
            f'<label class="cat"><span>{t[name]}<small>{t[name + "_help"]}</small></span>'
            f'<input type="checkbox" role="switch" {attributes}></label>'
        )

    def button(action: str, key: str, hidden: str = "") -> str:
        return (
            f'<button class="tp-button" type="button" data-a="{action}"{hidden}>{t[key]}</button>'
        )

    link = f' <a href="{escape(policy)}">{t["policy"]}</a>' if policy else ""
    return (
        '<div class="dialog" role="dialog" aria-modal="true" tabindex="-1"'
        ' aria-labelledby="tp-title" aria-describedby="tp-intro">'
        f'<button class="x" type="button" data-a="close" aria-label="{t["close"]}" hidden>'
        "\u00d7</button>"
        f'<h2 id="tp-title">{t["title"]}</h2><p id="tp-intro">{t["intro"]}{link}</p>'
        f"<p data-gpc hidden>{t['gpc']}</p>"
        '<div class="cats" hidden>'
        + switch("necessary", "checked disabled")
        + "".join(switch(name, f'name="{name}"') for name in CATEGORIES)
        + '</div><div class="row">'
        + button("settings", "settings")
        + button("save", "save", " hidden")
        + button("reject", "reject_all")
        + button("accept", "accept_all")
        + "</div></div>"
    )


def pick_language(value: str, available: dict[str, Any]) -> str:
    """The first language of ``value`` (``de-AT``, ``fr, de;q=0.8``) that has texts, or en."""
    for part in value.split(","):
        primary = part.split(";")[0].strip().split("-")[0].split("_")[0].lower()
        if primary in available:
            return primary
    return "en"


def load_consent(file: YamlFile, value: Any) -> ConsentConfig:
    """The ``consent:`` section, problems reported into ``file`` with the key's line."""
    data = file.mapping(value, "consent")
    if data is None:
        return ConsentConfig()
    file.known_keys(data, KEYS, "consent")
    mode = data.get("mode", "builtin")
    if mode not in MODES:
        file.problem("consent.mode", f"one of {', '.join(MODES)}, got {mode!r}")
        mode = "builtin"
    policy = data.get("privacy_policy")
    if policy is not None and not (
        isinstance(policy, str) and re.match(r"^(/|https?://)\S+$", policy)
    ):
        file.problem("consent.privacy_policy", "a path like /privacy or an https:// URL")
        policy = None
    timeout = 3
    try:
        timeout = parse_duration(data.get("tcf_timeout", "3s")) or 0
    except ValueError as exc:
        file.problem("consent.tcf_timeout", str(exc))
    if not 1 <= timeout <= MAX_TCF_TIMEOUT:
        file.problem("consent.tcf_timeout", f"between 1s and {MAX_TCF_TIMEOUT}s, e.g. 3s")
        timeout = 3
    texts = load_texts(file, data.get("texts", {}))
    return ConsentConfig(mode, policy, timeout, texts)


def load_texts(file: YamlFile, value: Any) -> dict[str, dict[str, str]]:
    texts = {lang: dict(shipped) for lang, shipped in TEXTS.items()}
    given = file.mapping(value, "consent.texts") or {}
    for lang, overrides in given.items():
        at = f"consent.texts.{lang}"
        if not isinstance(lang, str) or not LANGUAGE.match(lang):
            file.problem(at, "a language code of two or three lowercase letters, like de")
            continue
        overrides = file.mapping(overrides, at) or {}
        file.known_keys(overrides, TEXT_KEYS, at)
        merged = texts.setdefault(lang, dict(TEXTS["en"]))
        for key, text in overrides.items():
            if key not in TEXT_KEYS:
                continue
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
                file.problem(f"{at}.{key}", f"a text of 1 to {MAX_TEXT} characters")
                continue
            merged[key] = text.strip()
    return texts
