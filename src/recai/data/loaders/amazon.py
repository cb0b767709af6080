"""Loaders for the Amazon review datasets (McAuley et al.) and their common preprocessed forms.

- 2014 per-category ratings: ``ratings_<Category>.csv``, no header, columns (user, item, rating, time).
- 2018 per-category ratings: ``<Category>.csv``, no header, columns (item, user, rating, time): the
  order of user and item differs from 2014, so the version is a required choice, not a guess.
- Metadata: ``meta_<Category>.json(.gz)``, one object per line; the 2014 files are Python literals
  (single quotes), the 2018 files strict JSON. Both are read.
- ICLRec/S3Rec-style sequence files (``Beauty.txt``: ``user item1 item2 ...`` in time order, no text).
"""

from __future__ import annotations

import ast
import gzip
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recai.data.catalog import Catalog
from recai.data.dataset import Dataset
from recai.data.errors import DataError
from recai.data.interactions import Interactions
from recai.data.loaders.reading import read_delimited
from recai.data.schema import CatalogSchema, ColumnRole, ColumnSpec

_PRICE = re.compile(r"^\s*(?:[$€£¥]|US\$|EUR|USD)?\s*(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*$")
_HTML = re.compile(r"<[^>]+>")


def _open_text(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        yield from fh


def read_metadata(path: str | Path) -> pd.DataFrame:
    """Read an Amazon metadata file (JSON lines or Python-literal lines, optionally gzipped)."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", path=path)
    records: list[dict[str, Any]] = []
    try:
        for lineno, line in enumerate(_open_text(path), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                try:
                    obj = ast.literal_eval(line)
                except (ValueError, SyntaxError):
                    raise DataError("neither JSON nor a Python literal", path=path, line=lineno) from None
            if not isinstance(obj, dict) or "asin" not in obj:
                raise DataError(
                    "each line must be an object with an 'asin'", path=path, line=lineno, field="asin"
                )
            records.append(obj)
    except UnicodeDecodeError as exc:
        raise DataError(f"cannot decode as UTF-8: {exc.reason}", path=path) from None
    return pd.DataFrame.from_records(records)


def _categories(value: Any) -> list[str]:
    """2014: list of category paths; 2018: one flat path. Keep the distinct names, root excluded."""
    if not isinstance(value, list):
        return []
    paths = value if value and isinstance(value[0], list) else [value]
    out: list[str] = []
    for p in paths:
        for name in p[1:] if len(p) > 1 else p:
            name = html.unescape(_HTML.sub("", str(name))).strip()
            if name and name not in out:
                out.append(name)
    return out


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = html.unescape(_HTML.sub(" ", str(value)))
    text = re.sub(r"\s+", " ", text).strip()
    return text or None


def _price(value: Any) -> float:
    """A price like 4.5, "$4.50" or "$1,299.00"; anything else (ranges, page markup) is unknown."""
    if isinstance(value, (int, float)):
        return float(value)
    m = _PRICE.match(str(value or ""))
    return float(m.group(1).replace(",", "") + (m.group(2) or "")) if m else float("nan")


def load_amazon(
    ratings_path: str | Path,
    meta_path: str | Path | None = None,
    *,
    version: int,
    name: str | None = None,
    keep_items_without_metadata: bool = False,
) -> Dataset:
    """An Amazon category from its ratings CSV and (optionally) its metadata file.

    Items with no title in the metadata are dropped with their interactions (the count is recorded in
    ``meta``), unless ``keep_items_without_metadata`` is set, in which case the ASIN stands in as title.
    """
    ratings_path = Path(ratings_path)
    if version == 2014:
        names = ["user", "item", "rating", "timestamp"]
    elif version == 2018:
        names = ["item", "user", "rating", "timestamp"]
    else:
        raise ValueError("version must be 2014 or 2018")
    ratings = read_delimited(
        ratings_path,
        sep=",",
        names=names,
        dtype={"user": "str", "item": "str", "rating": "float64", "timestamp": "int64"},
    )
    asins = pd.unique(ratings["item"])
    items = pd.DataFrame({"item_id": asins})
    dropped = 0
    if meta_path is not None:
        meta = read_metadata(meta_path).drop_duplicates("asin").set_index("asin")
        meta = meta.reindex(asins)
        items["title"] = meta["title"].map(_text).to_numpy() if "title" in meta else None
        if "brand" in meta:
            items["brand"] = meta["brand"].map(_text).to_numpy()
        cat_col = "categories" if "categories" in meta else "category" if "category" in meta else None
        items["categories"] = meta[cat_col].map(_categories).to_numpy() if cat_col else [[] for _ in asins]
        items["price"] = meta["price"].map(_price).to_numpy() if "price" in meta else np.nan
        items["description"] = meta["description"].map(_text).to_numpy() if "description" in meta else None
    else:
        items["title"] = None
    no_title = items["title"].isna()
    if no_title.any():
        if keep_items_without_metadata or meta_path is None:
            items.loc[no_title, "title"] = items.loc[no_title, "item_id"]
        else:
            dropped = int(no_title.sum())
            keep = set(items.loc[~no_title, "item_id"])
            items = items[~no_title].reset_index(drop=True)
            ratings = ratings[ratings["item"].isin(keep)]
    columns = [
        ColumnSpec(name="item_id", role=ColumnRole.ID),
        ColumnSpec(name="title", role=ColumnRole.TITLE),
    ]
    if "brand" in items:
        columns.append(ColumnSpec(name="brand", role=ColumnRole.CATEGORICAL))
    if "categories" in items:
        columns.append(ColumnSpec(name="categories", role=ColumnRole.MULTI_CATEGORICAL))
    if "price" in items:
        columns.append(ColumnSpec(name="price", role=ColumnRole.NUMERIC))
    if "description" in items:
        columns.append(ColumnSpec(name="description", role=ColumnRole.TEXT))
    catalog = Catalog(items[[c.name for c in columns]], CatalogSchema(columns=columns), source=meta_path)
    frame = ratings.rename(columns={"user": "user_id", "item": "item_id"})
    interactions = Interactions(frame, catalog.ids, source=str(ratings_path))
    return Dataset(
        name=name or ratings_path.stem.removeprefix("ratings_"),
        catalog=catalog,
        interactions=interactions,
        meta={
            "source": str(ratings_path),
            "format": f"amazon-{version}",
            "items_dropped_without_title": dropped,
        },
    )


def load_sequence_file(path: str | Path, *, name: str | None = None) -> Dataset:
    """A ``user item1 item2 ...`` file (ICLRec / S3Rec preprocessing). Items have no text; time is
    the position in the line, which preserves order but not real time."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", path=path)
    users: list[str] = []
    items: list[str] = []
    times: list[int] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise DataError("a line needs a user and at least one item", path=path, line=lineno)
            users.extend([parts[0]] * (len(parts) - 1))
            items.extend(parts[1:])
            times.extend(range(len(parts) - 1))
    ids = sorted(set(items), key=lambda s: (len(s), s))
    catalog = Catalog(
        pd.DataFrame({"item_id": ids, "title": [f"item {i}" for i in ids]}),
        CatalogSchema(
            columns=[
                ColumnSpec(name="item_id", role=ColumnRole.ID),
                ColumnSpec(name="title", role=ColumnRole.TITLE),
            ]
        ),
        source=path,
    )
    frame = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": np.asarray(times, dtype=np.int64)})
    return Dataset(
        name=name or path.stem,
        catalog=catalog,
        # positions keep each user's order but are not times: an untimed log, so nothing shows them as dates
        interactions=Interactions(frame, catalog.ids, source=str(path), timed=False),
        meta={"source": str(path), "format": "sequence-lines", "note": "no timestamps: events in line order"},
    )
