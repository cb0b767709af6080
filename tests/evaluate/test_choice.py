"""Multiple-choice evaluation: letter parsing, cf/seq samples, buckets, position bias, classic systems."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from recai.data import Catalog, Dataset, Interactions
from recai.evaluate.choice import (
    ChoiceEvaluator,
    LLMChoiceSystem,
    build_choice_samples,
    parse_choice,
    summarize_choice_records,
)
from recai.evaluate.generative import ListSample, ListSampling, RandomListSystem, RecommenderListSystem
from recai.llm.scripted import ScriptedChatModel
from recai.rec.popularity import Popularity


def _dataset(catalog: Catalog, *, timed: bool = True) -> Dataset:
    rows = []
    rng = np.random.default_rng(3)
    for u in range(12):
        for t, item in enumerate(rng.choice(list(catalog.ids), size=6, replace=False)):
            rows.append((f"u{u}", int(item), t))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    if not timed:
        frame = frame.drop(columns="timestamp")
    return Dataset("tiny-log", catalog, Interactions(frame, catalog.ids))


@pytest.mark.parametrize(
    ("text", "letters", "outcome"),
    [
        ("C", ("C",), "valid"),
        ("(b).", ("B",), "valid"),
        ("The answer is D.", ("D",), "valid"),
        ("Answer: **B**", ("B",), "valid"),
        ("A great pick would be E", ("E",), "valid"),
        ("C) Heat\nD) Ronin", ("C", "D"), "several"),
        ("B or C", ("B", "C"), "several"),
        ("Heat (1995)", (), "invalid"),
        ("", (), "invalid"),
        ("K", ("K",), "invalid"),  # past the last option
    ],
)
def test_letters_are_read_by_the_first_rule_that_finds_any(
    text: str, letters: tuple[str, ...], outcome: str
) -> None:
    parsed = parse_choice(text, 10)
    assert (parsed.letters, parsed.outcome) == (letters, outcome)


def test_parse_refuses_an_impossible_option_count() -> None:
    with pytest.raises(ValueError, match="n_options"):
        parse_choice("A", 27)


def test_cf_samples_hide_the_order_and_seq_needs_timestamps(catalog: Catalog) -> None:
    split = _dataset(catalog).split()
    seq = build_choice_samples(
        split, kind="seq", seed=1, sampling=ListSampling(n_candidates=5, history_len=3)
    )
    cf = build_choice_samples(split, kind="cf", seed=1, sampling=ListSampling(n_candidates=5, history_len=3))
    assert [s.candidates for s in seq] == [s.candidates for s in cf]  # the same question, other history
    for a, b in zip(seq, cf, strict=True):
        full = split.train_and_valid().sequence(a.user).tolist()
        assert a.history == full[-3:]
        assert set(b.history) <= set(full) and len(b.history) == min(3, len(full))
    assert cf == build_choice_samples(
        split, kind="cf", seed=1, sampling=ListSampling(n_candidates=5, history_len=3)
    )
    untimed = _dataset(catalog, timed=False).split()
    with pytest.raises(ValueError, match="no timestamps"):
        build_choice_samples(untimed, kind="seq", timed=False)
    assert build_choice_samples(untimed, kind="cf", timed=False)
    with pytest.raises(ValueError, match="n_candidates"):
        build_choice_samples(split, sampling=ListSampling(n_candidates=30))


def _answer_with(target_title: str, messages: list[dict]) -> str:
    """A model that knows the answer: the letter of the line showing ``target_title``."""
    for line in messages[-1]["content"].splitlines():
        match = re.match(r"([A-Z])\. (.*)", line)
        if match and match.group(2) == target_title:
            return f"The answer is {match.group(1)}."
    return "none"


def test_a_model_that_knows_the_target_scores_one(catalog: Catalog) -> None:
    sample = ListSample(id="u", user="u", history=[0, 1], target=2, candidates=[4, 2, 6, 3])
    title = catalog.display_title(2)
    llm = ScriptedChatModel(lambda messages: _answer_with(title, messages))
    system = LLMChoiceSystem(llm, catalog, kind="cf", item_noun="films")
    record = ChoiceEvaluator(catalog, orders=3, seed=0).evaluate_sample(system, sample)
    assert record["scores"] == {"accuracy@1": 1.0}
    assert record["counts"] == {"valid": 3, "invalid": 0, "several": 0}
    assert record["top1_agree"] == 1.0
    assert "in no particular order" in llm.calls[0][-1]["content"]
    assert "D. " in llm.calls[0][-1]["content"] and "E. " not in llm.calls[0][-1]["content"]


def test_letter_bias_and_bad_answers_are_counted_not_repaired(catalog: Catalog) -> None:
    sample = ListSample(id="u", user="u", history=[0], target=2, candidates=[2, 3, 6, 1])
    always_a = LLMChoiceSystem(ScriptedChatModel(lambda m: "A"), catalog, kind="seq")
    record = ChoiceEvaluator(catalog, orders=4, seed=0).evaluate_sample(always_a, sample)
    assert {o["letters"][0] for o in record["orders"]} == {"A"}
    assert 0.0 <= record["scores"]["accuracy@1"] < 1.0 or all(
        o["target_letter"] == "A" for o in record["orders"]
    )
    summary = summarize_choice_records([record])
    assert summary["answer_letters"]["A"] == 4 and summary["answer_letters"]["B"] == 0
    assert summary["position_bias"]["orders"] == 4
    assert sum(v["n"] for v in summary["accuracy_by_target_letter"].values()) == 4

    replies = iter(["B or C", "Heat", "K", "C"])
    messy = LLMChoiceSystem(ScriptedChatModel(lambda m: next(replies)), catalog)
    record = ChoiceEvaluator(catalog, orders=4, seed=0).evaluate_sample(messy, sample)
    assert record["counts"] == {"valid": 1, "invalid": 2, "several": 1}
    summary = summarize_choice_records([record])
    assert summary["rates"] == {"valid_rate": 0.25, "invalid_rate": 0.5, "several_rate": 0.25}


def test_classic_and_random_systems_choose_their_top_candidate(catalog: Catalog) -> None:
    data = _dataset(catalog)
    split = data.split()
    samples = build_choice_samples(split, kind="seq", seed=0, sampling=ListSampling(n_candidates=4))
    model = Popularity().fit(split.train)
    evaluator = ChoiceEvaluator(catalog, orders=2, seed=0)
    records = evaluator.run(RecommenderListSystem(model, name="popularity"), samples, progress=False)
    assert len(records) == len(samples)
    for record, sample in zip(records, samples, strict=True):
        assert record["counts"]["valid"] == 2
        assert record["top1_agree"] == 1.0  # a popularity ranking ignores the order it is shown
        counts = split.train.item_counts()
        chosen = int(catalog.index_of([record["orders"][0]["chosen"]])[0])
        assert counts[chosen] == max(counts[p] for p in sample.candidates)  # the most popular
    rand = evaluator.run(RandomListSystem(len(catalog)), samples, progress=False)
    assert all(r["counts"]["valid"] == 2 for r in rand)
