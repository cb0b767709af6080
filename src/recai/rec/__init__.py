"""Classic recommenders behind one API (see :class:`recai.rec.base.Recommender`)."""

from recai.rec.base import Recommender
from recai.rec.popularity import Popularity

__all__ = ["Popularity", "Recommender"]
