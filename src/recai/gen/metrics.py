"""Scores for generated recommendation lists: ranking against the held-out item and control compliance.

Per sample (one test example and the model's reply, parsed and bucketed by :mod:`recai.gen.generate`):

- ``recall@k``, ``ndcg@k``, ``mrr@K``: the valid items (catalog items not repeated and not from the
  history), in the order given and never padded, against the held-out item
  (:func:`recai.evaluate.generative.single_target_scores`; with one relevant item recall@k is hit@k);
  only for samples that have a held-out item;
- ``validity``: share of the named items that exist in the catalog, after the catalog's fuzzy grounding
  (a misspelt title that grounds counts as existing: it is what a user would be shown);
- ``exact_validity``: share of the named items written exactly as a catalog name (a trie path, or the
  unique name up to whitespace), so a fuzzy match cannot pass for knowing the catalog;
- ``repeats``: share of the named items that repeat an earlier one;
- ``in_history``: share of the named items the user already had;
- ``count_correct``: 1 when the number of distinct catalog items named equals the number requested;
  ``count_error`` is the absolute difference;
- ``compliance`` (samples with a category control): for "in" / "not in", the share of the distinct
  catalog items named that obey it; for "at least / at most p%", 1 when the list's share obeys it;
- ``empty``: 1 when the reply names nothing.

Every ratio is averaged over all samples, empty replies included, and an empty reply scores the worst
value on each: 0 on validity, count, compliance and the ranking metrics, and 1 on ``repeats`` and
``in_history`` (where lower is better), so a model cannot look good by saying nothing; ``empty`` is
reported next to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recai.data.catalog import Catalog
from recai.evaluate.generative import single_target_scores
from recai.evaluate.parsing import GroundedList
from recai.gen.examples import Control, GenExample
from recai.gen.generate import Parsed
from recai.gen.items import ItemNames
from recai.gen.tasks import item_values, satisfies

DEFAULT_KS = (1, 5, 10)


def compliance(values: Sequence[frozenset[str]], control: Control) -> float:
    """How well a list of items (their category values) obeys ``control``; 0 for an empty list."""
    if not values:
        return 0.0
    if control.mode in ("in", "not_in"):
        return float(np.mean([satisfies(v, control) for v in values]))
    share = float(np.mean([control.value in v for v in values]))
    assert control.share is not None
    ok = share >= control.share - 1e-9 if control.mode == "at_least" else share <= control.share + 1e-9
    return float(ok)


class GenScorer:
    """Turns (example, bucketed reply) pairs into per-sample scores for one catalog.

    It caches per-column item values and the catalog's names, which every sample's scores need.

    Args:
        catalog: The catalog the replies name items of.
        ks: The cut-offs of the ranking metrics.
    """

    def __init__(self, catalog: Catalog, *, ks: Sequence[int] = DEFAULT_KS) -> None:
        self.catalog = catalog
        self.ks = tuple(ks)
        self._values: dict[str, list[frozenset[str]]] = {}
        self._names: ItemNames | None = None

    @property
    def names(self) -> ItemNames:
        """The catalog's unique item names (built on first use)."""
        if self._names is None:
            self._names = ItemNames(self.catalog)
        return self._names

    def values(self, column: str) -> list[frozenset[str]]:
        if column not in self._values:
            self._values[column] = item_values(self.catalog, column)
        return self._values[column]

    def ground(self, example: GenExample, parsed: Parsed) -> GroundedList:
        """The reply's names bucketed against the example's history (items the user already had)."""
        seen = self.catalog.index_of(list(example.seen), missing="drop").tolist()
        return parsed.grounded(self.catalog, seen=seen)

    def score(self, example: GenExample, parsed: Parsed) -> tuple[dict[str, float], GroundedList]:
        """Per-sample scores of one reply, and its bucketed names."""
        catalog = self.catalog
        grounded = self.ground(example, parsed)
        named = len(grounded.names)
        counts = grounded.counts()
        distinct = list(dict.fromkeys(p for p in parsed.positions if p is not None))
        exact = sum(self.names.position(n) is not None for n in grounded.names)
        out: dict[str, float] = {
            "empty": float(named == 0),
            "validity": (named - counts["invalid"]) / named if named else 0.0,
            "exact_validity": exact / named if named else 0.0,
            "repeats": counts["duplicate"] / named if named else 1.0,
            "in_history": counts["already_seen"] / named if named else 1.0,
        }
        if example.k is not None:
            out["count_correct"] = float(len(distinct) == example.k)
            out["count_error"] = float(abs(len(distinct) - example.k))
        if example.target is not None:
            ranked = catalog.index_of(grounded.items).tolist()
            target = int(catalog.index_of([example.target])[0])
            for name, value in single_target_scores(ranked, target, self.ks).items():
                out[name.replace("hit@", "recall@")] = value
        if example.control is not None:
            column = self.values(example.control.column)
            out["compliance"] = compliance([column[p] for p in distinct], example.control)
        return out, grounded


def metrics_summary(records: Sequence[dict[str, Any]], *, seed: int = 0) -> dict[str, Any]:
    """The run's ``metrics.json`` (:func:`recai.evaluate.report.metrics_document`: mean and bootstrap
    interval of every score over the samples that have it), with per-task blocks under ``extra``."""
    from recai.evaluate.report import metrics_document, summarize_records

    counts: dict[str, int] = {}
    for r in records:
        for key, value in r["counts"].items():
            counts[key] = counts.get(key, 0) + int(value)
    tasks = sorted({r["task"] for r in records})
    per_task = {
        task: {
            "n": sum(r["task"] == task for r in records),
            "metrics": summarize_records([r for r in records if r["task"] == task], seed=seed),
        }
        for task in tasks
    }
    return metrics_document("gen", records, seed=seed, counts=counts, extra={"tasks": per_task})
