"""Shared fixtures: a private RECAI_HOME per test and the small hand-made film catalog and log of
:mod:`recai.testing.data` (built in code there, so the conformance suites can use them too)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

pytest.register_assert_rewrite("recai.testing")  # failed suite assertions show their values

from recai.data import Catalog, CatalogSchema, Dataset, Interactions  # noqa: E402
from recai.testing.data import film_frame, film_log  # noqa: E402
from recai.testing.data import film_schema as _film_schema  # noqa: E402


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


@pytest.fixture
def films() -> pd.DataFrame:
    return film_frame()


@pytest.fixture
def film_schema() -> CatalogSchema:
    return _film_schema()


@pytest.fixture
def catalog(films: pd.DataFrame, film_schema: CatalogSchema) -> Catalog:
    return Catalog(films, film_schema)


@pytest.fixture
def log() -> pd.DataFrame:
    return film_log()


@pytest.fixture
def dataset(catalog: Catalog, log: pd.DataFrame) -> Dataset:
    return Dataset("tiny", catalog, Interactions(log, catalog.ids))
