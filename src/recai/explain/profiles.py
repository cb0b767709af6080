"""Item and user profiles written from the catalog (never by an LLM), for any catalog's columns.

The tasks that ask for them (``uid2summary``, ``feature2iid``, ``description2iid``) and the metrics that
score the replies call the same functions, so a label and its score always agree:

- :func:`item_features`: an item's short facts (category values, numbers, dates), title masked;
- :func:`item_description`: an item's text columns, title masked (its features when it has no text);
- :func:`user_summary`: the category values that recur in a history and a couple of its items.

The title is kept out two ways: a fact column whose value repeats the title (a slug, an original
title) is left out for that item, and any remaining mention of the title is replaced by :data:`MASK`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recai.data.catalog import Catalog
from recai.data.schema import ColumnRole

#: What a masked title reads as.
MASK = "[title]"
#: Roles of the short facts an item is named from (not free text, not the log's popularity).
FACT_ROLES = (ColumnRole.CATEGORICAL, ColumnRole.MULTI_CATEGORICAL, ColumnRole.NUMERIC, ColumnRole.DATE)
#: Roles whose values a user summary counts.
CATEGORY_ROLES = (ColumnRole.CATEGORICAL, ColumnRole.MULTI_CATEGORICAL)
MAX_CHARS = 400
#: Values of a list column shown in features (the main cast, not all of it).
MAX_LIST = 5
#: Values per category column in a user summary, and representative items.
SUMMARY_VALUES = 3
SUMMARY_ITEMS = 2
_ARTICLE_LAST = re.compile(r"^(?P<rest>.+), (?P<article>the|a|an)$", re.IGNORECASE)
_YEAR_SUFFIX = re.compile(r"\s*\(\d{4}\)\s*$")


def _cell(catalog: Catalog, position: int, column: str) -> Any:
    return catalog.items.iat[position, catalog.items.columns.get_loc(column)]


def _title(catalog: Catalog, position: int) -> str:
    return str(_cell(catalog, position, catalog.title_column)).strip()


def title_variants(title: str) -> list[str]:
    """The ways a text may spell ``title``: as is, without a trailing ``(year)``, and with a trailing
    article moved to the front (MovieLens' ``Matrix, The`` is ``The Matrix`` in a synopsis)."""
    bare = _YEAR_SUFFIX.sub("", title).strip()
    variants = [title, bare]
    moved = _ARTICLE_LAST.match(bare)
    if moved:
        variants.append(f"{moved['article']} {moved['rest']}")
    return [v for v in dict.fromkeys(variants) if v]


def mask_title(text: str, title: str) -> str:
    """``text`` with every whole-word mention of ``title`` (any variant, any case) replaced by MASK."""
    for variant in sorted(title_variants(title), key=len, reverse=True):
        text = re.sub(_whole(variant), MASK, text, flags=re.IGNORECASE)
    return text


def _squashed(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def _values(value: Any) -> list[str]:
    """A cell's values as text: each element of a list cell, nothing for a missing one."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return []
    text = str(value).strip()
    return [text] if text else []


def _repeats_title(catalog: Catalog, position: int, column: str) -> bool:
    """Whether the item's value in ``column`` spells its title (ignoring case, spaces and punctuation)."""
    value = _squashed(" ".join(_values(_cell(catalog, position, column))))
    return any(len(v) >= 3 and v in value for v in map(_squashed, title_variants(_title(catalog, position))))


def item_features(catalog: Catalog, position: int) -> str:
    """The item's short facts (categories, numbers, dates; lists cut to MAX_LIST), title masked; empty
    when it has none (a catalog of titles only). Items with equal features are indistinguishable."""
    columns = [
        c.name
        for c in catalog.schema.columns
        if c.role in FACT_ROLES and c.name in catalog.items and not _repeats_title(catalog, position, c.name)
    ]
    if not columns:
        return ""
    text = catalog.render(position, columns=columns, by_position=True, max_chars=MAX_CHARS, max_list=MAX_LIST)
    return mask_title(text, _title(catalog, position))


def item_description(catalog: Catalog, position: int) -> str:
    """The item's text columns (descriptions, plots), title masked; its :func:`item_features` when it has
    no text (a catalog without text columns, or an empty cell)."""
    columns = [c for c in catalog.schema.by_role(ColumnRole.TEXT) if c in catalog.items]
    text = catalog.render(position, columns=columns, by_position=True, max_chars=MAX_CHARS) if columns else ""
    if not text.strip():
        return item_features(catalog, position)
    return mask_title(text, _title(catalog, position))


@dataclass(frozen=True)
class UserSummary:
    """What a history is mostly made of, as data says it.

    Attributes:
        values: per category column (schema order) that has recurring values, the column and its most
            frequent values (at most SUMMARY_VALUES, most frequent first, ties by name).
        items: catalog positions of the representative history items: those with the most of the
            summary's values, the most recent first among equals.
    """

    values: tuple[tuple[str, tuple[str, ...]], ...]
    items: tuple[int, ...]

    def facts(self, catalog: Catalog) -> list[tuple[str, ...]]:
        """What a reply is checked to mention, each fact as its accepted spellings: every value, and every
        representative item's title (any of :func:`title_variants`)."""
        values = [(v,) for _, vs in self.values for v in vs]
        return values + [tuple(title_variants(_title(catalog, p))) for p in self.items]

    def text(self, catalog: Catalog, noun: str) -> str:
        """The summary as one answer (``Recurring genres: Crime, Drama; language: English. Typical
        films: ...``)."""
        parts = [f"{column.replace('_', ' ')}: {', '.join(values)}" for column, values in self.values]
        lines = [f"Recurring {'; '.join(parts)}."] if parts else []
        titles = "; ".join(catalog.display_title(p) for p in self.items)
        lines.append(f"Typical {noun}s: {titles}.")
        return " ".join(lines)


def user_summary(catalog: Catalog, history: Sequence[int]) -> UserSummary:
    """The summary of ``history`` (catalog positions, oldest first): category values in at least two of
    its items (any value for a one-item history), and SUMMARY_ITEMS items that carry the most of them (a
    catalog without category columns, like Last.fm artists, gets the most recent items)."""
    latest_first = list(dict.fromkeys(int(p) for p in reversed(history)))  # a repeat counts once
    least = 2 if len(latest_first) >= 2 else 1
    values: list[tuple[str, tuple[str, ...]]] = []
    for column in (c.name for c in catalog.schema.columns if c.role in CATEGORY_ROLES):
        if column not in catalog.items:
            continue
        counts = Counter(v for p in latest_first for v in dict.fromkeys(_values(_cell(catalog, p, column))))
        top = sorted((v for v, n in counts.items() if n >= least), key=lambda v: (-counts[v], v))
        if top:
            values.append((column, tuple(top[:SUMMARY_VALUES])))
    wanted = {(column, v) for column, vs in values for v in vs}

    def carried(position: int) -> int:
        return sum(
            (column, v) in wanted for column, _ in values for v in _values(_cell(catalog, position, column))
        )

    ranked = sorted(range(len(latest_first)), key=lambda i: (-carried(latest_first[i]), i))
    return UserSummary(tuple(values), tuple(latest_first[i] for i in ranked[:SUMMARY_ITEMS]))


def mentions(reply: str, spellings: Sequence[str]) -> bool:
    """Whether ``reply`` names any of ``spellings`` as a whole word or phrase, in any case."""
    return any(re.search(_whole(s), reply, flags=re.IGNORECASE) for s in spellings)


def _whole(text: str) -> str:
    """A pattern for ``text`` as a whole word or phrase."""
    return rf"(?<!\w){re.escape(text)}(?!\w)"
