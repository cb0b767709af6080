"""Paired comparison of two runs: pairing by id, honest p-values, and refusal to compare unlike runs."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from recai.evaluate.compare import (
    IncomparableRunsError,
    compare_runs,
    format_comparison,
    holm,
    sign_flip_test,
)
from recai.evaluate.runs import RunFolder


def write_run(
    path: Path,
    scores: dict[str, dict[str, float | None]],
    *,
    task: str = "ranking",
    config: dict[str, object] | None = None,
) -> Path:
    cfg = config if config is not None else {"data": "demo", "model": path.name}
    with RunFolder.open(path, task=task, config=cfg) as run:
        for rid, s in scores.items():
            run.append({"id": rid, "scores": s})
    return path


def hits(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    return (rng.random(n) < p).astype(float)


def test_a_clearly_better_run_is_significant(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a = hits(rng, 300, 0.3)
    b = np.maximum(a, hits(rng, 300, 0.25))  # B keeps every A hit and finds more
    ndcg_a, ndcg_b = a * 0.5, b * 0.5
    run_a = write_run(tmp_path / "a", {f"u{i}": {"hit@10": a[i], "ndcg@10": ndcg_a[i]} for i in range(300)})
    run_b = write_run(tmp_path / "b", {f"u{i}": {"hit@10": b[i], "ndcg@10": ndcg_b[i]} for i in range(300)})
    result = compare_runs(run_a, run_b, n_resamples=2000)
    m = result["metrics"]["hit@10"]
    assert m["n"] == 300 and m["mean_a"] == pytest.approx(a.mean()) and m["mean_b"] == pytest.approx(b.mean())
    assert m["diff"] == pytest.approx(b.mean() - a.mean()) and m["diff"] > 0.1
    assert 0 < m["diff_low"] <= m["diff"] <= m["diff_high"]
    assert m["p_permutation"] < 0.001 and m["p_holm"] < 0.01 and m["p_wilcoxon"] < 0.001
    assert m["permutation"] == "monte carlo (2000)"
    assert m["a_better"] == 0 and m["b_better"] == int((b > a).sum())
    assert result["config_differences"] == ["model"]


def test_runs_equal_in_distribution_are_not_significant(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    a = hits(rng, 300, 0.3)
    b = rng.permutation(a)  # the same scores shuffled across samples: same mean, independent pairs
    run_a = write_run(tmp_path / "a", {f"u{i}": {"hit@10": a[i]} for i in range(300)})
    run_b = write_run(tmp_path / "b", {f"u{i}": {"hit@10": b[i]} for i in range(300)})
    m = compare_runs(run_a, run_b, n_resamples=2000)["metrics"]["hit@10"]
    assert m["diff"] == 0.0 and m["diff_low"] < 0 < m["diff_high"]
    assert m["p_permutation"] > 0.5 and m["p_wilcoxon"] > 0.5


def test_p_values_are_roughly_uniform_under_no_difference(tmp_path: Path) -> None:
    # Calibration: with no true difference, p < 0.05 should happen in about 5% of experiments.
    rng = np.random.default_rng(2)
    rejections = 0
    for _ in range(200):
        d = rng.normal(size=40) - rng.normal(size=40)
        p, _method = sign_flip_test(d, seed=0, n_resamples=999)
        rejections += p < 0.05
    assert 2 <= rejections <= 20


def test_records_are_paired_by_id_not_by_position(tmp_path: Path) -> None:
    a = {"x": {"s": 0.0}, "y": {"s": 1.0}, "z": {"s": 0.0}, "only-a": {"s": 1.0}}
    b = {"only-b": {"s": 0.0}, "z": {"s": 1.0}, "y": {"s": 1.0}, "x": {"s": 1.0}}  # another order
    result = compare_runs(write_run(tmp_path / "a", a), write_run(tmp_path / "b", b))
    assert (result["paired"], result["only_in_a"], result["only_in_b"]) == (3, 1, 1)
    assert result["only_in_a_ids"] == ["only-a"] and result["only_in_b_ids"] == ["only-b"]
    m = result["metrics"]["s"]
    assert (m["mean_a"], m["mean_b"], m["diff"]) == (pytest.approx(1 / 3), 1.0, pytest.approx(2 / 3))
    assert (m["b_better"], m["a_better"], m["ties"]) == (2, 0, 1)
    # Exact test: 2 non-zero differences (+1, +1): 4 sign patterns, 2 as extreme -> p = 0.5.
    assert m["permutation"] == "exact" and m["p_permutation"] == pytest.approx(0.5)


def test_metrics_are_compared_only_where_both_runs_scored(tmp_path: Path) -> None:
    a = {"u1": {"hit": 1.0, "judge": None, "only_a": 1.0}, "u2": {"hit": 0.0, "judge": 1.0}}
    b = {"u1": {"hit": 1.0, "judge": 0.0, "only_b": 1.0}, "u2": {"hit": 1.0, "judge": 0.0}}
    result = compare_runs(write_run(tmp_path / "a", a), write_run(tmp_path / "b", b))
    assert set(result["metrics"]) == {"hit", "judge"}
    assert result["metrics"]["judge"]["n"] == 1  # u1 has no judge score in A
    assert result["metrics_only_in_a"] == ["only_a"] and result["metrics_only_in_b"] == ["only_b"]


def test_the_exact_test_matches_enumeration_by_hand() -> None:
    d = np.array([0.5, 1.0, -0.25, 2.0, 0.0, 0.75])
    nz = d[d != 0]
    observed = abs(nz.sum())
    patterns = list(itertools.product((-1, 1), repeat=len(nz)))
    expected = sum(abs(np.dot(s, nz)) >= observed - 1e-12 for s in patterns) / len(patterns)
    p, method = sign_flip_test(d)
    assert method == "exact" and p == pytest.approx(expected)
    assert sign_flip_test(np.ones(5))[0] == pytest.approx(2 / 32)
    assert sign_flip_test(np.zeros(7)) == (1.0, "exact")


def test_monte_carlo_agrees_with_exact_and_is_seeded() -> None:
    rng = np.random.default_rng(3)
    d = rng.normal(0.3, 1.0, size=18)
    exact, _ = sign_flip_test(d)
    import recai.evaluate.compare as compare

    original = compare.EXACT_MAX
    compare.EXACT_MAX = 5
    try:
        mc, method = sign_flip_test(d, seed=7, n_resamples=20000)
        again, _ = sign_flip_test(d, seed=7, n_resamples=20000)
        other, _ = sign_flip_test(d, seed=8, n_resamples=20000)
    finally:
        compare.EXACT_MAX = original
    assert method == "monte carlo (20000)" and mc == again and mc != other
    assert mc == pytest.approx(exact, abs=0.01)


def test_comparisons_are_reproducible(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    a, b = rng.random(60), rng.random(60)
    run_a = write_run(tmp_path / "a", {f"u{i}": {"x": a[i]} for i in range(60)})
    run_b = write_run(tmp_path / "b", {f"u{i}": {"x": b[i]} for i in range(60)})
    assert compare_runs(run_a, run_b, seed=5) == compare_runs(run_a, run_b, seed=5)
    assert compare_runs(run_a, run_b, seed=5) != compare_runs(run_a, run_b, seed=6)


def test_unlike_runs_are_refused_unless_forced(tmp_path: Path) -> None:
    scores = {"u1": {"x": 1.0}, "u2": {"x": 0.0}}
    base = write_run(tmp_path / "a", scores)
    other_task = write_run(tmp_path / "b", scores, task="conversation")
    other_data = write_run(tmp_path / "c", scores, config={"data": "movielens-1m"})
    with pytest.raises(IncomparableRunsError, match="different 'task'"):
        compare_runs(base, other_task)
    with pytest.raises(IncomparableRunsError, match=r"different 'data'.*'demo' vs 'movielens-1m'"):
        compare_runs(base, other_data)
    forced = compare_runs(base, other_data, force=True)
    assert forced["forced"] and "force=True" in format_comparison(forced)
    assert not compare_runs(base, base)["forced"]


def test_runs_without_common_samples_are_an_error(tmp_path: Path) -> None:
    run_a = write_run(tmp_path / "a", {"u1": {"x": 1.0}})
    run_b = write_run(tmp_path / "b", {"u2": {"x": 1.0}})
    with pytest.raises(ValueError, match="no sample id in common"):
        compare_runs(run_a, run_b)
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        compare_runs(run_a, tmp_path / "nowhere")


def test_holm_adjustment() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_the_markdown_table(tmp_path: Path) -> None:
    a = {f"u{i}": {"hit@10": float(i % 2), "hit@5": 0.0} for i in range(10)}
    b = {f"u{i}": {"hit@10": 1.0, "hit@5": float(i % 3 == 0)} for i in range(10)}
    result = compare_runs(write_run(tmp_path / "a", a), write_run(tmp_path / "b", b))
    text = format_comparison(result)
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| metric |"))
    rows: Sequence[str] = lines[header + 2 : header + 4]
    assert rows[0].startswith("| hit@5 | 10 | 0.0000 | 0.4000 | +0.4000 [")  # natural order: @5 before @10
    assert rows[1].startswith("| hit@10 | 10 | 0.5000 | 1.0000 | +0.5000 [")
    assert "| 5 / 0 / 5 | 0.0625 |" in rows[1]  # five +1 differences: exact p = 2 / 2^5
    assert "paired samples: 10; only in A: 0; only in B: 0" in text


def test_runs_on_other_inputs_are_refused(tmp_path: Path) -> None:
    from recai.evaluate.compare import IncomparableRunsError, compare_runs
    from recai.evaluate.runs import RunFolder

    for name, seed in (("a", 0), ("b", 1)):
        with RunFolder.open(
            tmp_path / name, task="ranking", config={"data": "demo", "seed": seed, "system": name}
        ) as run:
            run.append({"id": "u1", "scores": {"hit@1": 1.0}})
    with pytest.raises(IncomparableRunsError, match="seed"):
        compare_runs(tmp_path / "a", tmp_path / "b")
    assert compare_runs(tmp_path / "a", tmp_path / "b", force=True)["paired"] == 1
