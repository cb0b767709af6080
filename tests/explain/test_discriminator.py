"""The discriminator: explanations that carry the decision are recovered, generic ones are not."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from recai.explain.discriminator import decision_labels, discriminator_accuracy, fit_logistic
from recai.testing.fakes import BagOfWordsEncoder


def test_logistic_regression_separates_separable_data() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    y = (x[:, 0] - 0.5 * x[:, 1] > 0).astype(np.int64)
    w = fit_logistic(x, y, l2=0.01)
    predicted = (np.hstack([x, np.ones((80, 1))]) @ w > 0).astype(np.int64)
    assert (predicted == y).mean() > 0.95


def test_explanations_that_carry_the_decision_score_above_the_majority() -> None:
    rng = np.random.default_rng(1)
    labels = [i % 2 for i in range(40)]
    faithful = [
        (
            "A strong match: it fits your taste for heist thrillers."
            if y
            else "Probably not for you: it is far from your usual picks."
        )
        + f" Case {rng.integers(1000)}."
        for y in labels
    ]
    generic = [
        f"This is a wonderful title that many people enjoy. Case {rng.integers(1000)}." for _ in labels
    ]
    good = discriminator_accuracy(faithful, labels, BagOfWordsEncoder(), seed=0)
    bad = discriminator_accuracy(generic, labels, BagOfWordsEncoder(), seed=0)
    assert good["accuracy"]["mean"] == 1.0 and good["majority"] == 0.5
    assert bad["accuracy"]["mean"] <= 0.65
    assert good["accuracy"]["low"] <= good["accuracy"]["mean"] <= good["accuracy"]["high"]
    assert len(good["predictions"]) == 40 and good["folds"] == 5
    again = discriminator_accuracy(faithful, labels, BagOfWordsEncoder(), seed=0)
    assert again == good


def test_refuses_what_cannot_be_cross_validated() -> None:
    with pytest.raises(ValueError, match="both 0 and 1"):
        discriminator_accuracy(["a", "b"], [1, 1], BagOfWordsEncoder())
    with pytest.raises(ValueError, match="at least two"):
        discriminator_accuracy(["a", "b", "c"], [1, 0, 0], BagOfWordsEncoder())
    with pytest.raises(ValueError, match="3 explanations but 2 labels"):
        discriminator_accuracy(["a", "b", "c"], [1, 0], BagOfWordsEncoder())


@dataclass
class _Case:
    id: str
    history: tuple[int, ...]
    item: int


class _Catalog:
    def index_of(self, ids: list[int]) -> np.ndarray:
        return np.asarray(ids)


class _Target:
    """Ranks items by id, ascending, skipping the history."""

    def ranking(self, history: list[int]) -> np.ndarray:
        return np.array([i for i in range(20) if i not in history])


def test_labels_follow_the_targets_ranking() -> None:
    cases = [_Case("a", (0,), 1), _Case("b", (0,), 15), _Case("c", (0, 1), 2)]
    assert decision_labels(_Target(), _Catalog(), cases, top_share=0.1) == [1, 0, 1]
    with pytest.raises(ValueError, match="case d"):
        decision_labels(_Target(), _Catalog(), [_Case("d", (3,), 3)])


class _Explainer:
    """Behaviour-mode stand-in: explains from a lookup of what the target did (faithful) or not."""

    mode = "behaviour"
    name = "fake-explainer"

    def __init__(self, catalog: object, verdicts: dict[str, int] | None) -> None:
        self.catalog = catalog
        self.verdicts = verdicts

    def generate(self, rendered: list, *, max_new_tokens: int = 128) -> list[str]:
        out = []
        for r in rendered:
            text = r.messages[-1]["content"]
            side = next((y for title, y in (self.verdicts or {}).items() if title in text), None)
            out.append(
                "A strong match for your taste." if side == 1 else "Far from what you usually pick."
                if side == 0 else "A title many people enjoy."
            )  # fmt: skip
        return out


def test_faithfulness_of_an_explainer_end_to_end() -> None:
    from recai.explain.discriminator import explanation_faithfulness
    from tests.explain.helpers import dataset, small_data, target

    catalog, examples = dataset().catalog, small_data().test
    cases_probe = explanation_faithfulness(
        _Explainer(catalog, None), examples, target(), catalog, BagOfWordsEncoder(), n=8, n_folds=2
    )
    assert cases_probe["n"] >= 4 and cases_probe["system"] == "fake-explainer"
    verdicts = {catalog.title_of(c["item"]): c["label"] for c in cases_probe["cases"]}
    faithful = explanation_faithfulness(
        _Explainer(catalog, verdicts), examples, target(), catalog, BagOfWordsEncoder(), n=8, n_folds=2
    )
    assert faithful["accuracy"]["mean"] == 1.0
    assert cases_probe["accuracy"]["mean"] <= faithful["majority"]  # generic text carries nothing
