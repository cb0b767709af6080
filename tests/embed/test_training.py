"""Contrastive fine-tuning: rows, the false-negative mask, training, resuming, the saved model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from recai.embed import load_encoder
from recai.embed.tasks import Example, HasValue, InRange
from recai.embed.training import (
    TRAINING_FILE,
    TrainConfig,
    masked_ranking_loss,
    train_embedder,
    training_rows,
    write_model_card,
)
from tests.embed.fixtures import InterruptError, film_examples, stop_after
from tests.embed.tiny_st import tiny_sentence_transformer


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sentence_transformer(tmp_path_factory.mktemp("tiny"))


def _example(eid: str, positive: int, negatives: tuple[int, ...], predicates: tuple = ()) -> Example:
    return Example(
        eid, "vague_condition", f"query {eid}", positive, negatives, predicates, f"item:{positive}"
    )


def test_rows_render_items_as_the_index_does_and_pad_missing_negatives() -> None:
    dataset, _ = film_examples()
    catalog = dataset.catalog
    ids = list(catalog.ids)
    examples = [_example("a", ids[0], (ids[1], ids[2])), _example("b", ids[3], (ids[4],))]
    rows = training_rows(examples, catalog, hard_negatives=2, item_max_chars=100)
    texts = catalog.texts(max_chars=100)
    assert rows.documents[0] == [texts[0], texts[1], texts[2]]
    assert rows.items.tolist() == [[0, 1, 2], [3, 4, 4]]
    assert rows.padded_rows == 1
    columns = rows.dataset_dict()
    assert list(columns) == ["anchor", "positive", "negative_1", "negative_2", "label"]
    assert columns["label"] == [0, 1]


def test_rows_name_the_example_with_an_unknown_item() -> None:
    dataset, _ = film_examples()
    with pytest.raises(ValueError, match="example bad"):
        training_rows([_example("bad", 999_999, ())], dataset.catalog, hard_negatives=0)


def test_answer_matrix_marks_every_item_that_satisfies_the_query() -> None:
    dataset, _ = film_examples()
    catalog = dataset.catalog
    ids = list(catalog.ids)
    years = catalog.items["year"].to_numpy()
    old = int(np.flatnonzero(years < 1990)[0])
    new = int(np.flatnonzero(years >= 1990)[0])
    pred = (InRange("year", None, 1989),)
    examples = [_example("old", ids[old], (ids[new],), pred), _example("plain", ids[new], (ids[old],))]
    rows = training_rows(examples, catalog, hard_negatives=1)
    candidates = np.arange(len(catalog))
    answers = rows.answer_matrix(np.array([0, 1]), candidates)
    assert (answers[0] == (years < 1990)).all()  # every pre-1990 item answers the first query
    assert answers[1].tolist() == [c == new for c in candidates]  # only its positive answers the second


class _FixedEmbeddings(torch.nn.Module):
    """Stands in for a SentenceTransformer: each feature dict carries its own embeddings."""

    def forward(self, features: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"sentence_embedding": features["embedding"]}


def test_the_loss_masks_in_batch_items_that_answer_the_query() -> None:
    dataset, _ = film_examples()
    catalog = dataset.catalog
    ids = list(catalog.ids)
    genres = catalog.items["genres"]
    crime = [i for i, g in enumerate(genres) if "Crime" in g][:2]
    other = [i for i, g in enumerate(genres) if "Crime" not in g][:2]
    pred = (HasValue("genres", "Crime"),)
    examples = [
        _example("q0", ids[crime[0]], (ids[other[0]],), pred),  # row 1's positive is also crime
        _example("q1", ids[crime[1]], (ids[other[1]],), pred),
    ]
    rows = training_rows(examples, catalog, hard_negatives=1)
    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(2, 8), dim=-1)
    pos = torch.nn.functional.normalize(torch.randn(2, 8), dim=-1)
    neg = torch.nn.functional.normalize(torch.randn(2, 8), dim=-1)
    features = [{"embedding": q}, {"embedding": pos}, {"embedding": neg}]
    labels = torch.tensor([0, 1])
    masked = masked_ranking_loss(_FixedEmbeddings(), rows, scale=20.0, mask=True)
    plain = masked_ranking_loss(_FixedEmbeddings(), rows, scale=20.0, mask=False)
    docs = torch.cat([pos, neg])
    logits = q @ docs.T * 20.0
    expected_plain = torch.nn.functional.cross_entropy(logits, torch.arange(2))
    blocked = logits.clone()
    blocked[0, 1] = blocked[1, 0] = float("-inf")  # each row's positive answers the other's query
    expected_masked = torch.nn.functional.cross_entropy(blocked, torch.arange(2))
    assert torch.allclose(plain(features, labels), expected_plain)
    assert torch.allclose(masked(features, labels), expected_masked)
    assert masked.masked_total == 2


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("batch_size", {"batch_size": 1}),
        ("loss", {"loss": "triplet"}),
        ("mask_false_negatives", {"loss": "cached-mnrl"}),
        ("scale", {"scale": 0}),
    ],
)
def test_bad_config_names_the_field(field: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=field):
        TrainConfig(**kwargs)


def _config(model: Path, **kwargs: Any) -> TrainConfig:
    defaults: dict[str, Any] = {
        "base_model": str(model),
        "max_steps": 4,
        "batch_size": 8,
        "save_steps": 2,
        "logging_steps": 1,
        "device": "cpu",
        "learning_rate": 1e-3,
    }
    return TrainConfig(**{**defaults, **kwargs})


def test_training_writes_a_loadable_model_with_a_card(tiny_model: Path, tmp_path: Path) -> None:
    dataset, data = film_examples()
    out = tmp_path / "tuned"
    result = train_embedder(data, dataset.catalog, out, _config(tiny_model), progress=False)
    assert result.steps == 4
    assert not (tmp_path / "tuned.work").exists()
    summary = json.loads((out / TRAINING_FILE).read_text())
    assert summary["data"]["rows"] == len(data.train)
    assert sum(summary["data"]["per_task"].values()) == len(data.train)
    assert len(summary["training"]["loss_curve"]) == 4
    assert "# Item retriever fine-tuned from" in (out / "README.md").read_text()
    base = load_encoder(f"st:{tiny_model}").encode(["a crime film"])
    tuned = load_encoder(f"st:{out}").encode(["a crime film"])
    assert tuned.shape == base.shape and not np.allclose(tuned, base)  # the weights moved
    with pytest.raises(FileExistsError):
        train_embedder(data, dataset.catalog, out, _config(tiny_model), progress=False)
    write_model_card(out, {"tasks": {"fuzzy_name": _metric_entry()}, "macro": {}})
    assert "| fuzzy_name | 3 | 0.500 | 0.400 | - |" in (out / "README.md").read_text()


def _metric_entry() -> dict[str, Any]:
    return {
        "n": 3,
        "recall@10": {"mean": 0.5, "low": 0.0, "high": 1.0},
        "ndcg@10": {"mean": 0.4, "low": 0.0, "high": 1.0},
    }


def test_an_interrupted_run_resumes_from_its_checkpoint(tiny_model: Path, tmp_path: Path) -> None:
    dataset, data = film_examples()
    out = tmp_path / "tuned"
    with pytest.raises(InterruptError):
        train_embedder(
            data, dataset.catalog, out, _config(tiny_model), progress=False, callbacks=[stop_after(3)]
        )
    assert not out.exists()  # nothing half-written
    assert (tmp_path / "tuned.work" / "checkpoint-2").is_dir()
    with pytest.raises(ValueError, match="learning_rate"):
        train_embedder(data, dataset.catalog, out, _config(tiny_model, learning_rate=1e-4), progress=False)
    result = train_embedder(data, dataset.catalog, out, _config(tiny_model), progress=False)
    assert result.resumed_from is not None and result.resumed_from.endswith("checkpoint-2")
    assert result.steps == 4
    assert json.loads((out / TRAINING_FILE).read_text())["training"]["resumed_from"] == "checkpoint-2"


def test_training_on_a_subset_of_tasks(tiny_model: Path, tmp_path: Path) -> None:
    dataset, data = film_examples()
    config = _config(tiny_model, tasks=("fuzzy_name", "vague_condition"), max_steps=1, batch_size=4)
    result = train_embedder(data, dataset.catalog, tmp_path / "m", config, progress=False)
    assert set(result.summary["data"]["per_task"]) == {"fuzzy_name", "vague_condition"}
    with pytest.raises(ValueError, match="no training examples"):
        train_embedder(data, dataset.catalog, tmp_path / "n", _config(tiny_model, tasks=("nope",)))
