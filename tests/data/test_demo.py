from __future__ import annotations

import itertools

import pandas as pd
import pytest

from recai.data import ColumnRole, load
from recai.data.demo.loader import demo_films
from recai.data.demo.simulate import SimulationConfig, simulate_interactions

GENRES = {
    "Action",
    "Adventure",
    "Animation",
    "Biography",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Family",
    "Fantasy",
    "History",
    "Horror",
    "Music",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Sport",
    "Thriller",
    "War",
    "Western",
}


def test_demo_catalog_is_complete_and_well_formed() -> None:
    ds = load("demo")
    items = ds.catalog.items
    assert 280 <= len(items) <= 320
    assert items["item_id"].is_unique and not items.isna().any().any()
    assert ds.catalog.schema.column("director").role is ColumnRole.MULTI_CATEGORICAL
    assert set(g for gs in items["genres"] for g in gs) <= GENRES
    assert all(1 <= len(c) <= 3 for c in items["actors"])
    assert items["year"].between(1900, 2030).all() and items["runtime"].between(40, 300).all()
    assert not items.duplicated(["title", "year"]).any()
    assert (items["language"] != "English").sum() >= 60  # a mix of countries and languages
    assert items["year"].lt(1970).sum() >= 40 and items["year"].ge(2000).sum() >= 60  # and of eras
    words = items["synopsis"].str.split().str.len()
    assert words.between(10, 45).all()


def test_demo_answers_the_flagship_request() -> None:
    """ "A 90s crime film like Pulp Fiction but shorter" must have real answers in the catalog."""
    cat = load("demo").catalog
    pulp = cat.ground("Pulp Fiction")
    assert pulp.resolved and not pulp.ambiguous
    runtime = cat.row(pulp.item_id)["runtime"]
    shorter = cat.ids_where(
        f"list_contains(genres, 'Crime') AND year BETWEEN 1990 AND 1999 AND runtime < {runtime}"
    )
    assert len(shorter) >= 5


def test_demo_log_has_the_promised_shape_and_signals() -> None:
    ds = load("demo")
    inter = ds.interactions
    assert 1800 <= inter.n_users <= 2200 and 50_000 <= len(inter) <= 70_000
    assert inter.user_lengths().min() >= 5
    assert not inter.frame.duplicated(["user_id", "item_id"]).any()
    counts = ds.popularity()
    top_share = pd.Series(counts).sort_values(ascending=False).head(30).sum() / counts.sum()
    assert top_share > 0.2  # popularity is skewed (30 of 300 films would be 10% if uniform)
    # Sequential signal: consecutive films share a director far more often than random pairs do.
    directors = ds.catalog.items["director"].map(set).tolist()
    indptr, codes = inter.sequence_arrays()
    same = total = 0
    for u in range(inter.n_users):
        seq = codes[indptr[u] : indptr[u + 1]]
        for a, b in itertools.pairwise(seq):
            same += bool(directors[a] & directors[b])
            total += 1
    import numpy as np

    rng = np.random.default_rng(0)
    pairs = rng.integers(0, len(directors), (20_000, 2))
    base = np.mean([bool(directors[a] & directors[b]) for a, b in pairs if a != b])
    assert same / total > 3 * base


def test_simulator_is_deterministic_and_matches_the_shipped_log() -> None:
    films = demo_films()
    small = SimulationConfig(n_users=50)
    a, b = simulate_interactions(films, small), simulate_interactions(films, small)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(simulate_interactions(films, SimulationConfig(n_users=50, seed=1)))
    shipped = load("demo").interactions.frame.drop(columns="_row").reset_index(drop=True)
    fresh = simulate_interactions(films)
    fresh = fresh.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(shipped, fresh, check_dtype=False)


@pytest.mark.parametrize(
    "title", ["Pulp Fiction", "Heat", "Spirited Away", "Seven Samurai", "Parasite", "Casablanca"]
)
def test_well_known_titles_ground(title: str) -> None:
    assert load("demo").catalog.ground(title).resolved
