"""Small datasets built in code for the conformance suites and the tests (no data files, no pytest).

- :func:`ring_log` / :func:`ring_dataset`: users walk around a ring of :data:`N_ITEMS` items (item i is
  usually followed by i+1), plus two items nobody touched, so sequences, co-occurrence and popularity all
  carry signal; the ring catalog gives every item a genre, tags and a year for attribute-based code.
- :func:`film_catalog` / :func:`film_log` / :func:`film_dataset`: eight films with genres, directors,
  runtimes and languages (two share the title "Beauty and the Beast", and user "a" has a timestamp
  tie), for agent tools and anything that needs real-looking titles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recai.data import Catalog, CatalogSchema, ColumnRole, ColumnSpec, Dataset, Interactions

__all__ = [
    "FILMS",
    "N_ITEMS",
    "film_catalog",
    "film_dataset",
    "film_frame",
    "film_log",
    "film_schema",
    "make_log",
    "ring_catalog",
    "ring_dataset",
    "ring_log",
]

#: Items on the ring; the ring catalog and log's vocabulary has two more that nobody touched.
N_ITEMS = 24


def ring_log(n_users: int = 60, length: int = 12, seed: int = 0) -> Interactions:
    """The ring walk: ``n_users`` users of ``length`` events (distinct items), over ``N_ITEMS + 2`` ids."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        item = int(rng.integers(0, N_ITEMS))
        for t in range(length):
            rows.append((f"u{u}", item, 1000 * u + t))
            item = (item + 1) % N_ITEMS if rng.random() < 0.85 else int(rng.integers(0, N_ITEMS))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).drop_duplicates(
        ["user_id", "item_id"]
    )
    return Interactions(frame, pd.Index(range(N_ITEMS + 2)))  # two items nobody touched


def ring_catalog() -> Catalog:
    """The ring's items: a title, a genre (i mod 4), two tags (i mod 3 and i mod 5) and a year."""
    n = N_ITEMS + 2
    genres = ["Crime", "Drama", "Comedy", "Fantasy"]
    frame = pd.DataFrame(
        {
            "item_id": range(n),
            "title": [f"Item {i:02d}" for i in range(n)],
            "genre": [genres[i % 4] for i in range(n)],
            "tags": [[f"tag{i % 3}", f"mood{i % 5}"] for i in range(n)],
            "year": [1980 + i for i in range(n)],
        }
    )
    schema = CatalogSchema(
        columns=[
            ColumnSpec(name="item_id", role=ColumnRole.ID),
            ColumnSpec(name="title", role=ColumnRole.TITLE),
            ColumnSpec(name="genre", role=ColumnRole.CATEGORICAL),
            ColumnSpec(name="tags", role=ColumnRole.MULTI_CATEGORICAL),
            ColumnSpec(name="year", role=ColumnRole.NUMERIC),
        ]
    )
    return Catalog(frame, schema)


def ring_dataset(seed: int = 0) -> Dataset:
    """The ring catalog and the ring log in one :class:`Dataset`."""
    catalog = ring_catalog()
    return Dataset("ring", catalog, Interactions(ring_log(seed=seed).frame, catalog.ids))


FILMS = [
    (10, "Pulp Fiction", 1994, ["Crime", "Drama"], ["Quentin Tarantino"], 154, "English"),
    (11, "Reservoir Dogs", 1992, ["Crime", "Thriller"], ["Quentin Tarantino"], 99, "English"),
    (12, "Heat", 1995, ["Crime", "Action"], ["Michael Mann"], 170, "English"),
    (13, "Amélie", 2001, ["Comedy", "Romance"], ["Jean-Pierre Jeunet"], 122, "French"),
    (14, "Beauty and the Beast", 1946, ["Fantasy", "Romance"], ["Jean Cocteau"], 93, "French"),
    (
        15,
        "Beauty and the Beast",
        1991,
        ["Animation", "Family"],
        ["Gary Trousdale", "Kirk Wise"],
        84,
        "English",
    ),
    (16, "The Godfather", 1972, ["Crime", "Drama"], ["Francis Ford Coppola"], 175, "English"),
    (17, "The Godfather Part II", 1974, ["Crime", "Drama"], ["Francis Ford Coppola"], 202, "English"),
]


def film_frame() -> pd.DataFrame:
    return pd.DataFrame(
        FILMS, columns=["item_id", "title", "year", "genres", "director", "runtime", "language"]
    )


def film_schema() -> CatalogSchema:
    return CatalogSchema(
        columns=[
            ColumnSpec(name="item_id", role=ColumnRole.ID),
            ColumnSpec(name="title", role=ColumnRole.TITLE),
            ColumnSpec(name="year", role=ColumnRole.NUMERIC),
            ColumnSpec(name="genres", role=ColumnRole.MULTI_CATEGORICAL),
            ColumnSpec(name="director", role=ColumnRole.MULTI_CATEGORICAL),
            ColumnSpec(name="runtime", role=ColumnRole.NUMERIC, unit="min"),
            ColumnSpec(name="language", role=ColumnRole.CATEGORICAL),
        ]
    )


def film_catalog() -> Catalog:
    return Catalog(film_frame(), film_schema())


def make_log(rows: list[tuple[object, int, int, float]]) -> pd.DataFrame:
    """A (user_id, item_id, timestamp, rating) frame from rows."""
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])


def film_log() -> pd.DataFrame:
    """Three users; user "a" has a timestamp tie at t=300 (the file order, 12 before 13, must decide)."""
    return make_log(
        [
            ("a", 10, 100, 5.0),
            ("a", 11, 200, 4.0),
            ("b", 10, 50, 3.0),
            ("a", 12, 300, 2.0),
            ("a", 13, 300, 5.0),
            ("b", 16, 60, 4.0),
            ("b", 17, 70, 5.0),
            ("c", 16, 10, 4.0),
        ]
    )


def film_dataset() -> Dataset:
    catalog = film_catalog()
    return Dataset("tiny", catalog, Interactions(film_log(), catalog.ids))
