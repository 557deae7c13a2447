"""The console's texts in English and German, and the language a request gets.

A text is looked up by key (``t("signin.title")`` in a template). A page module adds its own
with :func:`add`, both languages at once, so a missing translation fails at import rather than
showing a key on a page. The language is the ``tp_admin_lang`` cookie's, set by the switch in
the page header, or else the first of Accept-Language's that the console speaks (RFC 9110
12.5.4), or else English.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request

LANGUAGES = ("en", "de")
LANGUAGE_NAMES = {"en": "English", "de": "Deutsch"}
LANGUAGE_COOKIE = "tp_admin_lang"

TEXTS: dict[str, dict[str, str]] = {}


def add(texts: Mapping[str, tuple[str, str]]) -> None:
    """Add texts as ``{key: (english, german)}``; a key may be added once."""
    for key, (english, german) in texts.items():
        if key in TEXTS:
            raise ValueError(f"console text {key!r} is defined twice")
        TEXTS[key] = {"en": english, "de": german}


def text(key: str, language: str) -> str:
    """The text ``key`` in ``language``; a missing key is an error, not a blank."""
    return TEXTS[key][language]


def language(request: Request) -> str:
    """The language of the console's pages for this request."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(request.headers.get("accept-language", "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else "en"


add(
    {
        "console": ("Touchpoint console", "Touchpoint-Konsole"),
        "skip": ("Skip to content", "Zum Inhalt springen"),
        "nav.label": ("Console sections", "Bereiche der Konsole"),
        "nav.results": ("Results", "Ergebnisse"),
        "nav.lifecycle": ("Lifecycle", "Lebenszyklus"),
        "nav.coupons": ("Coupons", "Gutscheine"),
        "nav.consent": ("Consent", "Einwilligungen"),
        "nav.rules": ("Rules", "Regeln"),
        "nav.simulator": ("Simulator", "Simulator"),
        "nav.visitors": ("Visitors", "Besucher"),
        "nav.webhooks": ("Webhooks", "Webhooks"),
        "language": ("Language", "Sprache"),
        "language.switch": ("Switch", "Wechseln"),
        "signed_in_as": ("Signed in as {name} ({role})", "Angemeldet als {name} ({role})"),
        "role.viewer": ("viewer", "Betrachter"),
        "role.editor": ("editor", "Bearbeiter"),
        "signout": ("Sign out", "Abmelden"),
        "signin.title": ("Sign in", "Anmelden"),
        "signin.name": ("User name", "Benutzername"),
        "signin.password": ("Password", "Passwort"),
        "signin.submit": ("Sign in", "Anmelden"),
        "signin.wrong": (
            "The user name or the password is wrong.",
            "Benutzername oder Passwort ist falsch.",
        ),
        "signin.missing": (
            "Enter your user name and password.",
            "Benutzername und Passwort eingeben.",
        ),
        "signin.limited": (
            "Too many attempts. Try again in {seconds} seconds.",
            "Zu viele Versuche. In {seconds} Sekunden erneut versuchen.",
        ),
        "signin.expired": (
            "Your session has ended. Please sign in again.",
            "Ihre Sitzung ist abgelaufen. Bitte erneut anmelden.",
        ),
        "signin.signed_out": ("You have signed out.", "Sie haben sich abgemeldet."),
        "signin.no_users": (
            "No user exists yet. On the server, create one with:",
            "Es gibt noch keinen Benutzer. Legen Sie auf dem Server einen an mit:",
        ),
        "signin.no_users_after": (
            "then reload this page.",
            "und laden Sie diese Seite danach neu.",
        ),
        "error.title": ("Not allowed", "Nicht erlaubt"),
        "error.back": ("Back to the console", "Zurück zur Konsole"),
        "error.csrf": (
            "This form has expired or was sent from another site. Reload the page and try again.",
            "Dieses Formular ist abgelaufen oder kam von einer anderen Website. Laden Sie die"
            " Seite neu und versuchen Sie es noch einmal.",
        ),
        "error.cross_site": (
            "Requests from other sites are refused.",
            "Anfragen von anderen Websites werden abgelehnt.",
        ),
        "error.role": (
            "This needs the {role} role; you are signed in as {current}.",
            "Dafür ist die Rolle {role} nötig; Sie sind als {current} angemeldet.",
        ),
        "error.too_large": ("The form is too large.", "Das Formular ist zu groß."),
        "error.bad_form": ("The form could not be read.", "Das Formular ist nicht lesbar."),
        "error.not_found": (
            "There is no such page in the console.",
            "Diese Seite gibt es in der Konsole nicht.",
        ),
    }
)
