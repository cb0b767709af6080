"""English wordings of conditions and the queries built from them.

Each condition yields *adjectives* (words that go before the noun: "horror", "1990s", "popular") and
*modifiers* (phrases that follow it: "with Tom Hanks", "from before 1990", "under 100 minutes").
:func:`compose` puts a few of them into one query in one of many sentence shapes, so a model trained on
the result learns the conditions, not one template.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recai.embed.tasks.profile import ColumnInfo, ColumnKind


@dataclass(frozen=True)
class Wordings:
    """The ways to say one condition: before the noun, or after it.

    Attributes:
        adjectives: phrases that go before the noun ("horror").
        modifiers: phrases that go after it ("with Tom Hanks").
    """

    adjectives: tuple[str, ...] = ()
    modifiers: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.adjectives or self.modifiers)

    def negated(self) -> Wordings:
        """The generic negation, for conditions without a wording of their own for "not"."""
        mods = tuple(f"that is not {a}" for a in self.adjectives) + tuple(f"not {m}" for m in self.modifiers)
        return Wordings((), mods)


def article(phrase: str) -> str:
    """'a' or 'an' for ``phrase`` (by its first letter; good enough for generated text)."""
    word = phrase.strip().lstrip("'\"")
    return "an" if word[:1].lower() in ("a", "e", "i", "o", "u") else "a"


def number(value: float) -> str:
    """A number as people write it: no trailing '.0', at most two decimals."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


# ------------------------------------------------------------------ values of categorical columns
_VALUE_ADJECTIVES = {ColumnKind.TAG: ("{v}",), ColumnKind.CATEGORY: ("{v}",), ColumnKind.ENTITY: ()}
_VALUE_MODIFIERS = {
    ColumnKind.TAG: ("with {v} {among}", "of the {v} kind", "that counts as {v}"),
    ColumnKind.CATEGORY: ("with {a_label} {label} of {v}", "whose {label} is {v}", "({label}: {v})"),
    ColumnKind.ENTITY: ("with {v}", "featuring {v}", "with {v} {among}", "({label}: {v})"),
}
_NOT_VALUE_ADJECTIVES = {
    ColumnKind.TAG: ("non-{v}",),
    ColumnKind.CATEGORY: ("non-{v}",),
    ColumnKind.ENTITY: (),
}
_NOT_VALUE_MODIFIERS = {
    ColumnKind.TAG: (
        "that is not {v}",
        "but not {v}",
        "without anything {v}",
        "with no {v} in it",
        "not {v}",
    ),
    ColumnKind.CATEGORY: (
        "with {a_label} {label} other than {v}",
        "whose {label} is not {v}",
        "not {v} ({label})",
        "with any {label} except {v}",
    ),
    ColumnKind.ENTITY: ("without {v}", "not featuring {v}", "with no {v}", "without {v} {among}"),
}


def _among(label: str) -> str:
    """ "among its genres" for a plural label, "as director" for a singular one."""
    return f"among its {label}" if label.endswith("s") else f"as {label}"


def value_text(info: ColumnInfo, value: object) -> str:
    """A value as it appears in a query: tags lower-cased ("horror"), names and categories as stored."""
    text = str(value).strip()
    return text.lower() if info.kind is ColumnKind.TAG else text


def value_wordings(info: ColumnInfo, value: object, *, negated: bool = False) -> Wordings:
    v = value_text(info, value)
    fill = {"v": v, "label": info.label, "a_label": article(info.label), "among": _among(info.label)}
    adjs = (_NOT_VALUE_ADJECTIVES if negated else _VALUE_ADJECTIVES).get(info.kind, ())
    mods = (_NOT_VALUE_MODIFIERS if negated else _VALUE_MODIFIERS).get(info.kind, ())
    return Wordings(tuple(t.format(**fill) for t in adjs), tuple(t.format(**fill) for t in mods))


# ------------------------------------------------------------------ ranges
def range_wordings(info: ColumnInfo, low: object, high: object) -> Wordings:
    """Wordings of ``low <= value <= high`` (either bound may be None) that mean exactly that."""
    if info.kind is ColumnKind.DATE:
        return _date_wordings(info, low, high)
    lo = None if low is None else float(low)  # type: ignore[arg-type]
    hi = None if high is None else float(high)  # type: ignore[arg-type]
    if info.kind is ColumnKind.YEAR:
        return _year_wordings(info.label, lo, hi)
    return _quantity_wordings(info, lo, hi)


def _year_wordings(label: str, lo: float | None, hi: float | None) -> Wordings:
    if lo is not None and hi is not None:
        a, b = number(lo), number(hi)
        if lo == hi:
            return Wordings((a,), (f"from {a}", f"with {label} {a}", f"dating from {a}"))
        if lo % 10 == 0 and hi == lo + 9:
            short = f"'{int(lo) % 100:02d}s"
            return Wordings(
                (f"{a}s", short), (f"from the {a}s", f"from the {short}", f"with {label} in the {a}s")
            )
        return Wordings(
            (), (f"from between {a} and {b}", f"from {a} to {b}", f"with {label} from {a} to {b}")
        )
    if hi is not None:
        before, b = number(hi + 1), number(hi)
        return Wordings(
            (f"pre-{before}",),
            (
                f"from before {before}",
                f"from {b} or earlier",
                f"with {label} before {before}",
                f"no later than {b}",
            ),
        )
    if lo is not None:
        after, a = number(lo - 1), number(lo)
        return Wordings(
            (),
            (f"from {a} or later", f"from {a} onwards", f"from after {after}", f"with {label} after {after}"),
        )
    return Wordings()


def _quantity_wordings(info: ColumnInfo, lo: float | None, hi: float | None) -> Wordings:
    label, al = info.label, article(info.label)
    mods: list[str] = []
    for unit in info.unit_forms:
        u = f" {unit}" if unit else ""
        if lo is not None and hi is not None:
            if lo == hi:
                mods += [f"with {al} {label} of {number(lo)}{u}", f"({label}: {number(lo)}{u})"]
            else:
                mods += [f"with {al} {label} between {number(lo)} and {number(hi)}{u}"]
                mods += [f"with {al} {label} of {number(lo)} to {number(hi)}{u}"]
        elif hi is not None:
            mods += _one_sided_modifiers(info, hi, u, upper=True)
        elif lo is not None:
            mods += _one_sided_modifiers(info, lo, u, upper=False)
    return Wordings((), tuple(dict.fromkeys(mods)))


#: How a one-sided bound is said, by whether it is an upper one: the strict word alone and after the
#: label ("under 100", "below 100"), the inclusive word ("at most 99") and the tail ("99 or less").
_BOUND_WORDS: dict[bool, tuple[str, str, str, str]] = {
    True: ("under", "below", "at most", "less"),
    False: ("over", "above", "at least", "more"),
}


def _one_sided_modifiers(info: ColumnInfo, bound: float, unit: str, *, upper: bool) -> list[str]:
    """Modifiers for ``label <= bound`` (``upper``) or ``label >= bound``; ``unit`` is "" or " min".

    One function for both sides so that the two stay mirror images. A whole-number column also gets the
    strict form one step past the bound ("under 100 minutes" for at most 99), the way people say it.
    """
    label, al = info.label, article(info.label)
    strict, strict_after_label, inclusive, tail = _BOUND_WORDS[upper]
    mods: list[str] = []
    if info.integer:
        past = number(bound + 1 if upper else bound - 1)
        mods += [f"{strict} {past}{unit}" if unit else f"with {al} {label} {strict} {past}"]
        mods += [f"with {al} {label} {strict_after_label} {past}{unit}"]
    mods += [
        f"with {al} {label} of {inclusive} {number(bound)}{unit}",
        f"with {al} {label} of {number(bound)}{unit} or {tail}",
    ]
    return mods


def _date_wordings(info: ColumnInfo, low: object, high: object) -> Wordings:
    lo = None if low is None else pd.Timestamp(str(low))
    hi = None if high is None else pd.Timestamp(str(high))
    label = info.label
    lo_year = lo is not None and lo.month == 1 and lo.day == 1
    hi_year = hi is not None and hi.month == 12 and hi.day == 31
    if lo is not None and hi is not None:
        if lo_year and hi_year:
            if lo.year == hi.year:
                return Wordings((str(lo.year),), (f"from {lo.year}", f"with {label} in {lo.year}"))
            return Wordings(
                (), (f"from {lo.year} to {hi.year}", f"with {label} between {lo.year} and {hi.year}")
            )
        a, b = lo.date().isoformat(), hi.date().isoformat()
        return Wordings((), (f"with {label} between {a} and {b}", f"from {a} to {b}"))
    if hi is not None:
        if hi_year:
            return Wordings((), (f"from before {hi.year + 1}", f"with {label} before {hi.year + 1}"))
        return Wordings((), (f"with {label} on or before {hi.date().isoformat()}",))
    if lo is not None:
        if lo_year:
            return Wordings((), (f"from {lo.year} or later", f"with {label} in {lo.year} or later"))
        return Wordings((), (f"with {label} on or after {lo.date().isoformat()}",))
    return Wordings()


# ------------------------------------------------------------------ relative conditions
RECENT = Wordings(
    ("recent", "new", "newer"), ("from recent years", "that is fairly new", "that came out recently")
)
OLD = Wordings(("older", "old", "vintage"), ("from long ago", "that is on the older side", "from way back"))
POPULAR = Wordings(
    ("popular", "well-known", "mainstream", "much-loved"),
    ("that many people liked", "that lots of people know", "that is widely known"),
)
NICHE = Wordings(
    ("lesser-known", "obscure", "underrated", "little-known"),
    ("that few people know", "off the beaten path", "that flew under the radar"),
)


# ------------------------------------------------------------------ composition
_SHAPES_WITH_NOUN = (
    "{a_adj_noun} {mods}",
    "{adj_noun}s {mods}",
    "looking for {a_adj_noun} {mods}",
    "any {adj_noun} {mods}",
    "recommend {a_adj_noun} {mods}",
    "I want {a_adj_noun} {mods}",
    "suggest {adj_noun}s {mods}",
    "{adj_noun} {mods}",
)
_SHAPES_WITHOUT_NOUN = ("something {adj} {mods}", "{keywords}", "anything {adj} {mods}")


_PHRASE_SHAPES = ("{a_adj_noun} {mods}", "{adj_noun}s {mods}")


def compose(parts: Sequence[Wordings], noun: str, rng: np.random.Generator, *, phrase: bool = False) -> str:
    """One query stating every part, in a sentence shape drawn by ``rng``.

    ``phrase=True`` gives a plain noun phrase ("a horror film from the 1990s") that can go inside a
    longer sentence (a dialogue turn), without request words or "(label: value)" asides.
    """
    adjectives: list[str] = []
    modifiers: list[str] = []
    for part in parts:
        mods = [m for m in part.modifiers if not (phrase and m.startswith("("))]
        use_adjective = part.adjectives and (not mods or rng.random() < 0.5)
        if use_adjective:
            adjectives.append(str(rng.choice(part.adjectives)))
        elif mods:
            modifiers.append(str(rng.choice(mods)))
    if len(modifiers) > 1:
        joiner = str(rng.choice([" and ", ", "]))
        mods_text = ", ".join(modifiers[:-1]) + joiner + modifiers[-1]
    else:
        mods_text = "".join(modifiers)
    adj = " ".join(adjectives)
    adj_noun = f"{adj} {noun}".strip()
    if phrase:
        shapes: tuple[str, ...] = _PHRASE_SHAPES + (("something {adj} {mods}",) if adj or mods_text else ())
    else:
        shapes = _SHAPES_WITH_NOUN
        if len(adjectives) + len(modifiers) > 1:
            shapes += _SHAPES_WITHOUT_NOUN
        elif modifiers:
            shapes += ("something {mods}", "anything {mods}")
    shape = str(rng.choice(shapes))
    text = shape.format(
        a_adj_noun=f"{article(adj_noun)} {adj_noun}",
        adj_noun=adj_noun,
        adj=adj,
        mods=mods_text,
        keywords=", ".join([*adjectives, *modifiers]),
    )
    return tidy(text)


def tidy(text: str) -> str:
    """Single spaces, no space before punctuation, no dangling commas."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.;:?!)])", r"\1", text)
    return text.strip(" ,;")


def join_titles(titles: Sequence[str], rng: np.random.Generator) -> str:
    """A list of titles in one of a few list styles."""
    style = int(rng.integers(3))
    if style == 0:
        return "; ".join(titles)
    if style == 1:
        return " | ".join(titles)
    return ", ".join(titles[:-1]) + (" and " if len(titles) > 1 else "") + titles[-1]


def attribute_pair(info: ColumnInfo, low: object, high: object | None = None, *, value: object = None) -> str:
    """An attribute as a "label: value" pair (partial-attribute queries): ``value`` for a categorical
    column, or the exact number or date ``low`` (== ``high``)."""
    if value is not None:
        return f"{info.label}: {value}"
    if info.kind is ColumnKind.DATE:
        return f"{info.label}: {low}"
    unit = f" {info.unit}" if info.unit else ""
    return f"{info.label}: {number(float(low))}{unit}"  # type: ignore[arg-type]
