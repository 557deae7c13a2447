"""The consent banner: the ``consent:`` section of ``rules/site.yaml`` and the banner's texts.

Three modes say who asks the visitor (docs/embedding.md#consent):

- ``builtin``: the snippet shows Touchpoint's own banner, with the texts served from here (the
  snippet carries none, which keeps it small);
- ``external``: the site's consent tool calls ``touchpoint('consent', ...)``; no banner;
- ``tcf``: the snippet reads an IAB TCF v2.2 consent management platform through ``__tcfapi``.

Texts ship in English and German; ``texts:`` in site.yaml overrides any of them per language or
adds a language (keys it leaves out fall back to English).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .matchers import parse_duration
from .yamlfile import YamlFile

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


@dataclass(frozen=True)
class ConsentConfig:
    mode: str = "builtin"
    privacy_policy: str | None = None
    tcf_timeout: int = 3  # seconds the snippet waits for the CMP; no answer means no consent
    texts: dict[str, dict[str, str]] = field(default_factory=lambda: TEXTS)

    def banner(self, language: str) -> dict[str, Any]:
        """What the snippet's banner shows for ``language`` (a tag like ``de-AT`` or an
        Accept-Language header): its texts, falling back to English, and the policy link."""
        lang = pick_language(language, self.texts)
        return {"lang": lang, "policy": self.privacy_policy, "texts": self.texts[lang]}


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
