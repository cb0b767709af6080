"""Item cards: what the page and the API show for an item, built from the catalog's own columns (never
from model text), so every title, year and fact on a card is true of the catalog.

The catalog's schema decides the layout: the title and year, the first multi-valued column named like
genres as tags, a few short facts (categorical and numeric columns, with units), and the first long text
column as a short synopsis.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from recai.data.catalog import Catalog
from recai.data.schema import ColumnRole

TAG_NAMES = ("genres", "genre", "categories", "category", "tags")
MAX_FACTS = 4
MAX_LIST_VALUES = 3
SUMMARY_CHARS = 280


class Fact(BaseModel):
    """One labelled attribute shown on an item card."""

    label: str = Field(description='The column, as a label ("Runtime").')
    value: str = Field(description='Its value, with its unit ("95 min").')


class ItemCard(BaseModel):
    """An item as every API answer shows it, whatever the catalog's columns are."""

    id: int | str = Field(description="The catalog id.")
    title: str = Field(description="The title as stored.")
    display_title: str = Field(description="The title with its year, when the title does not show it.")
    year: int | None = Field(default=None, description="The year, when the catalog has one.")
    tags: list[str] = Field(default=[], description="Up to five genres, categories or tags.")
    facts: list[Fact] = Field(default=[], description="A few more attributes.")
    summary: str = Field(default="", description="The start of the item's text, if it has one.")
    score: float | None = Field(default=None, description="The recommender's score, when ranked.")
    match: str | None = Field(default=None, description="Why a search matched it, when searched.")


class ItemCards:
    """Cards for one catalog; the column layout is worked out once.

    Args:
        catalog: The catalog whose items the cards show.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        schema = catalog.schema
        roles = {c.name: c.role for c in schema.columns}
        self.year_column = next(
            (n for n in ("year", "release_year") if roles.get(n) is ColumnRole.NUMERIC), None
        )
        multi = schema.by_role(ColumnRole.MULTI_CATEGORICAL)
        self.tag_column = next((n for n in multi if n.lower() in TAG_NAMES), multi[0] if multi else None)
        texts = schema.by_role(ColumnRole.TEXT)
        self.summary_column = texts[0] if texts else None
        skip = {schema.id_column, schema.title_column, self.year_column, self.tag_column, *texts}
        self.fact_columns = [
            c.name
            for c in schema.columns
            if c.name not in skip
            and c.role
            in (ColumnRole.CATEGORICAL, ColumnRole.MULTI_CATEGORICAL, ColumnRole.NUMERIC, ColumnRole.DATE)
        ][:MAX_FACTS]

    def card(self, item_id: Any, *, score: float | None = None, match: str | None = None) -> ItemCard:
        """The card of one catalog id; KeyError names an unknown id."""
        pos = int(self.catalog.index_of([item_id])[0])
        return self.card_at(pos, score=score, match=match)

    def card_at(self, pos: int, *, score: float | None = None, match: str | None = None) -> ItemCard:
        items = self.catalog.items
        schema = self.catalog.schema

        def value(column: str) -> Any:
            return items.iat[pos, items.columns.get_loc(column)]

        year = value(self.year_column) if self.year_column else None
        facts = []
        for column in self.fact_columns:
            text = _text(value(column))
            if text:
                unit = schema.column(column).unit
                facts.append(
                    Fact(label=column.replace("_", " ").capitalize(), value=f"{text} {unit or ''}".strip())
                )
        raw_id = self.catalog.ids[pos]
        return ItemCard(
            id=raw_id.item() if isinstance(raw_id, np.generic) else raw_id,
            title=str(value(schema.title_column)),
            display_title=self.catalog.display_title(pos),
            year=None if year is None or pd.isna(year) else int(year),
            tags=_values(value(self.tag_column))[:5] if self.tag_column else [],
            facts=facts,
            summary=_cut(_text(value(self.summary_column), limit=None), SUMMARY_CHARS)
            if self.summary_column
            else "",
            score=None if score is None else round(float(score), 4),
            match=match,
        )

    def cards(self, ids: Iterable[Any]) -> list[ItemCard]:
        return [self.card(i) for i in ids]


def _values(value: Any) -> list[str]:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v) for v in value if not _missing(v)]
    return [] if _missing(value) else [str(value)]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT


def _text(value: Any, limit: int | None = MAX_LIST_VALUES) -> str:
    values = _values(value)
    if isinstance(value, (float, np.floating)) and not _missing(value) and float(value).is_integer():
        values = [str(int(value))]
    if limit is not None and len(values) > limit:
        values = [*values[:limit], "…"]
    return ", ".join(values)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",.;:") + "…"
