"""Conditions that a given item satisfies, drawn at random: the raw material of the condition tasks.

Every function here returns predicates that the item satisfies by construction (and the builders check
it again with the masks). Thresholds are round numbers a person would say: decades for years, steps of
1, 2 or 5 times a power of ten for quantities, and catalog quantiles for "recent" and "popular".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from recai.embed.tasks.context import TaskContext
from recai.embed.tasks.predicates import Age, HasValue, InRange, Popularity, Predicate
from recai.embed.tasks.profile import ColumnInfo, ColumnKind

#: A vague condition that most of the catalog satisfies says nothing ("under 300 minutes").
MAX_VAGUE_SHARE = 0.7
#: Quantiles for "recent" / "old" and "popular" / "lesser-known".
RECENT_QUANTILE, OLD_QUANTILE = 0.8, 0.2
POPULAR_QUANTILE, NICHE_QUANTILE = 0.8, 0.3


def exact_condition(
    ctx: TaskContext, position: int, info: ColumnInfo, rng: np.random.Generator
) -> Predicate | None:
    """One attribute of the item as stated in its data: a value it has, or its exact number or date."""
    values = ctx.profile.values(position, info.name)
    if not values:
        return None
    value = values[int(rng.integers(len(values)))]
    if info.kind in (ColumnKind.TAG, ColumnKind.ENTITY, ColumnKind.CATEGORY):
        return HasValue(info.name, str(value))
    if info.kind is ColumnKind.DATE:
        day = pd.Timestamp(value).date().isoformat()
        return InRange(info.name, low=day, high=day)
    number = _plain_number(value)
    return InRange(info.name, low=number, high=number)


def vague_conditions(ctx: TaskContext, position: int, rng: np.random.Generator) -> list[Predicate]:
    """Every vague condition the item satisfies: ranges on years, dates and quantities, "recent" or
    "old", "popular" or "lesser-known", each saying something (satisfied by at most
    :data:`MAX_VAGUE_SHARE` of the catalog)."""
    out: list[Predicate] = []
    for info in ctx.profile.of_kind(ColumnKind.YEAR, ColumnKind.QUANTITY, ColumnKind.DATE):
        values = ctx.profile.values(position, info.name)
        if not values:
            continue
        if info.kind is ColumnKind.DATE:
            out += _date_ranges(info, pd.Timestamp(values[0]), rng)
        else:
            out += _number_ranges(info, float(values[0]), rng)
        out += _age(ctx, position, info)
    out += _popularity(ctx, position)
    return [p for p in out if ctx.share(p) <= MAX_VAGUE_SHARE and ctx.mask(p)[position]]


def value_conditions(ctx: TaskContext, position: int, kinds: tuple[ColumnKind, ...]) -> list[Predicate]:
    """``HasValue`` for every value the item has in columns of ``kinds``."""
    out: list[Predicate] = []
    for info in ctx.profile.of_kind(*kinds):
        out += [HasValue(info.name, str(v)) for v in ctx.profile.values(position, info.name)]
    return out


def pick(rng: np.random.Generator, options: list[Predicate], k: int) -> list[Predicate]:
    """Up to ``k`` of ``options`` on distinct columns, in a seeded order."""
    chosen: list[Predicate] = []
    used: set[tuple[str, ...]] = set()
    for i in rng.permutation(len(options)):
        p = options[int(i)]
        if p.columns in used:
            continue
        chosen.append(p)
        used.add(p.columns)
        if len(chosen) == k:
            break
    return chosen


# ------------------------------------------------------------------ ranges
def _plain_number(value: object) -> int | float:
    number = float(value)  # type: ignore[arg-type]
    return int(number) if number.is_integer() else number


def _number_ranges(info: ColumnInfo, v: float, rng: np.random.Generator) -> list[Predicate]:
    if not math.isfinite(v):
        return []
    if info.kind is ColumnKind.YEAR:
        decade = int(v // 10 * 10)
        before = decade + 10 * (1 + int(rng.integers(2)))
        after = decade - 10 * int(rng.integers(2))
        return [
            InRange(info.name, high=before - 1),
            InRange(info.name, low=after),
            InRange(info.name, low=decade, high=decade + 9),
        ]
    step = info.step
    under = (math.floor(v / step) + 1 + int(rng.integers(2))) * step
    over = (math.ceil(v / step) - 1 - int(rng.integers(2))) * step
    if info.integer:
        return [
            InRange(info.name, high=_plain_number(under - 1)),
            InRange(info.name, low=_plain_number(over + 1)),
        ]
    return [InRange(info.name, high=_plain_number(under)), InRange(info.name, low=_plain_number(over))]


def _date_ranges(info: ColumnInfo, day: pd.Timestamp, rng: np.random.Generator) -> list[Predicate]:
    if pd.isna(day):
        return []
    before = day.year + int(rng.integers(3))
    after = day.year - int(rng.integers(3))
    return [InRange(info.name, high=f"{before}-12-31"), InRange(info.name, low=f"{after}-01-01")]


def _age(ctx: TaskContext, position: int, info: ColumnInfo) -> list[Predicate]:
    if info.kind not in (ColumnKind.YEAR, ColumnKind.DATE):
        return []
    values = ctx.profile.numeric(info.name)
    finite = values[np.isfinite(values)]
    if finite.size == 0 or not np.isfinite(values[position]):
        return []
    recent, old = np.quantile(finite, [RECENT_QUANTILE, OLD_QUANTILE])
    out: list[Predicate] = []
    if info.kind is ColumnKind.YEAR:
        out = [Age(info.name, math.ceil(recent), True), Age(info.name, math.floor(old), False)]
    else:
        epoch = pd.Timestamp("1970-01-01")
        as_day = [(epoch + pd.Timedelta(days=float(d))).date().isoformat() for d in (recent, old)]
        out = [Age(info.name, as_day[0], True), Age(info.name, as_day[1], False)]
    return out


def _popularity(ctx: TaskContext, position: int) -> list[Predicate]:
    counts = ctx.profile.popularity
    if counts is None or not np.any(counts > 0):
        return []
    popular, niche = np.quantile(counts, [POPULAR_QUANTILE, NICHE_QUANTILE])
    return [Popularity(low=float(max(popular, 1.0))), Popularity(high=float(niche))]
