from __future__ import annotations

from pathlib import Path

import pytest

from recai.data import DataError, Dataset, load
from recai.data.loaders.amazon import load_amazon, load_sequence_file, read_metadata
from recai.data.loaders.movielens import load_ml1m, load_ml100k, load_movielens_csv, year_from_title
from tests.data.raw_fixtures import (
    write_amazon_2014,
    write_amazon_2018,
    write_ml1m,
    write_ml100k,
    write_ml_csv,
)


def test_ml100k(tmp_path: Path) -> None:
    ds = load_ml100k(write_ml100k(tmp_path / "ml-100k"))
    items = ds.catalog.items.set_index("item_id")
    assert items.loc[1, "title"] == "Toy Story (1995)" and items.loc[1, "year"] == 1995
    assert items.loc[1, "genres"] == ["Animation", "Children's", "Comedy"]
    assert items.loc[3, "title"] == "Cité des enfants perdus, La (1995)"  # latin-1 decoded
    assert items.loc[4, "genres"] == ["unknown"]
    assert ds.catalog.ground("The City of Lost Children").item_id is None  # not an alternative title here
    assert ds.catalog.ground("La Cité des enfants perdus").item_id == 3
    assert len(ds.interactions) == 4 and ds.interactions.has_ratings
    assert ds.users is not None and ds.users["occupation"].tolist() == ["technician", "other"]
    assert load(str(tmp_path / "ml-100k")).name == "ml-100k"  # detected from the folder's files


def test_ml100k_errors_name_file_line_and_field(tmp_path: Path) -> None:
    folder = write_ml100k(tmp_path / "ml-100k")
    (folder / "u.data").write_text("1\t1\t5\t881250949\n1\tx\t3\t881250950\n")
    with pytest.raises(DataError, match=r"u.data, line 2, field 'item': not an integer: 'x'"):
        load_ml100k(folder)
    (folder / "u.data").write_text("1\t1\t5\t881250949\n1\t2\t3\n")
    with pytest.raises(DataError, match=r"u.data, line 2: expected 4 fields, found 3"):
        load_ml100k(folder)
    (folder / "u.data").unlink()
    with pytest.raises(DataError, match=r"u.data: file not found"):
        load_ml100k(folder)


def test_wrong_encoding_is_named(tmp_path: Path) -> None:
    folder = write_ml100k(tmp_path / "ml-100k")
    from recai.data.loaders.reading import read_delimited

    with pytest.raises(
        DataError, match=r"u.item, line 3: cannot decode byte .* as utf-8; pass the file's encoding"
    ):
        read_delimited(folder / "u.item", sep="|", names=[str(i) for i in range(24)], encoding="utf-8")
    with pytest.raises(DataError, match="unknown encoding 'klingon'"):
        read_delimited(folder / "u.item", sep="|", names=[str(i) for i in range(24)], encoding="klingon")


def test_ml1m(tmp_path: Path) -> None:
    ds = load_ml1m(write_ml1m(tmp_path / "ml-1m"))
    assert ds.catalog.items["title"].tolist()[2] == "Misérables, Les (1995)"
    assert ds.catalog.items["genres"].tolist()[2] == ["Drama", "Musical"]
    assert ds.catalog.ground("Les Misérables").item_id == 3
    assert ds.interactions.n_users == 2 and ds.users is not None
    assert load(str(tmp_path / "ml-1m")).name == "ml-1m"


def test_movielens_csv_with_tags(tmp_path: Path) -> None:
    ds = load_movielens_csv(write_ml_csv(tmp_path / "ml-latest-small"))
    items = ds.catalog.items.set_index("item_id")
    assert items.loc[2, "title"] == "American President, The (1995)"
    assert items.loc[3, "genres"] == [] and items.loc[3, "year"] != items.loc[3, "year"]  # NaN year
    assert items.loc[1, "tags"] == ["pixar", "fun"]  # case-folded, most frequent first
    # user-written, timestamped: marked so that knowledge extractors keep it out of prompts by default
    assert ds.catalog.schema.column("tags").from_interactions
    assert not ds.catalog.schema.column("genres").from_interactions
    assert ds.catalog.ground("The American President").item_id == 2
    assert ds.name == "ml-latest-small"
    # saved and reloaded: kept; and a folder saved before the flag existed gets it on load
    folder = ds.save(tmp_path / "saved")
    assert Dataset.load(folder).catalog.schema.column("tags").from_interactions
    schema = (folder / "schema.yaml").read_text()
    (folder / "schema.yaml").write_text(schema.replace("from_interactions: true", ""))
    assert "from_interactions" not in (folder / "schema.yaml").read_text()
    assert Dataset.load(folder).catalog.schema.column("tags").from_interactions


def test_movielens_csv_missing_column(tmp_path: Path) -> None:
    folder = write_ml_csv(tmp_path / "ml")
    (folder / "ratings.csv").write_text("userId,movieId,score,timestamp\n1,1,4.0,964982703\n")
    with pytest.raises(DataError, match=r"ratings.csv, line 1: missing column\(s\) \['rating'\]"):
        load_movielens_csv(folder)


def test_year_from_title() -> None:
    assert year_from_title("Toy Story (1995)") == 1995
    assert year_from_title("Babylon 5 (1994-1998)") == 1994
    assert year_from_title("No Year") != year_from_title("No Year")


def test_amazon_2014_python_literal_metadata(tmp_path: Path) -> None:
    ratings, meta = write_amazon_2014(tmp_path)
    ds = load_amazon(ratings, meta, version=2014)
    items = ds.catalog.items.set_index("item_id")
    assert list(items.index) == ["B001", "B002"]  # B003 has no title
    assert ds.meta["items_dropped_without_title"] == 1
    assert len(ds.interactions) == 3
    assert items.loc["B001", "categories"] == ["Skin Care", "Lips"]
    assert items.loc["B001", "description"] == "A soft balm."
    assert items.loc["B001", "price"] == 4.5 and items.loc["B001", "brand"] == "Glow"
    kept = load_amazon(ratings, meta, version=2014, keep_items_without_metadata=True)
    assert kept.catalog.row("B003")["title"] == "B003"


def test_amazon_2018_column_order_and_json(tmp_path: Path) -> None:
    ratings, meta = write_amazon_2018(tmp_path)
    ds = load_amazon(ratings, meta, version=2018)
    assert set(ds.interactions.frame["user_id"]) == {"A1", "A2"}  # item comes first in 2018 files
    items = ds.catalog.items.set_index("item_id")
    assert items.loc["B001", "price"] == 4.5 and items.loc["B001", "categories"] == ["Skin Care"]
    assert items.loc["B001", "description"] == "Soft. Red."
    with pytest.raises(ValueError, match="2014 or 2018"):
        load_amazon(ratings, meta, version=2020)


def test_amazon_bad_metadata_line(tmp_path: Path) -> None:
    bad = tmp_path / "meta.json"
    bad.write_text('{"asin": "B1"}\n{oops\n')
    with pytest.raises(DataError, match=r"meta.json, line 2: neither JSON nor a Python literal"):
        read_metadata(bad)


def test_sequence_file(tmp_path: Path) -> None:
    path = tmp_path / "Beauty.txt"
    path.write_text("1 10 11 12\n2 11 10\n")
    ds = load_sequence_file(path)
    assert ds.catalog.ids.tolist() == ["10", "11", "12"]
    assert ds.catalog.ids[ds.interactions.sequence("1")].tolist() == ["10", "11", "12"]
    path.write_text("1 10\n2\n")
    with pytest.raises(DataError, match=r"Beauty.txt, line 2: a line needs a user"):
        load_sequence_file(path)


def test_amazon_prices_and_markup() -> None:
    from recai.data.loaders.amazon import _price, _text

    assert _price("$1,299.00") == 1299.0 and _price("$4.50") == 4.5 and _price(7) == 7.0
    for junk in (".a-box{margin-bottom:22px}", "$10.00 - $20.00", ""):
        assert _price(junk) != _price(junk)  # NaN: unknown, not a made-up number
    assert _text("Salt &amp; Pepper <b>Grinder</b>") == "Salt & Pepper Grinder"
