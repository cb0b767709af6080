"""What an evaluation prepares before it runs a system: the data, a cached chat model, fitted baselines.

Shared by :mod:`recai.evaluate.runners` (``recai eval``) and by the pillars that write the same run
folders (``recai.knowledge.evaluation``), which sit below the runners.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recai.data import Dataset
from recai.data import load as load_dataset
from recai.data.home import data_home
from recai.llm.base import ChatModel
from recai.llm.cache import CachedChatModel
from recai.rec import MODELS
from recai.rec.base import Recommender

#: How ``recai eval`` trains SASRec, and how every committed evaluation and knowledge benchmark did: the
#: time budget ends training, not an epoch cap, and a longer patience than SASRec's default rides out
#: noisy validation on small splits.
TIME_BUDGETED_SASREC = {"epochs": 10_000, "patience": 40}


@dataclass
class DataOptions:
    """How the dataset is prepared: the same options give the same samples.

    Attributes:
        data: The dataset name or path, as :func:`recai.data.load` takes it.
        k_core: Iterative k-core applied before splitting (5 for the MovieLens protocol); 0 for none.
        seed: Seed of everything drawn from the data (users, candidates).
    """

    data: str = "demo"
    k_core: int = 0
    seed: int = 0

    def as_config(self) -> dict[str, Any]:
        """The keys every run's config.json records about its data."""
        return {"data": self.data, "k_core": self.k_core, "seed": self.seed}

    def load(self) -> tuple[Dataset, Any]:
        dataset = load_dataset(self.data)
        if self.k_core > 0:
            dataset = dataset.k_core(self.k_core)
        return dataset, dataset.split("leave_one_out")


def item_noun(dataset: Dataset) -> str:
    return dataset.item_noun()


def response_cache_path() -> Path:
    return data_home() / "cache" / "llm_responses.sqlite"


def cached_llm(spec: str, *, cache: bool = True) -> ChatModel:
    """The chat model for ``spec``, behind the response cache unless ``cache`` is False."""
    from recai.llm.factory import load_chat_model

    llm = load_chat_model(spec)
    # keyed by the spec, not the model's name: the same name can mean other weights (GGUF vs HF, an
    # adapter, another server)
    return CachedChatModel(llm, response_cache_path(), model_id=spec) if cache else llm


_FITTED: dict[tuple[Any, ...], Recommender] = {}


def fit_classic(
    name: str,
    split: Any,
    *,
    sasrec_budget_s: float = 300.0,
    seed: int = 0,
    memo: DataOptions | None = None,
) -> Recommender:
    """The recommender ``name`` (of :data:`recai.rec.MODELS`) fitted on the split's training part
    (validation for early stopping), SASRec to a time budget (:data:`TIME_BUDGETED_SASREC`).

    ``memo`` (the data options ``split`` came from) keeps the fitted model for this process, so
    evaluating one model on several tasks trains it once.
    """
    key = (name, sasrec_budget_s, seed, None if memo is None else (memo.data, memo.k_core, memo.seed))
    if memo is not None and key in _FITTED:
        return _FITTED[key]
    params = TIME_BUDGETED_SASREC if name == "sasrec" else {}
    model = MODELS.build(name, params, seed=seed, time_budget_s=sasrec_budget_s)
    model.fit(split.train, valid=split.valid)
    if memo is not None:
        _FITTED[key] = model
    return model
