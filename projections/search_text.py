"""What a search is made of, before any database sees it: the reader's query parsed into
words and phrases, the text search configuration of a post's languages, the marks of an
excerpt.

A query is normal input whatever it holds: unbalanced quotes, operators of either
database's syntax, NUL bytes, 10 KB of text. :func:`parse_query` keeps only words (the
letters and digits between everything else), grouped as the reader wrote them
(``"a phrase"``, ``-excluded``, ``this OR that``), and refuses with a message a reader
can act on what cannot be searched; the renderers then write each database's query from
those words alone, so nothing the reader typed reaches a query parser as syntax.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

MAX_QUERY_CHARS: Final = 256
"""The longest query searched (after spaces at either end are dropped)."""

MAX_WORDS: Final = 16
"""The most words a query may hold, phrases and exclusions included."""

MARK_START: Final = "\ue000"
MARK_END: Final = "\ue001"
"""The marks the databases put around a matched word in an excerpt: private-use
characters, dropped from every indexed text (:func:`indexed_text`), so each one in an
excerpt is a database's."""

_WORD = re.compile(r"\w+")
_CHUNK = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

STEMMED_CONFIG: Final = "english"
"""The one configuration SQLite stems (FTS5's ``porter`` tokenizer); every other
language is searched word for word there."""

LANGUAGE_CONFIGS: Final[dict[str, str]] = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "da": "danish",
    "nl": "dutch", "en": "english", "fi": "finnish", "fr": "french", "de": "german",
    "el": "greek", "hi": "hindi", "hu": "hungarian", "id": "indonesian", "ga": "irish",
    "it": "italian", "lt": "lithuanian", "ne": "nepali", "no": "norwegian",
    "nb": "norwegian", "nn": "norwegian", "pt": "portuguese", "ro": "romanian",
    "ru": "russian", "sr": "serbian", "es": "spanish", "sv": "swedish", "ta": "tamil",
    "tr": "turkish", "yi": "yiddish",
}
"""BCP 47 primary language subtags -> PostgreSQL's built-in text search configurations
(PostgreSQL 15's list); any other language is ``simple`` (no stemming, no stop words)."""

CONFIGS: Final[frozenset[str]] = frozenset({"simple", *LANGUAGE_CONFIGS.values()})


class QueryProblem(ValueError):
    """A query that cannot be searched; the message says why, for the reader."""


Phrase = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """Every clause must match (each clause: any of its phrases); no excluded phrase
    may. Words are lower-cased and NFC-normalised letters and digits."""

    clauses: tuple[tuple[Phrase, ...], ...]
    excluded: tuple[Phrase, ...]

    @property
    def words(self) -> tuple[str, ...]:
        found = [w for clause in self.clauses for phrase in clause for w in phrase]
        return tuple(found + [w for phrase in self.excluded for w in phrase])

    def text(self) -> str:
        """The query as the reader could have typed it (normalised)."""
        parts = [" OR ".join(_quoted(p) for p in clause) for clause in self.clauses]
        parts += ["-" + _quoted(p) for p in self.excluded]
        return " ".join(parts)


def _quoted(phrase: Phrase) -> str:
    return phrase[0] if len(phrase) == 1 else '"' + " ".join(phrase) + '"'


def clean(raw: str) -> str:
    """``raw`` as text: NFC, control characters (NUL included) and the excerpt marks
    made spaces, spaces at either end dropped."""
    text = unicodedata.normalize("NFC", raw)
    text = _CONTROL.sub(" ", text).replace(MARK_START, " ").replace(MARK_END, " ")
    return text.strip()


def words_of(text: str) -> Phrase:
    return tuple(word.lower() for word in _WORD.findall(text))


def parse_query(raw: str) -> ParsedQuery:
    """The words of a reader's query, or QueryProblem saying why there is nothing to
    search. ``"..."`` is a phrase (an unclosed quote runs to the end), ``-word`` or
    ``-"..."`` excludes, ``OR`` between two terms makes them alternatives, everything
    else that is not a letter or a digit separates words."""
    text = clean(raw)
    if len(text) > MAX_QUERY_CHARS:
        raise QueryProblem(
            f"The search is too long ({len(text)} characters): at most {MAX_QUERY_CHARS}.")
    clauses: list[list[Phrase]] = []
    excluded: list[Phrase] = []
    alternative = False
    for match in _CHUNK.finditer(text):
        minus, quoted, bare = match.group(1), match.group(2), match.group(3)
        negative = bool(minus)
        if bare is not None:
            if bare == "OR":
                alternative = bool(clauses)
                continue
            negative = bare.startswith("-") and len(bare) > 1
            phrase = words_of(bare[1:] if negative else bare)
        else:
            phrase = words_of(quoted or "")
        if not phrase:
            continue
        if negative:
            excluded.append(phrase)
            alternative = False
        elif alternative:
            clauses[-1].append(phrase)
            alternative = False
        else:
            clauses.append([phrase])
    query = ParsedQuery(tuple(tuple(c) for c in clauses), tuple(excluded))
    if len(query.words) > MAX_WORDS:
        raise QueryProblem(
            f"The search has too many words ({len(query.words)}): at most {MAX_WORDS}.")
    if not clauses:
        raise QueryProblem(
            "Nothing to search for: type at least one word (letters or digits) that is"
            " not excluded.")
    return query


def fts5_query(query: ParsedQuery) -> str:
    """``query`` in SQLite FTS5's syntax: every word quoted, so none is an operator."""

    def phrase(words: Phrase) -> str:
        return '"' + " ".join(w.replace('"', '""') for w in words) + '"'

    clauses = []
    for clause in query.clauses:
        alternatives = [phrase(p) for p in clause]
        clauses.append(alternatives[0] if len(alternatives) == 1
                       else "(" + " OR ".join(alternatives) + ")")
    text = "(" + " AND ".join(clauses) + ")"
    for words in query.excluded:
        text += " NOT " + phrase(words)
    return text


def tsquery_sql(query: ParsedQuery, config_param: str = "?") -> tuple[str, list[str]]:
    """SQL for ``query`` as a PostgreSQL ``tsquery`` in the configuration
    ``config_param`` (an SQL expression), and its parameters: each phrase through
    ``phraseto_tsquery`` (which reads only words), joined with ``&&``, ``||`` and
    ``!!``."""
    params: list[str] = []

    def phrase(words: Phrase) -> str:
        params.append(" ".join(words))
        return f"phraseto_tsquery({config_param}, ?)"

    clauses = ["(" + " || ".join(phrase(p) for p in clause) + ")" for clause in query.clauses]
    text = " && ".join(clauses)
    for words in query.excluded:
        text += f" && !!{phrase(words)}"
    return text, params


def config_for(langs: str | None) -> str:
    """The text search configuration of a post given its ``langs`` column (JSON array
    text of BCP 47 tags, or NULL): the first tag's language, ``simple`` otherwise."""
    if not langs:
        return "simple"
    try:
        tags = json.loads(langs)
    except ValueError:
        return "simple"
    if not isinstance(tags, list) or not tags or not isinstance(tags[0], str):
        return "simple"
    primary = tags[0].split("-", 1)[0].lower()
    return LANGUAGE_CONFIGS.get(primary, "simple")


def indexed_text(text: str | None) -> str:
    """A title or body as the search index holds it: without the excerpt marks (so a
    post cannot forge one) and NUL characters (which PostgreSQL's text refuses)."""
    if not text:
        return ""
    return text.replace(MARK_START, "").replace(MARK_END, "").replace("\x00", "")


Segments = tuple[tuple[str, bool], ...]


def segments(marked: str | None) -> Segments:
    """A database's highlighted text as (text, matched) runs, marks removed; a mark
    left open is closed at the end, a stray end mark dropped."""
    if not marked:
        return ()
    runs: list[tuple[str, bool]] = []
    inside = False
    current: list[str] = []
    for char in marked:
        if char in (MARK_START, MARK_END):
            if current:
                runs.append(("".join(current), inside))
                current = []
            inside = char == MARK_START
        else:
            current.append(char)
    if current:
        runs.append(("".join(current), inside))
    merged: list[tuple[str, bool]] = []
    for text, matched in runs:
        if merged and merged[-1][1] == matched:
            merged[-1] = (merged[-1][0] + text, matched)
        else:
            merged.append((text, matched))
    return tuple(merged)
