"""Shared fixtures: a private RECAI_HOME per test and small hand-made catalogs and logs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recai.data import Catalog, CatalogSchema, ColumnRole, ColumnSpec, Dataset, Interactions


@pytest.fixture(scope="session")
def shared_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One models folder per test session: assembling a 1 GB GGUF once is enough."""
    return tmp_path_factory.mktemp("recai-models")


@pytest.fixture(autouse=True)
def _private_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, shared_models_dir: Path
) -> Path:
    """No test reads or writes the user's real cache."""
    home = tmp_path_factory.mktemp("recai-home")
    monkeypatch.setenv("RECAI_HOME", str(home))
    monkeypatch.setenv("RECAI_MODELS_DIR", str(shared_models_dir))
    for var in ("RECAI_LLM", "RECAI_EMBEDDER", "OPENAI_BASE_URL", "OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


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


@pytest.fixture
def films() -> pd.DataFrame:
    return pd.DataFrame(
        FILMS, columns=["item_id", "title", "year", "genres", "director", "runtime", "language"]
    )


@pytest.fixture
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


@pytest.fixture
def catalog(films: pd.DataFrame, film_schema: CatalogSchema) -> Catalog:
    return Catalog(films, film_schema)


def make_log(rows: list[tuple[object, int, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])


@pytest.fixture
def log() -> pd.DataFrame:
    # user "a" has a timestamp tie at t=300: the file order (12 before 13) must decide.
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


@pytest.fixture
def dataset(catalog: Catalog, log: pd.DataFrame) -> Dataset:
    return Dataset("tiny", catalog, Interactions(log, catalog.ids))
