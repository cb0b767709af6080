"""A knowledge base: the fitted extractors of one dataset split, built once, saved, and reused.

Built from a :class:`~recai.data.splits.Split`: every extractor is fitted on ``split.train`` only, and
the recommenders that the embedding and recommender extractors need are fitted on ``split.train`` too
(with ``split.valid`` for early stopping, exactly as ``recai eval`` fits its baselines), so no evaluated
event can reach a prompt. Extractors that name the same model share one fitted instance.

Folder layout (written atomically): ``knowledge.json`` (kinds, each extractor's hyperparameters, the
catalog fingerprint and free-form metadata such as the data options) and one sub-folder per extractor
(see :meth:`recai.knowledge.base.Extractor.save`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from recai.data.atomic import atomic_directory
from recai.data.catalog import Catalog
from recai.data.errors import DataError
from recai.knowledge.attributes import AttributeExtractor
from recai.knowledge.base import Extractor
from recai.knowledge.cooccurrence import CooccurrenceExtractor
from recai.knowledge.embedding import EmbeddingExtractor
from recai.knowledge.facts import KINDS, Fact, Query
from recai.knowledge.graph import GraphExtractor
from recai.knowledge.patterns import PatternsExtractor
from recai.knowledge.recommender import RecommenderExtractor
from recai.rec.estimator import Registry, read_meta

#: The extractors by knowledge kind, in the order of :data:`~recai.knowledge.facts.KINDS`: the one list
#: that ``--knowledge``, ``--param kind.key=value`` and saved knowledge bases name them by.
EXTRACTORS: Registry[Extractor] = Registry(
    "knowledge kind",
    {
        "attributes": AttributeExtractor,
        "cooccurrence": CooccurrenceExtractor,
        "embedding": EmbeddingExtractor,
        "recommender": RecommenderExtractor,
        "patterns": PatternsExtractor,
        "graph": GraphExtractor,
    },
)
assert tuple(EXTRACTORS) == KINDS
FORMAT_VERSION = 1
META_FILE = "knowledge.json"


def parse_kinds(value: str | Iterable[str] | None) -> list[str]:
    """Extractor kinds from 'none', 'all' or a comma-separated list (order of :data:`KINDS`)."""
    if value is None:
        return []
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v) for v in value]
    names = [n for n in names if n]
    if names in (["none"], []):
        return []
    if "all" in names:
        return list(KINDS)
    unknown = [n for n in names if n not in EXTRACTORS]
    if unknown:
        raise ValueError(
            f"unknown knowledge kind(s) {unknown}: use none, all, or a comma-separated list of "
            f"{', '.join(KINDS)}"
        )
    return [k for k in KINDS if k in names]


def catalog_fingerprint(catalog: Catalog) -> dict[str, Any]:
    """The catalog's size and a hash of its ids in row order (positions must mean the same items)."""
    digest = hashlib.sha256(",".join(map(str, catalog.ids)).encode("utf-8")).hexdigest()
    return {"items": len(catalog), "ids_sha256": digest}


class KnowledgeBase:
    """Fitted extractors by kind, over one catalog.

    One object to build, save, load and query every kind of knowledge, so a ranker asks it for facts
    without knowing which extractors exist.

    Args:
        catalog: The catalog whose positions the facts refer to.
        extractors: Fitted extractors by kind (kept in the order of ``KINDS``).
        meta: What the base was built from (data options, parameters), saved with it.
    """

    def __init__(
        self, catalog: Catalog, extractors: Mapping[str, Extractor], meta: Mapping[str, Any]
    ) -> None:
        unknown = [k for k in extractors if k not in EXTRACTORS]
        if unknown:
            raise ValueError(f"unknown knowledge kind(s) {unknown}")
        self.catalog = catalog
        self.extractors = {k: extractors[k] for k in KINDS if k in extractors}
        self.meta = dict(meta)
        #: When the base was saved (set by save and load): tells a rebuilt base from the one a run used.
        self.saved_at: str | None = None

    def __repr__(self) -> str:
        return f"KnowledgeBase({', '.join(self.kinds) or 'empty'}, {len(self.catalog)} items)"

    @property
    def kinds(self) -> list[str]:
        return list(self.extractors)

    # ---------------------------------------------------------------- build
    @classmethod
    def build(
        cls,
        catalog: Catalog,
        split: Any,
        *,
        kinds: Sequence[str] | str = "all",
        params: Mapping[str, Mapping[str, Any]] | None = None,
        fit_model: Callable[[str], Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        progress: bool = False,
    ) -> KnowledgeBase:
        """Fit the extractors of ``kinds`` on ``split.train``.

        ``params`` gives each kind's hyperparameters (e.g. ``{"graph": {"hops": 3}}``); ``fit_model``
        returns a recommender fitted on the split's training part for a name such as ``"sasrec"``
        (default: :func:`recai.evaluate.prepare.fit_classic`).
        """
        from tqdm.auto import tqdm

        chosen = parse_kinds(kinds) if isinstance(kinds, str) else parse_kinds(list(kinds))
        params = dict(params or {})
        unknown = [k for k in params if k not in EXTRACTORS]
        if unknown:
            raise ValueError(f"params names unknown knowledge kind(s) {unknown}")
        if fit_model is None:
            from recai.evaluate.prepare import fit_classic

            def fit_model(name: str) -> Any:
                return fit_classic(name, split)

        models: dict[str, Any] = {}
        extractors: dict[str, Extractor] = {}
        started = time.perf_counter()
        for kind in tqdm(chosen, desc="fitting knowledge", disable=not progress, unit="extractor"):
            extractor = EXTRACTORS.build(kind, params.get(kind))
            model = None
            if extractor.needs_model:
                name = str(extractor.get_params()["model"])
                if name not in models:
                    models[name] = fit_model(name)
                model = models[name]
            extractors[kind] = extractor.fit(catalog, split.train, model=model)
        info = {
            **dict(meta or {}),
            "fitted_on": "train part of the split",
            "fit_seconds": round(time.perf_counter() - started, 1),
        }
        return cls(catalog, extractors, info)

    # ---------------------------------------------------------------- facts
    def facts(self, query: Query, kinds: Sequence[str] | None = None) -> list[Fact]:
        """Every fact of the chosen ``kinds`` (default: all this base holds) about ``query``."""
        wanted = self.kinds if kinds is None else list(kinds)
        missing = [k for k in wanted if k not in self.extractors]
        if missing:
            raise ValueError(
                f"this knowledge base has no {missing} extractor (it holds {self.kinds or 'none'})"
            )
        out: list[Fact] = []
        for kind in wanted:
            out.extend(self.extractors[kind].facts(query))
        return out

    def subset(self, kinds: Sequence[str]) -> KnowledgeBase:
        """The same fitted extractors, fewer kinds (nothing is refitted)."""
        missing = [k for k in kinds if k not in self.extractors]
        if missing:
            raise ValueError(
                f"this knowledge base has no {missing} extractor (it holds {self.kinds or 'none'})"
            )
        return KnowledgeBase(self.catalog, {k: self.extractors[k] for k in kinds}, self.meta)

    def model(self, name: str) -> Any | None:
        """The fitted recommender ``name`` the recommender extractor uses, if it is that one."""
        extractor = self.extractors.get("recommender")
        if isinstance(extractor, RecommenderExtractor) and extractor.model == name:
            return extractor.model_
        return None

    def config(self) -> dict[str, Any]:
        """Kinds and hyperparameters: what decides the facts (for run configs)."""
        return {kind: extractor.get_params() for kind, extractor in self.extractors.items()}

    # ------------------------------------------------------------- persist
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the folder (module docstring) atomically."""
        path = Path(path)
        with atomic_directory(path, overwrite=overwrite) as tmp:
            document = {
                "format_version": FORMAT_VERSION,
                "kinds": self.kinds,
                "extractors": self.config(),
                "catalog": catalog_fingerprint(self.catalog),
                "meta": self.meta,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            self.saved_at = document["saved_at"]
            (tmp / META_FILE).write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
            for kind, extractor in self.extractors.items():
                extractor.save(tmp / kind, overwrite=True)
        return path

    @staticmethod
    def read_meta(path: str | Path) -> dict[str, Any]:
        """``knowledge.json`` of a saved base, checked (to find its data before loading the catalog)."""
        document = read_meta(path, "a knowledge base", file=META_FILE, newest=FORMAT_VERSION)
        for key in ("kinds", "catalog"):
            if key not in document:
                raise DataError("missing", path=Path(path) / META_FILE, field=key)
        return document

    @classmethod
    def load(cls, path: str | Path, catalog: Catalog) -> KnowledgeBase:
        """A saved base, over the catalog it was built from (checked by size and id hash)."""
        path = Path(path)
        document = cls.read_meta(path)
        if document["catalog"] != catalog_fingerprint(catalog):
            raise DataError(
                f"was built on another catalog ({document['catalog'].get('items')} items) than the one "
                f"given ({len(catalog)} items, or the same size with other ids)",
                path=path / META_FILE,
                field="catalog",
            )
        kinds = parse_kinds(document["kinds"])
        extractors = {kind: EXTRACTORS[kind].load(path / kind, catalog) for kind in kinds}
        base = cls(catalog, extractors, document.get("meta", {}))
        base.saved_at = document.get("saved_at")
        return base

    def fingerprint(self) -> str:
        """A short hash of the kinds and hyperparameters, for run configs."""
        text = json.dumps({"kinds": self.kinds, "extractors": self.config()}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
