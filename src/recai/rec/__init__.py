"""Classic recommenders behind one API (see :class:`recai.rec.base.Recommender`)."""

from recai.rec.base import NotFittedError, Recommender
from recai.rec.itemcf import ItemKNN
from recai.rec.mf import ALS, BPR
from recai.rec.popularity import Popularity
from recai.rec.sasrec import SASRec

MODELS: dict[str, type[Recommender]] = {
    "popularity": Popularity,
    "itemcf": ItemKNN,
    "als": ALS,
    "bpr": BPR,
    "sasrec": SASRec,
}

__all__ = ["ALS", "BPR", "MODELS", "ItemKNN", "NotFittedError", "Popularity", "Recommender", "SASRec"]
