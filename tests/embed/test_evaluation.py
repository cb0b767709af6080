"""Per-task retrieval evaluation: ranks over the full catalog, exclusions, coverage, paired comparison."""

from __future__ import annotations

import numpy as np
import pytest

from recai.data import Catalog, Dataset
from recai.embed.encoder import Encoder
from recai.embed.evaluation import compare_retrieval, evaluate_retrieval, query_items
from recai.embed.tasks import Example, HasValue
from tests.catalog_fixtures import film_dataset


class _TableEncoder(Encoder):
    """Vectors looked up by text: items get one-hot rows, queries whatever the test says."""

    def __init__(self, table: dict[str, np.ndarray], dim: int, name: str = "table") -> None:
        super().__init__()
        self.table = table
        self.dim = dim
        self.identity = name

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        return np.stack([self.table[t] for t in texts])


def _setup(query_vectors: dict[str, list[float]], name: str = "table") -> tuple[Dataset, _TableEncoder]:
    dataset = film_dataset()
    texts = dataset.catalog.texts()
    n = len(texts)
    table = {t: np.eye(n, dtype=np.float32)[i] for i, t in enumerate(texts)}
    for text, weights in query_vectors.items():
        vec = np.zeros(n, dtype=np.float32)
        vec[: len(weights)] = weights
        table[text] = vec
    return dataset, _TableEncoder(table, n, name)


def _ex(eid: str, task: str, positive: object, source: dict | None = None, predicates: tuple = ()) -> Example:
    return Example(eid, task, eid, positive, (), predicates, "item:x", source or {})


def test_ranks_recall_and_ndcg_over_the_full_catalog() -> None:
    # query "a" scores item 0 highest, then 1, then 2: the positive (item 2) is third.
    dataset, encoder = _setup({"a": [0.9, 0.5, 0.3], "b": [0.1, 0.9]})
    ids = list(dataset.catalog.ids)
    examples = [_ex("a", "fuzzy_name", ids[2]), _ex("b", "fuzzy_name", ids[1])]
    result = evaluate_retrieval(encoder, dataset.catalog, examples, ks=(1, 3), progress=False)
    by_id = {r["id"]: r for r in result.records}
    assert by_id["a"]["rank"] == 3 and by_id["b"]["rank"] == 1
    assert by_id["a"]["recall@1"] == 0.0 and by_id["a"]["recall@3"] == 1.0
    assert by_id["a"]["ndcg@3"] == pytest.approx(1 / np.log2(4))
    assert by_id["b"]["ndcg@1"] == 1.0
    task = result.tasks["fuzzy_name"]
    assert task["n"] == 2
    assert task["recall@3"]["mean"] == 1.0 and task["recall@1"]["mean"] == 0.5
    assert task["recall@1"]["low"] <= 0.5 <= task["recall@1"]["high"]
    assert result.macro["mrr"] == pytest.approx((1 / 3 + 1) / 2)


def test_items_the_query_names_are_excluded_from_its_ranking() -> None:
    dataset, encoder = _setup({"h": [0.9, 0.8, 0.3], "i": [0.9, 0.8, 0.3]})
    ids = list(dataset.catalog.ids)
    history = _ex("h", "history_next", ids[2], {"user": 1, "history": [ids[0], ids[1]]})
    anchor = _ex("i", "item_item", ids[2], {"anchor": ids[0]})
    assert query_items(history) == [ids[0], ids[1]] and query_items(anchor) == [ids[0]]
    result = evaluate_retrieval(encoder, dataset.catalog, [history, anchor], ks=(1,), progress=False)
    by_id = {r["id"]: r for r in result.records}
    assert by_id["h"]["rank"] == 1  # both history items were ahead of it
    assert by_id["i"]["rank"] == 2  # only the anchor is removed
    kept = evaluate_retrieval(
        encoder, dataset.catalog, [history], ks=(1,), exclude_named=False, progress=False
    )
    assert kept.records[0]["rank"] == 3


def test_coverage_is_the_share_of_the_top_k_that_satisfies_the_conditions() -> None:
    dataset = film_dataset()
    catalog: Catalog = dataset.catalog
    crime = np.array(["Crime" in g for g in catalog.items["genres"]])
    first_crime, first_other = int(np.flatnonzero(crime)[0]), int(np.flatnonzero(~crime)[0])
    weights = [0.0] * len(catalog)
    weights[first_crime], weights[first_other] = 0.9, 0.8
    _, encoder = _setup({"q": weights})
    example = _ex(
        "q", "partial_attributes", catalog.ids[first_crime], predicates=(HasValue("genres", "Crime"),)
    )
    result = evaluate_retrieval(encoder, catalog, [example], ks=(1, 2), progress=False)
    assert result.records[0]["coverage@1"] == 1.0
    assert result.records[0]["coverage@2"] == 0.5
    assert (
        "coverage@1"
        not in evaluate_retrieval(
            encoder, catalog, [_ex("q", "fuzzy_name", catalog.ids[first_crime])], ks=(1,), progress=False
        ).tasks["fuzzy_name"]
    )


def test_paired_comparison_is_per_task_on_the_same_examples() -> None:
    dataset, worse = _setup({"a": [0.9, 0.5, 0.3], "b": [0.9, 0.5, 0.3]}, "worse")
    _, better = _setup({"a": [0.1, 0.1, 0.9], "b": [0.1, 0.1, 0.9]}, "better")
    ids = list(dataset.catalog.ids)
    examples = [_ex("a", "fuzzy_name", ids[2]), _ex("b", "vague_condition", ids[2])]
    base = evaluate_retrieval(worse, dataset.catalog, examples, ks=(1, 10), progress=False)
    tuned = evaluate_retrieval(better, dataset.catalog, examples, ks=(1, 10), progress=False)
    result = compare_retrieval(base, tuned, metrics=("recall@1",))
    assert result["summary"]["recall@1"]["tasks_improved"] == 2
    assert result["summary"]["recall@1"]["base_macro"] == 0.0
    assert result["summary"]["recall@1"]["relative_gain"] is None  # nothing to be relative to
    assert result["tasks"]["fuzzy_name"]["recall@1"]["diff"] == 1.0
    other = evaluate_retrieval(better, dataset.catalog, examples[:1], ks=(1,), progress=False)
    with pytest.raises(ValueError, match="same examples"):
        compare_retrieval(base, other)


def test_empty_or_bad_input_is_refused() -> None:
    dataset, encoder = _setup({})
    with pytest.raises(ValueError, match="no examples"):
        evaluate_retrieval(encoder, dataset.catalog, [], progress=False)
    example = [_ex("a", "fuzzy_name", dataset.catalog.ids[0])]
    with pytest.raises(ValueError, match="item vectors"):
        evaluate_retrieval(
            encoder, dataset.catalog, example, items=np.zeros((2, encoder.dim)), progress=False
        )
