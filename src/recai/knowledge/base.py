"""The one API every knowledge extractor implements (scikit-learn style, like :mod:`recai.rec.base`).

Hyperparameters go to ``__init__``; ``fit(catalog, train)`` learns attributes that end with ``_`` from
the catalog and the *training* interactions only (the caller passes the training part of a split, never
the events that are evaluated), and returns self; ``facts(query)`` lists what the extractor knows about
one sample; ``save`` / ``load`` write a folder atomically (``meta.json`` + ``state.npz``), so a fitted
knowledge base is reused as it was, instead of being refitted into something slightly different.
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from recai.data.atomic import atomic_directory
from recai.data.catalog import Catalog
from recai.data.errors import DataError
from recai.data.interactions import Interactions
from recai.errors import RecaiError
from recai.knowledge.facts import Fact, Query

E = TypeVar("E", bound="Extractor")
FORMAT_VERSION = 1


class NotFittedError(RuntimeError, RecaiError):
    """The extractor was asked for facts before ``fit``."""


class Extractor(ABC):
    """Base class: subclasses implement ``_fit``, ``_facts`` and the state they save."""

    kind: ClassVar[str] = "extractor"
    #: True for extractors built on a trained recommender (``fit`` then needs ``model=``).
    needs_model: ClassVar[bool] = False

    def __init__(self) -> None:
        self.catalog_: Catalog | None = None

    # ------------------------------------------------------------------ API
    def fit(
        self: E,
        catalog: Catalog,
        train: Interactions,
        *,
        model: Any = None,
    ) -> E:
        """Learn from the catalog and the training log (the item vocabulary must be the catalog's)."""
        if not train.item_ids.equals(catalog.ids):
            raise ValueError(
                f"{type(self).__name__}.fit: the interactions' item vocabulary is not the catalog's; "
                "build both from one Dataset"
            )
        if self.needs_model and model is None:
            raise ValueError(f"{type(self).__name__}.fit needs a fitted recommender: pass model=")
        self.catalog_ = catalog
        self._fit(catalog, train, model)
        return self

    def facts(self, query: Query) -> list[Fact]:
        """Everything this extractor knows about ``query``, in a deterministic order."""
        self._check_fitted()
        if not query.candidates:
            return []
        return self._facts(query)

    @property
    def fitted(self) -> bool:
        return self.catalog_ is not None

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as passed to ``__init__`` (JSON-serialisable)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    # ------------------------------------------------------------- persist
    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write ``meta.json`` (kind, class, hyperparameters) and ``state.npz`` atomically."""
        self._check_fitted()
        path = Path(path)
        with atomic_directory(path, overwrite=overwrite) as tmp:
            meta = {
                "kind": self.kind,
                "class": type(self).__name__,
                "format_version": FORMAT_VERSION,
                "params": self.get_params(),
            }
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            np.savez(tmp / "state.npz", **self._state())
            self._save_extra(tmp)
        return path

    @classmethod
    def load(cls: type[E], path: str | Path, catalog: Catalog) -> E:
        """A saved extractor, attached to ``catalog`` (the one it was fitted with)."""
        path = Path(path)
        meta_path = path / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{path} is not a saved extractor ({meta_path.name} missing)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON: {exc.msg}", path=meta_path, line=exc.lineno) from None
        if meta.get("class") != cls.__name__:
            raise DataError(
                f"holds a {meta.get('class')}, not a {cls.__name__}", path=meta_path, field="class"
            )
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise DataError(
                f"written by a newer recai (format {meta['format_version']})",
                path=meta_path,
                field="format_version",
            )
        extractor = cls(**meta["params"])
        with np.load(path / "state.npz", allow_pickle=False) as state:
            extractor._set_state({k: state[k] for k in state.files})
        extractor._load_extra(path)
        extractor.catalog_ = catalog
        extractor._check_catalog(catalog, path)
        return extractor

    # --------------------------------------------------------- subclassing
    def _check_fitted(self) -> None:
        if self.catalog_ is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(catalog, train) first")

    def _check_catalog(self, catalog: Catalog, path: Path) -> None:
        """Refuse a catalog of another size than the one the state was built for."""
        n = self._n_items()
        if n is not None and n != len(catalog):
            raise DataError(
                f"was fitted on a catalog of {n} items, but this catalog has {len(catalog)}",
                path=path / "state.npz",
            )

    def _n_items(self) -> int | None:
        """Catalog size the saved state assumes (None when it does not depend on it)."""
        return None

    def _save_extra(self, folder: Path) -> None:
        """Write anything that does not fit in ``state.npz`` (a recommender model); nothing by default."""
        return None

    def _load_extra(self, folder: Path) -> None:
        """Read what ``_save_extra`` wrote; nothing by default."""
        return None

    @abstractmethod
    def _fit(self, catalog: Catalog, train: Interactions, model: Any) -> None: ...

    @abstractmethod
    def _facts(self, query: Query) -> list[Fact]: ...

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def _set_state(self, state: dict[str, np.ndarray]) -> None: ...


def quantiles(values: np.ndarray, n: int = 101) -> np.ndarray:
    """``n`` evenly spaced quantiles of ``values`` (what :func:`calibrate` maps scores through)."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return np.zeros(n)
    return np.quantile(values, np.linspace(0.0, 1.0, n))


def calibrate(q: np.ndarray, scores: np.ndarray | float) -> np.ndarray:
    """Scores as the share of the reference distribution below them (0..1).

    Raw cosines, lifts and embedding similarities live on different scales; mapped to percentiles of
    their own training distribution they become comparable, so one extractor cannot crowd the others
    out of the budget just because its numbers are bigger.
    """
    q = np.asarray(q, dtype=np.float64)
    levels = np.linspace(0.0, 1.0, len(q))
    q, first = np.unique(q, return_index=True)  # ties in the reference (many equal counts) collapse
    if len(q) == 1:
        return np.where(np.asarray(scores) >= q[0], 1.0, 0.0)
    last = first + np.diff(np.r_[first, len(levels)]) - 1  # a repeated value counts as its last level
    return np.interp(scores, q, levels[last], left=0.0, right=1.0)
