"""Classic recommenders behind one API (see :class:`recai.rec.base.Recommender`).

:data:`MODELS` is the one list of them: ``recai rec``, the classic systems of ``recai eval``, the
knowledge extractors' models, gen's teacher, explain's target and the agent's preference models all
build and load them through it.
"""

from recai.rec.base import Recommender
from recai.rec.estimator import Estimator, NotFittedError, Registry
from recai.rec.itemcf import ItemKNN
from recai.rec.mf import ALS, BPR
from recai.rec.popularity import Popularity
from recai.rec.sasrec import SASRec

#: The recommenders by the name a CLI argument or an evaluation spec uses. Run options: ``seed`` (the
#: models with randomness), ``progress`` (the iterative ones), ``time_budget_s`` (SASRec).
MODELS: Registry[Recommender] = Registry(
    "recommender",
    {"popularity": Popularity, "itemcf": ItemKNN, "als": ALS, "bpr": BPR, "sasrec": SASRec},
    run_options=("seed", "progress", "time_budget_s"),
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
