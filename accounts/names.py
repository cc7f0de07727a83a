"""When two usernames are the same name (PROTOCOL.md, "Accounts"): without
regard to case or Unicode compatibility forms (`Carol`, `carol` and the same
letters in fullwidth forms are one name: `name_key`), and when a new name
only looks like an existing one, written with letters of another script
(Cyrillic "es" and "a" for `c` and `a`: `look_alike_key`, the name with the
common confusable letters of Cyrillic and Greek mapped to the Latin letters
they look like, after Unicode's confusables list, trimmed to letters that
occur in names). Pure."""

from __future__ import annotations

import unicodedata

_LOOK_ALIKES = {
    "CYRILLIC SMALL LETTER A": "a", "CYRILLIC SMALL LETTER VE": "b", "CYRILLIC SMALL LETTER IE": "e",
    "CYRILLIC SMALL LETTER IO": "e", "CYRILLIC SMALL LETTER SHHA": "h", "CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I": "i",
    "CYRILLIC SMALL LETTER YI": "i", "CYRILLIC SMALL LETTER JE": "j", "CYRILLIC SMALL LETTER KA": "k",
    "CYRILLIC SMALL LETTER EM": "m", "CYRILLIC SMALL LETTER EN": "h", "CYRILLIC SMALL LETTER O": "o",
    "CYRILLIC SMALL LETTER ER": "p", "CYRILLIC SMALL LETTER ES": "c", "CYRILLIC SMALL LETTER TE": "t",
    "CYRILLIC SMALL LETTER U": "y", "CYRILLIC SMALL LETTER HA": "x", "CYRILLIC SMALL LETTER DZE": "s",
    "CYRILLIC SMALL LETTER KOMI DE": "d", "CYRILLIC SMALL LETTER QA": "q", "CYRILLIC SMALL LETTER WE": "w",
    "CYRILLIC SMALL LETTER PALOCHKA": "l", "CYRILLIC SMALL LETTER SOFT SIGN": "b", "CYRILLIC SMALL LETTER GHE": "r",
    "CYRILLIC SMALL LETTER PE": "n", "CYRILLIC SMALL LETTER IZHITSA": "v",
    "GREEK SMALL LETTER ALPHA": "a", "GREEK SMALL LETTER BETA": "b", "GREEK SMALL LETTER EPSILON": "e",
    "GREEK SMALL LETTER IOTA": "i", "GREEK SMALL LETTER KAPPA": "k", "GREEK SMALL LETTER NU": "v",
    "GREEK SMALL LETTER OMICRON": "o", "GREEK SMALL LETTER RHO": "p", "GREEK SMALL LETTER TAU": "t",
    "GREEK SMALL LETTER UPSILON": "u", "GREEK SMALL LETTER CHI": "x", "GREEK SMALL LETTER OMEGA": "w",
    "GREEK SMALL LETTER MU": "u", "GREEK SMALL LETTER ETA": "n",
    "LATIN SMALL LETTER DOTLESS I": "i", "LATIN SMALL LETTER IOTA": "i", "SCRIPT SMALL L": "l",
    "DIGIT ZERO": "o", "DIGIT ONE": "l",
}  # fmt: skip
CONFUSABLES = str.maketrans({unicodedata.lookup(name): latin for name, latin in _LOOK_ALIKES.items()})


def name_key(username: str) -> str:
    """The one spelling of a name for comparisons: NFKC, case-folded."""
    return unicodedata.normalize("NFKC", username).casefold()


def look_alike_key(username: str) -> str:
    """`name_key` with look-alike letters mapped to the Latin ones."""
    return name_key(username).translate(CONFUSABLES)
