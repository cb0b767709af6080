"""Predicates: masks over the catalog, wordings that mean what the mask does, serialisation; and the
JSONL form of examples with its error messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from recai.data import Catalog, Dataset
from recai.data.errors import DataError
from recai.embed.tasks import (
    Age,
    CatalogProfile,
    ColumnKind,
    Example,
    ExampleSplit,
    HasValue,
    InRange,
    Not,
    Popularity,
    Predicate,
    PredicateError,
    predicate_from_dict,
    satisfies,
    violations,
)
from recai.train.example_sets import read_examples, write_examples
from tests.catalog_fixtures import film_dataset, product_dataset


def _titles(catalog: Catalog, mask: np.ndarray) -> list[str]:
    return [catalog.titles[i] for i in np.flatnonzero(mask)]


def test_masks_follow_the_data(catalog: Catalog) -> None:
    assert _titles(catalog, HasValue("director", "Quentin Tarantino").mask(catalog)) == [
        "Pulp Fiction",
        "Reservoir Dogs",
    ]
    assert _titles(catalog, HasValue("language", "French").mask(catalog)) == [
        "Amélie",
        "Beauty and the Beast",
    ]
    assert not HasValue("genres", "Western").mask(catalog).any()
    # closed bounds on both sides, either may be open
    assert _titles(catalog, InRange("year", 1972, 1974).mask(catalog)) == [
        "The Godfather",
        "The Godfather Part II",
    ]
    assert _titles(catalog, InRange("runtime", high=93).mask(catalog)) == ["Beauty and the Beast"] * 2
    assert InRange("year", low=2001).mask(catalog).sum() == 1
    crime = HasValue("genres", "Crime")
    assert (Not(crime).mask(catalog) == ~crime.mask(catalog)).all()
    assert _titles(catalog, Age("year", 1995, recent=True).mask(catalog)) == ["Heat", "Amélie"]
    assert _titles(catalog, Age("year", 1946, recent=False).mask(catalog)) == ["Beauty and the Beast"]
    both = [crime, InRange("year", high=1980)]
    assert _titles(catalog, satisfies(catalog, both)) == ["The Godfather", "The Godfather Part II"]
    assert violations(catalog, both).tolist() == [1, 1, 1, 2, 1, 2, 0, 0]


def test_popularity_uses_the_attached_counts(dataset: Dataset) -> None:
    catalog = dataset.catalog  # counts from the log: Pulp Fiction 2, Godfather 2, ...
    assert _titles(catalog, Popularity(low=2).mask(catalog)) == ["Pulp Fiction", "The Godfather"]
    assert Popularity(high=0).mask(catalog).sum() == 2
    with pytest.raises(ValueError, match="exactly one"):
        Popularity(low=1, high=2)


def test_bad_columns_are_named(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="unknown column 'colour'"):
        HasValue("colour", "red").mask(catalog)
    with pytest.raises(ValueError, match="'year' is numeric"):
        HasValue("year", "1994").mask(catalog)
    with pytest.raises(ValueError, match="needs a low or a high"):
        InRange("year")


def test_year_wordings_mean_the_closed_range() -> None:
    profile = CatalogProfile(film_dataset().catalog)
    assert profile.columns["year"].kind is ColumnKind.YEAR
    before = InRange("year", high=1989).wordings(profile.columns)
    assert "from before 1990" in before.modifiers and "pre-1990" in before.adjectives
    assert not any("1989" in w and "before" in w for w in before.modifiers)  # "before 1989" would be wrong
    decade = InRange("year", 1990, 1999).wordings(profile.columns)
    assert "1990s" in decade.adjectives and "from the '90s" in decade.modifiers
    after = InRange("year", low=2000).wordings(profile.columns)
    assert "from after 1999" in after.modifiers and "from 2000 or later" in after.modifiers


def test_quantity_and_value_wordings() -> None:
    profile = CatalogProfile(film_dataset().catalog)
    runtime = profile.columns["runtime"]
    assert (
        runtime.kind is ColumnKind.QUANTITY and runtime.integer and runtime.unit_forms == ("min", "minutes")
    )
    under = InRange("runtime", high=99).wordings(profile.columns).modifiers
    assert (
        "under 100 min" in under
        and "under 100 minutes" in under
        and "with a runtime of at most 99 min" in under
    )
    over = InRange("runtime", low=121).wordings(profile.columns).modifiers
    assert "over 120 minutes" in over
    assert profile.columns["genres"].kind is ColumnKind.TAG
    assert (
        profile.columns["actors"].kind is ColumnKind.ENTITY and profile.columns["actors"].label == "main cast"
    )
    assert profile.columns["language"].kind is ColumnKind.CATEGORY
    horror = HasValue("genres", "Horror")
    assert "horror" in horror.wordings(profile.columns).adjectives
    assert "not horror" in Not(horror).wordings(profile.columns).modifiers
    hanks = Not(HasValue("actors", "Tom Hanks")).wordings(profile.columns)
    assert "without Tom Hanks" in hanks.modifiers and not hanks.adjectives


def test_product_columns_are_read_by_role_and_type() -> None:
    catalog = product_dataset().catalog
    profile = CatalogProfile(catalog)
    kinds = {name: info.kind for name, info in profile.columns.items()}
    assert kinds == {
        "brand": ColumnKind.CATEGORY,
        "tags": ColumnKind.TAG,
        "price": ColumnKind.QUANTITY,
        "launched": ColumnKind.DATE,
    }
    assert not profile.columns["price"].integer
    cheap = InRange("price", high=30.0)
    assert _titles(catalog, cheap.mask(catalog)) == [
        "Rain Poncho",
        "Wool Socks",
        "Wool Beanie",
        "Headlamp 300",
        "Lantern",
    ]
    assert all("under" not in w for w in cheap.wordings(profile.columns).modifiers)  # 30.0 itself is included
    early = InRange("launched", high="2016-12-31")
    assert _titles(catalog, early.mask(catalog)) == ["Rain Poncho", "Espresso Maker", "Wool Socks"]
    assert "from before 2017" in early.wordings(profile.columns).modifiers
    assert _titles(catalog, Age("launched", "2022-01-01").mask(catalog)) == [
        "Summit Jacket Lite",
        "Headlamp 500",
    ]


def test_mentioned_in_checks_llm_text() -> None:
    assert HasValue("actors", "Tom Hanks").mentioned_in("something with tom hanks")
    assert HasValue("actors", "Tom Hanks").mentioned_in("a Hanks drama")  # a surname is enough
    assert not HasValue("genres", "Horror").mentioned_in("a scary one")
    assert InRange("year", 1990, 1999).mentioned_in("90s thriller")
    assert InRange("year", high=1989).mentioned_in("before 1990")
    assert not InRange("year", high=1989).mentioned_in("an old thriller")
    assert Not(HasValue("genres", "Horror")).mentioned_in("no horror please")


@pytest.mark.parametrize(
    "predicate",
    [
        HasValue("genres", "Crime"),
        InRange("year", 1990, None),
        InRange("launched", None, "2020-12-31"),
        Age("year", 2000, False),
        Popularity(low=3.5),
        Not(Not(HasValue("language", "French"))),
    ],
)
def test_predicates_round_trip(predicate: Predicate) -> None:
    data = json.loads(json.dumps(predicate.to_dict()))
    assert predicate_from_dict(data) == predicate


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"type": "between", "column": "x"}, "p.type"),
        ({"type": "has_value", "column": "genres"}, "p.value"),
        ({"type": "in_range", "column": "year", "low": True, "high": None}, "p.low"),
        ({"type": "in_range", "column": "year", "low": None, "high": None}, "p"),
        (
            {"type": "not", "predicate": {"type": "age", "column": "year", "threshold": 1, "recent": "yes"}},
            "p.predicate.recent",
        ),
        ({"type": "popularity", "low": 1, "high": None, "extra": 2}, "p"),
    ],
)
def test_bad_predicates_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(PredicateError) as info:
        predicate_from_dict(data, where="p")
    assert info.value.field == field


def _example(i: int = 0) -> Example:
    return Example(
        id=f"partial_attributes-{i:06d}",
        task="partial_attributes",
        query="a French film, not crime — été",
        positive=13,
        negatives=(10, 16),
        predicates=(HasValue("language", "French"), Not(HasValue("genres", "Crime"))),
        split_key="item:13",
        source={"user": "a", "history": [10, 11]},
    )


def test_jsonl_round_trip_and_split_folder(tmp_path: Path) -> None:
    examples = [_example(0), _example(1)]
    path = write_examples(tmp_path / "x.jsonl", examples)
    assert read_examples(path, Example) == examples
    assert "été" in path.read_text(encoding="utf-8")  # UTF-8, not \u escapes
    split = ExampleSplit(examples[:1], examples[1:], {"seed": 3})
    again = ExampleSplit.load(split.save(tmp_path / "data"))
    assert again.train == split.train and again.test == split.test and again.meta == {"seed": 3}
    assert split.counts() == {"partial_attributes": {"train": 1, "test": 1}}
    with pytest.raises(FileExistsError):
        split.save(tmp_path / "data")


def test_satisfying_uses_the_stored_predicates(catalog: Catalog) -> None:
    assert _titles(catalog, _example().satisfying(catalog)) == ["Amélie", "Beauty and the Beast"]


@pytest.mark.parametrize(
    ("mutate", "line_field", "message"),
    [
        (lambda d: "{not json", None, "not valid JSON"),
        (lambda d: {k: v for k, v in d.items() if k != "positive"}, "positive", "missing"),
        (lambda d: {**d, "negatives": [1, None]}, "negatives", "list of item ids"),
        (lambda d: {**d, "positive": 1.5}, "positive", "item id"),
        (lambda d: {**d, "query": "  "}, "query", "empty query"),
        (lambda d: {**d, "colour": 1}, "colour", "unknown field"),
        (
            lambda d: {**d, "predicates": [d["predicates"][0], {"type": "nope"}]},
            "predicates[1].type",
            "unknown predicate type",
        ),
    ],
)
def test_read_errors_name_file_line_and_field(
    tmp_path: Path, mutate: Callable[[dict], object], line_field: str | None, message: str
) -> None:
    good = _example().to_dict()
    bad = mutate(good)
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps(good), "", bad if isinstance(bad, str) else json.dumps(bad)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_examples(path, Example)
    error = info.value
    assert error.path == str(path) and error.line == 3 and error.field == line_field
    assert message in str(error) and "bad.jsonl, line 3" in str(error)
