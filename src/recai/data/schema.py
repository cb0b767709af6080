"""Column roles for an item table: what each column means to recai.

Every column of a catalog gets exactly one role. Roles drive everything downstream: which column is the
id and the title, what text an embedder sees, which columns the SQL filter may treat as lists, which
numeric ranges the schema card shows to an LLM planner.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from recai.data.atomic import write_text_atomic
from recai.data.errors import DataError, first_flagged, plain_value


class ColumnRole(str, Enum):
    """What a catalog column means, so models, prompts and SQL treat it right without knowing the data.

    Attributes:
        ID: The item id (exactly one column).
        TITLE: The item's name (exactly one column).
        TEXT: Free text (descriptions, plots).
        CATEGORICAL: One value from a small set (a language).
        MULTI_CATEGORICAL: Several values from a set (genres).
        NUMERIC: A number (a year, a runtime).
        DATE: A date.
        POPULARITY: An interaction count the data brings (at most one column).
        IGNORE: Kept out of the catalog.
    """

    ID = "id"
    TITLE = "title"
    TEXT = "text"
    CATEGORICAL = "categorical"
    MULTI_CATEGORICAL = "multi_categorical"
    NUMERIC = "numeric"
    DATE = "date"
    POPULARITY = "popularity"
    IGNORE = "ignore"


class ColumnSpec(BaseModel):
    """One column: its name, role and, for text imports, how a multi-valued cell is separated.

    Attributes:
        name: The column's name.
        role: What it means.
        separator: See the field's description (likewise ``description``, ``unit`` and
            ``from_interactions``).
    """

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    name: str
    role: ColumnRole
    separator: str | None = Field(
        default=None, description="For multi_categorical columns stored as text: the value separator."
    )
    description: str | None = Field(default=None, description="A short human description for prompts.")
    unit: str | None = Field(
        default=None, description="Unit of a numeric column, shown after values (min, EUR)."
    )
    from_interactions: bool = Field(
        default=False,
        description=(
            "Derived from user activity (user-written tags, review counts): it may reflect held-out "
            "events, so knowledge extractors leave it out unless it is named explicitly."
        ),
    )

    @model_validator(mode="after")
    def _separator_only_for_lists(self) -> ColumnSpec:
        if self.separator is not None and self.role is not ColumnRole.MULTI_CATEGORICAL:
            raise ValueError(f"column '{self.name}': 'separator' only applies to multi_categorical columns")
        return self


class CatalogSchema(BaseModel):
    """The roles of all catalog columns, loaded from and saved to ``schema.yaml``.

    Attributes:
        version: The file format's version.
        columns: Every column's spec, in table order.
        text_columns: See the field's description (likewise ``noun``).
    """

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    columns: list[ColumnSpec]
    text_columns: list[str] | None = Field(
        default=None,
        description="Columns rendered into item text, in order (default: every column but id and ignored).",
    )
    noun: str | None = Field(
        default=None,
        description="What the items are called, plural (films, artists, books): prompts and replies use it.",
    )

    @model_validator(mode="after")
    def _check_roles(self) -> CatalogSchema:
        if self.noun is not None and not _NOUN.match(self.noun):
            raise ValueError(f"noun {self.noun!r} must be a short plural word or two (letters, spaces, '-')")
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate column names: {dupes}")
        for role in (ColumnRole.ID, ColumnRole.TITLE):
            count = sum(c.role is role for c in self.columns)
            if count != 1:
                raise ValueError(f"exactly one column must have role '{role.value}', found {count}")
        pops = sum(c.role is ColumnRole.POPULARITY for c in self.columns)
        if pops > 1:
            raise ValueError(f"at most one column may have role 'popularity', found {pops}")
        if self.text_columns is not None:
            unknown = [c for c in self.text_columns if c not in names]
            if unknown:
                raise ValueError(f"text_columns names unknown columns: {unknown}")
            ignored = [
                c.name for c in self.columns if c.role is ColumnRole.IGNORE and c.name in self.text_columns
            ]
            if ignored:
                raise ValueError(f"text_columns names ignored columns: {ignored}")
        return self

    # ----------------------------------------------------------------- access
    def column(self, name: str) -> ColumnSpec:
        """The spec of column ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"no column '{name}' in the schema (columns: {[c.name for c in self.columns]})")

    def by_role(self, role: ColumnRole | str) -> list[str]:
        """Names of the columns with ``role``, in schema order."""
        role = ColumnRole(role)
        return [c.name for c in self.columns if c.role is role]

    @property
    def id_column(self) -> str:
        return self.by_role(ColumnRole.ID)[0]

    @property
    def title_column(self) -> str:
        return self.by_role(ColumnRole.TITLE)[0]

    @property
    def popularity_column(self) -> str | None:
        pops = self.by_role(ColumnRole.POPULARITY)
        return pops[0] if pops else None

    @property
    def kept_columns(self) -> list[str]:
        """Every column that is not ignored, in schema order."""
        return [c.name for c in self.columns if c.role is not ColumnRole.IGNORE]

    def rendered_columns(self) -> list[str]:
        """The columns that make up an item's text, in order."""
        if self.text_columns is not None:
            return list(self.text_columns)
        return [c.name for c in self.columns if c.role not in (ColumnRole.ID, ColumnRole.IGNORE)]

    # -------------------------------------------------------------------- I/O
    @classmethod
    def from_dict(cls, data: Any, *, source: str | Path | None = None) -> CatalogSchema:
        """Validate a parsed YAML mapping, turning pydantic errors into a :class:`DataError`."""
        if not isinstance(data, dict):
            raise DataError("a schema must be a mapping with a 'columns' list", path=source)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            field = loc or None
            if (
                first["loc"][:1] == ("columns",)
                and len(first["loc"]) > 1
                and isinstance(first["loc"][1], int)
            ):
                cols = data.get("columns") or []
                idx = first["loc"][1]
                if idx < len(cols) and isinstance(cols[idx], dict) and "name" in cols[idx]:
                    field = f"columns[{idx}] ({cols[idx]['name']})" + (
                        f".{'.'.join(str(p) for p in first['loc'][2:])}" if len(first["loc"]) > 2 else ""
                    )
            raise DataError(first["msg"], path=source, field=field) from None

    @classmethod
    def load(cls, path: str | Path) -> CatalogSchema:
        """Read ``schema.yaml``; unknown keys are errors (a typo must not be silently ignored)."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise DataError(f"invalid YAML: {exc}", path=path, line=mark.line + 1 if mark else None) from None
        return cls.from_dict(data, source=path)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version, "columns": []}
        for c in self.columns:
            entry: dict[str, Any] = {"name": c.name, "role": c.role.value}
            if c.separator is not None:
                entry["separator"] = c.separator
            if c.description:
                entry["description"] = c.description
            if c.unit:
                entry["unit"] = c.unit
            if c.from_interactions:
                entry["from_interactions"] = True
            out["columns"].append(entry)
        if self.text_columns is not None:
            out["text_columns"] = list(self.text_columns)
        if self.noun is not None:
            out["noun"] = self.noun
        return out

    def save(self, path: str | Path) -> None:
        write_text_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    # -------------------------------------------------------------- checking
    def validate_frame(self, frame: pd.DataFrame, *, source: str | Path | None = None) -> None:
        """Check that ``frame`` has every schema column and that ids are present and unique."""
        missing = [c.name for c in self.columns if c.role is not ColumnRole.IGNORE and c.name not in frame]
        if missing:
            raise DataError(
                f"missing column(s) {missing}; the file has {list(frame.columns)}",
                path=source,
                field=missing[0],
            )
        titles = frame[self.title_column]
        empty = titles.isna() | (titles.astype(str).str.strip() == "")
        row = first_flagged(empty)
        if row is not None:
            raise DataError(
                f"empty title ({int(empty.sum())} items have none); give every item a title or choose "
                "another title column",
                path=source,
                line=row + 2,
                field=self.title_column,
            )
        ids = frame[self.id_column]
        row = first_flagged(ids.isna())
        if row is not None:
            raise DataError("empty item id", path=source, line=row + 2, field=self.id_column)
        row = first_flagged(ids.duplicated(keep="first"))
        if row is not None:
            raise DataError(
                f"duplicate item id {plain_value(ids.iloc[row])!r} (first seen on line "
                f"{int(np.flatnonzero((ids == ids.iloc[row]).to_numpy())[0]) + 2})",
                path=source,
                line=row + 2,
                field=self.id_column,
            )

    # ------------------------------------------------------------- inference
    @classmethod
    def infer(
        cls, frame: pd.DataFrame, *, forced: dict[str, ColumnRole] | None = None
    ) -> tuple[CatalogSchema, list[tuple[str, str, str]]]:
        """Guess a role for each column; returns the schema and (column, role, reason) rows to show.

        The guesses are heuristics a user should read and correct, which is why the reasons come back.
        ``forced`` gives roles the user already chose (the id and title columns, derived columns).
        """
        forced = dict(forced or {})
        rows: list[tuple[str, str, str]] = []
        specs: list[ColumnSpec] = []
        n = max(len(frame), 1)
        id_col = next((c for c, r in forced.items() if r is ColumnRole.ID), None) or _guess_id(frame)
        title_col = next((c for c, r in forced.items() if r is ColumnRole.TITLE), None) or _guess_title(
            frame, exclude={id_col}
        )
        pop_col = _guess_popularity(frame, exclude={id_col, title_col, *forced})
        for name in frame.columns:
            s = frame[name]
            if name in forced and name not in (id_col, title_col):
                role, sep, why = forced[name], None, "given in the spec"
            else:
                role, sep, why = _guess_role(name, s, n, id_col, title_col, pop_col)
                if name in forced:
                    why = "given in the spec"
            specs.append(ColumnSpec(name=name, role=role, separator=sep))
            rows.append((name, role.value, why))
        return cls(columns=specs), rows


_NOUN = re.compile(r"^[A-Za-z][A-Za-z -]{0,39}$")
_ID_NAMES = re.compile(r"^(item_?id|itemid|id|movie_?id|book_?id|product_?id|asin|sku)$", re.I)
_EXACT_TITLE_NAMES = (
    "title",
    "name",
    "item_title",
    "item_name",
    "product_title",
    "product_name",
    "movie_title",
)
_TITLE_NAMES = re.compile(r"(title|name)", re.I)
# Most specific first: "ratings_count" is popularity, "books_count" (editions) only a last resort.
_POP_PATTERNS = [
    re.compile(p, re.I)
    for p in (
        r"^popularity$",
        r"^(num|n)_?(ratings|reviews|interactions|votes)$|^(ratings|reviews|votes|interactions)_?count$",
        r"popularity|votes|views|ratings_?count|reviews_?count",
    )
]
_LIST_SEPARATORS = ("|", ";")


def _guess_id(frame: pd.DataFrame) -> str:
    for name in frame.columns:
        if _ID_NAMES.match(str(name)) and frame[name].is_unique and not frame[name].isna().any():
            return str(name)
    for name in frame.columns:
        if frame[name].is_unique and not frame[name].isna().any():
            return str(name)
    raise DataError(f"no column has unique, non-empty values to serve as the item id: {list(frame.columns)}")


def _guess_title(frame: pd.DataFrame, exclude: set[str]) -> str:
    """Prefer a column named exactly like a title, then one containing 'title'/'name'; among equals,
    the one with fewest empty values (goodbooks has both 'title' and a sparse 'original_title')."""
    strings = [str(c) for c in frame.columns if c not in exclude and _is_string(frame[c])]

    def empties(name: str) -> int:
        col = frame[name]
        return int((col.isna() | (col.astype(str).str.strip() == "")).sum())

    for group in (
        [c for c in strings if c.lower() in _EXACT_TITLE_NAMES],
        [c for c in strings if _TITLE_NAMES.search(c)],
        strings,
    ):
        if group:
            return min(group, key=lambda c: (empties(c), strings.index(c)))
    raise DataError(f"no text column can serve as the item title: {list(frame.columns)}")


def _guess_popularity(frame: pd.DataFrame, exclude: set[str]) -> str | None:
    numeric = [
        str(c)
        for c in frame.columns
        if c not in exclude
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
        and (frame[c].dropna() >= 0).all()
    ]
    for pattern in _POP_PATTERNS:
        for name in numeric:
            if pattern.search(name):
                return name
    return None


def _is_string(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s) or s.dtype == object


def _guess_role(
    name: str, s: pd.Series, n: int, id_col: str, title_col: str, pop_col: str | None
) -> tuple[ColumnRole, str | None, str]:
    if name == id_col:
        return ColumnRole.ID, None, "unique, non-empty values"
    if name == title_col:
        return ColumnRole.TITLE, None, "text column named most like a title, with fewest empty values"
    non_null = s.dropna()
    if non_null.empty:
        return ColumnRole.IGNORE, None, "always empty"
    if pd.api.types.is_datetime64_any_dtype(s):
        return ColumnRole.DATE, None, "datetime values"
    if pd.api.types.is_bool_dtype(s):
        return ColumnRole.CATEGORICAL, None, "boolean values"
    if pd.api.types.is_numeric_dtype(s):
        if name == pop_col:
            return ColumnRole.POPULARITY, None, "non-negative counts named like popularity"
        return ColumnRole.NUMERIC, None, "numbers"
    if non_null.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).all():
        return ColumnRole.MULTI_CATEGORICAL, None, "list values"
    text = non_null.astype(str)
    for sep in _LIST_SEPARATORS:
        share = text.str.contains(sep, regex=False).mean()
        if share >= 0.2 and text.str.len().mean() < 120:
            return ColumnRole.MULTI_CATEGORICAL, sep, f"{share:.0%} of values contain '{sep}'"
    if re.search(r"(date|time|released?)$", name, re.I):
        parsed = pd.to_datetime(text.head(200), errors="coerce", format="mixed")
        if parsed.notna().mean() > 0.9:
            return ColumnRole.DATE, None, "named like a date and parses as one"
    if text.str.match(r"^(https?|ftp)://").mean() > 0.9:
        return ColumnRole.IGNORE, None, "links (not useful as item text)"
    mean_len = text.str.len().mean()
    if mean_len > 60:
        return ColumnRole.TEXT, None, f"long free text (mean {mean_len:.0f} characters)"
    unique = text.nunique()
    if unique <= max(50, int(0.5 * n)):
        return ColumnRole.CATEGORICAL, None, f"{unique} distinct values"
    return ColumnRole.TEXT, None, f"{unique} distinct short texts"
