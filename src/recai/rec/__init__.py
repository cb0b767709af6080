"""Classic recommenders behind one API (see :class:`recai.rec.base.Recommender`).

:data:`MODELS` is the one list of them: ``recai rec``, the classic systems of ``recai eval``, the
knowledge extractors' models, gen's teacher, explain's target and the agent's preference models all
build and load them through it. The models are imported on first use (``recai --help`` lists their
names without importing pandas or implicit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recai._lazy import lazy_exports
from recai.rec.estimator import Registry

#: The recommenders by the name a CLI argument or an evaluation spec uses. Run options: ``seed`` (the
#: models with randomness), ``progress`` (the iterative ones), ``time_budget_s`` (SASRec).
MODELS: Registry[Recommender] = Registry(
    "recommender",
    {
        "popularity": "recai.rec.popularity.Popularity",
        "itemcf": "recai.rec.itemcf.ItemKNN",
        "als": "recai.rec.mf.ALS",
        "bpr": "recai.rec.mf.BPR",
        "sasrec": "recai.rec.sasrec.SASRec",
    },
    run_options=("seed", "progress", "time_budget_s"),
)

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".base": ["Recommender"],
        ".estimator": ["Estimator", "NotFittedError"],
        ".itemcf": ["ItemKNN"],
        ".mf": ["ALS", "BPR"],
        ".popularity": ["Popularity"],
        ".sasrec": ["SASRec"],
    },
)

__all__ = [
    "ALS",
    "BPR",
    "MODELS",
    "Estimator",
    "ItemKNN",
    "NotFittedError",
    "Popularity",
    "Recommender",
    "Registry",
    "SASRec",
]

if TYPE_CHECKING:
    from recai.rec.base import Recommender
    from recai.rec.estimator import Estimator, NotFittedError
    from recai.rec.itemcf import ItemKNN
    from recai.rec.mf import ALS, BPR
    from recai.rec.popularity import Popularity
    from recai.rec.sasrec import SASRec
