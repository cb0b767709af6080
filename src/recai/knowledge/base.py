"""The one API every knowledge extractor implements (on :class:`recai.rec.estimator.Estimator`, like the
recommenders).

Hyperparameters go to ``__init__``; ``fit(catalog, train)`` learns attributes that end with ``_`` from
the catalog and the *training* interactions only (the caller passes the training part of a split, never
the events that are evaluated), and returns self; ``facts(query)`` lists what the extractor knows about
one sample; ``save`` / ``load`` write a folder atomically (``meta.json`` + ``state.npz``), so a fitted
knowledge base is reused as it was, instead of being refitted into something slightly different.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recai.data.catalog import Catalog
from recai.data.errors import DataError
from recai.data.interactions import Interactions
from recai.knowledge.facts import Fact, Query
from recai.rec.estimator import STATE_FILE, E, Estimator


class Extractor(Estimator):
    """Base class of the knowledge extractors, so a knowledge base fits, queries and saves them alike.

    An extractor implements ``_fit(catalog, train, model)`` and ``_facts(query)``, and ``_n_items`` when
    its state is tied to the catalog's size (loading then refuses a catalog of another size).

    Args:
        arguments: the subclass ``__init__``'s ``locals()`` (its hyperparameters).
    """

    kind: ClassVar[str] = "extractor"
    #: True for extractors built on a trained recommender (``fit`` then needs ``model=``).
    needs_model: ClassVar[bool] = False
    family = "extractor"
    fit_call = "fit(catalog, train)"
    #: the catalog the facts are about, set by ``fit`` and ``load`` (None: not fitted)
    catalog_: Catalog | None = None

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

    # ------------------------------------------------------------- persist
    @classmethod
    def load(cls: type[E], path: str | Path, catalog: Catalog) -> E:
        """A saved extractor, attached to ``catalog`` (the one it was fitted with)."""
        extractor = cls._restore(path)
        extractor.catalog_ = catalog
        extractor._check_catalog(catalog, Path(path))
        return extractor

    def _meta(self) -> dict[str, Any]:
        return {"kind": self.kind}

    # --------------------------------------------------------- subclassing
    def _check_catalog(self, catalog: Catalog, path: Path) -> None:
        """Refuse a catalog of another size than the one the state was built for."""
        n = self._n_items()
        if n is not None and n != len(catalog):
            raise DataError(
                f"was fitted on a catalog of {n} items, but this catalog has {len(catalog)}",
                path=path / STATE_FILE,
            )

    def _n_items(self) -> int | None:
        """Catalog size the saved state assumes (None when it does not depend on it)."""
        return None

    @abstractmethod
    def _fit(self, catalog: Catalog, train: Interactions, model: Any) -> None: ...

    @abstractmethod
    def _facts(self, query: Query) -> list[Fact]: ...


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
