"""Shared, cached fixtures for the explain tests: a small film dataset, a tiny SASRec target fitted on its
training log, small alignment data, and a tiny random LLM folder. Built once per process."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from recai.data import Dataset
from recai.explain import ExplainData, TargetModel, build_explain_data, fit_target
from tests.catalog_fixtures import film_dataset

TARGET_PARAMS = {"hidden": 16, "layers": 1, "heads": 1, "inner": 32, "max_len": 10, "epochs": 3, "seed": 0}


@cache
def dataset() -> Dataset:
    return film_dataset()


@cache
def target() -> TargetModel:
    return fit_target(dataset().split("leave_one_out"), "sasrec", **TARGET_PARAMS)


def data(**kwargs: Any) -> ExplainData:
    values: dict[str, Any] = {
        "per_task": 4,
        "test_per_task": 2,
        "history_len": 3,
        "k": 3,
        "n_candidates": 3,
        "noun": "film",
    }
    values.update(kwargs)
    return build_explain_data(dataset(), target(), **values)


@cache
def small_data() -> ExplainData:
    return data()


def base_folder(root: Path) -> Path:
    """A 2-layer random Llama (hidden 32) with the gen tests' byte-level tokenizer, saved as a folder."""
    from tests.gen.tiny import tiny_model, tiny_tokenizer

    folder = root / "base"
    if not folder.exists():
        tokenizer = tiny_tokenizer()
        tiny_model(tokenizer, seed=0).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder
