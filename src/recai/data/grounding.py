"""Map free-text titles to catalog items, refusing to guess when nothing matches well.

LLMs and users name items loosely ("the godfather", "Pulp Fictoin", "Matrix, The (1999)"). A grounder
that always returns its best guess turns hallucinated titles into real-looking recommendations, so this
one returns nothing below a score threshold and reports ranked "did you mean" alternatives instead.

Scoring (0-100, documented because evaluations depend on it):
- titles and queries are normalised: accents folded, lower-cased, '&' read as 'and', punctuation
  dropped, MovieLens-style trailing articles ("Matrix, The") moved to the front, and leading articles
  ("the", "a", "an") dropped; a trailing "(1999)" is read as a year;
- an exact match of the normalised title, or of an alternative title, scores 100; a query equal to the
  main title before a subtitle (":" or " - "), or to the subtitle itself ("The Fellowship of the Ring"),
  scores 95;
- a query whose words appear, in order and whole, inside a title scores 90 when they start it (a
  franchise: "Harry Potter") and 88 elsewhere ("Fellowship of the Ring"); a one-word query does so only
  when the word is distinctive (at least 5 letters, in at most 5 titles: "Fellowship"), at 86;
- otherwise the score is the larger of rapidfuzz's ``ratio`` and ``token_sort_ratio`` on the
  normalised strings (no partial-ratio: it would let "the" or "love" match long titles);
- numbers are identity, not spelling: when the query and a title disagree on their numbers (digits,
  roman numerals II-XX, number words two-ten), a fuzzy score loses 30 points, so "Toy Story 5" or
  "Inception 2" never resolve to "Toy Story 2" or "Inception";
- queries shorter than 4 characters (after normalising) only match exactly, so "the" matches nothing;
- when the query names a year, items one year off lose 5 points (release vs festival year) and items
  further off lose 30, which separates remakes and refuses "Titanic (2050)".
A match is resolved when its score reaches the threshold (default 85). It is flagged ambiguous when
another item scores within 2 points of it above the threshold (remakes, franchise titles).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

DEFAULT_THRESHOLD = 85.0
_NEAR_YEAR_PENALTY = 5.0
_FAR_YEAR_PENALTY = 30.0
_NUMBER_MISMATCH_PENALTY = 30.0
_MIN_FUZZY_LENGTH = 4
_MAIN_TITLE_SCORE = 95.0
_PREFIX_PHRASE_SCORE = 90.0
_INNER_PHRASE_SCORE = 88.0
_DISTINCTIVE_WORD_SCORE = 86.0
_DISTINCTIVE_MAX_TITLES = 5
_DISTINCTIVE_MIN_LENGTH = 5
_AMBIGUITY_MARGIN = 2.0

_YEAR_AT_END = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_PARENTHESISED = re.compile(r"\(([^()]*)\)")
_TRAILING_ARTICLE = re.compile(
    r"^(?P<body>.+?),\s*(?P<article>the|a|an|les|la|le|l'|il|das|die|der|el|los|las|den|det|de)$", re.I
)
_AKA = re.compile(r"^a\.?k\.?a\.?\s+", re.I)
_LEADING_ARTICLE = re.compile(r"^(the|a|an)\s+", re.I)
_NON_WORD = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"\s+")


_ROMAN_NUMERALS = [
    "i",
    "ii",
    "iii",
    "iv",
    "v",
    "vi",
    "vii",
    "viii",
    "ix",
    "x",
    "xi",
    "xii",
    "xiii",
    "xiv",
    "xv",
    "xvi",
    "xvii",
    "xviii",
    "xix",
    "xx",
]
# Single letters (I, V, X) are words too often ("I, Robot", "X-Men"); only II..XX count as numbers.
_ROMAN = {r: v for v, r in enumerate(_ROMAN_NUMERALS, start=1) if len(r) >= 2}
_NUMBER_WORDS = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}


def _numbers(key: str) -> frozenset[int]:
    """The numbers a normalised key names (roman numerals and number words are digits by then)."""
    out = set()
    for token in key.split():
        if token.isdigit():
            out.add(int(token))
    return frozenset(out)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _move_article(text: str) -> str:
    m = _TRAILING_ARTICLE.match(text.strip())
    if not m:
        return text
    article = m.group("article")
    sep = "" if article.endswith("'") else " "
    return f"{article}{sep}{m.group('body')}"


def spoken_title(title: str) -> str:
    """A catalog title as a person writes it: "Matrix, The (1999)" becomes "The Matrix (1999)".

    Library-sorted titles move their article to the end; prompts meant to read like a user's message
    move it back. A trailing year is kept where it was; anything else is returned unchanged.
    """
    year = _YEAR_AT_END.search(title)
    body, tail = (title[: year.start()], title[year.start() :]) if year else (title, "")
    return f"{_move_article(body)}{tail}"


def title_key(text: str) -> str:
    """A title (or any text) normalised as the scoring above reads it: folded, lower case, punctuation
    dropped, articles moved and dropped, numbers as digits."""
    text = _fold(text).lower().replace("&", " and ")
    text = _move_article(text.strip())
    text = _NON_WORD.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    text = _LEADING_ARTICLE.sub("", text)
    # "Rocky II", "Rocky 2" and "Rocky Two" are the same title: numbers compare as digits.
    return " ".join(str(_ROMAN.get(t, _NUMBER_WORDS.get(t, t))) for t in text.split())


def parse_title(raw: str) -> tuple[str, list[str], int | None]:
    """Split a raw title into (main title, alternative titles, year).

    Handles the MovieLens conventions: "City of Lost Children, The (Cité des enfants perdus, La) (1995)".
    """
    text = str(raw).strip()
    year: int | None = None
    m = _YEAR_AT_END.search(text)
    if m:
        year = int(m.group(1))
        text = text[: m.start()].strip()
    alternatives = [a.strip() for a in _PARENTHESISED.findall(text) if a.strip() and not a.strip().isdigit()]
    alternatives = [_AKA.sub("", a).strip() for a in alternatives]
    main = _PARENTHESISED.sub(" ", text).strip() if alternatives else text
    return _SPACES.sub(" ", main), alternatives, year


@dataclass(frozen=True)
class Match:
    """One candidate item for a query, kept so an unresolved title can suggest alternatives.

    Attributes:
        item_id: The item.
        title: Its title.
        score: How well it matched (0 to 1).
    """

    item_id: Any
    title: str
    score: float


@dataclass(frozen=True)
class Grounding:
    """The result of grounding one free-text title: the item it names, or why it names none.

    Attributes:
        query: The title as given.
        item_id: The item it resolved to, or None.
        score: The best match's score (0 to 1).
        ambiguous: True when several items matched about equally well.
        alternatives: The best candidates, best first.
    """

    query: str
    item_id: Any | None
    score: float
    ambiguous: bool = False
    alternatives: tuple[Match, ...] = field(default_factory=tuple)

    @property
    def resolved(self) -> bool:
        return self.item_id is not None

    def did_you_mean(self, n: int = 3) -> list[str]:
        """Titles to suggest back to a user or an LLM when the query did not resolve cleanly."""
        return [m.title for m in self.alternatives[:n]]


class TitleMatcher:
    """Fuzzy title index over a catalog, so an LLM's or a user's title finds its item (see the module
    docstring for the scoring rules).

    Args:
        titles: Item titles.
        ids: Item ids, aligned with ``titles``.
        years: Release years, used to tell remakes apart (None or negative: unknown).
        popularity: Interaction counts, used to break ties towards the item people mean.
        threshold: The lowest score at which a title resolves.
    """

    def __init__(
        self,
        titles: Sequence[str],
        ids: Sequence[Any],
        *,
        years: Sequence[Any] | None = None,
        popularity: Sequence[float] | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        if len(titles) != len(ids):
            raise ValueError(f"{len(titles)} titles but {len(ids)} ids")
        self.threshold = float(threshold)
        self._titles = [str(t) for t in titles]
        self._ids = list(ids)
        n = len(self._titles)
        self._years = np.full(n, -1, dtype=np.int64)
        self._popularity = np.zeros(n) if popularity is None else np.asarray(popularity, dtype=float)
        keys: list[str] = []
        owners: list[int] = []
        self._exact: dict[str, list[int]] = defaultdict(list)
        self._main: dict[str, list[int]] = defaultdict(list)
        for i, raw in enumerate(self._titles):
            main, alternatives, year = parse_title(raw)
            if years is not None and years[i] is not None and not _is_missing(years[i]):
                year = int(years[i])
            if year is not None:
                self._years[i] = year
            for variant in [main, *alternatives]:
                k = title_key(variant)
                if not k:
                    continue
                keys.append(k)
                owners.append(i)
                self._exact[k].append(i)
                parts = re.split(r":|\s[-–]\s", _move_article(_fold(variant)), maxsplit=1)
                for part in parts if len(parts) > 1 else ():
                    part_key = title_key(part)
                    if part_key and part_key != k:
                        self._main[part_key].append(i)
        self._keys = keys
        self._postings: dict[str, set[int]] = defaultdict(set)  # word -> keys holding it
        for index, key in enumerate(keys):
            for token in key.split():
                self._postings[token].add(index)
        self._owners = np.asarray(owners, dtype=np.int64)
        self._key_numbers = [_numbers(k) for k in keys]

    def __len__(self) -> int:
        return len(self._titles)

    def ground(self, text: str, *, k: int = 5, threshold: float | None = None) -> Grounding:
        """Ground one free-text title to at most one item, with up to ``k`` ranked alternatives."""
        threshold = self.threshold if threshold is None else float(threshold)
        main, alternatives, year = parse_title(text)
        query_keys = [q for q in (title_key(main), *(title_key(a) for a in alternatives)) if q]
        if not query_keys:
            return Grounding(query=text, item_id=None, score=0.0)
        best = np.zeros(len(self._titles))
        for q in query_keys:
            if len(self._keys) and len(q) >= _MIN_FUZZY_LENGTH:
                sims = np.maximum(
                    process.cdist([q], self._keys, scorer=fuzz.ratio, workers=1)[0],
                    process.cdist([q], self._keys, scorer=fuzz.token_sort_ratio, workers=1)[0],
                ).astype(float)
                q_numbers = _numbers(q)
                mismatch = np.fromiter((n != q_numbers for n in self._key_numbers), bool, len(self._keys))
                sims = np.where(mismatch, sims - _NUMBER_MISMATCH_PENALTY, sims)
                np.maximum.at(best, self._owners, sims)
            for i, score in self._phrase_matches(q):
                best[i] = max(best[i], score)
            for i in self._main.get(q, ()):
                best[i] = max(best[i], _MAIN_TITLE_SCORE)
            for i in self._exact.get(q, ()):
                best[i] = 100.0
        if year is not None:
            known = self._years >= 0
            gap = np.abs(self._years - year)
            best = np.where(known & (gap == 1), best - _NEAR_YEAR_PENALTY, best)
            best = np.where(known & (gap > 1), best - _FAR_YEAR_PENALTY, best)
        order = np.lexsort((np.arange(len(best)), -self._popularity, -best))[: max(k, 1)]
        ranked = tuple(
            Match(self._ids[i], self._titles[i], round(float(best[i]), 2)) for i in order if best[i] > 0
        )
        if not ranked or ranked[0].score < threshold:
            return Grounding(
                query=text, item_id=None, score=ranked[0].score if ranked else 0.0, alternatives=ranked
            )
        top = ranked[0]
        ambiguous = (
            len(ranked) > 1
            and ranked[1].score >= threshold
            and top.score - ranked[1].score <= _AMBIGUITY_MARGIN
        )
        return Grounding(
            query=text, item_id=top.item_id, score=top.score, ambiguous=ambiguous, alternatives=ranked
        )

    def _phrase_matches(self, q: str) -> list[tuple[int, float]]:
        """Items whose title contains the query's words whole and in order (see the module docstring)."""
        tokens = q.split()
        if not tokens:
            return []
        postings = [self._postings.get(t) for t in tokens]
        if any(p is None for p in postings):
            return []
        shared = set.intersection(*postings)  # type: ignore[arg-type]
        if len(tokens) == 1:
            owners = {int(self._owners[k]) for k in shared}
            if (
                len(tokens[0]) < _DISTINCTIVE_MIN_LENGTH
                or tokens[0].isdigit()
                or len(owners) > _DISTINCTIVE_MAX_TITLES
            ):
                return []
        out = []
        padded = f" {q} "
        for key_index in shared:
            key = self._keys[key_index]
            if padded not in f" {key} ":
                continue
            if len(tokens) == 1:
                score = _DISTINCTIVE_WORD_SCORE
            else:
                score = _PREFIX_PHRASE_SCORE if key.startswith(q + " ") else _INNER_PHRASE_SCORE
            out.append((int(self._owners[key_index]), score))
        return out

    def ground_many(self, texts: Sequence[str], **kwargs: Any) -> list[Grounding]:
        return [self.ground(t, **kwargs) for t in texts]


def _is_missing(value: Any) -> bool:
    try:
        return bool(np.isnan(value))
    except (TypeError, ValueError):
        return False
