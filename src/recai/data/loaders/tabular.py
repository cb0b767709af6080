"""The generic importer: any item table and event log, described by a short YAML spec or none at all.

This is the path most users take to bring their own catalog into recai, so it reads files exactly as
they were published (see :mod:`recai.data.loaders.tables` for delimiters, headers, encodings and
compression) and infers what the spec leaves out, saying what it inferred. Spec (paths are relative to
the spec file; every key is optional)::

    name: my-shop
    noun: products                    # what an item is called; inferred from names when obvious
    items:
      path: items.tsv
      delimiter: "\\t"                  # also header, names, quote, comment, skip_rows, encoding, na_values
      id: sku                         # shortcuts when roles are inferred
      title: name
      rename: {sku: item_id}          # optional: column names as the catalog should have them
      columns:                        # optional: every role by hand (then only these columns are kept)
        - {name: sku, role: id}
        - {name: name, role: title}
        - {name: tags, role: multi_categorical, separator: ";"}
      derive:                         # columns cut out of another by a regular expression
        - {name: year, from: title, pattern: '\\((\\d{4})\\)\\s*$', role: numeric}
      attributes:                     # side tables joined into item columns
        - name: tags
          path: item_tags.csv         # one row per (item, tag)
          item: sku
          value: tag_id
          lookup: {path: tags.csv, key: tag_id, value: tag_name}
          weight: count               # optional: sum it instead of counting rows
          top: 10                     # keep the most frequent values per item
    interactions:
      path: events.csv
      user: customer_id               # inferred when left out
      item: sku
      timestamp: ts                   # null: the log has no times (file order is kept)
      timestamp_format: auto          # auto | unix | unix_ms | iso
      rating: stars
      min_rating: 4
      weight: quantity                # listen counts, hours, purchases: weighted implicit feedback
      min_weight: 2
      order: auto                     # without timestamps: file | random | auto
    users: {path: users.csv, id: customer_id}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from recai.data.catalog import Catalog
from recai.data.dataset import Dataset
from recai.data.errors import DataError, first_flagged, plain_value
from recai.data.home import is_dataset_name
from recai.data.interactions import Interactions
from recai.data.loaders.tables import ReadOptions, TableRead, read_user_table
from recai.data.schema import CatalogSchema, ColumnRole, ColumnSpec


class TableSpec(ReadOptions):
    """A file and how to read it (the read options are inherited).

    Attributes:
        path: The file, relative to the spec's folder.
    """

    path: str | None = None


class LookupSpec(TableSpec):
    """A code -> name table (tag ids to tag names), so attributes read as words, not codes.

    Attributes:
        key: The column holding the code.
        value: The column holding the name.
    """

    key: str
    value: str


class AttributeSpec(TableSpec):
    """A side table whose rows give items a value each (scalar) or several (a list, top-N by count).

    Fields without a description: ``lookup`` maps codes to names, ``lowercase`` folds values to lower
    case, ``description`` describes the new column for prompts, and ``from_interactions`` marks values
    that come from user activity (see :class:`~recai.data.schema.ColumnSpec`).
    """

    name: str = Field(description="The item column to create.")
    item: str = Field(description="The side table's column naming the item.")
    value: str = Field(description="The side table's column holding the attribute value.")
    key: str | None = Field(
        default=None, description="The item column the side table refers to (default: id)."
    )
    lookup: LookupSpec | None = None
    weight: str | None = Field(
        default=None, description="Sum this column per value instead of counting rows."
    )
    top: int | None = Field(default=10, ge=1, description="Keep at most this many values per item.")
    lowercase: bool = False
    role: ColumnRole | None = Field(
        default=None, description="Default: multi_categorical if any item has 2+."
    )
    description: str | None = None
    from_interactions: bool = False


class DerivedColumn(BaseModel):
    """A column cut out of another with a regular expression (the year in "Heat (1995)").

    Attributes:
        name: The new column.
        source: The column it is cut from (``from`` in YAML).
        pattern: A regular expression with one capturing group: the value to keep.
        role: The new column's role.
        description: What it means, for prompts.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str
    source: str = Field(alias="from")
    pattern: str
    role: ColumnRole = ColumnRole.CATEGORICAL
    description: str | None = None

    @field_validator("pattern")
    @classmethod
    def _one_group(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        if compiled.groups != 1:
            raise ValueError("the pattern must have exactly one capturing group: the value to keep")
        return value


class ItemsSpec(TableSpec):
    """The item table's part of an import spec: which columns are what, and what to add.

    Attributes:
        id: The id column (default: inferred).
        title: The title column (default: inferred).
        rename: Columns to rename, old name to new.
        columns: Every column's role (default: inferred).
        text_columns: Columns rendered into item text, in order.
        derive: Columns cut out of others.
        attributes: Columns gathered from side tables.
    """

    id: str | None = None
    title: str | None = None
    rename: dict[str, str] | None = None
    columns: list[ColumnSpec] | None = None
    text_columns: list[str] | None = None
    derive: list[DerivedColumn] = Field(default_factory=list)
    attributes: list[AttributeSpec] = Field(default_factory=list)


class InteractionsSpec(TableSpec):
    """The log's part of an import spec: which columns are what, and which events to keep.

    Attributes:
        user: The user column (default: inferred).
        item: The item column (default: inferred).
        timestamp: The time column (default: inferred; null: the log has none).
        timestamp_format: "auto", "unix", "unix_ms" or "iso".
        rating: The rating column, if any.
        min_rating: Keep only events rated at least this.
        weight: The weight column (play counts), if any.
        min_weight: Keep only events weighing at least this.
        order: For an untimed log: "file" order, "random", or "auto" (file order unless it is sorted by
            item id).
    """

    user: str | None = None
    item: str | None = None
    timestamp: str | None = None
    timestamp_format: str = "auto"
    rating: str | None = None
    min_rating: float | None = None
    weight: str | None = None
    min_weight: float | None = None
    order: str = Field(default="auto", pattern="^(auto|file|random)$")


class UsersSpec(TableSpec):
    """The optional users table's part of an import spec.

    Attributes:
        id: The user id column (default: inferred).
    """

    id: str | None = None


class ImportSpec(BaseModel):
    """A spec that turns the user's own files into a dataset (``recai data import``); every part the
    user leaves out is sniffed or inferred, and the result writes the resolved spec back.

    Attributes:
        name: The dataset's name (default: the folder's).
        noun: What the items are called, plural.
        items: The item table.
        interactions: The log (None: items only).
        users: The users table, if any.
    """

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    noun: str | None = None
    items: ItemsSpec = ItemsSpec()
    interactions: InteractionsSpec | None = None
    users: UsersSpec | None = None


@dataclass
class ImportResult:
    """What an import produced, with everything the user needs to check or repeat it.

    Attributes:
        dataset: The dataset.
        inferred_roles: The column roles that were inferred (None when the spec gave them all).
        resolved_spec: The spec as resolved: every sniffed and inferred value written out, paths absolute
            (edit it and import again).
        notes: What was sniffed or inferred.
    """

    dataset: Dataset
    inferred_roles: list[tuple[str, str, str]] | None
    resolved_spec: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def spec_yaml(self) -> str:
        return yaml.safe_dump(self.resolved_spec, sort_keys=False, allow_unicode=True, width=100)

    # the (dataset, inferred) pair callers unpacked before the result had more in it
    def __iter__(self) -> Any:
        return iter((self.dataset, self.inferred_roles))


def read_spec(path: str | Path) -> ImportSpec:
    path = Path(path)
    if path.is_dir():
        raise DataError("is a folder, not a spec file", path=path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise DataError("schema file not found", path=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(f"invalid YAML: {exc}", path=path, line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise DataError("an import spec must be a mapping (name, items, interactions)", path=path)
    if "columns" in data and "items" not in data:
        data = {"items": {k: data.pop(k) for k in list(data) if k in ("columns", "text_columns")}, **data}
        data.pop("version", None)
    try:
        return ImportSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DataError(
            first["msg"],
            path=path,
            line=_yaml_line(path, first["loc"]),
            field=".".join(str(p) for p in first["loc"]),
        ) from None


def _yaml_line(path: Path, loc: tuple[Any, ...]) -> int | None:
    """The line of the first key named in ``loc`` (best effort, for pointing at a typo)."""
    keys = [p for p in loc if isinstance(p, str)]
    if not keys:
        return None
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if re.match(rf"^\s*-?\s*{re.escape(keys[-1])}\s*:", line) or re.search(
            rf"[{{,]\s*{re.escape(keys[-1])}\s*:", line
        ):
            return lineno
    return None


def read_table(path: str | Path, *, encoding: str | None = None) -> pd.DataFrame:
    """Read a CSV, TSV or any-delimiter text file, Parquet or JSON lines, sniffing what is not given."""
    return read_user_table(path, ReadOptions(encoding=encoding)).frame


# ------------------------------------------------------------------------------- inference
_USER_NAMES = re.compile(
    r"^(user|user_?id|userid|uid|customer|customer_?id|client_?id|visitor_?id|member_?id|account_?id|reader_?id|player_?id|listener_?id|person_?id)$",
    re.I,
)
_ITEM_NAMES = re.compile(
    r"^(item|item_?id|itemid|iid|product|product_?id|sku|asin|movie_?id|book_?id|artist_?id|track_?id|song_?id|game_?id|app_?id|recipe_?id|article_?id)$",
    re.I,
)
_TIME_NAMES = re.compile(
    r"^(timestamp|time|ts|datetime|date|event_?time|event_?date|created_?at|time_?stamp|when|unix_?time|epoch)$",
    re.I,
)
_RATING_NAMES = re.compile(r"^(rating|ratings|stars|score|grade|review_?score)$", re.I)
_WEIGHT_NAMES = re.compile(
    r"(weight|count|plays|playcount|listens|listen_?count|hours|minutes|seconds|duration|quantity|qty|clicks|views|amount|times|frequency|freq)",
    re.I,
)
#: Words in file, folder, dataset and column names that say what the items are.
_NOUNS = (
    (r"film|movie|cinema|imdb|movielens|(^|[^a-z])ml([-_]|\d)|netflix", "films"),
    (r"artist|lastfm|last\.fm|music|band|musician", "artists"),
    (r"track|song", "songs"),
    (r"book|goodreads|novel", "books"),
    (r"game|steam", "games"),
    (r"recipe", "recipes"),
    (r"podcast", "podcasts"),
    (r"news|article", "articles"),
    (r"anime", "anime"),
    (r"course", "courses"),
    (r"restaurant", "restaurants"),
    (r"hotel", "hotels"),
    (r"product|shop|store|retail|amazon|beauty|sku|ecommerce", "products"),
)


def infer_noun(*hints: str) -> str | None:
    """The item noun suggested by names (files, folders, dataset, columns), most specific first."""
    text = " ".join(h.lower() for h in hints if h)
    for pattern, noun in _NOUNS:
        if re.search(pattern, text):
            return noun
    return None


def _default_name(items_file: Path) -> str:
    """The folder's name when the items file has a generic name (items.csv, artists.dat), else the stem;
    made into a valid dataset name."""
    generic = {"items", "item", "item_info", "products", "artists", "movies", "books", "catalog", "catalogue"}
    stem = items_file.name.split(".")[0]
    candidate = items_file.parent.name if stem.lower() in generic and items_file.parent.name else stem
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", candidate).strip("-._") or "dataset"
    return cleaned[:100]


def _pick(columns: list[str], pattern: re.Pattern[str], exclude: set[str]) -> str | None:
    return next((c for c in columns if c not in exclude and pattern.match(str(c))), None)


def _looks_like_epoch(values: pd.Series) -> bool:
    if not pd.api.types.is_integer_dtype(values) and not pd.api.types.is_float_dtype(values):
        return False
    v = values.dropna()
    if v.empty:
        return False
    lo, hi = float(v.min()), float(v.max())
    in_seconds = lo >= 3e8 and hi <= 4.2e9  # 1979 .. 2103
    in_millis = lo >= 3e11 and hi <= 4.2e12
    return (in_seconds or in_millis) and v.nunique() > 1


def _is_rating_like(values: pd.Series) -> bool:
    v = values.dropna()
    if v.empty or not pd.api.types.is_numeric_dtype(v):
        return False
    return bool(v.min() >= 0 and v.max() <= 10 and v.nunique() <= 11 and (v * 2 == (v * 2).round()).all())


# ------------------------------------------------------------------------------- importing
def import_tabular(
    spec_path: str | Path | None = None,
    *,
    items_path: str | Path | None = None,
    interactions_path: str | Path | None = None,
    name: str | None = None,
    spec: ImportSpec | None = None,
) -> ImportResult:
    """Build a Dataset from files and a spec (or none: everything inferred)."""
    if spec is None:
        spec = read_spec(spec_path) if spec_path is not None else ImportSpec()
    base = Path(spec_path).parent if spec_path is not None else Path.cwd()
    notes: list[str] = []

    def resolve(given: str | Path | None, in_spec: str | None) -> Path | None:
        if given is not None:
            return Path(given).expanduser().resolve()
        return (base / Path(in_spec).expanduser()).resolve() if in_spec else None

    items_file = resolve(items_path, spec.items.path)
    if items_file is None:
        raise DataError("no item table: give --items or items.path in the spec", path=spec_path)
    ispec = spec.interactions or InteractionsSpec()
    events_file = resolve(interactions_path, ispec.path)
    if events_file is None:
        raise DataError(
            "no interaction log: give --interactions or interactions.path in the spec", path=spec_path
        )

    items_read = read_user_table(items_file, _options(spec.items))
    notes += [f"{items_file.name}: {n}" for n in items_read.notes]
    items = items_read.frame
    if spec.items.rename:
        unknown = [c for c in spec.items.rename if c not in items]
        if unknown:
            raise DataError(
                f"items.rename names column(s) {unknown} that the file does not have ({list(items.columns)})",
                path=spec_path,
                field="items.rename",
            )
        items = items.rename(columns=spec.items.rename)
    items = _derive(items, spec.items.derive, items_file, spec_path)
    schema, inferred = _item_schema(items, spec, items_file, spec_path)
    for attribute in spec.items.attributes:
        items, added = _join_attribute(items, schema, attribute, base, spec_path)
        schema = CatalogSchema(
            columns=[*schema.columns, added],
            text_columns=schema.text_columns,
            noun=schema.noun,
        )

    events_read = read_user_table(events_file, _options(ispec))
    notes += [f"{events_file.name}: {n}" for n in events_read.notes]
    events = events_read.frame
    if events.empty:
        raise DataError("the interaction log has no rows", path=events_file)
    id_col = schema.id_column
    columns = resolve_log_columns(events, ispec, items[id_col], id_col, events_file, notes)
    item_ids = items[id_col]
    event_items = events[columns["item"]]
    if not (pd.api.types.is_integer_dtype(item_ids) and pd.api.types.is_integer_dtype(event_items)):
        # Ids compare as text when either side is not integral; codes like "007" survive as written.
        items = items.assign(**{id_col: item_ids.map(_id_text, na_action="ignore")})
        event_items = event_items.map(_id_text, na_action="ignore")
    noun = spec.noun or infer_noun(
        spec.name or "", name or "", items_file.parent.name, items_file.name, events_file.name, id_col
    )
    if noun and not spec.noun:
        notes.append(f"noun: {noun} (from the file and column names; set `noun:` to change it)")
    if noun != schema.noun:
        schema = schema.model_copy(update={"noun": noun})
    catalog = Catalog(items, schema, source=items_file)

    frame = pd.DataFrame({"user_id": events[columns["user"]], "item_id": event_items})
    _check_no_empty(frame, "user_id", columns["user"], events_read)
    _check_no_empty(frame, "item_id", columns["item"], events_read)
    if columns.get("timestamp"):
        frame["timestamp"] = _timestamps(
            events[columns["timestamp"]], ispec.timestamp_format, events_read, columns["timestamp"]
        )
    for key in ("rating", "weight"):
        col = columns.get(key)
        if col:
            frame[key] = _numbers(events[col], events_read, col)
    _check_known_items(frame, catalog, events_read, columns["item"])
    order = ispec.order
    if not columns.get("timestamp") and order == "auto":
        order = _natural_order(frame)
        notes.append(
            f"{events_file.name}: no timestamps; leave-one-out splits hold out "
            + (
                "random events per user (the file lists each user's items sorted by id, so its order "
                "says nothing)"
                if order == "random"
                else "each user's last events in file order"
            )
            + "; set `order: file` or `order: random` to choose"
        )
    interactions = Interactions(frame, catalog.ids, source=str(events_file))
    users = _read_users(spec.users, base, spec_path, notes) if spec.users else None
    meta: dict[str, Any] = {
        "source": {"items": str(items_file), "interactions": str(events_file)},
        "format": "tabular",
    }
    if not columns.get("timestamp"):
        meta["event_order"] = "random" if order == "random" else "file"
    dataset_name = name or spec.name or _default_name(items_file)
    if not is_dataset_name(dataset_name):
        from recai.data.home import check_dataset_name

        check_dataset_name(dataset_name, field="name")
    dataset = Dataset(dataset_name, catalog, interactions, users=users, meta=meta)
    for key, cut in (("rating", ispec.min_rating), ("weight", ispec.min_weight)):
        if cut is None:
            continue
        if not columns.get(key):
            raise DataError(
                f"min_{key} needs a {key} column (set interactions.{key})",
                path=spec_path,
                field=f"interactions.min_{key}",
            )
        dataset = dataset.implicit(cut) if key == "rating" else dataset.min_weight(cut)
    if len(dataset.interactions) == 0:
        raise DataError(
            "no interactions left"
            + (
                " after min_rating/min_weight"
                if ispec.min_rating is not None or ispec.min_weight is not None
                else ""
            ),
            path=events_file,
        )
    resolved = _resolved_spec(
        dataset_name, noun, spec, items_read, schema, events_read, columns, order, ispec
    )
    return ImportResult(dataset, inferred, resolved, notes)


def _options(table: TableSpec) -> ReadOptions:
    return ReadOptions(**{k: getattr(table, k) for k in ReadOptions.model_fields})


def _id_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(plain_value(value))


def _derive(
    items: pd.DataFrame, derived: list[DerivedColumn], items_file: Path, spec_path: Any
) -> pd.DataFrame:
    out = items
    for d in derived:
        if d.source not in out:
            raise DataError(
                f"derive: no column '{d.source}' to take '{d.name}' from ({list(out.columns)})",
                path=spec_path,
                field=f"items.derive.{d.name}",
            )
        if d.name in out:
            raise DataError(
                f"derive: column '{d.name}' already exists", path=spec_path, field=f"items.derive.{d.name}"
            )
        text = out[d.source].astype(object).where(out[d.source].notna(), "").astype(str)
        extracted = text.str.extract(d.pattern, expand=False)
        if d.role in (ColumnRole.NUMERIC, ColumnRole.POPULARITY):
            values = pd.to_numeric(extracted, errors="coerce").astype("float64")
        else:
            stripped = extracted.astype(object).map(lambda v: v.strip() if isinstance(v, str) else None)
            values = stripped.where(stripped.map(bool), None)
        out = out.assign(**{d.name: values})
    return out


def _item_schema(
    items: pd.DataFrame, spec: ImportSpec, items_file: Path, spec_path: Any
) -> tuple[CatalogSchema, list[tuple[str, str, str]] | None]:
    ispec = spec.items
    for key in ("id", "title"):
        _check_named_column(f"items.{key}", getattr(ispec, key), items, "file", items_file)
    derived = [ColumnSpec(name=d.name, role=d.role, description=d.description) for d in ispec.derive]
    if ispec.columns is not None:
        given = {c.name for c in ispec.columns}
        extra = [c for c in derived if c.name not in given]
        missing = [c.name for c in ispec.columns if c.role is not ColumnRole.IGNORE and c.name not in items]
        if missing:
            raise DataError(
                f"items.columns names column(s) {missing} that the file does not have; its columns are "
                f"{list(items.columns)}",
                path=items_file,
                line=1,
                field=missing[0],
            )
        schema = CatalogSchema.from_dict(
            {
                "columns": [c.model_dump(exclude_defaults=True) for c in [*ispec.columns, *extra]],
                "text_columns": ispec.text_columns,
            },
            source=spec_path,
        )
        return schema, None
    forced = {c.name: c.role for c in derived}
    if ispec.id:
        forced[ispec.id] = ColumnRole.ID
    if ispec.title:
        forced[ispec.title] = ColumnRole.TITLE
    schema, inferred = CatalogSchema.infer(items, forced=forced)
    if ispec.text_columns is not None:
        schema = CatalogSchema(columns=schema.columns, text_columns=ispec.text_columns)
    described = {d.name: d.description for d in ispec.derive if d.description}
    if described:
        schema = schema.model_copy(
            update={
                "columns": [
                    c.model_copy(update={"description": described[c.name]}) if c.name in described else c
                    for c in schema.columns
                ]
            }
        )
    return schema, inferred


def _join_attribute(
    items: pd.DataFrame, schema: CatalogSchema, spec: AttributeSpec, base: Path, spec_path: Any
) -> tuple[pd.DataFrame, ColumnSpec]:
    """Fold a side table into one item column: values per item, most frequent (or heaviest) first."""
    where = f"items.attributes.{spec.name}"
    if spec.path is None:
        raise DataError("a side table needs a path", path=spec_path, field=where)
    if spec.name in items:
        raise DataError(f"column '{spec.name}' already exists in the item table", path=spec_path, field=where)
    path = (base / spec.path).resolve()
    read = read_user_table(path, _options(spec))
    table = read.frame
    wanted = [spec.item, spec.value] + ([spec.weight] if spec.weight else [])
    for col in wanted:
        if col not in table:
            raise DataError(f"no column '{col}' ({list(table.columns)})", path=path, line=1, field=col)
    key = spec.key or schema.id_column
    if key not in items:
        raise DataError(
            f"no item column '{key}' to join on ({list(items.columns)})", path=spec_path, field=f"{where}.key"
        )
    values = table[spec.value]
    if spec.lookup is not None:
        if spec.lookup.path is None:
            raise DataError("a lookup needs a path", path=spec_path, field=f"{where}.lookup")
        lpath = (base / spec.lookup.path).resolve()
        lookup = read_user_table(lpath, _options(spec.lookup)).frame
        for col in (spec.lookup.key, spec.lookup.value):
            if col not in lookup:
                raise DataError(f"no column '{col}' ({list(lookup.columns)})", path=lpath, line=1, field=col)
        mapping = pd.Series(lookup[spec.lookup.value].to_numpy(), index=lookup[spec.lookup.key].map(_id_text))
        mapping = mapping[~mapping.index.duplicated()]
        values = values.map(_id_text, na_action="ignore").map(mapping)
    values = values.astype("string").str.strip()
    if spec.lowercase:
        values = values.str.lower()
    frame = pd.DataFrame(
        {
            "item": table[spec.item].map(_id_text, na_action="ignore"),
            "value": values,
            "w": pd.to_numeric(table[spec.weight], errors="coerce").fillna(0.0) if spec.weight else 1.0,
        }
    )
    frame = frame[frame["item"].notna() & frame["value"].notna() & (frame["value"] != "")]
    totals = frame.groupby(["item", "value"], sort=False)["w"].sum().rename("n").reset_index()
    totals = totals.sort_values(["item", "n", "value"], ascending=[True, False, True], kind="stable")
    if spec.top is not None:
        totals = totals.groupby("item", sort=False).head(spec.top)
    # plain dicts of Python lists: pandas would turn lists of strings into Arrow list arrays
    lists: dict[str, list[str]] = {
        str(item): [str(v) for v in group.tolist()]
        for item, group in totals.groupby("item", sort=False)["value"]
    }
    keys = items[key].map(_id_text, na_action="ignore").tolist()
    multi = any(len(v) > 1 for v in lists.values())
    role = spec.role or (ColumnRole.MULTI_CATEGORICAL if multi else ColumnRole.CATEGORICAL)
    column: Any
    if role is ColumnRole.MULTI_CATEGORICAL:
        column = pd.Series([list(lists.get(k, [])) for k in keys], index=items.index, dtype=object)
    else:
        if multi and spec.top != 1:
            raise DataError(
                f"some items have several values but role is {role.value}: set `top: 1` or role "
                "multi_categorical",
                path=spec_path,
                field=f"{where}.role",
            )
        firsts = [lists[k][0] if k in lists else None for k in keys]
        column = pd.Series(firsts, index=items.index, dtype=object)
        if role in (ColumnRole.NUMERIC, ColumnRole.POPULARITY):
            column = pd.to_numeric(column, errors="coerce")
    return (
        items.assign(**{spec.name: column.to_numpy()}),
        ColumnSpec(
            name=spec.name, role=role, description=spec.description, from_interactions=spec.from_interactions
        ),
    )


def resolve_log_columns(
    events: pd.DataFrame,
    ispec: InteractionsSpec,
    item_ids: pd.Series,
    id_column: str,
    source: Path,
    notes: list[str],
) -> dict[str, str | None]:
    """The log's user, item, timestamp, rating and weight columns: as the spec names them, else
    inferred from names (and, for unnamed columns, from values). Inferences are noted."""
    columns = [str(c) for c in events.columns]
    given = ispec.model_fields_set
    out: dict[str, str | None] = {}

    def check(key: str, col: str | None, fix: str = "") -> None:
        _check_named_column(f"interactions.{key}", col, events, "log", source, fix)

    def note(key: str, col: str | None, why: str) -> None:
        if col is not None:
            notes.append(f"{source.name}: {key} column '{col}' ({why})")

    def inferred(key: str, col: str | None, why: str) -> str:
        """A column the log cannot do without: noted when found, else the error that says what to set."""
        if col is None:
            raise DataError(
                f"cannot tell which column names the {key}; set interactions.{key} (columns: {columns})",
                path=source,
                field=key,
            )
        note(key, col, why)
        return col

    # item: the items' id column name, a conventional name, or the column whose values are item ids
    item = ispec.item
    check("item", item)
    if item is None:
        item = id_column if id_column in events else _pick(columns, _ITEM_NAMES, set())
        why = "named like an item id"
        if item is None:
            ids = set(item_ids.map(_id_text))
            sample = events.head(5000)
            shares = {c: sample[c].map(_id_text, na_action="ignore").isin(ids).mean() for c in columns}
            fits = [c for c in columns if shares[c] >= 0.9]
            if fits:
                # user ids are often small integers that are also item ids (Last.fm): the item column is
                # the one spanning more distinct items
                item = max(fits, key=lambda c: (sample[c].nunique(), -columns.index(c)))
                why = f"{shares[item]:.0%} of its values are item ids"
                if len(fits) > 1:
                    why += f", and more distinct ones than {[c for c in fits if c != item]}"
        item = inferred("item", item, why)
    out["item"] = item
    user = ispec.user
    check("user", user)
    if user is None:
        user = _pick(columns, _USER_NAMES, {item})
        why = "named like a user id"
        if user is None:
            user = next(
                (c for c in columns if c != item and not pd.api.types.is_float_dtype(events[c])), None
            )
            why = "the first other column"
        user = inferred("user", user, why)
    out["user"] = user
    taken = {user, item}
    if "timestamp" in given:
        check(
            "timestamp",
            ispec.timestamp,
            "; if the log has no times, set `timestamp: null`",
        )
        out["timestamp"] = ispec.timestamp
    else:
        ts = _pick(columns, _TIME_NAMES, taken)
        why = "named like a time"
        if ts is None:
            ts = next(
                (
                    c
                    for c in columns
                    if c not in taken and c.startswith("column") and _looks_like_epoch(events[c])
                ),
                None,
            )
            why = "integers in the range of epoch seconds"
        if ts is not None:
            note("timestamp", ts, why)
        else:
            notes.append(f"{source.name}: no timestamp column; events keep the file's order")
        out["timestamp"] = ts
    if out["timestamp"]:
        taken.add(out["timestamp"])
    for key, pattern in (("rating", _RATING_NAMES), ("weight", _WEIGHT_NAMES)):
        if key in given:
            check(key, getattr(ispec, key))
            out[key] = getattr(ispec, key)
        else:
            numeric = [c for c in columns if c not in taken and pd.api.types.is_numeric_dtype(events[c])]
            col = next((c for c in numeric if pattern.search(c) if key == "weight" or pattern.match(c)), None)
            if col is not None:
                note(key, col, f"named like a {key}")
            out[key] = col
        if out[key]:
            taken.add(out[key])
    unnamed = [
        c
        for c in columns
        if c not in taken and c.startswith("column") and pd.api.types.is_numeric_dtype(events[c])
    ]
    if len(unnamed) == 1:
        col = unnamed[0]
        key = "rating" if _is_rating_like(events[col]) else "weight"
        if out.get(key) is None and key not in given:
            out[key] = col
            note(
                key,
                col,
                "the one remaining numeric column" + (", small whole steps" if key == "rating" else ""),
            )
    return out


def _check_named_column(
    setting: str, col: str | None, frame: pd.DataFrame, what: str, path: Path, fix: str = ""
) -> None:
    """Refuse a spec ``setting`` that names a column the table does not have, listing the ones it has."""
    if col is not None and col not in frame:
        raise DataError(
            f"{setting} names column '{col}', which the {what} does not have; its columns are "
            f"{[str(c) for c in frame.columns]}{fix}",
            path=path,
            line=1,
            field=col,
        )


def _natural_order(frame: pd.DataFrame) -> str:
    """'random' when every user's items appear sorted by id (the file order is an artefact of sorting
    and says nothing about the user), else 'file'."""
    items = frame["item_id"]
    key = items if pd.api.types.is_integer_dtype(items) else items.astype(str)
    grouped = pd.DataFrame({"u": frame["user_id"].to_numpy(), "i": key.to_numpy()})
    same_user = grouped["u"].to_numpy()[1:] == grouped["u"].to_numpy()[:-1]
    if not same_user.any():
        return "file"
    increasing = grouped["i"].to_numpy()[1:] >= grouped["i"].to_numpy()[:-1]
    return "random" if bool(increasing[same_user].all()) else "file"


def _check_no_empty(frame: pd.DataFrame, column: str, file_column: str, read: TableRead) -> None:
    values = frame[column]
    empty = values.isna() | (values.astype(str).str.strip() == "")
    record = first_flagged(empty)
    if record is not None:
        raise read.error_at(record, f"empty value ({int(empty.sum())} rows have none)", file_column)


def _numbers(values: pd.Series, read: TableRead, field_name: str) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    record = first_flagged(numeric.isna() & values.notna())
    if record is not None:
        raise read.error_at(record, f"not a number: {values.iloc[record]!r}", field_name)
    return numeric


def _timestamps(values: pd.Series, fmt: str, read: TableRead, field_name: str) -> pd.Series:
    """Event times as UTC datetimes or (possibly fractional) epoch seconds, for Interactions to order
    at full precision before it keeps whole seconds. In ``auto`` mode the kind (numbers or dates) is
    what most values are, so the error names the odd value out, not the first row."""
    if fmt not in ("auto", "unix", "unix_ms", "iso"):
        raise DataError(
            f"unknown timestamp_format '{fmt}' (auto, unix, unix_ms, iso)", path=read.path, field=field_name
        )
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    record = first_flagged(values.isna())
    if record is not None:
        raise read.error_at(record, "empty timestamp", field_name)
    numeric = pd.to_numeric(values, errors="coerce")
    mostly_numeric = numeric.notna().mean() >= 0.5
    if fmt in ("unix", "unix_ms") or (fmt == "auto" and mostly_numeric):
        record = first_flagged(numeric.isna())
        if record is not None:
            message = f"not a number: {values.iloc[record]!r} (the other timestamps are epoch numbers)"
            raise read.error_at(record, message, field_name)
        seconds = numeric.astype("float64")
        if fmt == "unix_ms" or (fmt == "auto" and seconds.abs().max() > 1e11):
            seconds = seconds / 1000.0
        return seconds
    parsed = pd.to_datetime(values.astype(str), errors="coerce", utc=True, format="mixed")
    record = first_flagged(parsed.isna())
    if record is not None:
        raise read.error_at(record, f"not a date or time: {values.iloc[record]!r}", field_name)
    return parsed


def _check_known_items(frame: pd.DataFrame, catalog: Catalog, read: TableRead, field_name: str) -> None:
    pos = catalog.index_of(frame["item_id"], missing="mark")
    record = first_flagged(pos < 0)
    if record is not None:
        raise read.error_at(
            record,
            f"item {plain_value(frame['item_id'].iloc[record])!r} is not in the item table "
            f"({int((pos < 0).sum())} such interactions)",
            field_name,
        )


def _read_users(spec: UsersSpec, base: Path, spec_path: Any, notes: list[str]) -> pd.DataFrame:
    if spec.path is None:
        raise DataError("users needs a path", path=spec_path, field="users.path")
    read = read_user_table((base / spec.path).resolve(), _options(spec))
    notes += [f"{read.path.name}: {n}" for n in read.notes]
    frame = read.frame
    col = spec.id or _pick([str(c) for c in frame.columns], _USER_NAMES, set()) or str(frame.columns[0])
    if col not in frame:
        raise DataError(f"no column '{col}' ({list(frame.columns)})", path=read.path, line=1, field=col)
    record = first_flagged(frame[col].duplicated())
    if record is not None:
        raise read.error_at(record, f"duplicate user id {plain_value(frame[col].iloc[record])!r}", col)
    return frame.rename(columns={col: "user_id"})


def _read_options_dict(read: TableRead) -> dict[str, Any]:
    if not read.delimited:
        return {}
    o = read.options
    out: dict[str, Any] = {"delimiter": o.delimiter, "header": o.header}
    if o.names is not None or not o.header:
        out["names"] = [str(c) for c in read.frame.columns]
    if o.quote != ('"' if o.delimiter in (",", ";") else None):
        out["quote"] = o.quote
    for key in ("comment", "na_values"):
        if getattr(o, key):
            out[key] = getattr(o, key)
    if o.skip_rows:
        out["skip_rows"] = o.skip_rows
    if o.encoding not in (None, "utf-8"):
        out["encoding"] = o.encoding
    return out


def _resolved_spec(
    name: str,
    noun: str | None,
    spec: ImportSpec,
    items_read: TableRead,
    schema: CatalogSchema,
    events_read: TableRead,
    columns: dict[str, str | None],
    order: str,
    ispec: InteractionsSpec,
) -> dict[str, Any]:
    """The spec with everything sniffed and inferred written out: what the user edits and re-runs."""
    items: dict[str, Any] = {"path": str(items_read.path), **_read_options_dict(items_read)}
    if spec.items.rename:
        items["rename"] = dict(spec.items.rename)
    derived = {d.name for d in spec.items.derive}
    attributes = {a.name for a in spec.items.attributes}
    items["columns"] = [
        c for c in schema.to_dict()["columns"] if c["name"] not in derived and c["name"] not in attributes
    ]
    if schema.text_columns is not None:
        items["text_columns"] = list(schema.text_columns)
    if spec.items.derive:
        items["derive"] = [
            d.model_dump(by_alias=True, exclude_defaults=True, mode="json") for d in spec.items.derive
        ]
        for entry, d in zip(items["derive"], spec.items.derive, strict=True):
            entry["role"] = d.role.value
    if spec.items.attributes:
        items["attributes"] = [
            {**a.model_dump(exclude_defaults=True, mode="json"), "top": a.top} for a in spec.items.attributes
        ]
    log: dict[str, Any] = {"path": str(events_read.path), **_read_options_dict(events_read)}
    log.update({"user": columns["user"], "item": columns["item"], "timestamp": columns.get("timestamp")})
    if columns.get("timestamp") and ispec.timestamp_format != "auto":
        log["timestamp_format"] = ispec.timestamp_format
    for key in ("rating", "weight"):
        if columns.get(key):
            log[key] = columns[key]
    if ispec.min_rating is not None:
        log["min_rating"] = ispec.min_rating
    if ispec.min_weight is not None:
        log["min_weight"] = ispec.min_weight
    if not columns.get("timestamp"):
        log["order"] = order
    out: dict[str, Any] = {"name": name}
    if noun:
        out["noun"] = noun
    out["items"] = items
    out["interactions"] = log
    if spec.users is not None:
        out["users"] = spec.users.model_dump(exclude_defaults=True, mode="json")
    return out
