"""Metrics checked against cases computed by hand (the arithmetic is written out in comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recai.evaluate.metrics import (
    bootstrap_ci,
    coverage,
    popularity_bias,
    ranking_metrics,
    relevance,
    summarize,
    top_k,
)

LOG2 = math.log2


def test_single_target_cases() -> None:
    rankings = np.array([[5, 3, 7], [1, 2, 3], [9, 8, 4]])
    targets = np.array([3, 6, 9])
    m = ranking_metrics(rankings, targets, ks=(1, 3))
    # user 0: target at rank 2; user 1: missing; user 2: rank 1.
    assert m["hit@1"].tolist() == [0, 0, 1]
    assert m["hit@3"].tolist() == [1, 0, 1]
    assert m["mrr@3"].tolist() == [0.5, 0, 1]
    assert m["ndcg@3"] == pytest.approx([1 / LOG2(3), 0, 1])
    assert m["precision@3"] == pytest.approx([1 / 3, 0, 1 / 3])
    assert m["recall@3"].tolist() == [1, 0, 1]
    assert m["map@3"] == pytest.approx([0.5, 0, 1])


def test_multi_target_cases() -> None:
    # relevant {1, 4, 6}; ranking 1, 2, 4, 5: hits at ranks 1 and 3.
    rankings = np.array([[1, 2, 4, 5]])
    targets = [[1, 4, 6]]
    m = ranking_metrics(rankings, targets, ks=(2, 4))
    assert m["recall@4"] == pytest.approx([2 / 3])
    assert m["precision@4"] == pytest.approx([2 / 4])
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG@4 with 3 relevant = 1 + 1/log2(3) + 1/log2(4).
    assert m["ndcg@4"] == pytest.approx([1.5 / (1 + 1 / LOG2(3) + 0.5)])
    # AP@4 = (P@1 * 1 + P@3 * 1) / min(3, 4) = (1 + 2/3) / 3.
    assert m["map@4"] == pytest.approx([(1 + 2 / 3) / 3])
    # @2: one hit at rank 1; IDCG@2 = 1 + 1/log2(3); AP@2 = 1 / min(3, 2).
    assert m["ndcg@2"] == pytest.approx([1 / (1 + 1 / LOG2(3))])
    assert m["map@2"] == pytest.approx([0.5])
    assert m["mrr@2"].tolist() == [1.0]


def test_targets_as_sparse_matrix_agree_with_lists() -> None:
    rankings = np.array([[0, 1, 2], [2, 1, 0]])
    lists = [[1], [0, 2]]
    matrix = sp.csr_matrix(([1, 1, 1], ([0, 1, 1], [1, 0, 2])), shape=(2, 3))
    a, b = ranking_metrics(rankings, lists, ks=(2,)), ranking_metrics(rankings, matrix, ks=(2,))
    for key in a:
        assert a[key] == pytest.approx(b[key])


def test_padding_and_repeats_never_score() -> None:
    rankings = np.array([[3, 3, -1], [-1, -1, -1]])
    rel, _n_rel = relevance(rankings, np.array([3, 0]))
    assert rel.tolist() == [[True, False, False], [False, False, False]]
    m = ranking_metrics(rankings, [[3, 7], [0]], ks=(3,))
    assert m["precision@3"] == pytest.approx([1 / 3, 0])  # the repeated 3 counts once
    assert m["recall@3"] == pytest.approx([0.5, 0])


def test_k_larger_than_the_list_uses_k_in_the_denominator() -> None:
    m = ranking_metrics(np.array([[4, 5]]), np.array([5]), ks=(10,))
    assert m["precision@10"] == pytest.approx([0.1])
    assert m["ndcg@10"] == pytest.approx([1 / LOG2(3)])


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        ranking_metrics(np.array([[1]]), np.array([1]), metrics=("auc",))
    with pytest.raises(ValueError, match="no relevant items"):
        ranking_metrics(np.array([[1]]), [[]])
    with pytest.raises(ValueError, match="2 targets for 1 rankings"):
        ranking_metrics(np.array([[1]]), np.array([1, 2]))
    with pytest.raises(ValueError, match="2-D"):
        ranking_metrics(np.array([1, 2]), np.array([1]))


def test_top_k_orders_breaks_ties_by_index_and_excludes() -> None:
    scores = np.array([[0.1, 0.9, 0.9, 0.5, 0.9], [1.0, 2.0, 3.0, 4.0, 5.0]])
    assert top_k(scores, 2).tolist() == [[1, 2], [4, 3]]
    assert top_k(scores, 2, exclude=[[1], [4, 3]]).tolist() == [[2, 4], [2, 1]]
    excl = sp.csr_matrix(([1, 1], ([0, 1], [2, 0])), shape=(2, 5))
    assert top_k(scores, 3, exclude=excl).tolist() == [[1, 4, 3], [4, 3, 2]]
    # Fewer allowed items than k: the rest is padding.
    assert top_k(np.array([[1.0, 2.0]]), 3, exclude=[[0]]).tolist() == [[1, -1]]


def test_top_k_matches_a_full_sort_on_random_scores_with_ties() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, (50, 40)).astype(float)
    expected = np.array([np.lexsort((np.arange(40), -row))[:7] for row in scores])
    assert np.array_equal(top_k(scores, 7), expected)


def test_bootstrap_interval_brackets_the_mean_and_is_seeded() -> None:
    values = np.random.default_rng(1).random(500)
    low, high = bootstrap_ci(values, seed=3)
    assert low < values.mean() < high
    assert (low, high) == bootstrap_ci(values, seed=3)
    # For a mean of 500 uniforms the standard error is about 0.0129: a 95% interval is about +-0.025.
    assert 0.035 < high - low < 0.065
    assert bootstrap_ci(np.array([0.7])) == (0.7, 0.7)
    s = summarize({"hit@10": values})["hit@10"]
    assert s.n == 500 and s.low < s.mean < s.high and s.as_dict()["mean"] == pytest.approx(values.mean())


def test_coverage_and_popularity_bias() -> None:
    rankings = np.array([[0, 1], [0, 2], [0, -1]])
    assert coverage(rankings, 10) == pytest.approx(0.3)
    counts = np.array([100, 50, 10, 0, 0, 0, 0, 0, 0, 0])
    bias = popularity_bias(rankings, counts, head_share=0.2)
    # slots: 0, 1, 0, 2, 0 -> counts 100, 50, 100, 10, 100 -> mean 72 / max 100.
    assert bias["arp"] == pytest.approx(0.72)
    # head = items 0 and 1; the only tail slot is item 2.
    assert bias["long_tail_share"] == pytest.approx(1 / 5)
    # percentiles: item 0 -> 9/9, item 1 -> 8/9, item 2 -> 7/9.
    assert bias["popularity_percentile"] == pytest.approx((3 * 1 + 8 / 9 + 7 / 9) / 5)


def test_popularity_ties_share_a_percentile() -> None:
    counts = np.array([0] * 8 + [5, 9])
    a = popularity_bias(np.array([[0]]), counts)["popularity_percentile"]
    b = popularity_bias(np.array([[7]]), counts)["popularity_percentile"]
    assert a == b
    flat = popularity_bias(np.array([[0, 3]]), np.ones(10))
    assert flat["popularity_percentile"] == pytest.approx(0.5) and flat["long_tail_share"] == 0.0


def test_edge_cases_of_top_k_and_sparse_targets() -> None:
    assert top_k(np.ones((2, 3)), 0).shape == (2, 0)
    stored_zero = sp.csr_matrix((np.array([1.0, 0.0]), (np.array([0, 0]), np.array([1, 2]))), shape=(1, 3))
    assert ranking_metrics(np.array([[1, 0]]), stored_zero, ks=(2,))["recall@2"].tolist() == [1.0]
