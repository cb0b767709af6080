"""Generative ranking/retrieval: sampling, scoring without padding, position bias, classic systems."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recai.data import Catalog, Dataset, Interactions
from recai.evaluate.generative import (
    ListEvaluator,
    ListSample,
    ListSampling,
    LLMListSystem,
    RandomListSystem,
    RecommenderListSystem,
    build_samples,
    list_run_config,
    single_target_scores,
    summarize_list_records,
)
from recai.evaluate.metrics import ranking_metrics
from recai.llm.scripted import ScriptedChatModel
from recai.rec.popularity import Popularity


def _dataset(catalog: Catalog) -> Dataset:
    rows = []
    ids = list(catalog.ids)
    rng = np.random.default_rng(3)
    for u in range(12):
        for t, item in enumerate(rng.choice(ids, size=5, replace=False)):
            rows.append((f"u{u}", int(item), t))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Dataset("tiny-log", catalog, Interactions(frame, catalog.ids))


def test_samples_are_seeded_and_leak_free(catalog: Catalog) -> None:
    split = _dataset(catalog).split()
    a = build_samples(split, seed=1, sampling=ListSampling(n_candidates=4))
    b = build_samples(split, seed=1, sampling=ListSampling(n_candidates=4))
    assert [(s.id, s.candidates) for s in a] == [(s.id, s.candidates) for s in b]
    for s in a:
        assert s.target in s.candidates and len(s.candidates) == 4
        assert not set(s.history) & (set(s.candidates) - {s.target})
        full = set(split.train_and_valid().sequence(s.user))
        assert not full & (set(s.candidates) - {s.target})  # negatives never from the user's log
    fewer = build_samples(split, seed=1, sampling=ListSampling(n_candidates=4, n_users=3))
    by_id = {s.id: s.candidates for s in a}
    assert all(by_id[s.id] == s.candidates for s in fewer)  # per-user seeds: independent of the draw
    assert all(s.candidates is None for s in build_samples(split, task="retrieval"))


def test_single_target_scores_match_the_shared_metrics() -> None:
    ranked = [5, 3, 9]
    own = single_target_scores(ranked, 3, ks=(1, 2, 5))
    shared = ranking_metrics(
        np.array([[5, 3, 9, -1, -1]]), np.array([3]), ks=(1, 2, 5), metrics=("hit", "ndcg")
    )
    for name, values in shared.items():
        assert own[name] == pytest.approx(values[0])
    assert own["mrr@5"] == pytest.approx(0.5)
    assert single_target_scores([1, 2, 3], 3, ks=(2,))["mrr@2"] == 0.0  # MRR is cut at the largest k
    assert single_target_scores([], 3, ks=(5,))["hit@5"] == 0.0


def test_llm_answers_are_grounded_and_never_padded(catalog: Catalog) -> None:
    sample = ListSample(id="u", user="u", history=[0], target=2, candidates=[2, 3, 6, 1])

    def reply(messages: list[dict]) -> str:
        prompt = messages[-1]["content"]
        assert "Pulp Fiction (1994)" in prompt  # history shown by title
        return '["Toy Story 5", "Amélie", "Amelie", "Pulp Fiction", "Heat (1995)"]'

    system = LLMListSystem(ScriptedChatModel(reply), catalog, item_noun="films")
    record = ListEvaluator(catalog, k=5, ks=(1, 5)).evaluate_sample(system, sample)
    counts = record["counts"]
    assert counts == {
        "named": 5,
        "valid": 2,
        "invalid": 1,
        "duplicate": 1,
        "out_of_candidates": 1,  # Pulp Fiction: seen, and not offered (that bucket comes first)
        "already_seen": 0,
    }
    assert record["orders"][0]["grounded"]["items"] == [13, 12]
    assert record["scores"]["hit@1"] == 0.0 and record["scores"]["hit@5"] == 1.0
    assert record["scores"]["mrr@5"] == pytest.approx(0.5)  # Heat is second among the valid items
    json.dumps(record)  # records go to JSONL


def test_position_bias_is_measured(catalog: Catalog) -> None:
    sample = ListSample(id="u", user="u", history=[0], target=2, candidates=[2, 3, 6, 1])

    def first_shown(messages: list[dict]) -> str:  # a fully position-biased model
        lines = messages[-1]["content"].split("candidate films")[1].splitlines()
        titles = [line[2:] for line in lines if line.startswith("- ")]
        return json.dumps(titles[:1])

    evaluator = ListEvaluator(catalog, k=3, ks=(1,), orders=4, seed=0)
    record = evaluator.evaluate_sample(
        LLMListSystem(ScriptedChatModel(first_shown), catalog, item_noun="films"), sample
    )
    assert len(record["orders"]) == 4
    firsts = {o["candidates"][0] for o in record["orders"]}
    assert len(firsts) > 1  # the orders really differ
    assert record["top1_agree"] == 0.0
    assert 0.0 < record["scores"]["hit@1"] < 1.0 or len(firsts) == 4
    summary = summarize_list_records([record])
    assert summary["position_bias"]["orders"] == 4
    assert summary["position_bias"]["top1_agreement"] == 0.0


def test_classic_systems_share_the_protocol(catalog: Catalog) -> None:
    data = _dataset(catalog)
    split = data.split()
    samples = build_samples(split, seed=0, sampling=ListSampling(n_candidates=4))
    evaluator = ListEvaluator(catalog, k=3, ks=(1, 3))
    pop = RecommenderListSystem(Popularity().fit(split.train), name="popularity")
    records = evaluator.run(pop, samples, progress=False)
    for record, sample in zip(records, samples, strict=True):
        ranked = record["orders"][0]["grounded"]["items"]
        assert set(ranked) <= set(catalog.ids[sample.candidates])
        assert record["counts"]["invalid"] == 0
    rnd = evaluator.run(RandomListSystem(len(catalog), seed=0), samples, progress=False)
    again = evaluator.run(RandomListSystem(len(catalog), seed=0), samples, progress=False)
    assert [r["scores"] for r in rnd] == [r["scores"] for r in again]
    # resuming skips what is done
    done = {records[0]["id"]}
    assert len(evaluator.run(pop, samples, skip_ids=done, progress=False)) == len(samples) - 1


def test_retrieval_counts_seen_items(catalog: Catalog) -> None:
    sample = ListSample(id="u", user="u", history=[0, 1], target=2)
    system = LLMListSystem(ScriptedChatModel(["1. Pulp Fiction\n2. Heat\n3. Invented Film"]), catalog)
    record = ListEvaluator(catalog, k=3, ks=(1,)).evaluate_sample(system, sample)
    assert record["counts"]["already_seen"] == 1 and record["counts"]["invalid"] == 1
    assert record["scores"]["hit@1"] == 1.0


def test_encoder_system_ranks_by_similarity_and_skips_history(catalog: Catalog) -> None:
    from recai.evaluate.generative import EncoderListSystem
    from recai.testing.fakes import BagOfWordsEncoder

    system = EncoderListSystem(BagOfWordsEncoder(), catalog)
    sample = ListSample(id="u", user="u", history=[6], target=7)  # watched The Godfather
    full = system.answer(sample, None, 3).positions
    assert full[0] == 7 and 6 not in full  # Part II shares the words; the history is excluded
    within = system.answer(sample, [2, 7, 3], 3).positions
    assert sorted(within) == [2, 3, 7] and within[0] == 7
    record = ListEvaluator(catalog, k=3, ks=(1,)).evaluate_sample(system, sample)
    assert record["scores"]["hit@1"] == 1.0


def test_the_whole_input_log_is_excluded_not_only_the_shown_history(catalog: Catalog) -> None:
    sample = ListSample(id="u", user="u", history=[1], target=2, seen=[0, 1])
    system = LLMListSystem(ScriptedChatModel(["1. Pulp Fiction\n2. Heat"]), catalog)
    record = ListEvaluator(catalog, k=3, ks=(1,)).evaluate_sample(system, sample)
    assert record["counts"]["already_seen"] == 1 and record["scores"]["hit@1"] == 1.0
    assert "Pulp Fiction" not in system.llm.calls[0][-1]["content"]  # not shown, but still excluded
    rnd = RandomListSystem(len(catalog), seed=0).answer(sample, None, 8).positions
    assert not {0, 1} & set(rnd)


def test_more_users_keep_the_earlier_ones(catalog: Catalog) -> None:
    split = _dataset(catalog).split()
    few = build_samples(split, seed=2, sampling=ListSampling(n_users=4))
    more = build_samples(split, seed=2, sampling=ListSampling(n_users=8))
    assert [(s.id, s.candidates) for s in few] == [(s.id, s.candidates) for s in more[:4]]


def test_run_configs_keep_the_keys_saved_runs_hold() -> None:
    """Committed runs are resumed and compared by these keys: ListSampling must not change them."""
    from recai.evaluate.prepare import DataOptions

    sampling = ListSampling(n_users=5, n_candidates=7, negatives="popularity", history_len=4, k=3, orders=2)
    data = DataOptions("demo", seed=3)
    common = {"_volatile": ["n_users"], "data": "demo", "k_core": 0, "seed": 3, "n_users": 5, "orders": 2}
    assert list_run_config("ranking", data, "popularity", sampling, sasrec_budget_s=None) == {
        **common,
        "task": "ranking",
        "system": "popularity",
        "sasrec_budget_s": None,
        "n_candidates": 7,
        "negatives": "popularity",
        "history_len": 4,
        "k": 3,
    }
    assert list_run_config("retrieval", data, "sasrec", sampling, sasrec_budget_s=60.0) == {
        **common,
        "task": "retrieval",
        "system": "sasrec",
        "sasrec_budget_s": 60.0,
        "n_candidates": None,
        "negatives": None,
        "history_len": 4,
        "k": 3,
    }
    assert list_run_config("choice_cf", data, "popularity", sampling, sasrec_budget_s=None) == {
        **common,
        "task": "choice_cf",
        "system": "popularity",
        "sasrec_budget_s": None,
        "n_candidates": 7,
        "negatives": "popularity",
        "history_len": 4,
    }
