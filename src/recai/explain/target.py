"""The target recommender RecExplainer explains: a fitted SASRec or MF model, frozen, with its embeddings.

The LLM is aligned to *this model's* behaviour, so every label comes from running it (its top-k, its
order, its top or bottom share), never from the held-out log. Intention alignment also reads the model's
own vectors: a user vector (SASRec: the Transformer's last hidden state for the history; MF: the user
factors, or the folded-in vector for a history it was not trained on) and an item vector (SASRec: the
item embedding; MF: the item factors), whose dot product is exactly the model's score.

The model is frozen explicitly: its network is put in eval mode with ``requires_grad`` off, and every
vector handed out is a detached NumPy copy, so no training step can reach it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recai.rec import MODELS
from recai.rec.base import Recommender

#: The recommenders RecExplainer can explain: those with item embeddings (``item_vectors``), whose score
#: is a user vector's dot product with them.
SUPPORTED = tuple(name for name, cls in MODELS.items() if hasattr(cls, "item_vectors"))


class TargetModel:
    """A fitted recommender with embeddings, frozen: the model whose behaviour RecExplainer learns, with
    ``score`` / ``rank`` and its user and item vectors for one or more users.

    Args:
        recommender: a fitted recommender of :data:`SUPPORTED`; it is frozen in place.
    """

    def __init__(self, recommender: Recommender) -> None:
        if recommender.n_items_ is None:
            raise ValueError("the target recommender is not fitted")
        if recommender.name not in SUPPORTED:
            raise TypeError(
                f"RecExplainer needs a recommender with user and item embeddings ({', '.join(SUPPORTED)}), "
                f"got {recommender.name!r}"
            )
        self.recommender = recommender
        self.freeze()

    @property
    def name(self) -> str:
        return self.recommender.name

    @property
    def n_items(self) -> int:
        return int(self.recommender.n_items_)  # type: ignore[arg-type]

    def freeze(self) -> None:
        """Eval mode and no gradients for a torch network (SASRec); MF factors are plain arrays."""
        net = getattr(self.recommender, "net_", None)
        if net is not None:
            net.eval()
            net.requires_grad_(False)

    @property
    def frozen(self) -> bool:
        net = getattr(self.recommender, "net_", None)
        return net is None or (not net.training and not any(p.requires_grad for p in net.parameters()))

    def item_vectors(self) -> np.ndarray:
        """(n_items, d) float32, aligned with catalog positions; a copy."""
        rec: Any = self.recommender
        if self.name == "sasrec":
            return rec.net_.item.weight[1:].detach().cpu().numpy().astype(np.float32).copy()
        return np.asarray(rec.item_factors_, dtype=np.float32).copy()

    def user_vectors(
        self, histories: Sequence[Sequence[int]], users: Sequence[Any] | None = None
    ) -> np.ndarray:
        """(n, d) float32: the vector whose dot product with :meth:`item_vectors` is the model's score."""
        rec: Any = self.recommender
        arrays = [np.asarray(list(h), dtype=np.int64) for h in histories]
        if self.name == "sasrec":
            import torch

            out = []
            with torch.no_grad():
                for lo in range(0, len(arrays), 512):
                    inputs = torch.from_numpy(rec._batch_inputs(arrays[lo : lo + 512]))
                    out.append(rec.net_(inputs)[:, -1, :].float().cpu().numpy())
            dim = rec.hidden
            return np.concatenate(out).astype(np.float32) if out else np.zeros((0, dim), np.float32)
        vectors = np.empty((len(arrays), rec.user_factors_.shape[1]), dtype=np.float32)
        positions = getattr(rec, "_positions", {})
        for r, h in enumerate(arrays):
            known = positions.get(users[r]) if users is not None else None
            vectors[r] = rec.user_factors_[known] if known is not None else rec._fold_in(h)
        return vectors

    def scores(self, histories: Sequence[Sequence[int]], users: Sequence[Any] | None = None) -> np.ndarray:
        """(n, n_items) scores, the user's own items included."""
        return self.recommender.score([list(h) for h in histories], users=users)

    def ranking(self, history: Sequence[int], user: Any = None) -> np.ndarray:
        """Every item not in ``history``, best first (ties by position)."""
        scores = self.scores([history], [user] if user is not None else None)[0]
        allowed = np.ones(len(scores), dtype=bool)
        if len(history):
            allowed[np.asarray(list(history), dtype=np.int64)] = False
        idx = np.flatnonzero(allowed)
        return idx[np.lexsort((idx, -scores[idx]))]

    def similar(self, position: int, k: int) -> list[int]:
        """The ``k`` items whose vectors are closest (cosine) to the item's own."""
        return [int(i) for i in self.recommender.similar_items(int(position), k)[0]]

    @property
    def dim(self) -> int:
        return int(self.item_vectors().shape[1])

    def save(self, path: str | Path) -> Path:
        return self.recommender.save(path)

    @classmethod
    def load(cls, path: str | Path) -> TargetModel:
        """A target saved by :meth:`save` (any supported recommender class)."""
        return cls(MODELS.saved_class(path).load(path))


def fit_target(split: Any, name: str = "sasrec", **params: Any) -> TargetModel:
    """A target fitted on the split's training log (validation for early stopping), frozen."""
    from recai.gen.tasks import fit_teacher

    if name not in SUPPORTED:
        raise ValueError(f"target must be one of {SUPPORTED}, got {name!r}")
    return TargetModel(fit_teacher(split, name, **params))
