"""Small film data for the knowledge tests (no tests here), built in code.

The log is designed for the leakage tests: The Matrix (X) and Beauty and the Beast 1946 (Y) share no
attribute, and they co-occur only at the end of the "leaky" users' sequences, as the validation (X)
and test (Y) events of a leave-one-out split. Training holds X (other users) and Y (yet other users),
never together. Psycho and Vertigo share a director, for the graph paths.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from recai.data import Catalog, Dataset, Interactions
from recai.data.splits import Split
from tests.catalog_fixtures import FILM_SCHEMA, FILMS

X, Y = 1, 4  # item ids
FILLER = [2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 17, 18, 19]
ONLY_IN_TEST = 24  # Arrival: a test event of one user, nowhere else


def film_catalog() -> Catalog:
    frame = pd.DataFrame(FILMS, columns=[c.name for c in FILM_SCHEMA.columns])
    return Catalog(frame, FILM_SCHEMA)


def leaky_log(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, int, int]] = []

    def add(user: str, items: list[int]) -> None:
        rows.extend((user, item, 1_600_000_000 + 60 * t) for t, item in enumerate(items))

    def filler(n: int) -> list[int]:
        return [int(i) for i in rng.choice(FILLER, size=n, replace=False)]

    for u in range(20):  # X then Y as the last two events: validation and test only
        add(f"a{u:02d}", [*filler(6), X, Y])
    for u in range(10):  # X in training, no Y
        f = filler(7)
        add(f"b{u:02d}", [*f[:3], X, *f[3:]])
    for u in range(10):  # Y in training, no X
        f = filler(7)
        add(f"c{u:02d}", [*f[:3], Y, *f[3:]])
    for u in range(6):  # Psycho and Vertigo together, often
        add(f"d{u:02d}", [*filler(3), 11, 12, *filler(3)])
    add("z00", [*filler(5), ONLY_IN_TEST])
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def leaky_dataset() -> Dataset:
    catalog = film_catalog()
    return Dataset("leaky-films", catalog, Interactions(leaky_log(), catalog.ids))


def position(catalog: Catalog, item_id: int) -> int:
    return int(catalog.index_of([item_id])[0])


def train_only(split: Split) -> Any:
    """A split that exposes only its training part: anything that reads valid or test fails."""
    return SimpleNamespace(train=split.train)


def everything_as_train(split: Split) -> Split:
    """The positive control: a 'split' whose training part is the whole log (leaks by construction)."""
    return Split(split.train.concat(split.valid).concat(split.test), split.valid, split.test, "leaky")
