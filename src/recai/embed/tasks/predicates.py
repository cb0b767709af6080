"""Conditions a query states, as small typed objects that evaluate on every catalog item.

One object serves three purposes, so they can never disagree:

- the builders word it ("before 1990", "not horror") through :meth:`Predicate.wordings`;
- :meth:`Predicate.mask` evaluates it on the whole catalog at once, which proves that a positive
  satisfies the query and that every hard negative violates it;
- evaluation computes coverage@k (the share of the top k that satisfy every stated condition) from the
  same masks, for examples read back from JSONL with :func:`predicate_from_dict`.

Ranges are closed (``low <= value <= high``; either bound may be None) and an empty value never
satisfies a condition (nor its negation's inner condition, so ``Not`` of it is true).
"""

from __future__ import annotations

import unicodedata
import weakref
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from recai.data.catalog import Catalog
from recai.data.schema import ColumnRole
from recai.embed.tasks.profile import ColumnInfo
from recai.embed.tasks.wording import (
    NICHE,
    OLD,
    POPULAR,
    RECENT,
    Wordings,
    number,
    range_wordings,
    value_wordings,
)
from recai.errors import RecaiError

Bound = float | int | str | None


class Predicate(ABC):
    """A condition on catalog items. Subclasses are frozen dataclasses (hashable, comparable).

    Attributes:
        type: the name the serialised form carries (``to_dict()["type"]``).
    """

    type: ClassVar[str]

    @abstractmethod
    def mask(self, catalog: Catalog) -> np.ndarray:
        """A boolean per catalog row (row order): does the item satisfy the condition?"""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form; :func:`predicate_from_dict` reads it back."""

    @abstractmethod
    def wordings(self, columns: Mapping[str, ColumnInfo], *, negated: bool = False) -> Wordings:
        """The ways to say this condition (or its negation), given the catalog's column kinds."""

    def mentioned_in(self, text: str) -> bool:
        """Whether ``text`` plausibly states this condition (used to check LLM-written queries)."""
        return True

    @property
    def columns(self) -> tuple[str, ...]:
        """The catalog columns this condition reads."""
        column = getattr(self, "column", None)
        return (column,) if column else ()


@dataclass(frozen=True)
class HasValue(Predicate):
    """A categorical column equals ``value``, or a multi-valued column contains it.

    Attributes:
        column: the categorical or multi-valued categorical column.
        value: the value the item has.
    """

    column: str
    value: str
    type: ClassVar[str] = "has_value"

    def mask(self, catalog: Catalog) -> np.ndarray:
        positions, values = _exploded(catalog, self.column)
        out = np.zeros(len(catalog), dtype=bool)
        out[positions[values == self.value]] = True
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "column": self.column, "value": self.value}

    def wordings(self, columns: Mapping[str, ColumnInfo], *, negated: bool = False) -> Wordings:
        return value_wordings(columns[self.column], self.value, negated=negated)

    def mentioned_in(self, text: str) -> bool:
        folded, value = _fold(text), _fold(self.value)
        if value in folded:
            return True
        last = value.split()[-1] if value.split() else ""
        return len(value.split()) > 1 and len(last) >= 4 and last in folded.split()


@dataclass(frozen=True)
class InRange(Predicate):
    """A numeric or date column lies in ``[low, high]`` (dates as ISO strings).

    Attributes:
        column: the numeric or date column.
        low: the smallest value allowed, or None for no lower bound.
        high: the largest value allowed, or None for no upper bound (one of the two is set).
    """

    column: str
    low: Bound = None
    high: Bound = None
    type: ClassVar[str] = "in_range"

    def __post_init__(self) -> None:
        if self.low is None and self.high is None:
            raise ValueError(f"in_range on '{self.column}' needs a low or a high bound")

    def mask(self, catalog: Catalog) -> np.ndarray:
        values, convert = _comparable(catalog, self.column)
        ok = ~pd.isna(values)
        with np.errstate(invalid="ignore"):
            if self.low is not None:
                ok &= values >= convert(self.low)
            if self.high is not None:
                ok &= values <= convert(self.high)
        return np.asarray(ok, dtype=bool)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "column": self.column, "low": self.low, "high": self.high}

    def wordings(self, columns: Mapping[str, ColumnInfo], *, negated: bool = False) -> Wordings:
        words = range_wordings(columns[self.column], self.low, self.high)
        return words.negated() if negated else words

    def mentioned_in(self, text: str) -> bool:
        folded = _fold(text)
        forms: list[str] = []
        for bound, shift in ((self.low, -1), (self.high, 1)):
            if bound is None:
                continue
            if isinstance(bound, str):
                forms += [bound, bound[:4]]
                continue
            forms += [number(bound), number(bound + shift)]
            if float(bound) % 10 == 0 and 1000 <= float(bound) <= 2200:
                forms += [f"{int(bound) % 100:02d}s"]
        return any(f in folded for f in forms)


@dataclass(frozen=True)
class Age(Predicate):
    """A vague time condition: "recent" (at or after ``threshold``) or "old" (at or before it) on a year
    or date column. The threshold is fixed when the example is made, so evaluation is exact.

    Attributes:
        column: the year or date column.
        threshold: the boundary year or ISO date.
        recent: True for "recent" (at or after the threshold), False for "old" (at or before it).
    """

    column: str
    threshold: float | int | str
    recent: bool = True
    type: ClassVar[str] = "age"

    def mask(self, catalog: Catalog) -> np.ndarray:
        values, convert = _comparable(catalog, self.column)
        limit = convert(self.threshold)
        with np.errstate(invalid="ignore"):
            ok = (values >= limit) if self.recent else (values <= limit)
        return np.asarray(ok & ~pd.isna(values), dtype=bool)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "column": self.column, "threshold": self.threshold, "recent": self.recent}

    def wordings(self, columns: Mapping[str, ColumnInfo], *, negated: bool = False) -> Wordings:
        words = RECENT if self.recent else OLD
        return words.negated() if negated else words


@dataclass(frozen=True)
class Popularity(Predicate):
    """A vague popularity condition over ``catalog.popularity()``: "popular" (at least ``low``) or
    "lesser-known" (at most ``high``).

    Attributes:
        low: the least popularity of a "popular" item (set exactly one of ``low`` and ``high``).
        high: the most popularity of a "lesser-known" item.
    """

    low: float | None = None
    high: float | None = None
    type: ClassVar[str] = "popularity"

    def __post_init__(self) -> None:
        if (self.low is None) == (self.high is None):
            raise ValueError("popularity needs exactly one of low (popular) or high (lesser-known)")

    def mask(self, catalog: Catalog) -> np.ndarray:
        counts = catalog.popularity()
        if counts is None:
            raise ValueError("this catalog has no popularity column and no interaction counts attached")
        counts = np.asarray(counts, dtype=float)
        return counts >= self.low if self.low is not None else counts <= float(self.high)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "low": self.low, "high": self.high}

    def wordings(self, columns: Mapping[str, ColumnInfo], *, negated: bool = False) -> Wordings:
        words = POPULAR if self.low is not None else NICHE
        return words.negated() if negated else words


@dataclass(frozen=True)
class Not(Predicate):
    """The negation of another condition ("not horror", "without Tom Hanks").

    Attributes:
        predicate: the condition negated.
    """

    predicate: Predicate
    type: ClassVar[str] = "not"

    def mask(self, catalog: Catalog) -> np.ndarray:
        return ~self.predicate.mask(catalog)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "predicate": self.predicate.to_dict()}

    def wordings(self, columns: Mapping[str, ColumnInfo], *, negated: bool = False) -> Wordings:
        return self.predicate.wordings(columns, negated=not negated)

    def mentioned_in(self, text: str) -> bool:
        return self.predicate.mentioned_in(text)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.predicate.columns


PREDICATE_TYPES: dict[str, type[Predicate]] = {
    cls.type: cls for cls in (HasValue, InRange, Age, Popularity, Not)
}


class PredicateError(ValueError, RecaiError):
    """A serialised predicate that cannot be read.

    Args:
        field: the JSON path of the culprit (``predicates[1].type``).
        reason: what is wrong with it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


_FIELD_TYPES: dict[str, dict[str, tuple[type, ...]]] = {
    "has_value": {"column": (str,), "value": (str,)},
    "in_range": {
        "column": (str,),
        "low": (int, float, str, type(None)),
        "high": (int, float, str, type(None)),
    },
    "age": {"column": (str,), "threshold": (int, float, str), "recent": (bool,)},
    "popularity": {"low": (int, float, type(None)), "high": (int, float, type(None))},
}


def predicate_from_dict(data: Any, *, where: str = "predicate") -> Predicate:
    """Read a predicate written by :meth:`Predicate.to_dict`; a :class:`PredicateError` names the field."""
    if not isinstance(data, dict):
        raise PredicateError(where, f"expected an object, got {type(data).__name__}")
    kind = data.get("type")
    if kind not in PREDICATE_TYPES:
        raise PredicateError(
            f"{where}.type", f"unknown predicate type {kind!r} (known: {sorted(PREDICATE_TYPES)})"
        )
    if kind == "not":
        extra = sorted(set(data) - {"type", "predicate"})
        if extra:
            raise PredicateError(where, f"unknown field(s) {extra}")
        return Not(predicate_from_dict(data.get("predicate"), where=f"{where}.predicate"))
    expected = _FIELD_TYPES[kind]
    values: dict[str, Any] = {}
    for name, types in expected.items():
        if name not in data:
            raise PredicateError(f"{where}.{name}", "missing")
        value = data[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise PredicateError(f"{where}.{name}", f"unexpected value {value!r}")
        values[name] = value
    extra = sorted(set(data) - set(expected) - {"type"})
    if extra:
        raise PredicateError(where, f"unknown field(s) {extra}")
    try:
        return PREDICATE_TYPES[kind](**values)
    except ValueError as exc:
        raise PredicateError(where, str(exc)) from None


def satisfies(catalog: Catalog, predicates: Sequence[Predicate]) -> np.ndarray:
    """Items (row order) that satisfy every predicate; all items when there are none."""
    out = np.ones(len(catalog), dtype=bool)
    for p in predicates:
        out &= p.mask(catalog)
    return out


def violations(catalog: Catalog, predicates: Sequence[Predicate]) -> np.ndarray:
    """How many of ``predicates`` each item violates (0 means it satisfies the query)."""
    out = np.zeros(len(catalog), dtype=np.int64)
    for p in predicates:
        out += ~p.mask(catalog)
    return out


# ------------------------------------------------------------------ column access, cached per catalog
_EXPLODED: weakref.WeakKeyDictionary[Catalog, dict[str, tuple[np.ndarray, np.ndarray]]] = (
    weakref.WeakKeyDictionary()
)


def _exploded(catalog: Catalog, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(row positions, values as strings) of a categorical or multi-valued column, one pair per value."""
    cache = _EXPLODED.setdefault(catalog, {})
    if column not in cache:
        role = _role(catalog, column)
        if role not in (ColumnRole.CATEGORICAL, ColumnRole.MULTI_CATEGORICAL):
            raise ValueError(f"has_value needs a categorical column; '{column}' is {role.value}")
        series = catalog.items[column]
        if role is ColumnRole.MULTI_CATEGORICAL:
            series = series.explode()
        series = series.dropna()
        positions = np.asarray(series.index, dtype=np.int64)
        cache[column] = (positions, series.astype(str).to_numpy())
    return cache[column]


def _comparable(catalog: Catalog, column: str) -> tuple[np.ndarray, Any]:
    """A numeric or date column as an array, and a function that converts a bound to the same scale."""
    role = _role(catalog, column)
    series = catalog.items[column]
    if role is ColumnRole.DATE:
        stamps = pd.to_datetime(series, errors="coerce").to_numpy(dtype="datetime64[ns]")
        return stamps, lambda b: np.datetime64(pd.Timestamp(str(b)).to_datetime64(), "ns")
    if role not in (ColumnRole.NUMERIC, ColumnRole.POPULARITY):
        raise ValueError(f"a range needs a numeric or date column; '{column}' is {role.value}")
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float), float


def _role(catalog: Catalog, column: str) -> ColumnRole:
    if column not in catalog.items:
        raise ValueError(f"unknown column '{column}' (catalog columns: {list(catalog.items.columns)})")
    return catalog.schema.column(column).role


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii").lower()


__all__ = [
    "PREDICATE_TYPES",
    "Age",
    "HasValue",
    "InRange",
    "Not",
    "Popularity",
    "Predicate",
    "PredicateError",
    "predicate_from_dict",
    "satisfies",
    "violations",
]
