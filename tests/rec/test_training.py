from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recai.data import Catalog, Interactions
from recai.evaluate.recommender import evaluate_recommender, quick_ndcg
from recai.rec import BPR, ItemKNN, Popularity, SASRec
from recai.rec.history import UnresolvedTitleError, resolve_history
from recai.testing.data import ring_log


def test_early_stopping_keeps_the_best_validation_state() -> None:
    log = ring_log(n_users=80, length=14)
    from recai.data import leave_one_out

    split = leave_one_out(log)
    model = BPR(factors=8, iterations=200, eval_every=10, patience=3, learning_rate=0.05, seed=0)
    model.fit(split.train, valid=split.valid)
    scores = [h["valid_ndcg@10"] for h in model.history_]
    assert len(scores) < 20  # stopped before 200 iterations
    assert quick_ndcg(model, split.train, split.valid) == pytest.approx(max(scores))


def test_sasrec_checkpoints_and_resumes(tmp_path: Path) -> None:
    from recai.data import leave_one_out

    split = leave_one_out(ring_log(n_users=40, length=12))
    params = dict(
        hidden=16, layers=1, heads=2, inner=32, max_len=8, epochs=6, batch_size=16, patience=100, seed=3
    )
    full = SASRec(**params).fit(split.train, valid=split.valid)
    interrupted = SASRec(**{**params, "epochs": 3}, checkpoint_dir=str(tmp_path)).fit(
        split.train, valid=split.valid
    )
    assert (tmp_path / "checkpoint.pt").exists() and len(interrupted.history_) == 3
    resumed = SASRec(**params, checkpoint_dir=str(tmp_path), resume=True).fit(split.train, valid=split.valid)
    assert [h["epoch"] for h in resumed.history_] == list(range(6))
    assert [round(h["train_loss"], 5) for h in resumed.history_] == [
        round(h["train_loss"], 5) for h in full.history_
    ]
    assert np.allclose(resumed.score([[0, 1, 2]]), full.score([[0, 1, 2]]), atol=1e-5)


def test_sasrec_time_budget_and_sampled_softmax() -> None:
    log = ring_log(n_users=30, length=10)
    model = SASRec(
        hidden=16,
        layers=1,
        heads=2,
        inner=32,
        max_len=8,
        epochs=1000,
        time_budget_s=0.5,
        loss="sampled",
        negatives=8,
        seed=0,
    ).fit(log)
    assert 1 <= len(model.history_) < 1000
    with pytest.raises(ValueError, match="loss must be"):
        SASRec(loss="bpr")


def test_sasrec_windows_cover_long_sequences() -> None:
    log = ring_log(n_users=1, length=20)
    windows = SASRec(max_len=8)._windows(log)
    # Windows of 9 stepping back 8 from the end: every event but the first is a target exactly once.
    seq = log.sequence("u0") + 1
    targets = windows[:, 1:][(windows[:, 1:] > 0) & (windows[:, :-1] > 0)]
    assert len(seq) > 9 and sorted(targets.tolist()) == sorted(seq[1:].tolist()) and windows.shape[1] == 9
    assert (windows[:, 0] >= 0).all() and (
        np.diff((windows > 0).astype(int), axis=1) >= 0
    ).all()  # left-padded


def test_evaluation_protocol_excludes_history_and_limits_candidates() -> None:
    from recai.data import leave_one_out

    split = leave_one_out(ring_log())
    model = Popularity().fit(split.train)
    everything = evaluate_recommender(model, split.train_and_valid(), split.test, bootstrap=50)
    known = np.flatnonzero(split.train.item_counts() > 0)
    limited = evaluate_recommender(
        model,
        split.train_and_valid(),
        split.test,
        bootstrap=50,
        candidates=known,
        item_counts=split.train.item_counts(),
    )
    assert everything["users"] == limited["users"] == split.test.n_users
    assert (
        0
        <= everything["ndcg@10"]["ci_low"]
        <= everything["ndcg@10"]["mean"]
        <= everything["ndcg@10"]["ci_high"]
    )
    assert "popularity_bias" in limited and limited["coverage"] <= 1


def test_history_resolution(catalog: Catalog, log) -> None:
    inter = Interactions(log, catalog.ids)
    positions, notes = resolve_history(catalog, "pulp fictoin; 12; Heat")
    assert catalog.ids[positions].tolist() == [10, 12, 12]
    assert notes[0].startswith("'pulp fictoin' -> Pulp Fiction (1994)")
    with_user, _ = resolve_history(catalog, ["Amélie"], user="b", interactions=inter)
    assert catalog.ids[with_user].tolist() == [10, 16, 17, 13]
    with pytest.raises(UnresolvedTitleError, match="did you mean: Reservoir Dogs"):
        resolve_history(catalog, "Reservoir Cats")
    _, ambiguous = resolve_history(catalog, "Beauty and the Beast")
    assert "ambiguous" in ambiguous[0]


def test_itemcf_similarity_options() -> None:
    log = ring_log()
    for similarity in ("cosine", "asymmetric", "count"):
        items, _ = ItemKNN(neighbours=5, similarity=similarity).fit(log).similar_items(3, k=2)
        assert set(items) & {2, 4}, similarity  # ring neighbours
    with pytest.raises(ValueError, match="similarity"):
        ItemKNN(similarity="jaccardish")


def test_als_fold_in_agrees_with_the_trained_user_vectors() -> None:
    from recai.rec import ALS

    log = ring_log(n_users=80, length=14)
    model = ALS(factors=8, iterations=30, regularization=0.05, seed=0).fit(log)
    users = list(log.user_ids)[:20]
    learned = model.score([log.sequence(u) for u in users], users=users)
    folded = model.score([log.sequence(u) for u in users])
    corr = [np.corrcoef(a, b)[0, 1] for a, b in zip(learned, folded, strict=True)]
    assert min(corr) > 0.95


def test_ranking_more_items_than_exist() -> None:
    from recai.data import leave_one_out
    from recai.evaluate.recommender import rank_users

    split = leave_one_out(ring_log())
    rankings, _, _ = rank_users(Popularity().fit(split.train), split.train, split.test, k=500)
    assert rankings.shape[1] == split.train.n_items
