"""Matrix factorisation with the ``implicit`` library: ALS (weighted least squares) and BPR (pairwise
ranking). Training runs in chunks of iterations with validation NDCG@10 in between, keeping the best
factors (early stopping). Users seen in training use their learned factors; any other history is
folded in: ALS solves its least-squares problem for the new user, BPR runs a few seeded SGD epochs of
its own loss on the user vector with the item factors fixed.
"""

from __future__ import annotations

import time
import warnings
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from recai.data.interactions import Interactions
from recai.rec.base import Recommender
from recai.rec.estimator import check_choice
from recai.rec.weighting import WEIGHTINGS, weighted_matrix


class _MF(Recommender):
    """Shared training loop, scoring and persistence for the two factorisations.

    Both take ``factors``, ``regularization``, ``iterations``, ``eval_every``, ``patience``, ``seed``
    and ``progress`` (documented on :class:`ALS` and :class:`BPR`, whose defaults differ).
    """

    factors: int
    regularization: float
    iterations: int
    eval_every: int
    patience: int
    seed: int
    progress: bool

    def __init__(self, arguments: Mapping[str, Any]) -> None:
        super().__init__(arguments)
        self.user_factors_: np.ndarray | None = None
        self.item_factors_: np.ndarray | None = None
        self.user_ids_: list[Any] = []
        self._positions: dict[Any, int] = {}  # user id -> row of user_factors_, set by fit and load
        self.history_: list[dict[str, float]] = []

    @abstractmethod
    def _model(self) -> Any:
        """A fresh implicit model with this object's hyperparameters."""

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        # implicit parallelises itself; a second BLAS thread pool inside it only makes it slower.
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            # implicit inspects the environment variable, not the live limit set just above.
            warnings.filterwarnings("ignore", "OpenBLAS is configured to use", RuntimeWarning)
            self._train(interactions, valid)

    def _matrix(self, interactions: Interactions) -> Any:
        """The user x item matrix the model trains on (binary; ALS may weight it)."""
        return interactions.to_csr(values="binary").astype(np.float32)

    def _train(self, interactions: Interactions, valid: Interactions | None) -> None:
        from recai.rec.validation import quick_ndcg

        matrix = self._matrix(interactions)
        model = self._model()
        self.user_ids_ = list(interactions.user_ids)
        self._positions = {u: i for i, u in enumerate(self.user_ids_)}
        self.history_ = []
        best, best_state, stale, done = -1.0, None, 0, 0
        start = time.perf_counter()
        chunk = self.eval_every if valid is not None else self.iterations
        # implicit reseeds its sampler on every fit call: give each chunk a fresh (seeded) stream, or the
        # same few epochs of samples would repeat for the whole run.
        seeds = np.random.default_rng(self.seed)
        with tqdm(total=self.iterations, desc=self.name, disable=not self.progress) as bar:
            while done < self.iterations:
                steps = min(chunk, self.iterations - done)
                model.iterations = steps
                model.random_state = int(seeds.integers(2**31 - 1))
                model.fit(matrix, show_progress=False)  # continues from the current factors
                done += steps
                bar.update(steps)
                self._take(model)
                if valid is None:
                    continue
                score = quick_ndcg(self, interactions, valid)
                self.history_.append(
                    {"iteration": done, "valid_ndcg@10": score, "seconds": time.perf_counter() - start}
                )
                if score > best:
                    best, stale = score, 0
                    best_state = (self.user_factors_.copy(), self.item_factors_.copy())
                else:
                    stale += 1
                    if stale >= self.patience:
                        break
        if best_state is not None:
            self.user_factors_, self.item_factors_ = best_state

    def _take(self, model: Any) -> None:
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32).copy()
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32).copy()

    @abstractmethod
    def _fold_in(self, history: np.ndarray) -> np.ndarray:
        """A user vector for a history the model was not trained on."""

    def _score(self, histories: list[np.ndarray], users: list[Any] | None) -> np.ndarray:
        assert self.user_factors_ is not None and self.item_factors_ is not None
        positions = self._positions
        vectors = np.empty((len(histories), self.user_factors_.shape[1]), dtype=np.float32)
        for r, h in enumerate(histories):
            known = positions.get(users[r]) if users is not None else None
            vectors[r] = self.user_factors_[known] if known is not None else self._fold_in(h)
        return (vectors @ self.item_factors_.T).astype(np.float64)

    def item_vectors(self) -> np.ndarray:
        """Item embeddings (without any bias column) for similarity and for other pillars."""
        assert self.item_factors_ is not None
        return self.item_factors_

    def _state(self) -> dict[str, np.ndarray]:
        assert self.user_factors_ is not None and self.item_factors_ is not None
        return {
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
            "user_ids": np.asarray([str(u) for u in self.user_ids_]),
            "user_ids_are_int": np.asarray(all(isinstance(u, (int, np.integer)) for u in self.user_ids_)),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.user_factors_, self.item_factors_ = state["user_factors"], state["item_factors"]
        ids = state["user_ids"].tolist()
        self.user_ids_ = [int(u) for u in ids] if bool(state["user_ids_are_int"]) else ids
        self._positions = {u: i for i, u in enumerate(self.user_ids_)}


class ALS(_MF):
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008): fast, strong on logs without order; observed
    items get confidence ``alpha``. A new user's history is folded in by solving their least-squares
    problem (at the median confidence of the training events when the log has weights).

    Args:
        factors: latent dimensions.
        regularization: L2 penalty on the factors.
        alpha: confidence of an observed item (unobserved ones have 1).
        iterations: the most ALS sweeps.
        eval_every: sweeps between validation NDCG@10 checks (with ``valid``).
        patience: checks without improvement before training stops (the best factors are kept).
        seed: seeds the factors' initialisation.
        progress: show a progress bar.
        weighting: ``"binary"`` ignores the log's event weights (listen counts, hours); ``"weight"``
            gives confidence ``alpha * w``, ``"log"`` ``alpha * log(1 + w)``, which tames heavy tails.
    """

    name = "als"

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 30,
        eval_every: int = 3,
        patience: int = 3,
        seed: int = 0,
        progress: bool = False,
        weighting: str = "binary",
    ) -> None:
        check_choice("weighting", weighting, WEIGHTINGS)
        super().__init__(locals())
        self.fold_in_value_ = 1.0

    def _matrix(self, interactions: Interactions) -> Any:
        matrix = weighted_matrix(interactions, self.weighting)
        self.fold_in_value_ = float(np.median(matrix.data)) if matrix.nnz else 1.0
        return matrix

    def _state(self) -> dict[str, np.ndarray]:
        return {**super()._state(), "fold_in_value": np.asarray(self.fold_in_value_)}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        super()._set_state(state)
        self.fold_in_value_ = float(state["fold_in_value"]) if "fold_in_value" in state else 1.0

    def _model(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.seed,
            num_threads=1,
        )

    def _fold_in(self, history: np.ndarray) -> np.ndarray:
        """Solve (Y^T C Y + reg I) x = Y^T C p for one user, exactly as implicit trains: implicit scales
        the binary matrix by ``alpha``, so an observed item has confidence alpha (unobserved: 1)."""
        assert self.item_factors_ is not None
        y = self.item_factors_.astype(np.float64)
        gram = y.T @ y + self.regularization * np.eye(y.shape[1])
        items = np.unique(history)
        if len(items) == 0:
            return np.zeros(y.shape[1], dtype=np.float32)
        yi = y[items]
        confidence = self.alpha * self.fold_in_value_
        a = gram + (confidence - 1.0) * yi.T @ yi
        b = confidence * yi.sum(axis=0)
        return np.linalg.solve(a, b).astype(np.float32)


class BPR(_MF):
    """Bayesian personalised ranking (Rendle et al. 2009), trained by the implicit library on one
    thread, so results are reproducible; the last factor column is the item bias. A new user's vector
    is fitted by a few seeded SGD epochs of the same loss with the item factors fixed.

    Args:
        factors: latent dimensions (the bias column comes on top).
        learning_rate: SGD step size, in training and fold-in.
        regularization: L2 penalty on the factors.
        iterations: the most epochs.
        eval_every: epochs between validation NDCG@10 checks (with ``valid``).
        patience: checks without improvement before training stops (the best factors are kept).
        seed: seeds initialisation, sampling and fold-in.
        progress: show a progress bar.
        fold_in_epochs: SGD epochs over a new user's history.
    """

    name = "bpr"

    def __init__(
        self,
        *,
        factors: int = 64,
        learning_rate: float = 0.005,
        regularization: float = 0.01,
        iterations: int = 1000,
        eval_every: int = 10,
        patience: int = 10,
        seed: int = 0,
        progress: bool = False,
        fold_in_epochs: int = 30,
    ) -> None:
        super().__init__(locals())

    def _model(self) -> Any:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            random_state=self.seed,
            num_threads=1,
        )

    def item_vectors(self) -> np.ndarray:
        assert self.item_factors_ is not None
        return self.item_factors_[:, :-1]

    def _fold_in(self, history: np.ndarray) -> np.ndarray:
        """SGD on the BPR loss for the new user only (item factors and biases fixed), seeded by history."""
        assert self.item_factors_ is not None
        v = self.item_factors_.astype(np.float64)
        dim = v.shape[1]
        user = np.zeros(dim)
        user[-1] = 1.0  # the bias column is always active, as in implicit
        items = np.unique(history)
        if len(items) == 0:
            return user.astype(np.float32)
        rng = np.random.default_rng((self.seed, len(items), int(items.sum())))
        seen = np.zeros(len(v), dtype=bool)
        seen[items] = True
        for _ in range(self.fold_in_epochs):
            pos = rng.permutation(items)
            neg = rng.integers(0, len(v), size=len(pos))
            for p, n in zip(pos, neg, strict=True):
                if seen[n]:
                    continue
                diff = v[p] - v[n]
                z = 1.0 / (1.0 + np.exp(user @ diff))
                grad = z * diff - self.regularization * user
                grad[-1] = 0.0
                user += self.learning_rate * grad
        return user.astype(np.float32)
