from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recai.data import CatalogSchema, ColumnRole, ColumnSpec, DataError


def test_roles_must_include_one_id_and_one_title() -> None:
    with pytest.raises(ValueError, match="exactly one column must have role 'title'"):
        CatalogSchema(columns=[ColumnSpec(name="a", role=ColumnRole.ID)])
    with pytest.raises(ValueError, match="separator"):
        ColumnSpec(name="a", role=ColumnRole.NUMERIC, separator="|")
    with pytest.raises(ValueError, match="duplicate column names"):
        CatalogSchema(
            columns=[ColumnSpec(name="a", role=ColumnRole.ID), ColumnSpec(name="a", role=ColumnRole.TITLE)]
        )


def test_yaml_round_trip_and_strictness(tmp_path: Path) -> None:
    schema = CatalogSchema(
        columns=[
            ColumnSpec(name="id", role=ColumnRole.ID),
            ColumnSpec(name="t", role=ColumnRole.TITLE),
            ColumnSpec(name="tags", role=ColumnRole.MULTI_CATEGORICAL, separator=";", description="labels"),
            ColumnSpec(name="secret", role=ColumnRole.IGNORE),
        ],
        text_columns=["t", "tags"],
    )
    schema.save(tmp_path / "schema.yaml")
    assert CatalogSchema.load(tmp_path / "schema.yaml") == schema
    text = (tmp_path / "schema.yaml").read_text()
    (tmp_path / "typo.yaml").write_text(text.replace("text_columns", "text_colums"))
    with pytest.raises(DataError, match="text_colums"):
        CatalogSchema.load(tmp_path / "typo.yaml")
    (tmp_path / "v2.yaml").write_text(text.replace("version: 1", "version: 2"))
    with pytest.raises(DataError, match="version"):
        CatalogSchema.load(tmp_path / "v2.yaml")
    (tmp_path / "ign.yaml").write_text(text.replace("- tags", "- secret"))
    with pytest.raises(DataError, match="ignored columns"):
        CatalogSchema.load(tmp_path / "ign.yaml")


def test_inference_explains_itself_and_prefers_sensible_columns() -> None:
    n = 60
    frame = pd.DataFrame(
        {
            "book_id": np.arange(n),
            "books_count": np.arange(n) % 7,  # editions, not popularity
            "original_title": [None if i % 3 else f"Orig {i}" for i in range(n)],
            "title": [f"Book {i}" for i in range(n)],
            "authors": [f"Author {i % 9}" for i in range(n)],
            "genres": ["fantasy|young adult" if i % 2 else "history" for i in range(n)],
            "ratings_count": np.arange(n) * 10,
            "blurb": ["a long description of the book that goes on and on about the plot " * 2] * n,
            "image_url": [f"https://img.example/{i}.jpg" for i in range(n)],
            "published": pd.date_range("2000-01-01", periods=n, freq="D"),
        }
    )
    schema, reasons = CatalogSchema.infer(frame)
    roles = {c.name: c.role for c in schema.columns}
    assert roles["book_id"] is ColumnRole.ID
    assert roles["title"] is ColumnRole.TITLE  # not the sparse original_title
    assert roles["ratings_count"] is ColumnRole.POPULARITY and roles["books_count"] is ColumnRole.NUMERIC
    assert roles["authors"] is ColumnRole.CATEGORICAL
    assert roles["genres"] is ColumnRole.MULTI_CATEGORICAL and schema.column("genres").separator == "|"
    assert roles["blurb"] is ColumnRole.TEXT
    assert roles["image_url"] is ColumnRole.IGNORE
    assert roles["published"] is ColumnRole.DATE
    assert all(why for _, _, why in reasons)


def test_inference_fails_clearly_without_an_id() -> None:
    with pytest.raises(DataError, match="no column has unique, non-empty values"):
        CatalogSchema.infer(pd.DataFrame({"a": [1, 1], "b": ["x", "x"]}))
