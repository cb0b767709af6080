from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recai.data import ColumnRole, DataError, Dataset
from recai.data.loaders.tabular import import_tabular, read_table
from tests.data.raw_fixtures import write_shop


def test_import_with_a_spec(tmp_path: Path) -> None:
    ds, inferred = import_tabular(write_shop(tmp_path))
    assert inferred is None and ds.name == "shop"
    assert "internal_code" not in ds.catalog.items
    assert ds.catalog.row("B-2")["tags"] == ["kitchen", "blue"]
    assert (
        ds.catalog.render("A-1")
        == "Red Kettle. Tags: kitchen, red. Price: 29.9 EUR. Blurb: A loud red kettle."
    )
    assert ds.catalog.ids[ds.interactions.sequence("u1")].tolist() == ["A-1", "B-2"]
    assert ds.interactions.timestamps.min() == int(pd.Timestamp("2024-01-01T09:00:00Z").timestamp())
    saved = Dataset.load(ds.save(tmp_path / "out"))
    assert saved.catalog.render("A-1") == ds.catalog.render("A-1")


def test_import_infers_roles_without_columns(tmp_path: Path) -> None:
    write_shop(tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "interactions: {user: customer, item: sku, timestamp: when, rating: stars, min_rating: 4}\n"
    )
    ds, inferred = import_tabular(
        spec, items_path=tmp_path / "items.csv", interactions_path=tmp_path / "events.csv"
    )
    roles = {name: role for name, role, _ in inferred}
    assert roles["sku"] == "id" and roles["name"] == "title" and roles["tags"] == "multi_categorical"
    assert roles["price"] == "numeric"
    assert ds.catalog.schema.column("tags").role is ColumnRole.MULTI_CATEGORICAL
    assert len(ds.interactions) == 2  # min_rating 4 drops the 3-star event
    assert ds.meta["processing"] == ["rating>=4"]


def test_import_errors_name_the_place(tmp_path: Path) -> None:
    spec = write_shop(tmp_path)
    (tmp_path / "events.csv").write_text(
        "customer,sku,when,stars\nu1,A-1,2024-01-01,5\nu2,Z-9,2024-01-02,4\n"
    )
    with pytest.raises(
        DataError, match=r"events.csv, line 3, field 'sku': item 'Z-9' is not in the item table"
    ):
        import_tabular(spec)
    (tmp_path / "events.csv").write_text("customer,sku,when,stars\nu1,A-1,someday,5\n")
    with pytest.raises(DataError, match=r"events.csv, line 2, field 'when': not a date or time: 'someday'"):
        import_tabular(spec)
    (tmp_path / "events.csv").write_text("customer,product,when,stars\nu1,A-1,2024-01-01,5\n")
    with pytest.raises(
        DataError,
        match=r"events.csv, line 1, field 'sku': interactions.item names column 'sku', which the log",
    ):
        import_tabular(spec)
    (tmp_path / "events.csv").write_text("customer,sku,when,stars\nu1,A-1,2024-01-01,5\n")
    (tmp_path / "items.csv").write_text("sku,name,tags,price,blurb,internal_code\nA-1,Kettle,k,cheap,b,x\n")
    with pytest.raises(DataError, match=r"items.csv, line 2, field 'price': not a number: 'cheap'"):
        import_tabular(spec)
    spec.write_text("items:\n  colums: []\n")
    with pytest.raises(DataError, match=r"schema.yaml, line 2, field 'items.colums'"):
        import_tabular(spec)
    spec.write_text("items: [unclosed\n")
    with pytest.raises(DataError, match=r"schema.yaml, line \d+: invalid YAML"):
        import_tabular(spec)


def test_read_table_formats(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    frame.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    for name in ("t.parquet", "t.jsonl", "t.tsv"):
        assert read_table(tmp_path / name)["b"].tolist() == ["x", "y"]
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(DataError, match=r"bad.jsonl, line 2: not valid JSON"):
        read_table(tmp_path / "bad.jsonl")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataError, match=r"bad.csv, line 3: expected 2 fields, found 3"):
        read_table(tmp_path / "bad.csv")


def test_codes_with_leading_zeros_stay_text_and_plain_integers_become_numbers(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text(
        "sku,name,zip,year\n007,Bond Mug,01234,1999\n7,Seven Mug,02134,2001\n"
    )
    (tmp_path / "events.csv").write_text("user_id,item_id,timestamp\nu1,007,1\nu1,7,2\n")
    ds, _ = import_tabular(items_path=tmp_path / "items.csv", interactions_path=tmp_path / "events.csv")
    assert ds.catalog.ids.tolist() == ["007", "7"]
    assert ds.catalog.items["zip"].tolist() == ["01234", "02134"]
    assert ds.catalog.items["year"].dtype.kind == "i"
    assert ds.catalog.ids[ds.interactions.sequence("u1")].tolist() == ["007", "7"]


def test_trailing_delimiters_do_not_shift_columns(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text("item_id,title,genre\n1,Alpha,x,\n2,Beta,y,\n")
    table = read_table(tmp_path / "items.csv")  # the empty last field is dropped, nothing shifts
    assert table.to_dict("list") == {"item_id": [1, 2], "title": ["Alpha", "Beta"], "genre": ["x", "y"]}


@pytest.mark.parametrize("kind", ["jsonl_epoch", "jsonl_ms", "parquet_datetime", "parquet_tz"])
def test_timestamps_keep_their_meaning_across_formats(tmp_path: Path, kind: str) -> None:
    (tmp_path / "items.csv").write_text("item_id,title\n1,A\n2,B\n")
    when = pd.Timestamp("2020-09-13T12:26:40Z")
    events = pd.DataFrame({"user_id": ["u", "u"], "item_id": [1, 2]})
    if kind == "jsonl_epoch":
        events["timestamp"] = [1_600_000_000, 1_600_000_001]
        path = tmp_path / "e.jsonl"
        events.to_json(path, orient="records", lines=True)
    elif kind == "jsonl_ms":
        events["timestamp"] = [1_600_000_000_000, 1_600_000_001_000]
        path = tmp_path / "e.jsonl"
        events.to_json(path, orient="records", lines=True)
    else:
        stamps = pd.to_datetime([when, when + pd.Timedelta(seconds=1)])
        events["timestamp"] = stamps if kind == "parquet_tz" else stamps.tz_localize(None)
        path = tmp_path / "e.parquet"
        events.to_parquet(path)
    ds, _ = import_tabular(items_path=tmp_path / "items.csv", interactions_path=path)
    assert ds.interactions.timestamps.tolist() == [1_600_000_000, 1_600_000_001]


def test_sub_second_order_survives_truncation_to_seconds(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text("item_id,title\n1,A\n2,B\n3,C\n")
    # File order is 1, 2, 3 but the clicks happened 3 (.1 s), 2 (.5 s), 1 (.9 s) within one second.
    (tmp_path / "e.csv").write_text(
        "user_id,item_id,timestamp\nu,1,1600000000900\nu,2,1600000000500\nu,3,1600000000100\n"
    )
    ds, _ = import_tabular(items_path=tmp_path / "items.csv", interactions_path=tmp_path / "e.csv")
    assert ds.catalog.ids[ds.interactions.sequence("u")].tolist() == [3, 2, 1]
    assert set(ds.interactions.timestamps) == {1_600_000_000}
    again = Dataset.load(ds.save(tmp_path / "saved"))
    assert again.catalog.ids[again.interactions.sequence("u")].tolist() == [3, 2, 1]
