"""The model-free reference: answers from the target's training answer frequencies, scored like an LLM."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from recai.explain.evaluation import AlignmentScorer
from recai.explain.examples import ExplainExample, item_slot
from recai.explain.reference import AnswerPopularityReference, reference_alignment
from tests.explain.helpers import dataset, small_data


def ids() -> list[int]:
    return [int(i) for i in dataset().catalog.ids[:6]]


def example(task: str, n: int, items: tuple[int, ...], **fields: object) -> ExplainExample:
    prompt = f"question about {item_slot(items[0])}" if task == "item_similar" else "question"
    messages = ({"role": "user", "content": prompt}, {"role": "assistant", "content": "answer"})
    return ExplainExample(id=f"{task}-{n}", task=task, messages=messages, items=items, **fields)  # type: ignore[arg-type]


def training() -> list[ExplainExample]:
    a, b, c, d, e, _ = ids()
    return [
        example("retrieval", 0, (a, b, c)),
        example("retrieval", 1, (a, c, d)),
        example("retrieval", 2, (b, a, e)),
        example("classification", 0, (a,), label="yes"),
        example("classification", 1, (b,), label="yes"),
        example("classification", 2, (e,), label="no"),
        example("classification", 3, (d,), label="no"),
    ]


def test_it_answers_with_the_targets_most_frequent_training_answers() -> None:
    a, b, c, _, e, f = ids()
    catalog = dataset().catalog
    reference = AnswerPopularityReference(training(), catalog, k=2)
    scorer = AlignmentScorer(catalog)

    retrieval = example("retrieval", 9, (a, b), history=(f,))
    assert scorer.score(retrieval, reference.reply(retrieval))["retrieval_ndcg@5"] == 1.0
    seen = example("retrieval", 10, (b, c), history=(a,))  # the user's own items are never answered
    reply = reference.reply(seen)
    assert catalog.display_title(int(catalog.index_of([a])[0])) not in reply
    assert scorer.score(seen, reply)["retrieval_ndcg@5"] == 1.0

    ranking = example("ranking", 0, (a, b, e), candidates=(e, b, a))  # counts: a 3, b 2, e 1
    assert scorer.score(ranking, reference.reply(ranking))["ranking_ndcg"] == pytest.approx(1.0)
    reversed_order = example("ranking", 1, (e, b, a), candidates=(a, b, e))
    assert scorer.score(reversed_order, reference.reply(reversed_order))["ranking_ndcg"] < 1.0

    # threshold 2 separates the training labels (a 3, b 2 yes; e 1, d 1 no); f was never recommended
    assert reference.threshold == 2
    assert reference.reply(example("classification", 8, (a,), label="yes")) == "Yes."
    assert reference.reply(example("classification", 9, (f,), label="no")) == "No."


def test_similar_items_leave_out_the_asked_item_and_opaque_tasks_get_no_answer() -> None:
    a, b, c, *_ = ids()
    catalog = dataset().catalog
    train = [*training(), example("item_similar", 0, (b, a)), example("item_similar", 1, (c, a))]
    reference = AnswerPopularityReference(train, catalog)
    asked_about_a = example("item_similar", 5, (a, b))
    assert catalog.display_title(int(catalog.index_of([a])[0])) not in reference.reply(asked_about_a)
    with pytest.raises(ValueError, match="not 'item_title'"):
        reference.reply(example("item_title", 0, (a,)))
    with pytest.raises(ValueError, match="no retrieval answers"):
        AnswerPopularityReference([e for e in train if e.task != "retrieval"], catalog)


def test_on_built_data_it_scores_the_text_tasks_only() -> None:
    data = small_data()
    metrics = reference_alignment(data.train, data.test, data.catalog, k=3)
    assert set(metrics["metrics"]) == {
        "classification_accuracy",
        "classification_answered",
        "ranking_ndcg",
        "retrieval_hit@5",
        "retrieval_ndcg@5",
        "similar_overlap",
    }
    assert all(0.0 <= m["mean"] <= 1.0 for m in metrics["metrics"].values())
    assert metrics["extra"]["classification_threshold"] >= 0
