"""Words, pure: how a query and a message are cut into words, and the
highlight. A query never reaches an engine as query syntax: it is cut into
words here (runs of Unicode letters and digits; everything else separates
them), and each engine gets only those words, quoted (FTS5) or as lexemes
(tsquery) built from them."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Runs of letters and digits (Unicode): `\w` without the underscore, which
# both engines treat as a separator too.
WORD = re.compile(r"[^\W_]+")
MIN_QUERY = 2
MAX_QUERY = 500
MAX_WORDS = 16
# Longer words are cut to this (PostgreSQL refuses lexemes over 2 KB).
MAX_WORD = 100
HIGHLIGHT_OPEN, HIGHLIGHT_CLOSE = "[[", "]]"

# Letters that do not decompose into a base letter and a mark, folded as
# PostgreSQL's unaccent folds them (only for the highlight: matching is the
# engine's).
_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l", "\u0131": "i", "þ": "th", "ð": "d"})


def words(text: str) -> list[str]:
    """The words of `text`, lower-cased, in order."""
    return [w[:MAX_WORD] for w in WORD.findall(unicodedata.normalize("NFKC", text).lower())]


def fold(word: str) -> str:
    """A word without case and accents ("Café" -> "cafe")."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).translate(_FOLD)


@dataclass(frozen=True)
class Query:
    """The words to find, every one; the last also as a prefix."""

    terms: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.terms


def parse_query(q: str) -> Query:
    """The words of a query; ValueError (with the reason) for one too short
    or too long."""
    q = q.strip()
    if len(q) < MIN_QUERY:
        raise ValueError(f"Must be at least {MIN_QUERY} characters.")
    if len(q) > MAX_QUERY:
        raise ValueError(f"Must be at most {MAX_QUERY} characters.")
    terms = words(q)
    if len(terms) > MAX_WORDS:
        raise ValueError(f"Must be at most {MAX_WORDS} words.")
    return Query(tuple(terms))


def fts5_match(query: Query) -> str:
    """An FTS5 MATCH expression: each word a quoted string (a word holds no
    quote, see WORD), all of them required, the last one also a prefix."""
    quoted = [f'"{term}"' for term in query.terms]
    quoted[-1] += "*"
    return " AND ".join(quoted)


def tsquery(lexemes: list[str]) -> str:
    """A `to_tsquery` expression over lexemes that are runs of letters and
    digits only (the caller re-cut them with `words`): no operator, quote or
    backslash can be among them. The last is a prefix."""
    assert all(WORD.fullmatch(lexeme) for lexeme in lexemes), lexemes
    parts = [f"'{lexeme}'" for lexeme in lexemes]
    parts[-1] += ":*"
    return " & ".join(parts)


def index_text(content: str) -> str:
    """What PostgreSQL indexes of a message: its words, space-separated, so
    its parser sees plain words only (it would keep `a@b.org` or
    `report.pdf` whole, and a search for `report` would not find them)."""
    return " ".join(words(content))


def highlight(content: str, query: Query) -> str | None:
    """`content` with each word that matches wrapped in [[ ]], or None when
    none does (the engine matched what this folding does not tell)."""
    if query.empty:
        return None
    wanted = {fold(term) for term in query.terms[:-1]}
    prefix = fold(query.terms[-1])
    found = False

    def mark(match: re.Match[str]) -> str:
        nonlocal found
        word = fold(unicodedata.normalize("NFKC", match.group(0)))
        if word in wanted or word.startswith(prefix):
            found = True
            return f"{HIGHLIGHT_OPEN}{match.group(0)}{HIGHLIGHT_CLOSE}"
        return match.group(0)

    marked = WORD.sub(mark, content)
    return marked if found else None
