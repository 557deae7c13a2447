"""The popups' stylesheet: ``server/assets/popup.css``, sent with the decide answer.

The snippet carries no styles, which keeps it within its size budget: a decide answer with a
popup to show carries the stylesheet once (``css``), and the consent banner's styles build on
it (consent/banner.py). The snippet applies it to the popup's Shadow DOM root as a constructed
stylesheet, which a Content-Security-Policy without ``'unsafe-inline'`` allows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).parent.parent / "assets" / "popup.css"


def minify(css: str) -> str:
    """``css`` without comments and without the spaces nothing needs. Spaces inside values
    (``0 20px 50px``, ``calc(100vw - 32px)``) and between selectors (``.bar .x``) stay."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    css = re.sub(r"\s+", " ", css)
    css = re.sub(r" ?([{};,>]) ?", r"\1", css)
    css = re.sub(r": | (?=!)", lambda match: match.group(0).strip(), css)
    return css.replace(";}", "}").strip()


CSS = minify(SOURCE.read_text(encoding="utf-8"))


def stylesheet(popups: list[dict[str, Any]]) -> dict[str, str]:
    """What a decide answer with ``popups`` adds: the stylesheet when one of them shows
    something (a holdout's shows nothing), else nothing."""
    return {"css": CSS} if any(not popup["control"] for popup in popups) else {}
