"""A named catalog plus its interaction log, saved as a plain folder anyone can open.

Folder layout (``format_version`` 1): ``items.parquet``, ``interactions.parquet``, ``schema.yaml``,
``meta.json`` and, when the source has user attributes, ``users.parquet``. Written atomically: a
temporary folder is filled and then renamed, so an interrupted save never leaves a broken dataset.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recai.data.atomic import atomic_directory, remove_stale_temporaries
from recai.data.catalog import Catalog
from recai.data.errors import DataError
from recai.data.home import DATASET_FILES, is_dataset_folder
from recai.data.interactions import Interactions
from recai.data.jsonl import read_json_object
from recai.data.schema import CatalogSchema
from recai.data.splits import Split, leave_one_out, temporal_split

FORMAT_VERSION = 1


@dataclass
class Dataset:
    """A catalog and the interactions over it: the unit every command loads, splits and saves.

    Attributes:
        name: The dataset's name.
        catalog: The items.
        interactions: The log over the catalog's items (re-coded to the catalog's ids if needed).
        users: Optional user attributes, one row per user.
        meta: Free-form metadata (source, format, license), saved with the dataset.
    """

    name: str
    catalog: Catalog
    interactions: Interactions
    users: pd.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.interactions.item_ids.equals(self.catalog.ids):
            self.interactions = self.interactions.with_items(self.catalog.ids)
        if self.catalog.schema.popularity_column is None:
            self.catalog.attach_interaction_counts(self.interactions.item_counts())
        self.catalog.attach_log(self.interactions)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {len(self.catalog)} items, {len(self.interactions)} interactions)"

    # ------------------------------------------------------------ derivation
    def with_interactions(self, interactions: Interactions, *, note: str | None = None) -> Dataset:
        """The same catalog with another log (after filtering), keeping a record of what was done."""
        meta = dict(self.meta)
        if note:
            meta["processing"] = [*meta.get("processing", []), note]
        return Dataset(self.name, self.catalog, interactions.with_items(self.catalog.ids), self.users, meta)

    def implicit(self, min_rating: float) -> Dataset:
        """Keep interactions rated at least ``min_rating``."""
        return self.with_interactions(
            self.interactions.filter_rating(min_rating), note=f"rating>={min_rating:g}"
        )

    def min_weight(self, min_weight: float) -> Dataset:
        """Keep interactions whose weight (listen count, hours) is at least ``min_weight``."""
        return self.with_interactions(
            self.interactions.filter_weight(min_weight), note=f"weight>={min_weight:g}"
        )

    @property
    def noun(self) -> str | None:
        """What the items of this catalog are called (films, artists, books), when known."""
        return self.catalog.schema.noun

    def item_noun(self) -> str:
        """The noun for prompts and replies: the schema's, else one the dataset's name implies (a
        folder saved before nouns were recorded), else "items"."""
        if self.noun:
            return self.noun
        from recai.data.loaders.tabular import infer_noun

        return infer_noun(self.name, str(self.meta.get("format", ""))) or "items"

    def k_core(self, k: int = 5) -> Dataset:
        """Iterative k-core over users and items."""
        return self.with_interactions(self.interactions.k_core(k), note=f"{k}-core")

    def split(self, protocol: str = "leave_one_out", **kwargs: Any) -> Split:
        """Split the interactions: ``leave_one_out`` (alias ``loo``) or ``temporal``.

        On a log without timestamps, leave-one-out follows the event order recorded on import
        (``meta["event_order"]``: ``file``, or ``random`` when the file order carries no information);
        ``order=`` overrides it.
        """
        if protocol in ("leave_one_out", "loo"):
            if "order" not in kwargs and not self.interactions.has_timestamps:
                kwargs["order"] = "random" if self.meta.get("event_order") == "random" else "time"
            return leave_one_out(self.interactions, **kwargs)
        if protocol == "temporal":
            return temporal_split(self.interactions, **kwargs)
        raise ValueError(f"unknown split protocol '{protocol}' (use 'leave_one_out' or 'temporal')")

    def popularity(self) -> np.ndarray:
        """Interaction counts per catalog row."""
        return self.interactions.item_counts()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "catalog": self.catalog.describe(),
            "interactions": self.interactions.describe(),
            "users_table": None if self.users is None else list(self.users.columns),
            "meta": self.meta,
        }

    # ------------------------------------------------------------------- I/O
    def save(
        self, path: str | Path, *, overwrite: bool = False, extra_files: dict[str, str] | None = None
    ) -> Path:
        """Write the dataset folder atomically and return its path.

        ``overwrite`` replaces only a recai dataset folder (or an empty one): a typo in a path must
        never delete anything else. ``extra_files`` (name -> text) are written inside the folder, e.g.
        the import spec that made it. What an earlier interrupted save left beside the folder is
        removed first.
        """
        path = Path(path)
        if path.exists() and overwrite and not (is_dataset_folder(path) or _empty_dir(path)):
            raise FileExistsError(
                f"{path} exists and is not a recai dataset folder: refusing to replace it "
                "(choose another name or --out)"
            )
        remove_stale_temporaries(path.parent)
        for name in extra_files or {}:
            if name in DATASET_FILES or "/" in name or name.startswith("."):
                raise ValueError(f"extra file name {name!r} is reserved or not a plain file name")
        with atomic_directory(path, overwrite=overwrite) as tmp:
            self.catalog.items.to_parquet(tmp / "items.parquet", index=False)
            self.interactions.stored_frame().to_parquet(tmp / "interactions.parquet", index=False)
            for name, text in (extra_files or {}).items():
                (tmp / name).write_text(text, encoding="utf-8")
            if self.users is not None:
                self.users.to_parquet(tmp / "users.parquet", index=False)
            self.catalog.schema.save(tmp / "schema.yaml")
            meta = {
                **self.meta,
                "name": self.name,
                "format_version": FORMAT_VERSION,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "counts": {
                    "items": len(self.catalog),
                    "interactions": len(self.interactions),
                    "users": self.interactions.n_users,
                },
            }
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        """Read a dataset folder written by :meth:`save` (or by hand in the same layout)."""
        path = Path(path)
        missing = [f for f in DATASET_FILES if not (path / f).exists()]
        if missing:
            raise DataError(f"not a recai dataset folder: missing {missing}", path=path)
        meta = read_json_object(path / "meta.json")
        version = meta.get("format_version", FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise DataError(
                f"dataset format_version {version} is newer than this recai understands ({FORMAT_VERSION}); "
                "upgrade recai",
                path=path / "meta.json",
                field="format_version",
            )
        schema = _flag_interaction_columns(CatalogSchema.load(path / "schema.yaml"), meta)
        items = pd.read_parquet(path / "items.parquet")
        catalog = Catalog(items, schema, source=path / "items.parquet")
        interactions = Interactions(
            pd.read_parquet(path / "interactions.parquet"),
            catalog.ids,
            source=str(path / "interactions.parquet"),
        )
        users = pd.read_parquet(path / "users.parquet") if (path / "users.parquet").exists() else None
        return cls(meta.get("name", path.name), catalog, interactions, users, meta)


#: Columns a loader marks ``from_interactions``, by the ``format`` it records in meta.json: a folder
#: saved before the flag existed gets it on load, so old MovieLens folders do not leak user tags.
_INTERACTION_COLUMNS = {"movielens-csv": frozenset({"tags"})}


def _flag_interaction_columns(schema: CatalogSchema, meta: dict[str, Any]) -> CatalogSchema:
    names = _INTERACTION_COLUMNS.get(str(meta.get("format")), frozenset())
    if not any(c.name in names and not c.from_interactions for c in schema.columns):
        return schema
    columns = [
        c.model_copy(update={"from_interactions": True}) if c.name in names else c for c in schema.columns
    ]
    return schema.model_copy(update={"columns": columns})


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())
