"""Country codes as rules files write them: ISO 3166-1 alpha-2, with hints for the codes people
mistake for them (audience conditions on ``country``, geolocation's answers)."""

from __future__ import annotations

import difflib

# ISO 3166-1 alpha-2, as assigned (tzdata's iso3166.tab lists the same; a test compares), and
# XK, the user-assigned code that geolocation databases give Kosovo.
COUNTRIES = frozenset(
    """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK
""".split()
)
# Codes people write that ISO 3166 spells otherwise.
COMMON_MISTAKES = {"UK": "GB", "EL": "GR"}


def country_code(value: str) -> str:
    """``value`` as an ISO 3166-1 alpha-2 code; ValueError naming the right one if it is not."""
    code = value.strip().upper()
    if code in COUNTRIES:
        return code
    hint = COMMON_MISTAKES.get(code)
    if hint is None:
        hint = next(iter(_similar(code)), None)
    suffix = f" — did you mean `{hint}`?" if hint else ""
    raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code like AT{suffix}")


def _similar(code: str) -> list[str]:
    return difflib.get_close_matches(code, sorted(COUNTRIES), n=1, cutoff=0.5)
