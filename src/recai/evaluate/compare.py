"""Two runs side by side: paired differences with intervals and significance tests.

Samples are paired by record ``id``, so the comparison asks "on the same inputs, did B score higher
than A?", which is far more sensitive than comparing two means with overlapping intervals. For every
per-sample score present in both runs:

- the mean of A and of B over the paired samples, and the mean difference B - A with a paired
  percentile-bootstrap 95% interval (pairs resampled together);
- a two-sided paired sign-flip permutation test of the mean difference: under "no difference" each
  pair's difference is as likely to have either sign. Exact (all 2^m sign patterns) for up to
  ``EXACT_MAX`` non-zero differences, otherwise Monte Carlo with ``n_resamples`` seeded draws and the
  (1 + hits) / (1 + draws) estimate, which is never 0;
- Holm's adjustment of those p-values over the metrics compared (many metrics, many chances);
- the Wilcoxon signed-rank p-value (scipy) as a second opinion that depends on ranks, not magnitudes.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from recai.errors import RecaiError
from recai.evaluate.metrics import bootstrap_ci
from recai.evaluate.report import natural_key
from recai.evaluate.runs import RunFolder, config_differences

#: Up to this many non-zero differences the permutation test enumerates every sign pattern exactly.
EXACT_MAX = 20
#: Config keys that must agree for two runs to be comparable (unless ``force=True``), checked first.
MUST_MATCH = ("task", "data")
#: Config keys that may differ: what is being compared, and how many samples each run holds (pairs are
#: matched by id). Every other key (seed, k-core, candidates, negatives, history length, k, simulator,
#: judge...) decides the inputs, so it must agree too.
MAY_DIFFER = frozenset({"system", "model", "judge", "n", "n_users", "sasrec_budget_s", "_volatile"})


class IncomparableRunsError(ValueError, RecaiError):
    """The runs measured different things (another task or another dataset)."""


def compare_runs(
    run_a: str | Path | RunFolder,
    run_b: str | Path | RunFolder,
    *,
    seed: int = 0,
    n_resamples: int = 10000,
    force: bool = False,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Compare two run folders sample by sample (see the module docstring for the statistics)."""
    a, b = (r if isinstance(r, RunFolder) else RunFolder.load(r) for r in (run_a, run_b))
    for key in MUST_MATCH:
        va, vb = a.config.get(key), b.config.get(key)
        if _canonical(va) != _canonical(vb) and not force:
            raise IncomparableRunsError(
                f"{a.path} and {b.path} have different '{key}' in config.json ({va!r} vs {vb!r}); "
                "their scores are not comparable (force=True compares them anyway)"
            )
    if not force:
        differing = [
            key for key in config_differences(a.config, b.config) if key.split(".", 1)[0] not in MAY_DIFFER
        ]
        if differing:
            raise IncomparableRunsError(
                f"{a.path} and {b.path} were run on different inputs ({', '.join(differing)} differ in "
                "config.json); pairing their samples would compare unlike things (force=True compares anyway)"
            )
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    scores_a, scores_b = _scores(a), _scores(b)
    paired = sorted(set(scores_a) & set(scores_b))
    only_a = sorted(set(scores_a) - set(scores_b))
    only_b = sorted(set(scores_b) - set(scores_a))
    if not paired:
        raise ValueError(f"{a.path} and {b.path} have no sample id in common: nothing to pair")
    names_a = {m for s in scores_a.values() for m in s}
    names_b = {m for s in scores_b.values() for m in s}
    metrics: dict[str, dict[str, Any]] = {}
    for name in sorted(names_a & names_b, key=natural_key):
        ids = [i for i in paired if name in scores_a[i] and name in scores_b[i]]
        if not ids:
            continue
        xa = np.array([scores_a[i][name] for i in ids], dtype=np.float64)
        xb = np.array([scores_b[i][name] for i in ids], dtype=np.float64)
        metrics[name] = paired_statistics(xa, xb, seed=seed, n_resamples=n_resamples, confidence=confidence)
    for name, p in zip(metrics, holm([m["p_permutation"] for m in metrics.values()]), strict=True):
        metrics[name]["p_holm"] = p
    return {
        "run_a": str(a.path),
        "run_b": str(b.path),
        "task": a.task,
        "forced": force
        and any(_canonical(a.config.get(k)) != _canonical(b.config.get(k)) for k in MUST_MATCH),
        "config_differences": config_differences(a.config, b.config),
        "paired": len(paired),
        "only_in_a": len(only_a),
        "only_in_b": len(only_b),
        "only_in_a_ids": only_a[:20],
        "only_in_b_ids": only_b[:20],
        "metrics_only_in_a": sorted(names_a - names_b, key=natural_key),
        "metrics_only_in_b": sorted(names_b - names_a, key=natural_key),
        "seed": seed,
        "n_resamples": n_resamples,
        "confidence": confidence,
        "metrics": metrics,
    }


def paired_statistics(
    a: np.ndarray, b: np.ndarray, *, seed: int = 0, n_resamples: int = 10000, confidence: float = 0.95
) -> dict[str, Any]:
    """Means, the mean difference b - a with its paired bootstrap interval, and the two p-values."""
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores need two 1-D arrays of one length, got {a.shape} and {b.shape}")
    d = b - a
    low, high = bootstrap_ci(d, confidence=confidence, n_resamples=n_resamples, seed=seed)
    p_perm, method = sign_flip_test(d, seed=seed, n_resamples=n_resamples)
    return {
        "n": len(d),
        "mean_a": float(a.mean()),
        "mean_b": float(b.mean()),
        "diff": float(d.mean()),
        "diff_low": low,
        "diff_high": high,
        "b_better": int((d > 0).sum()),
        "a_better": int((d < 0).sum()),
        "ties": int((d == 0).sum()),
        "p_permutation": p_perm,
        "permutation": method,
        "p_wilcoxon": wilcoxon_p(d),
    }


def sign_flip_test(d: np.ndarray, *, seed: int = 0, n_resamples: int = 10000) -> tuple[float, str]:
    """Two-sided p-value of the paired sign-flip test on the mean difference, and how it was computed.

    Zero differences flip to themselves, so only the m non-zero ones matter: exact over 2^m patterns
    when m <= EXACT_MAX, else Monte Carlo.
    """
    nz = np.asarray(d, dtype=np.float64)
    nz = nz[nz != 0]
    m = len(nz)
    if m == 0:
        return 1.0, "exact"
    observed = abs(nz.sum())
    tol = 1e-9 * max(1.0, float(np.abs(nz).sum()))  # equal sums must count as "as extreme" despite rounding
    if m <= EXACT_MAX:
        sums = np.zeros(1)
        for x in nz:  # every subset sum with signs: doubling, 2^m values in the end
            sums = np.concatenate([sums + x, sums - x])
        return float(np.mean(np.abs(sums) >= observed - tol)), "exact"
    rng = np.random.default_rng(seed)
    hits = 0
    batch = max(1, min(n_resamples, 4_000_000 // m))
    for start in range(0, n_resamples, batch):
        size = min(batch, n_resamples - start)
        signs = rng.integers(0, 2, size=(size, m), dtype=np.int8) * 2 - 1
        hits += int((np.abs(signs @ nz) >= observed - tol).sum())
    return (hits + 1) / (n_resamples + 1), f"monte carlo ({n_resamples})"


def wilcoxon_p(d: np.ndarray) -> float | None:
    """Wilcoxon signed-rank two-sided p (zero differences dropped); 1.0 when every difference is zero."""
    if not np.any(d != 0):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            p = float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
        except ValueError:
            return None
    return p if math.isfinite(p) else None


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given)."""
    n = len(pvalues)
    order = sorted(range(n), key=lambda i: pvalues[i])
    adjusted = [0.0] * n
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (n - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def format_comparison(result: Mapping[str, Any]) -> str:
    """A Markdown summary of :func:`compare_runs`."""
    conf = round(result.get("confidence", 0.95) * 100)
    lines = [
        f"# Comparison: {result['task']}",
        "",
        f"- A: `{result['run_a']}`",
        f"- B: `{result['run_b']}`",
        f"- paired samples: {result['paired']}; only in A: {result['only_in_a']}; "
        f"only in B: {result['only_in_b']}",
    ]
    if result.get("forced"):
        lines.append("- **compared with force=True although task or data differ**")
    if result.get("config_differences"):
        lines.append(f"- config differs in: {', '.join(f'`{k}`' for k in result['config_differences'])}")
    lines += [
        "",
        f"| metric | n | A | B | B − A [{conf}% CI] | B>A / A>B / = | p (permutation) | p (Holm) | "
        "p (Wilcoxon) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in result["metrics"].items():
        ci = f"[{_signed(m['diff_low'])}, {_signed(m['diff_high'])}]"
        lines.append(
            f"| {name.replace('|', chr(92) + '|')} | {m['n']} | {m['mean_a']:.4f} | {m['mean_b']:.4f} | "
            f"{_signed(m['diff'])} {ci} | {m['b_better']} / {m['a_better']} / {m['ties']} | "
            f"{_p(m['p_permutation'])} | {_p(m['p_holm'])} | {_p(m['p_wilcoxon'])} |"
        )
    if not result["metrics"]:
        lines.append("| (no score present in both runs) | | | | | | | | |")
    methods = sorted({m["permutation"] for m in result["metrics"].values()})
    lines += [
        "",
        f"Paired by sample id. Intervals: paired bootstrap; p (permutation): two-sided sign-flip test "
        f"({', '.join(methods) or 'n/a'}, seed {result['seed']}); p (Holm): adjusted over the "
        f"{len(result['metrics'])} metrics; p (Wilcoxon): signed-rank test, zero differences dropped.",
    ]
    for side in ("a", "b"):
        only = result.get(f"metrics_only_in_{side}")
        if only:
            lines.append(f"Scores only in {side.upper()}: {', '.join(only)}.")
    return "\n".join(lines) + "\n"


def _scores(run: RunFolder) -> dict[str, dict[str, float]]:
    """{id: {metric: value}} for the run's records (None scores left out)."""
    out: dict[str, dict[str, float]] = {}
    for record in run.records():
        raw = record.get("scores") or {}
        if not isinstance(raw, Mapping):
            raise ValueError(f"{run.path}: record {record['id']!r} has 'scores' that is not a dict")
        out[record["id"]] = {str(k): float(v) for k, v in raw.items() if v is not None}
    return out


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _signed(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:+.4f}"


def _p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2e}" if value < 1e-3 else f"{value:.4f}"
