"""Under `accelerate launch` only the main process writes the trained embedder (checked in one process by
making it a non-main one; tests/gen/test_multiprocess_launch.py runs two real processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recai.embed.training import TrainConfig, train_embedder, write_model_card
from tests.embed.fixtures import film_examples
from tests.embed.tiny_st import tiny_sentence_transformer


def test_a_process_that_is_not_the_main_one_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentence_transformers import SentenceTransformerTrainer

    dataset, data = film_examples()
    model = tiny_sentence_transformer(tmp_path / "tiny")
    monkeypatch.setattr(SentenceTransformerTrainer, "is_world_process_zero", lambda self: False)
    config = TrainConfig(base_model=str(model), max_steps=1, batch_size=4, save_steps=100, device="cpu")
    result = train_embedder(data, dataset.catalog, tmp_path / "tuned", config, progress=False)
    assert result.steps == 1 and result.summary["training"]["processes"] == 1
    assert not (tmp_path / "tuned").exists()  # the main process writes it
    assert (tmp_path / "tuned.work").is_dir()  # ... and removes the work folder
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".tuned.")]


def test_the_model_card_is_rewritten_by_the_main_process_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = tmp_path / "README.md"
    card.write_text("unchanged")
    monkeypatch.setenv("RANK", "1")
    assert write_model_card(tmp_path, {"tasks": {}, "macro": {}}) == card
    assert card.read_text() == "unchanged" and list(tmp_path.iterdir()) == [card]
