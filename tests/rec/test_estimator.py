"""The estimator base and the model registry: keyword hyperparameters, run options, folder errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recai.data import Interactions
from recai.data.errors import DataError
from recai.knowledge import CooccurrenceExtractor
from recai.rec import MODELS, ItemKNN, NotFittedError, Popularity, SASRec
from recai.testing.data import ring_log


def test_hyperparameters_are_keyword_only_and_round_trip() -> None:
    with pytest.raises(TypeError):
        ItemKNN(10)  # type: ignore[misc]
    model = ItemKNN(neighbours=7, similarity="count")
    assert model.get_params()["neighbours"] == 7
    assert ItemKNN(**model.get_params()).get_params() == model.get_params()
    with pytest.raises(ValueError, match="similarity must be one of cosine, asymmetric, count"):
        ItemKNN(similarity="dice")


def test_build_gives_run_options_only_to_models_that_take_them() -> None:
    sasrec = MODELS.build("sasrec", {"epochs": 3, "seed": 5}, seed=1, progress=True, time_budget_s=9.0)
    assert isinstance(sasrec, SASRec)
    assert (sasrec.epochs, sasrec.seed, sasrec.progress, sasrec.time_budget_s) == (3, 5, True, 9.0)
    assert MODELS.build("popularity", seed=1, progress=True).get_params() == {"half_life_days": None}
    with pytest.raises(ValueError, match="unknown recommender 'nope'; available: popularity"):
        MODELS.build("nope")
    with pytest.raises(ValueError, match="bad hyperparameter for recommender 'itemcf'"):
        MODELS.build("itemcf", {"factors": 3})
    with pytest.raises(TypeError, match="not run options"):
        MODELS.build("itemcf", neighbours=3)


def test_one_not_fitted_error_for_recommenders_and_extractors() -> None:
    with pytest.raises(NotFittedError, match=r"call fit\(interactions\)"):
        Popularity().score([[0]])
    with pytest.raises(NotFittedError, match=r"call fit\(catalog, train\)"):
        CooccurrenceExtractor().save("unused")


def test_saved_folders_are_checked_and_errors_name_the_file(tmp_path: Path) -> None:
    log: Interactions = ring_log()
    folder = Popularity().fit(log).save(tmp_path / "pop")
    assert MODELS.saved_class(folder) is Popularity
    assert MODELS.saved_class(folder).load(folder).n_items_ == log.n_items
    with pytest.raises(FileNotFoundError, match="is not a saved recommender"):
        Popularity.load(tmp_path / "missing")
    with pytest.raises(DataError, match="holds a Popularity, not a ItemKNN") as wrong:
        ItemKNN.load(folder)
    assert wrong.value.path == str(folder / "meta.json")
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(DataError, match="newer recai"):
        Popularity.load(folder)
    (folder / "meta.json").write_text(json.dumps({**meta, "class": "Unknown"}))
    with pytest.raises(DataError, match="holds no known recommender"):
        MODELS.saved_class(folder)
    (folder / "meta.json").write_text("{")
    with pytest.raises(DataError, match="invalid JSON"):
        Popularity.load(folder)
