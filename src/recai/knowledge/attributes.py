"""Item attributes from the catalog schema: what each candidate is, and what it shares with the history.

The columns are the catalog's categorical and multi-valued categorical columns (genres, director,
actors, language, tags...) plus a ``decade`` derived from a year column (``year`` or ``release_year``,
else the first date column). A value shared by few items says more than one shared by many, so each
value is weighted by its inverse document frequency over the catalog (no interactions are involved,
so nothing can leak from the evaluated events).

Facts:
- ``profile`` (one per sample): the values that recur in the user's history ("mostly Crime, 12 of 20");
- ``item_attributes`` (one per candidate): the candidate's values, and the ones it shares with the
  history with the history items that have them. Each shared value weighs
  ``idf * (1 + log(items sharing it)) / (1 + log(history length))``, and the strength is
  ``1 - exp(-sum of the weights)``: it grows with the rarity and the number of shared values. The
  anchor is the most recent history item sharing the strongest value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recai.data.catalog import Catalog
from recai.data.interactions import Interactions
from recai.data.schema import ColumnRole
from recai.knowledge.base import Extractor
from recai.knowledge.facts import Fact, Query

DECADE = "decade"
_YEAR_NAMES = ("year", "release_year")


def attribute_columns(
    catalog: Catalog, columns: Sequence[str] | None = None, exclude: Sequence[str] = ()
) -> list[str]:
    """The catalog columns used as attributes: ``columns`` when given (each must be categorical or
    multi-valued categorical), else every such column that is not ``from_interactions`` (user tags can
    come from the very events held out for evaluation), minus ``exclude``."""
    schema = catalog.schema
    usable = [
        c.name
        for c in schema.columns
        if c.role in (ColumnRole.CATEGORICAL, ColumnRole.MULTI_CATEGORICAL) and c.name in catalog.items
    ]
    if columns is None:
        derived = {c.name for c in schema.columns if c.from_interactions}
        usable = [name for name in usable if name not in derived]
    else:
        for name in columns:
            if name not in usable:
                raise ValueError(
                    f"attribute column '{name}' is not a categorical column of the catalog "
                    f"(usable: {', '.join(usable) or 'none'})"
                )
        usable = list(columns)
    unknown = [name for name in exclude if name not in [c.name for c in schema.columns] and name != DECADE]
    if unknown:
        raise ValueError(
            f"exclude names unknown column(s) {unknown} (columns: {[c.name for c in schema.columns]})"
        )
    return [name for name in usable if name not in exclude]


def year_column(catalog: Catalog) -> str | None:
    """The column a decade is derived from: a numeric year column, else the first date column."""
    for spec in catalog.schema.columns:
        if spec.name in _YEAR_NAMES and spec.role is ColumnRole.NUMERIC and spec.name in catalog.items:
            return spec.name
    for spec in catalog.schema.columns:
        if spec.role is ColumnRole.DATE and spec.name in catalog.items:
            return spec.name
    return None


def decade_of(value: Any) -> str | None:
    """'1990s' for 1994 or a 1994 date; None for a missing value."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    year = value.year if isinstance(value, pd.Timestamp) else int(float(value))
    return f"{year // 10 * 10}s"


def item_values(catalog: Catalog, position: int, column: str, year_col: str | None) -> list[str]:
    """An item's values for ``column`` in catalog order (``decade`` derived from ``year_col``)."""
    if column == DECADE:
        if year_col is None:
            return []
        decade = decade_of(catalog.items[year_col].iat[position])
        return [decade] if decade else []
    value = catalog.items[column].iat[position]
    if isinstance(value, list | tuple | np.ndarray):
        return [str(v) for v in value if v is not None and str(v) != ""]
    if value is None or (not isinstance(value, str) and pd.isna(value)) or str(value) == "":
        return []
    return [str(value)]


@dataclass
class ValueTable:
    """Items x attribute values (binary), with each value's column, text and rarity: what the attribute
    and graph extractors both build their facts from.

    Attributes:
        matrix: items x values, 1 where the item has the value.
        columns: the catalog column of each value.
        names: the text of each value.
        idf: each value's rarity, ``log((n+1)/(df+1)) / log(n+1)``, in [0, 1).
    """

    matrix: sp.csr_matrix
    columns: np.ndarray
    names: np.ndarray
    idf: np.ndarray

    @classmethod
    def build(cls, catalog: Catalog, columns: Sequence[str], *, decades: bool) -> ValueTable:
        year_col = year_column(catalog) if decades else None
        use = list(columns) + ([DECADE] if year_col is not None else [])
        vocab: dict[tuple[str, str], int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for column in use:
            for position in range(len(catalog)):
                for value in dict.fromkeys(item_values(catalog, position, column, year_col)):
                    index = vocab.setdefault((column, value), len(vocab))
                    rows.append(position)
                    cols.append(index)
        matrix = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(catalog), len(vocab))
        )
        matrix.sum_duplicates()
        keys = list(vocab)
        df = np.asarray(matrix.sum(axis=0)).ravel()
        n = len(catalog)
        idf = np.log((n + 1) / (df + 1)) / math.log(n + 1) if n > 0 else np.zeros(len(keys))
        return cls(
            matrix,
            np.asarray([k[0] for k in keys], dtype=str),
            np.asarray([k[1] for k in keys], dtype=str),
            idf.astype(np.float64),
        )

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        m = self.matrix
        return {
            f"{prefix}indices": m.indices,
            f"{prefix}indptr": m.indptr,
            f"{prefix}shape": np.asarray(m.shape),
            f"{prefix}columns": self.columns,
            f"{prefix}names": self.names,
            f"{prefix}idf": self.idf,
        }

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], prefix: str) -> ValueTable:
        indices = state[f"{prefix}indices"]
        matrix = sp.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, state[f"{prefix}indptr"]),
            shape=tuple(int(x) for x in state[f"{prefix}shape"]),
        )
        return cls(matrix, state[f"{prefix}columns"], state[f"{prefix}names"], state[f"{prefix}idf"])


class AttributeExtractor(Extractor):
    """Candidates' attributes and the values they share with the history: content knowledge, which
    needs no interactions and so works for items nobody has seen yet (module docstring).

    Args:
        columns: the catalog columns to use (None: every categorical one).
        exclude: columns to leave out of that default.
        decades: add a ``decade`` value derived from a year or date column.
        max_values: values listed per column for a candidate.
        max_shared: shared values per fact.
        profile: give each sample a profile fact (the values that recur in the history).
        profile_values: recurring values per column in the profile.
        min_profile_count: history items a value needs to be in the profile.
    """

    kind = "attributes"

    def __init__(
        self,
        *,
        columns: list[str] | None = None,
        exclude: list[str] | None = None,
        decades: bool = True,
        max_values: int = 3,
        max_shared: int = 3,
        profile: bool = True,
        profile_values: int = 2,
        min_profile_count: int = 2,
    ) -> None:
        if max_values < 1 or max_shared < 1 or profile_values < 1:
            raise ValueError("max_values, max_shared and profile_values must be at least 1")
        super().__init__(locals())
        self.columns_: list[str] = []
        self.table_: ValueTable | None = None
        self.year_column_: str | None = None

    def _fit(self, catalog: Catalog, train: Interactions, model: Any) -> None:
        self.columns_ = attribute_columns(catalog, self.columns, self.exclude or ())
        self.table_ = ValueTable.build(catalog, self.columns_, decades=self.decades)
        self.year_column_ = year_column(catalog) if self.decades else None

    def _facts(self, query: Query) -> list[Fact]:
        assert self.table_ is not None and self.catalog_ is not None
        table = self.table_
        history = query.distinct_history()  # most recent first
        facts: list[Fact] = []
        hist_values = table.matrix[history] if len(history) else None
        if self.profile and hist_values is not None:
            profile = self._profile(hist_values, len(history))
            if profile:
                facts.append(
                    Fact("attributes", "profile", 1.0, values={"values": profile, "of": len(history)})
                )
        for candidate in query.candidates:
            row = table.matrix[candidate]
            shared: list[tuple[float, int, list[int]]] = []
            if hist_values is not None:
                has = hist_values[:, row.indices].toarray().astype(bool)  # history x candidate values
                scale = 1.0 + math.log(len(history))
                for j, value in enumerate(row.indices):
                    anchors = history[has[:, j]].tolist()
                    if anchors:
                        weight = float(table.idf[value]) * (1.0 + math.log(len(anchors))) / scale
                        shared.append((weight, int(value), anchors))
            shared.sort(key=lambda s: (-s[0], s[1]))
            total = sum(s[0] for s in shared)
            strength = 1.0 - math.exp(-total) if shared else 0.02  # a bare attribute list fills leftovers
            facts.append(
                Fact(
                    "attributes",
                    "item_attributes",
                    strength,
                    candidate=int(candidate),
                    anchor=shared[0][2][0] if shared else None,
                    values={
                        "attributes": self._listed(int(candidate)),
                        "shared": [
                            {
                                "column": str(table.columns[v]),
                                "value": str(table.names[v]),
                                "anchors": anchors[:2],
                                "count": len(anchors),
                            }
                            for _, v, anchors in shared[: self.max_shared]
                        ],
                    },
                )
            )
        return facts

    def _profile(self, hist_values: sp.csr_matrix, n: int) -> list[dict[str, Any]]:
        assert self.table_ is not None
        table = self.table_
        counts = np.asarray(hist_values.sum(axis=0)).ravel()
        out: list[dict[str, Any]] = []
        for column in [*self.columns_, DECADE]:
            idx = np.flatnonzero((table.columns == column) & (counts >= self.min_profile_count))
            if not len(idx):
                continue
            order = np.lexsort((table.names[idx], -table.idf[idx], -counts[idx]))[: self.profile_values]
            out.extend(
                {"column": column, "value": str(table.names[v]), "count": int(counts[v])} for v in idx[order]
            )
        return out

    def _listed(self, position: int) -> dict[str, list[str]]:
        """The candidate's values per column, at most ``max_values`` each, in catalog order."""
        assert self.catalog_ is not None
        out: dict[str, list[str]] = {}
        for column in [*self.columns_, DECADE]:
            values = item_values(self.catalog_, position, column, self.year_column_)[: self.max_values]
            if values:
                out[column] = values
        return out

    def _n_items(self) -> int | None:
        return None if self.table_ is None else self.table_.matrix.shape[0]

    def _state(self) -> dict[str, np.ndarray]:
        assert self.table_ is not None
        return {
            **self.table_.state("values_"),
            "columns": np.asarray(self.columns_, dtype=str),
            "year_column": np.asarray(self.year_column_ or "", dtype=str),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.table_ = ValueTable.from_state(state, "values_")
        self.columns_ = [str(c) for c in state["columns"].tolist()]
        self.year_column_ = str(state["year_column"]) or None
