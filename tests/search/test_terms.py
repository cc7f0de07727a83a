"""search.terms: how queries and messages are cut into words, the engines'
query strings and the highlight. Pure."""

from __future__ import annotations

import pytest

from search import terms


def test_words_are_runs_of_letters_and_digits_lower_cased():
    assert terms.words("Hello, WORLD! e-mail foo@bar.org report.pdf snake_case 3.14 ｃａｆé") == [
        "hello", "world", "e", "mail", "foo", "bar", "org", "report", "pdf", "snake", "case", "3", "14", "café",
    ]


def test_fold_drops_case_and_accents():
    assert [terms.fold(w) for w in ("Café", "crème", "Straße", "Ørsted", "naïve")] == ["cafe", "creme", "strasse", "orsted", "naive"]


@pytest.mark.parametrize("q", ["", " ", "a", " b ", "x" * (terms.MAX_QUERY + 1), " ".join(["w"] * (terms.MAX_WORDS + 1))])
def test_bad_queries_raise(q):
    with pytest.raises(ValueError):
        terms.parse_query(q)


def test_a_query_with_no_word_is_empty_not_an_error():
    assert terms.parse_query("!!! ***").empty


def test_fts5_match_quotes_every_word_and_the_last_is_a_prefix():
    query = terms.parse_query('NEAR(a b) "x" content:y -z')
    assert terms.fts5_match(query) == '"near" AND "a" AND "b" AND "x" AND "content" AND "y" AND "z"*'


def test_tsquery_takes_only_plain_words():
    assert terms.tsquery(["cafe", "wor"]) == "'cafe' & 'wor':*"
    with pytest.raises(AssertionError):
        terms.tsquery(["a'b"])


def test_index_text_is_the_words():
    assert terms.index_text("Mail foo@bar.org: report.pdf!") == "mail foo bar org report pdf"


def test_highlight_wraps_whole_words_and_the_last_as_a_prefix():
    query = terms.parse_query("cafe hom")
    assert terms.highlight("Café at home, homework; cafeteria.", query) == "[[Café]] at [[home]], [[homework]]; cafeteria."
    assert terms.highlight("nothing here", query) is None
