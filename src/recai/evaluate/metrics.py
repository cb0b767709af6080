"""Top-k ranking metrics, catalog coverage, popularity bias and bootstrap confidence intervals.

All metrics are vectorised over users. A ranking is an integer matrix ``(n_users, k)`` of item indices
(any index space: catalog positions for full-catalog ranking, or ids within a candidate list), padded
with -1 where a model returned fewer than k items. A repeated item counts once, at its first position,
so a model cannot score by listing the target twice. Targets are one item per user (leave-one-out) or
a set per user.

Definitions (rel_i = 1 if the item at rank i, 1-based, is relevant; R = the user's relevant items):
- Hit@k = 1 if any rel_i for i <= k
- Precision@k = sum(rel_i) / k
- Recall@k = sum(rel_i) / |R|
- NDCG@k = sum(rel_i / log2(i + 1)) / sum_{i <= min(|R|, k)} 1 / log2(i + 1)
- MRR@k = 1 / (rank of the first relevant item), 0 if none within k
- MAP@k = sum(Precision@i * rel_i) / min(|R|, k)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

METRICS = ("hit", "recall", "precision", "ndcg", "mrr", "map")
Targets = np.ndarray | Sequence[Iterable[int]] | sp.spmatrix


@dataclass(frozen=True)
class MetricSummary:
    """Mean over users with a bootstrap confidence interval.

    Attributes:
        mean: The mean over users.
        low: Lower end of the bootstrap confidence interval.
        high: Upper end of the bootstrap confidence interval.
        n: How many users the mean is over.
    """

    mean: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "ci_low": self.low, "ci_high": self.high, "n": self.n}


def _target_lists(targets: Targets, n: int) -> list[np.ndarray]:
    if sp.issparse(targets):
        csr = sp.csr_matrix(targets, copy=True)
        csr.eliminate_zeros()  # an explicitly stored 0 is not a relevant item
        if csr.shape[0] != n:
            raise ValueError(f"{csr.shape[0]} target rows for {n} rankings")
        return [csr.indices[csr.indptr[u] : csr.indptr[u + 1]] for u in range(n)]
    if isinstance(targets, np.ndarray) and targets.ndim == 1 and targets.dtype != object:
        if len(targets) != n:
            raise ValueError(f"{len(targets)} targets for {n} rankings")
        return [targets[u : u + 1] for u in range(n)]
    lists = [np.unique(np.asarray(list(t), dtype=np.int64)) for t in targets]
    if len(lists) != n:
        raise ValueError(f"{len(lists)} target sets for {n} rankings")
    return lists


def relevance(rankings: np.ndarray, targets: Targets) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (n, k) matrix of relevant positions, and the number of relevant items per user."""
    rankings = np.asarray(rankings, dtype=np.int64)
    if rankings.ndim != 2:
        raise ValueError(f"rankings must be a 2-D (users x k) array, got shape {rankings.shape}")
    n, _k = rankings.shape
    if isinstance(targets, np.ndarray) and targets.ndim == 1 and targets.dtype != object:
        if len(targets) != n:
            raise ValueError(f"{len(targets)} targets for {n} rankings")
        rel = rankings == targets.astype(np.int64)[:, None]
        n_rel = np.ones(n, dtype=np.int64)
    else:
        lists = _target_lists(targets, n)
        n_rel = np.array([len(t) for t in lists], dtype=np.int64)
        rows = np.repeat(np.arange(n), n_rel)
        flat = np.concatenate(lists) if lists else np.empty(0, np.int64)
        width = int(max(rankings.max(initial=-1), flat.max(initial=-1))) + 2
        target_codes = rows * width + flat
        ranking_codes = np.arange(n)[:, None] * width + rankings
        rel = np.isin(ranking_codes, target_codes)
    empty = np.flatnonzero(n_rel == 0)
    if len(empty):
        raise ValueError(
            f"{len(empty)} users have no relevant items (first rows: {empty[:5].tolist()}); drop them"
        )
    rel &= rankings >= 0
    rel &= ~_repeats(rankings)
    return rel, n_rel


def _repeats(rankings: np.ndarray) -> np.ndarray:
    """True where an item already appeared earlier in the same row."""
    order = np.argsort(rankings, axis=1, kind="stable")
    ordered = np.take_along_axis(rankings, order, axis=1)
    dup_sorted = np.zeros_like(ordered, dtype=bool)
    dup_sorted[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    out = np.zeros_like(dup_sorted)
    np.put_along_axis(out, order, dup_sorted, axis=1)
    return out


def ranking_metrics(
    rankings: np.ndarray,
    targets: Targets,
    ks: Sequence[int] = (1, 5, 10, 20),
    metrics: Sequence[str] = METRICS,
) -> dict[str, np.ndarray]:
    """Per-user values of each metric at each k, keyed like ``"ndcg@10"``."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; available: {METRICS}")
    rel, n_rel = relevance(rankings, targets)
    width = rel.shape[1]
    relf = rel.astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, width + 2))
    cum_hits = np.cumsum(relf, axis=1)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        kk = min(k, width)
        hits = cum_hits[:, kk - 1] if kk else np.zeros(len(rel))
        for m in metrics:
            if m == "hit":
                v = (hits > 0).astype(np.float64)
            elif m == "precision":
                v = hits / k
            elif m == "recall":
                v = hits / n_rel
            elif m == "ndcg":
                dcg = relf[:, :kk] @ discounts[:kk]
                ideal_len = np.minimum(n_rel, k)
                ideal = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))[ideal_len - 1]
                v = dcg / ideal
            elif m == "mrr":
                first = np.argmax(rel[:, :kk], axis=1)
                found = rel[:, :kk].any(axis=1)
                v = np.where(found, 1.0 / (first + 1), 0.0)
            else:  # map
                precision_at_i = cum_hits[:, :kk] / np.arange(1, kk + 1)
                v = (precision_at_i * relf[:, :kk]).sum(axis=1) / np.minimum(n_rel, k)
            out[f"{m}@{k}"] = v
    return out


def bootstrap_ci(
    values: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (users resampled with replacement)."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    if n == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    batch = max(1, min(n_resamples, 2_000_000 // n))
    for start in range(0, n_resamples, batch):
        stop = min(start + batch, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))


def summarize(
    per_user: dict[str, np.ndarray], *, confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> dict[str, MetricSummary]:
    """Mean and bootstrap interval for every per-user metric array."""
    out = {}
    for name, values in per_user.items():
        low, high = bootstrap_ci(values, confidence=confidence, n_resamples=n_resamples, seed=seed)
        out[name] = MetricSummary(float(np.mean(values)), low, high, len(values))
    return out


def top_k(
    scores: np.ndarray, k: int, *, exclude: sp.spmatrix | Sequence[Iterable[int]] | None = None
) -> np.ndarray:
    """Indices of the k highest scores per row, best first; excluded items (e.g. the history) never
    appear. Ties go to the lower index, so results are deterministic."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    n, m = scores.shape
    if k <= 0 or m == 0:
        return np.empty((n, 0), dtype=np.int64)
    if exclude is not None:
        if sp.issparse(exclude):
            coo = sp.coo_matrix(exclude)
            scores[coo.row, coo.col] = -np.inf
        else:
            for u, items in enumerate(exclude):
                idx = np.fromiter(items, dtype=np.int64)
                if len(idx):
                    scores[u, idx] = -np.inf
    k = min(k, m)
    part = np.argpartition(-scores, kth=k - 1, axis=1)[:, :k] if k < m else np.tile(np.arange(m), (n, 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    ranked = np.take_along_axis(part, order, axis=1)
    ranked_scores = np.take_along_axis(part_scores, order, axis=1)
    # Items tied at the cut-off with a lower index than a kept one must win: resolve exactly.
    boundary = ranked_scores[:, -1]
    ties = (scores == boundary[:, None]).sum(axis=1) > (ranked_scores == boundary[:, None]).sum(axis=1)
    for u in np.flatnonzero(ties):
        full = np.lexsort((np.arange(m), -scores[u]))[:k]
        ranked[u] = full
        ranked_scores[u] = scores[u, full]
    ranked[~np.isfinite(ranked_scores)] = -1
    return ranked


def coverage(rankings: np.ndarray, n_items: int) -> float:
    """Share of the catalog that appears in at least one recommendation list."""
    rankings = np.asarray(rankings)
    shown = np.unique(rankings[rankings >= 0])
    return float(len(shown) / n_items) if n_items else 0.0


def popularity_bias(
    rankings: np.ndarray, item_counts: np.ndarray, *, head_share: float = 0.2
) -> dict[str, float]:
    """How much recommendations lean towards already popular items.

    - ``arp``: average recommendation popularity, the mean training interaction count of recommended
      items divided by the number of training interactions of the most popular item (0..1);
    - ``popularity_percentile``: mean percentile of recommended items in the popularity order (0 = the
      least popular item, 1 = the most popular); 0.5 means no lean;
    - ``long_tail_share``: share of recommended slots outside the head (the ``head_share`` most
      popular items).
    """
    rankings = np.asarray(rankings)
    counts = np.asarray(item_counts, dtype=np.float64)
    valid = rankings >= 0
    items = rankings[valid]
    if len(items) == 0:
        return {"arp": 0.0, "popularity_percentile": 0.0, "long_tail_share": 0.0}
    # Average ranks: items with equal counts get equal percentiles (all-equal counts give 0.5).
    percentile = (rankdata(counts, method="average") - 1) / max(len(counts) - 1, 1)
    head_size = max(1, round(head_share * len(counts)))
    cutoff = np.sort(counts)[::-1][head_size - 1]
    head = counts >= cutoff if cutoff > 0 else counts > 0  # ties at the cut-off all belong to the head
    return {
        "arp": float(counts[items].mean() / max(counts.max(), 1.0)),
        "popularity_percentile": float(percentile[items].mean()),
        "long_tail_share": float((~head[items]).mean()),
    }
