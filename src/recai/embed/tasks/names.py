"""7. misspelled or partial name -> item: the title with character edits, dropped words, only its first
part, or as an abbreviation.

A query is kept only when it still points at its target and at nothing else: every other title must
match it clearly worse (by more than :data:`MARGIN` points of rapidfuzz ``WRatio`` on normalised text), and an
abbreviation must be the abbreviation of no other title. Items that share the target's title (remakes)
are told apart by the year, which the query then keeps. Hard negatives are the items whose titles are
closest to the target's, which is exactly what a fuzzy matcher confuses.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from rapidfuzz import fuzz, process

from recai.embed.tasks.base import Draft, EmbedTask
from recai.embed.tasks.context import TaskContext

MARGIN = 5.0
MIN_SCORE = 60.0
_ARTICLE = re.compile(r"^(the|a|an)\s+")
_OPS = ("typo", "typo", "drop_word", "partial", "abbreviation")
#: Numbers are identity, not spelling ("Part II" is not "Part III"): damage never touches them.
_NUMERAL = re.compile(r"^(\d+|[ivxlc]+|one|two|three|four|five|six|seven|eight|nine|ten)[.,:;!?]*$", re.I)


def _is_numeral(token: str) -> bool:
    return bool(_NUMERAL.match(token)) and token.lower() not in ("i", "l", "c")  # "I" is mostly a pronoun


def normalise_title(text: str) -> str:
    """Accents folded, lower case, '&' as 'and', punctuation as spaces, no leading article."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    folded = folded.replace("&", " and ")
    folded = " ".join(re.sub(r"[^\w\s]", " ", folded).split())
    return _ARTICLE.sub("", folded)


def acronym(text: str) -> str:
    """Initials of the main title (before a subtitle), leading article dropped: "LOTR"."""
    main = re.split(r":|\s[-–]\s", text, maxsplit=1)[0]
    words = normalise_title(main).split()
    return "".join(w[0] for w in words if w[0].isalnum()).upper()


@dataclass
class _Titles:
    raw: list[str]
    normalised: list[str]  # of the display title (with year when the catalog has one)
    raw_normalised: list[str]
    acronyms: list[str]


def _titles(ctx: TaskContext) -> _Titles:
    if "fuzzy_name" not in ctx.store:
        raw = ctx.catalog.titles
        display = [ctx.title(i) for i in range(len(ctx.catalog))]
        ctx.store["fuzzy_name"] = _Titles(
            raw,
            [normalise_title(t) for t in display],
            [normalise_title(t) for t in raw],
            [acronym(t) for t in raw],
        )
    return ctx.store["fuzzy_name"]


def _typo(name: str, rng: np.random.Generator) -> str | None:
    chars = list(name)
    edits = 1 if len(name) < 12 else 1 + int(rng.integers(2))
    for _ in range(edits):
        text = "".join(chars)
        protected = {i for m in re.finditer(r"\S+", text) if _is_numeral(m.group()) for i in range(*m.span())}
        letters = [i for i, c in enumerate(chars) if c.isalpha() and i not in protected]
        if len(letters) < 4:
            return None
        i = letters[int(rng.integers(1, len(letters)))]  # the first letter is usually typed right
        op = int(rng.integers(4))
        if op == 0 and i + 1 < len(chars) and chars[i + 1].isalpha() and chars[i + 1] != chars[i]:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        elif op == 1:
            del chars[i]
        elif op == 2:
            chars.insert(i, chars[i])
        else:
            options = [c for c in string.ascii_lowercase if c != chars[i].lower()]
            chars[i] = str(rng.choice(options))
    return "".join(chars)


def _drop_word(name: str, rng: np.random.Generator) -> str | None:
    words = name.split()
    droppable = [i for i in range(1, len(words)) if not _is_numeral(words[i])]
    if len(words) < 3 or not droppable:
        return None
    del words[droppable[int(rng.integers(len(droppable)))]]
    return " ".join(words)


def _partial(name: str, rng: np.random.Generator) -> str | None:
    parts = re.split(r":|\s[-–]\s", name, maxsplit=1)
    if len(parts) == 2 and parts[0].strip():
        return parts[0].strip()
    words = name.split()
    if len(words) < 3:
        return None
    keep = int(rng.integers((len(words) + 1) // 2, len(words)))
    if any(_is_numeral(w) for w in words[keep:]):
        return None  # "The Godfather Part" could be any part
    return " ".join(words[:keep])


def _abbreviation(name: str, rng: np.random.Generator) -> str | None:
    letters = acronym(name)
    if len(letters) < 3:
        return None
    style = int(rng.integers(3))
    return letters if style == 0 else ".".join(letters) + "." if style == 1 else letters.lower()


class FuzzyName(EmbedTask):
    """The query is a damaged name; ``source`` says which damage."""

    name: ClassVar[str] = "fuzzy_name"
    masks_title: ClassVar[bool] = False

    def make(self, ctx: TaskContext, anchor: int, rng: np.random.Generator) -> Draft | None:
        titles = _titles(ctx)
        name = titles.raw[anchor]
        same_name = [
            i
            for i, t in enumerate(titles.raw_normalised)
            if t == titles.raw_normalised[anchor] and i != anchor
        ]
        year = ctx.title(anchor)[len(name) :].strip() if same_name else ""
        op = str(rng.choice(_OPS))
        damaged = {
            "typo": _typo,
            "drop_word": _drop_word,
            "partial": _partial,
            "abbreviation": _abbreviation,
        }[op](name, rng)
        if not damaged:
            return None
        if op != "abbreviation" and rng.random() < 0.4:
            damaged = damaged.lower()
        if op != "abbreviation" and rng.random() < 0.3:
            damaged = " ".join(re.sub(r"[^\w\s]", " ", damaged).split())
        query = f"{damaged} {year}".strip()
        target = normalise_title(ctx.title(anchor) if year else name)
        if not query or normalise_title(query) == target:
            return None
        others = np.ones(len(titles.raw), dtype=bool)
        others[anchor] = False
        if op == "abbreviation":
            if any(a == titles.acronyms[anchor] for i, a in enumerate(titles.acronyms) if i != anchor):
                return None
            score = None
        else:
            choices = titles.normalised if year else titles.raw_normalised
            score = process.cdist([normalise_title(query)], choices, scorer=fuzz.WRatio)[0]
            rivals = score.copy()
            rivals[anchor] = -1.0
            rivals[same_name] = -1.0  # told apart by the year the query keeps
            if score[anchor] < MIN_SCORE or rivals.max() >= score[anchor] - MARGIN:
                return None
        closeness = (
            process.cdist([target], titles.normalised if year else titles.raw_normalised, scorer=fuzz.WRatio)[
                0
            ]
            / 100.0
        )
        negatives = ctx.hard_negatives(anchor, others, rng, closeness=closeness)
        source = {"damage": op, "title": ctx.title(anchor)}
        if score is not None:
            source["score"] = round(float(score[anchor]), 1)
        return Draft(query, anchor, negatives, source=source)
