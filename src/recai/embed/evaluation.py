"""Per-task retrieval quality of an encoder on matching-task examples, over the full catalog.

Every query is embedded and ranked against every catalog item. Items that the query itself names
are excluded from the ranking (a history task's history, an item-to-item task's anchor): retrieving
what the user already told us is not a recommendation. Each example has one positive, so Recall@k is
hit@k; NDCG@k is 1/log2(rank + 1) inside the top k. For examples that state conditions, coverage@k is
the share of the top k that satisfy every condition (from the example's own predicates). Means come
with percentile-bootstrap intervals over queries, and two encoders are compared on the same queries
with a paired test.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from recai.data.catalog import Catalog
from recai.embed.cache import EmbeddingCache
from recai.embed.encoder import Encoder
from recai.embed.tasks.example import Example
from recai.evaluate.compare import holm, paired_statistics
from recai.evaluate.metrics import bootstrap_ci

DEFAULT_KS = (1, 5, 10, 20)


def query_items(example: Example) -> list[Any]:
    """The item ids a query already names (excluded from its ranking)."""
    source = example.source
    named = list(source.get("history", []) or [])
    if example.task == "item_item" and "anchor" in source:
        named.append(source["anchor"])
    return [i for i in named if i != example.positive]


@dataclass
class RetrievalEvaluation:
    """Per-example scores (for paired comparisons) and their per-task summaries.

    Attributes:
        encoder: The evaluated encoder's identity.
        ks: The cut-offs of recall@k, ndcg@k and coverage@k.
        records: One dict per example: its id, task, the positive's rank and every per-example metric.
        tasks: Per task, ``n``, the median rank and each metric's mean with its bootstrap interval.
        macro: Each metric's mean over tasks (every task weighs the same).
    """

    encoder: str
    ks: tuple[int, ...]
    records: list[dict[str, Any]]
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    macro: dict[str, float] = field(default_factory=dict)

    def to_dict(self, *, with_records: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "encoder": self.encoder,
            "ks": list(self.ks),
            "n": len(self.records),
            "tasks": self.tasks,
            "macro": self.macro,
        }
        if with_records:
            out["records"] = self.records
        return out

    def scores(self, metric: str) -> dict[str, float]:
        """example id -> value of one per-example metric (None values are left out)."""
        return {r["id"]: r[metric] for r in self.records if r.get(metric) is not None}


def item_vectors(
    encoder: Encoder,
    catalog: Catalog,
    *,
    max_chars: int = 512,
    cache: EmbeddingCache | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Every catalog item's vector, rendered as the catalog index renders it."""
    texts = catalog.texts(max_chars=max_chars)
    if cache is not None:
        vectors, _ = cache.encode(encoder, texts, kind="item")
        return vectors
    out = []
    chunk = 1024
    for start in tqdm(range(0, len(texts), chunk), desc="encoding items", disable=not progress):
        out.append(encoder.encode(texts[start : start + chunk], kind="item"))
    return np.concatenate(out) if out else np.zeros((0, encoder.dim), dtype=np.float32)


def evaluate_retrieval(
    encoder: Encoder,
    catalog: Catalog,
    examples: Sequence[Example],
    *,
    ks: Sequence[int] = DEFAULT_KS,
    exclude_named: bool = True,
    items: np.ndarray | None = None,
    item_max_chars: int = 512,
    cache: EmbeddingCache | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    progress: bool = True,
    batch: int = 256,
) -> RetrievalEvaluation:
    """Rank the full catalog for every example's query and score the positive's rank per task."""
    if not examples:
        raise ValueError("no examples to evaluate")
    ks = tuple(sorted({int(k) for k in ks}))
    if ks[0] < 1:
        raise ValueError(f"ks must be positive, got {ks}")
    max_k = min(ks[-1], len(catalog))
    if items is None:
        items = item_vectors(encoder, catalog, max_chars=item_max_chars, cache=cache, progress=progress)
    if items.shape[0] != len(catalog):
        raise ValueError(f"item vectors have {items.shape[0]} rows for a catalog of {len(catalog)} items")
    positives = catalog.index_of([e.positive for e in examples])
    records: list[dict[str, Any]] = []
    bar = tqdm(total=len(examples), desc=f"retrieval ({encoder.identity})", disable=not progress)
    for start in range(0, len(examples), batch):
        chunk = list(examples[start : start + batch])
        queries = encoder.encode([e.query for e in chunk], kind="query")
        scores = queries @ items.T
        for row, example in enumerate(chunk):
            s = scores[row]
            pos = int(positives[start + row])
            if exclude_named:
                named = catalog.index_of(query_items(example), missing="drop")
                s[np.asarray(named, dtype=np.int64)] = -np.inf
            rank = int((s > s[pos]).sum())  # 0-based; ties broken in the positive's favour
            top = np.argpartition(-s, max_k - 1)[:max_k]
            top = top[np.argsort(-s[top], kind="stable")]
            record: dict[str, Any] = {"id": example.id, "task": example.task, "rank": rank + 1}
            for k in ks:
                record[f"recall@{k}"] = float(rank < k)
                record[f"ndcg@{k}"] = float(1.0 / np.log2(rank + 2)) if rank < k else 0.0
            record["mrr"] = 1.0 / (rank + 1)
            if example.predicates:
                answers = example.satisfying(catalog)
                for k in ks:
                    record[f"coverage@{k}"] = float(answers[top[:k]].mean())
            records.append(record)
        bar.update(len(chunk))
    bar.close()
    return summarize_records(encoder.identity, ks, records, n_resamples=n_resamples, seed=seed)


def summarize_records(
    encoder: str,
    ks: Sequence[int],
    records: list[dict[str, Any]],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> RetrievalEvaluation:
    """Per-task means with bootstrap intervals, and the macro average over tasks."""
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_task[r["task"]].append(r)
    metrics = [f"{m}@{k}" for m in ("recall", "ndcg", "coverage") for k in ks] + ["mrr"]
    tasks: dict[str, dict[str, Any]] = {}
    for task in sorted(by_task):
        rows = by_task[task]
        entry: dict[str, Any] = {"n": len(rows), "median_rank": float(np.median([r["rank"] for r in rows]))}
        for metric in metrics:
            values = np.array([r[metric] for r in rows if r.get(metric) is not None], dtype=np.float64)
            if len(values) == 0:
                continue
            low, high = bootstrap_ci(values, n_resamples=n_resamples, seed=seed)
            entry[metric] = {"mean": float(values.mean()), "low": low, "high": high}
        tasks[task] = entry
    macro = {
        metric: float(np.mean([t[metric]["mean"] for t in tasks.values() if metric in t]))
        for metric in metrics
        if any(metric in t for t in tasks.values())
    }
    return RetrievalEvaluation(encoder, tuple(ks), records, tasks, macro)


def compare_retrieval(
    base: RetrievalEvaluation,
    tuned: RetrievalEvaluation,
    *,
    metrics: Sequence[str] = ("recall@10", "ndcg@10"),
    seed: int = 0,
    n_resamples: int = 10000,
) -> dict[str, Any]:
    """Paired per-task differences (tuned - base) on the same queries, with Holm-adjusted p-values."""
    base_by_id = {r["id"]: r for r in base.records}
    tuned_by_id = {r["id"]: r for r in tuned.records}
    if set(base_by_id) != set(tuned_by_id):
        raise ValueError("the two evaluations were not run on the same examples")
    out: dict[str, Any] = {"base": base.encoder, "tuned": tuned.encoder, "tasks": {}, "summary": {}}
    for metric in metrics:
        per_task: dict[str, dict[str, Any]] = {}
        for task in sorted(base.tasks):
            ids = [i for i, r in base_by_id.items() if r["task"] == task and r.get(metric) is not None]
            a = np.array([base_by_id[i][metric] for i in ids], dtype=np.float64)
            b = np.array([tuned_by_id[i][metric] for i in ids], dtype=np.float64)
            per_task[task] = paired_statistics(a, b, seed=seed, n_resamples=n_resamples)
        adjusted = holm([s["p_permutation"] for s in per_task.values()])
        for stats, p in zip(per_task.values(), adjusted, strict=True):
            stats["p_holm"] = p
        for task, stats in per_task.items():
            out["tasks"].setdefault(task, {})[metric] = stats
        wins = sum(1 for s in per_task.values() if s["diff"] > 0)
        base_macro = float(np.mean([s["mean_a"] for s in per_task.values()]))
        tuned_macro = float(np.mean([s["mean_b"] for s in per_task.values()]))
        out["summary"][metric] = {
            "tasks_improved": wins,
            "tasks_improved_significantly": sum(
                1 for s in per_task.values() if s["diff"] > 0 and s["p_holm"] < 0.05
            ),
            "tasks": len(per_task),
            "base_macro": base_macro,
            "tuned_macro": tuned_macro,
            "relative_gain": (tuned_macro - base_macro) / base_macro if base_macro > 0 else None,
            "mean_task_relative_gain": _mean_relative(per_task.values()),
        }
    return out


def _mean_relative(per_task: Any) -> float | None:
    """The mean over tasks of (tuned - base) / base, over tasks whose base is above zero."""
    gains = [(s["mean_b"] - s["mean_a"]) / s["mean_a"] for s in per_task if s["mean_a"] > 0]
    return float(np.mean(gains)) if gains else None
