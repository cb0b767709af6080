"""What the task builders need to know about a catalog, computed once: column kinds and item similarity.

Everything here is derived from column roles, units and value types, never from column names of one
domain, so the same builders serve films, books or products. A column's *kind* decides how conditions
on it are worded:

- ``tag``: a multi-valued column whose values are shared by many items (genres, tags): "a horror film";
- ``entity``: a multi-valued column of mostly unique values (people, brands): "with Tom Hanks";
- ``category``: a one-valued categorical column (language, country): "whose language is French";
- ``year``: a numeric column of whole years (named or described as a year): "from the 1990s";
- ``quantity``: any other numeric column, with its unit: "under 100 minutes";
- ``date``: a date column: "before 2015".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recai.data.catalog import Catalog
from recai.data.interactions import Interactions
from recai.data.schema import ColumnRole

#: A multi-valued column whose values cover at least this many items on average reads as tags.
TAG_MIN_ITEMS_PER_VALUE = 4.0
#: Unit abbreviations spelled out in some wordings ("100 min" and "100 minutes" both occur in queries).
UNIT_WORDS = {
    "min": "minutes",
    "mins": "minutes",
    "h": "hours",
    "hr": "hours",
    "hrs": "hours",
    "s": "seconds",
    "sec": "seconds",
    "ms": "milliseconds",
    "pp": "pages",
    "p": "pages",
}
_WORD = re.compile(r"[^\W\d_]{3,}")


class ColumnKind(str, Enum):
    """How conditions on a column are phrased (the module docstring gives an example of each).

    Attributes:
        TAG: a multi-valued column whose values many items share (genres).
        ENTITY: a multi-valued column of mostly unique values (people, brands).
        CATEGORY: a one-valued categorical column (language).
        YEAR: a numeric column of whole years.
        QUANTITY: any other numeric column, with its unit.
        DATE: a date column.
    """

    TAG = "tag"
    ENTITY = "entity"
    CATEGORY = "category"
    YEAR = "year"
    QUANTITY = "quantity"
    DATE = "date"


@dataclass(frozen=True)
class ColumnInfo:
    """One attribute column as the wording code sees it.

    Attributes:
        name: the catalog column.
        kind: how conditions on it are phrased.
        label: a short human name for it ("runtime").
        unit: its unit from the schema ("min"), or None.
        integer: whether its values are whole numbers (thresholds are then whole too).
        step: the round step thresholds on it move in (10 for years).
    """

    name: str
    kind: ColumnKind
    label: str
    unit: str | None = None
    integer: bool = False
    step: float = 1.0

    @property
    def unit_forms(self) -> tuple[str, ...]:
        """The unit as written in the schema and spelled out ("min", "minutes"), or nothing."""
        if not self.unit:
            return ("",)
        long = UNIT_WORDS.get(self.unit.lower())
        return (self.unit, long) if long else (self.unit,)


def nice_step(spread: float) -> float:
    """A round step (1, 2 or 5 times a power of ten) near ``spread``, for thresholds people would say."""
    if not math.isfinite(spread) or spread <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(spread))
    for factor in (1, 2, 5, 10):
        if factor * power >= spread * 0.75:
            return float(factor * power)
    return float(10 * power)


def _label(name: str, description: str | None) -> str:
    """A short human name for a column: its description when that is a short phrase, else its name."""
    if description and len(description.split()) <= 3:
        return description.strip().rstrip(".").lower()
    return name.replace("_", " ").strip().lower()


def _is_year_column(name: str, description: str | None, values: np.ndarray) -> bool:
    named = "year" in name.lower() or "year" in (description or "").lower()
    finite = values[np.isfinite(values)]
    whole = finite.size > 0 and bool(np.all(np.mod(finite, 1) == 0))
    return named and whole and bool(np.all((finite >= 1000) & (finite <= 2200)))


class CatalogProfile:
    """Column kinds, per-item attribute values and an item-to-item similarity for one catalog.

    ``log`` (optional) adds co-occurrence to the similarity, so that hard negatives can be items that
    people consume together with the positive.

    Args:
        catalog: the catalog to profile.
        log: interactions whose co-occurrences add to the similarity, or None.
        window: how many events apart two items of one sequence may be to count as co-occurring.
    """

    def __init__(self, catalog: Catalog, *, log: Interactions | None = None, window: int = 3) -> None:
        self.catalog = catalog
        self.log = log
        self.window = window
        self.columns: dict[str, ColumnInfo] = {}
        items = catalog.items
        for spec in catalog.schema.columns:
            if spec.name not in items:
                continue
            info = self._column_info(spec.name, spec.role, spec.description, spec.unit)
            if info is not None:
                self.columns[spec.name] = info
        self.text_columns = [
            s.name for s in catalog.schema.columns if s.role is ColumnRole.TEXT and s.name in items
        ]

    def _column_info(
        self, name: str, role: ColumnRole, description: str | None, unit: str | None
    ) -> ColumnInfo | None:
        label = _label(name, description)
        series = self.catalog.items[name]
        if role is ColumnRole.MULTI_CATEGORICAL:
            counts = self.catalog.column_values(name)
            if counts.empty:
                return None
            per_value = float(counts.sum()) / len(counts)
            kind = ColumnKind.TAG if per_value >= TAG_MIN_ITEMS_PER_VALUE else ColumnKind.ENTITY
            return ColumnInfo(name, kind, label)
        if role is ColumnRole.CATEGORICAL:
            if series.dropna().empty:
                return None
            return ColumnInfo(name, ColumnKind.CATEGORY, label)
        if role is ColumnRole.NUMERIC:
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                return None
            integer = bool(np.all(np.mod(finite, 1) == 0))
            if _is_year_column(name, description, values):
                return ColumnInfo(name, ColumnKind.YEAR, label, integer=True, step=10.0)
            q1, q3 = np.percentile(finite, [25, 75])
            step = nice_step((q3 - q1) / 2 if q3 > q1 else float(np.ptp(finite)) / 4)
            if integer:
                step = max(step, 1.0)
            return ColumnInfo(name, ColumnKind.QUANTITY, label, unit=unit, integer=integer, step=step)
        if role is ColumnRole.DATE:
            if series.dropna().empty:
                return None
            return ColumnInfo(name, ColumnKind.DATE, label, step=365.0)
        return None

    # ------------------------------------------------------------ values
    def values(self, position: int, column: str) -> list[Any]:
        """The non-empty values of one item in one column (a list for every role)."""
        value = self.catalog.items.iat[int(position), self.catalog.items.columns.get_loc(column)]
        if isinstance(value, (list, tuple, np.ndarray)):
            return [v for v in value if v is not None and str(v).strip()]
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return []
        if isinstance(value, str) and not value.strip():
            return []
        return [value]

    def numeric(self, column: str) -> np.ndarray:
        """A numeric or date column as floats (dates as epoch days), NaN where empty."""
        series = self.catalog.items[column]
        if self.columns[column].kind is ColumnKind.DATE:
            stamps = pd.to_datetime(series, errors="coerce")
            days = (stamps - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
            return days.to_numpy(dtype=float)
        return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)

    def of_kind(self, *kinds: ColumnKind) -> list[ColumnInfo]:
        return [c for c in self.columns.values() if c.kind in kinds]

    @cached_property
    def popularity(self) -> np.ndarray | None:
        """The catalog's popularity (its column, or interaction counts the dataset attached)."""
        return self.catalog.popularity()

    # ------------------------------------------------------------ similarity
    @cached_property
    def _attribute_matrix(self) -> sp.csr_matrix | None:
        """Items x (column, value) one-hot, IDF-weighted and L2-normalised: shared rare values count most."""
        rows: list[int] = []
        cols: list[int] = []
        vocab: dict[tuple[str, str], int] = {}
        for info in self.of_kind(ColumnKind.TAG, ColumnKind.ENTITY, ColumnKind.CATEGORY):
            for pos in range(len(self.catalog)):
                for value in self.values(pos, info.name):
                    key = (info.name, str(value))
                    rows.append(pos)
                    cols.append(vocab.setdefault(key, len(vocab)))
        if not vocab:
            return None
        return _tfidf(rows, cols, len(self.catalog), len(vocab))

    @cached_property
    def _words(self) -> list[list[str]]:
        """Per item, the lower-cased words of its long text columns, in reading order."""
        out: list[list[str]] = []
        for pos in range(len(self.catalog)):
            words: list[str] = []
            for column in self.text_columns:
                for value in self.values(pos, column):
                    words.extend(_WORD.findall(str(value).lower()))
            out.append(words)
        return out

    @cached_property
    def _text(self) -> tuple[sp.csr_matrix, dict[str, int]] | None:
        """Items x words of the long text columns (TF-IDF, L2-normalised), and the word vocabulary."""
        rows: list[int] = []
        cols: list[int] = []
        vocab: dict[str, int] = {}
        for pos, words in enumerate(self._words):
            for word in words:
                rows.append(pos)
                cols.append(vocab.setdefault(word, len(vocab)))
        if not vocab:
            return None
        return _tfidf(rows, cols, len(self.catalog), len(vocab)), vocab

    @cached_property
    def cooccurrence(self) -> sp.csr_matrix | None:
        """Symmetric counts of two items within ``window`` events of each other in one user's sequence."""
        if self.log is None or len(self.log) == 0:
            return None
        indptr, codes = self.log.sequence_arrays()
        n = len(self.catalog)
        left: list[np.ndarray] = []
        right: list[np.ndarray] = []
        users = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        for w in range(1, self.window + 1):
            same_user = users[:-w] == users[w:]
            left.append(codes[:-w][same_user])
            right.append(codes[w:][same_user])
        a = np.concatenate(left) if left else np.empty(0, np.int64)
        b = np.concatenate(right) if right else np.empty(0, np.int64)
        keep = a != b
        a, b = a[keep], b[keep]
        m = sp.coo_matrix((np.ones(len(a), dtype=np.float32), (a, b)), shape=(n, n)).tocsr()
        m = (m + m.T).tocsr()
        m.sum_duplicates()
        return m

    @cached_property
    def _cooccurrence_normalised(self) -> sp.csr_matrix | None:
        m = self.cooccurrence
        if m is None:
            return None
        degree = np.sqrt(np.asarray(m.sum(axis=1)).ravel())
        degree[degree == 0] = 1.0
        inv = sp.diags(1.0 / degree)
        return (inv @ m @ inv).tocsr()

    def similarity(self, position: int) -> np.ndarray:
        """How close every item is to ``position`` (0 to 1): the mean of attribute overlap, text overlap
        and co-occurrence, over the signals this catalog has. Hard negatives are drawn from the top."""
        signals = []
        text = self._text
        for m in (self._attribute_matrix, text[0] if text is not None else None):
            if m is not None:
                signals.append(np.asarray((m @ m[int(position)].T).todense()).ravel())
        co = self._cooccurrence_normalised
        if co is not None:
            row = np.asarray(co[int(position)].todense()).ravel()
            top = row.max()
            signals.append(row / top if top > 0 else row)
        if not signals:
            return np.zeros(len(self.catalog))
        return np.mean(signals, axis=0)

    @cached_property
    def _names(self) -> list[set[str]]:
        """Per item, the lower-cased words its long text capitalises inside a sentence: names of
        people and places, the most telling keywords ("vienna", "hobbit")."""
        out: list[set[str]] = []
        for pos in range(len(self.catalog)):
            names: set[str] = set()
            for column in self.text_columns:
                for value in self.values(pos, column):
                    for sentence in re.split(r"[.!?:;]\s+", str(value)):
                        words = sentence.split()
                        names |= {w.strip(",'\"()").lower() for w in words[1:] if w[:1].isupper()}
            out.append(names)
        return out

    @cached_property
    def rare_words(self) -> list[list[str]]:
        """Per item, the words (5+ letters) of its long text that few other items use, names first and
        then rarest first: keywords for search queries written without an LLM."""
        out: list[list[str]] = [[] for _ in range(len(self.catalog))]
        if self._text is None:
            return out
        matrix, vocab = self._text
        df = np.asarray((matrix > 0).sum(axis=0)).ravel()
        limit = max(2, int(0.01 * len(self.catalog)))
        for pos, words in enumerate(self._words):
            order = {w: i for i, w in reversed(list(enumerate(words)))}
            rare = [w for w in order if len(w) >= 5 and df[vocab[w]] <= limit]
            names = self._names[pos]
            out[pos] = sorted(rare, key=lambda w: (w not in names, int(df[vocab[w]]), order[w]))
        return out


def _tfidf(rows: list[int], cols: list[int], n_rows: int, n_cols: int) -> sp.csr_matrix:
    m = sp.coo_matrix((np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(n_rows, n_cols)).tocsr()
    m.sum_duplicates()
    m.data = np.minimum(m.data, 1.0)
    df = np.asarray(m.sum(axis=0)).ravel()
    idf = np.log((1.0 + n_rows) / (1.0 + df)) + 1.0
    m = (m @ sp.diags(idf)).tocsr()
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return (sp.diags(1.0 / norms) @ m).tocsr()
