"""The generic importer: any CSV / TSV / Parquet / JSON-lines item table and event log, described by a
small YAML spec. This is the path most users take to bring their own catalog into recai.

Spec (paths are relative to the spec file; every key but the column names is optional)::

    name: my-shop
    items:
      path: items.csv
      encoding: utf-8
      columns:                       # omit to infer roles (they are printed for review)
        - {name: sku, role: id}
        - {name: name, role: title}
        - {name: tags, role: multi_categorical, separator: ";"}
        - {name: price, role: numeric, description: price in EUR}
    interactions:
      path: events.csv
      user: customer_id
      item: sku
      timestamp: ts
      timestamp_format: auto          # auto | unix | unix_ms | iso
      rating: stars
      min_rating: 4
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from recai.data.catalog import Catalog
from recai.data.dataset import Dataset
from recai.data.errors import DataError, plain_value
from recai.data.interactions import Interactions
from recai.data.loaders.reading import check_encoding, read_delimited
from recai.data.schema import CatalogSchema, ColumnSpec


class ItemsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str | None = None
    encoding: str = "utf-8"
    columns: list[ColumnSpec] | None = None
    text_columns: list[str] | None = None


class InteractionsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str | None = None
    encoding: str = "utf-8"
    user: str = "user_id"
    item: str = "item_id"
    timestamp: str | None = "timestamp"
    timestamp_format: str = "auto"
    rating: str | None = None
    min_rating: float | None = None


class ImportSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    items: ItemsSpec = ItemsSpec()
    interactions: InteractionsSpec | None = None


def read_spec(path: str | Path) -> ImportSpec:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise DataError("schema file not found", path=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(f"invalid YAML: {exc}", path=path, line=mark.line + 1 if mark else None) from None
    if isinstance(data, dict) and "columns" in data and "items" not in data:
        data = {"items": {k: data.pop(k) for k in list(data) if k in ("columns", "text_columns")}, **data}
        data.pop("version", None)
    try:
        return ImportSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DataError(first["msg"], path=path, field=".".join(str(p) for p in first["loc"])) from None


def read_table(path: str | Path, *, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV, TSV, Parquet or JSON-lines file, chosen by extension."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", path=path)
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return pd.read_parquet(path)
    if ".jsonl" in suffixes or ".ndjson" in suffixes or ".json" in suffixes:
        return _read_json_lines(path, encoding)
    sep = "\t" if ".tsv" in suffixes or ".tab" in suffixes else ","
    return _infer_types(read_delimited(path, sep=sep, header=True, encoding=encoding, dtype=str))


_LEADING_ZERO = re.compile(r"^[+-]?0\d")


def _infer_types(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn text columns that are wholly numeric into numbers, except codes with leading zeros
    ("007", zip codes), which are identities and stay text."""
    out = frame.copy()
    for name in out.columns:
        col = out[name]
        values = col.dropna().astype(str).str.strip()
        if values.empty or values.str.match(_LEADING_ZERO).any():
            continue
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().all():
            converted = pd.to_numeric(col, errors="coerce")
            as_int = converted.dropna()
            if (as_int == as_int.round()).all() and not values.str.contains(r"[.eE]").any():
                converted = converted.astype("Int64") if converted.isna().any() else converted.astype("int64")
            out[name] = converted
    return out


def _read_json_lines(path: Path, encoding: str) -> pd.DataFrame:
    """One JSON object per line. Values keep their JSON types: no date guessing, "007" stays text."""
    check_encoding(path, encoding)
    records = []
    with path.open(encoding=encoding) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", path=path, line=lineno) from None
            if not isinstance(obj, dict):
                raise DataError("each line must be a JSON object", path=path, line=lineno)
            records.append(obj)
    return pd.DataFrame.from_records(records)


def _timestamps(values: pd.Series, fmt: str, source: Path, field: str) -> pd.Series:
    """Event times as UTC datetimes or (possibly fractional) epoch seconds, for Interactions to order
    at full precision before it keeps whole seconds."""
    if fmt not in ("auto", "unix", "unix_ms", "iso"):
        raise DataError(
            f"unknown timestamp_format '{fmt}' (auto, unix, unix_ms, iso)", path=source, field=field
        )
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    numeric = pd.to_numeric(values, errors="coerce")
    if fmt in ("unix", "unix_ms") or (fmt == "auto" and numeric.notna().all()):
        if numeric.isna().any():
            row = int(np.flatnonzero(numeric.isna().to_numpy())[0])
            raise DataError(f"not a number: {values.iloc[row]!r}", path=source, line=row + 2, field=field)
        seconds = numeric.astype("float64")
        if fmt == "unix_ms" or (fmt == "auto" and seconds.abs().max() > 1e11):
            seconds = seconds / 1000.0
        return seconds
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise DataError(f"not a date or time: {values.iloc[row]!r}", path=source, line=row + 2, field=field)
    return parsed


def import_tabular(
    spec_path: str | Path | None = None,
    *,
    items_path: str | Path | None = None,
    interactions_path: str | Path | None = None,
    name: str | None = None,
) -> tuple[Dataset, list[tuple[str, str, str]] | None]:
    """Build a Dataset from files; returns it with the inferred roles (or None when the spec gave them)."""
    spec = read_spec(spec_path) if spec_path is not None else ImportSpec()
    base = Path(spec_path).parent if spec_path is not None else Path.cwd()
    items_file = (
        Path(items_path) if items_path is not None else (base / spec.items.path if spec.items.path else None)
    )
    if items_file is None:
        raise DataError("no item table: give --items or items.path in the spec", path=spec_path)
    items = read_table(items_file, encoding=spec.items.encoding)
    inferred = None
    if spec.items.columns is None:
        schema, inferred = CatalogSchema.infer(items)
        if spec.items.text_columns is not None:
            schema = CatalogSchema(columns=schema.columns, text_columns=spec.items.text_columns)
    else:
        schema = CatalogSchema.from_dict(
            {
                "columns": [c.model_dump() for c in spec.items.columns],
                "text_columns": spec.items.text_columns,
            },
            source=spec_path,
        )
    ispec = spec.interactions or InteractionsSpec()
    events_file = (
        Path(interactions_path)
        if interactions_path is not None
        else (base / ispec.path if ispec.path else None)
    )
    if events_file is None:
        raise DataError(
            "no interaction log: give --interactions or interactions.path in the spec", path=spec_path
        )
    events = read_table(events_file, encoding=ispec.encoding)
    wanted = {"user": ispec.user, "item": ispec.item}
    if ispec.timestamp:
        wanted["timestamp"] = ispec.timestamp
    if ispec.rating:
        wanted["rating"] = ispec.rating
    for key, col in wanted.items():
        if col not in events:
            raise DataError(
                f"the spec maps interactions.{key} to '{col}', not a column of {list(events.columns)}",
                path=events_file,
                line=1,
                field=col,
            )
    id_col = schema.id_column
    item_ids, event_items = items[id_col], events[ispec.item]
    if not (pd.api.types.is_integer_dtype(item_ids) and pd.api.types.is_integer_dtype(event_items)):
        # Ids compare as text when either side is not integral; codes like "007" survive as written.
        items = items.assign(**{id_col: item_ids.astype(str)})
        event_items = event_items.astype(str)
    catalog = Catalog(items, schema, source=items_file)
    frame = pd.DataFrame({"user_id": events[ispec.user], "item_id": event_items})
    if ispec.timestamp:
        frame["timestamp"] = _timestamps(
            events[ispec.timestamp], ispec.timestamp_format, events_file, ispec.timestamp
        )
    else:
        frame["timestamp"] = np.arange(len(events), dtype=np.int64)
    if ispec.rating:
        rating = pd.to_numeric(events[ispec.rating], errors="coerce")
        bad = rating.isna() & events[ispec.rating].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"not a number: {events[ispec.rating].iloc[row]!r}",
                path=events_file,
                line=row + 2,
                field=ispec.rating,
            )
        frame["rating"] = rating
    _check_known_items(frame, catalog, events_file, ispec.item)
    interactions = Interactions(frame, catalog.ids, source=str(events_file))
    meta: dict[str, Any] = {
        "source": {"items": str(items_file), "interactions": str(events_file)},
        "format": "tabular",
    }
    dataset = Dataset(name or spec.name or items_file.stem, catalog, interactions, meta=meta)
    if ispec.min_rating is not None:
        dataset = dataset.implicit(ispec.min_rating)
    return dataset, inferred


def _check_known_items(frame: pd.DataFrame, catalog: Catalog, source: Path, field: str) -> None:
    pos = catalog.index_of(frame["item_id"], missing="mark")
    if (pos < 0).any():
        row = int(np.flatnonzero(pos < 0)[0])
        raise DataError(
            f"item {plain_value(frame['item_id'].iloc[row])!r} is not in the item table "
            f"({int((pos < 0).sum())} such interactions)",
            path=source,
            line=row + 2,
            field=field,
        )
