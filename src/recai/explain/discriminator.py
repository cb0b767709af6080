"""How much of the target model's behaviour an explanation carries (RecExplainer's discriminator).

A judge says whether an explanation reads well; it cannot say whether the explanation is *about the
model*. RecExplainer's answer: train a small classifier on explanations alone to predict what the
target model did (here: does it rank the item in its top share for this user, or in its bottom half).
If the explanations carry the model's decision, the classifier recovers it from them; if they are
generic praise, it cannot do better than the majority class.

The classifier is L2-regularised logistic regression on an Encoder's embedding of each explanation,
scored by stratified k-fold cross-validation, so every explanation is predicted by a classifier that
never saw it. The report gives the held-out accuracy with a bootstrap interval, the majority-class
accuracy it must beat, and each case's prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recai.evaluate.metrics import bootstrap_ci
from recai.explain.evaluation import explain_cases, target_decision, why_cases


def decision_labels(target: Any, catalog: Any, cases: Sequence[Any], *, top_share: float = 0.1) -> list[int]:
    """1 where the target ranks the case's item in its top ``top_share`` for the user, else 0 (the
    same rule as :func:`recai.explain.evaluation.decision_facts` states to the judge)."""
    labels = []
    for case in cases:
        positions = [int(p) for p in catalog.index_of(list(case.history))]
        ranking = [int(p) for p in target.ranking(positions)]
        position = int(catalog.index_of([case.item])[0])
        rank, _, recommends = target_decision(ranking, position, top_share=top_share)
        if rank is None:
            raise ValueError(f"case {case.id}: the item is in the user's history, so it has no rank")
        labels.append(int(recommends))
    return labels


def fit_logistic(features: np.ndarray, labels: np.ndarray, *, l2: float = 1.0, steps: int = 50) -> np.ndarray:
    """Weights (bias last) of L2-regularised logistic regression, by Newton's method.

    Newton converges in a handful of steps on a few hundred explanations and a few hundred dimensions,
    and needs no learning rate; the bias is not penalised.
    """
    x = np.hstack([features, np.ones((len(features), 1))]).astype(np.float64)
    y = labels.astype(np.float64)
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0.0
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty) + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w


def _folds(labels: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """A fold number per case, each class spread evenly over the folds (stratified), seeded."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=np.int64)
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        fold[members] = np.arange(len(members)) % n_folds
    return fold


def discriminator_accuracy(
    explanations: Sequence[str],
    labels: Sequence[int],
    encoder: Any,
    *,
    n_folds: int = 5,
    l2: float = 1.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Held-out accuracy of a classifier predicting ``labels`` from ``explanations`` alone.

    Returns ``accuracy`` (mean, low, high: a 95% bootstrap interval over cases), ``majority`` (the
    accuracy of always answering the more frequent label: the floor), ``n``, ``folds`` and
    ``predictions`` (one 0/1 per case, in order).
    """
    y = np.asarray(labels, dtype=np.int64)
    if len(explanations) != len(y):
        raise ValueError(f"{len(explanations)} explanations but {len(y)} labels")
    if set(np.unique(y).tolist()) != {0, 1}:
        raise ValueError("labels must hold both 0 and 1: a discriminator needs both decisions")
    smallest = int(min((y == 0).sum(), (y == 1).sum()))
    n_folds = min(n_folds, smallest)
    if n_folds < 2:
        raise ValueError("each label needs at least two cases for cross-validation")
    features = np.asarray(encoder.encode(list(explanations), "item"), dtype=np.float64)
    fold = _folds(y, n_folds, seed)
    predictions = np.empty(len(y), dtype=np.int64)
    for k in range(n_folds):
        held = fold == k
        w = fit_logistic(features[~held], y[~held], l2=l2)
        scores = np.hstack([features[held], np.ones((int(held.sum()), 1))]) @ w
        predictions[held] = (scores > 0).astype(np.int64)
    correct = (predictions == y).astype(np.float64)
    low, high = bootstrap_ci(correct, seed=seed)
    majority = float(max(y.mean(), 1 - y.mean()))
    return {
        "accuracy": {"mean": float(correct.mean()), "low": low, "high": high},
        "majority": majority,
        "n": len(y),
        "folds": n_folds,
        "predictions": predictions.tolist(),
    }


def explanation_faithfulness(
    explainer: Any,
    examples: Sequence[Any],
    target: Any,
    catalog: Any,
    encoder: Any,
    *,
    n: int = 100,
    top_share: float = 0.1,
    noun: str = "item",
    n_folds: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """The discriminator run on ``explainer``: it explains ``n`` cases from distinct test users (half
    an item the target ranks in its top share, half one from its bottom half, as
    :func:`recai.explain.evaluation.why_cases` picks them), and a classifier predicts the target's
    decision from each explanation alone. Returns :func:`discriminator_accuracy`'s result with the
    system, the cases, their labels and the explanations."""
    cases = why_cases(examples, target, catalog, n=n, top_share=top_share, seed=seed)
    labels = decision_labels(target, catalog, cases, top_share=top_share)
    explanations = explain_cases(explainer, cases, noun=noun)
    result = discriminator_accuracy(explanations, labels, encoder, n_folds=n_folds, seed=seed)
    result["system"] = getattr(explainer, "name", type(explainer).__name__)
    result["encoder"] = getattr(encoder, "identity", type(encoder).__name__)
    result["cases"] = [
        {"id": c.id, "user": c.user, "item": c.item, "label": y, "explanation": text}
        for c, y, text in zip(cases, labels, explanations, strict=True)
    ]
    return result
