"""The generic importer on files as publishers ship them: every reading option, logs without time,
weights, side tables, the quick path, and the error for each way a file can be wrong."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from recai.data import ColumnRole, DataError, Dataset
from recai.data.loaders.tables import ReadOptions, read_user_table, sniff_delimiter
from recai.data.loaders.tabular import import_tabular, infer_noun

# --------------------------------------------------------------------------- fixtures written here


def _games(folder: Path) -> Path:
    """The layout users reported: a tab-separated item_info.dat (id, name) whose names contain commas,
    and a log of (user, game, hours played) with no timestamps."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [
        "Half-Life, Episode One",
        "Portal",
        "Civilization V, Gods & Kings",
        "Stardew Valley",
        "Baldur's Gate II, Shadows of Amn",
    ]
    lines = ["game_id\tname"] + [f"{100 + i}\t{n}" for i, n in enumerate(names)]
    (folder / "item_info.dat").write_text("\n".join(lines) + "\n")
    log = ["user_id\tgame_id\thours"]
    rows = [("u1", 100, 12.5), ("u1", 102, 300.0), ("u1", 101, 2.0), ("u2", 103, 40.0), ("u2", 104, 1.5)]
    rows += [("u3", 100, 3.0), ("u3", 101, 7.0), ("u3", 104, 0.5)]
    log += [f"{u}\t{g}\t{h}" for u, g, h in rows]
    (folder / "plays.dat").write_text("\n".join(log) + "\n")
    return folder


def _lastfm_like(folder: Path) -> Path:
    """Last.fm HetRec's layout: artists.dat with a header, user_artists.dat without one, sorted by
    user then artist id, listen counts, no times."""
    folder.mkdir(parents=True, exist_ok=True)
    artists = ["id\tname\turl\tpictureURL"] + [
        f"{i}\t{n}\thttp://www.last.fm/music/{n.replace(' ', '+')}\thttp://img/{i}.jpg"
        for i, n in enumerate(
            ["MALICE MIZER", "Diary of Dreams", "Radiohead", "Björk", "Sigur Rós", "Air"], 1
        )
    ]
    (folder / "artists.dat").write_text("\n".join(artists) + "\n", encoding="utf-8")
    log = [
        (2, 1, 13883),
        (2, 3, 11690),
        (2, 5, 11351),
        (3, 2, 212),
        (3, 3, 1),
        (3, 6, 99),
        (4, 3, 800),
        (4, 4, 30),
    ]
    (folder / "user_artists.dat").write_text("\n".join(f"{u}\t{a}\t{w}" for u, a, w in log) + "\n")
    return folder


# --------------------------------------------------------------------------- the reported layouts


def test_tab_dat_with_commas_and_no_timestamps_imports_with_a_spec_naming_files_and_ids(
    tmp_path: Path,
) -> None:
    folder = _games(tmp_path / "steam")
    spec = folder / "spec.yaml"
    spec.write_text(
        "items: {path: item_info.dat, id: game_id}\ninteractions: {path: plays.dat, user: user_id, item: game_id}\n"
    )
    result = import_tabular(spec)
    ds = result.dataset
    assert ds.catalog.title_of(100) == "Half-Life, Episode One"
    assert len(ds.interactions) == 8
    assert not ds.interactions.has_timestamps and ds.interactions.has_weights
    assert ds.catalog.ids[ds.interactions.sequence("u1")].tolist() == [100, 102, 101]  # file order kept
    assert ds.interactions.describe()["time_range"].startswith("no timestamps")
    assert ds.interactions.describe()["weight"]["max"] == 300.0
    assert ds.noun == "games"
    assert any("delimiter tab" in n for n in result.notes)
    assert result.resolved_spec["interactions"]["weight"] == "hours"
    assert result.resolved_spec["interactions"]["timestamp"] is None
    saved = Dataset.load(ds.save(tmp_path / "saved"))
    assert not saved.interactions.has_timestamps and saved.noun == "games"
    assert saved.catalog.ids[saved.interactions.sequence("u1")].tolist() == [100, 102, 101]
    assert saved.interactions.frame["weight"].tolist() == ds.interactions.frame["weight"].tolist()


def test_quick_path_without_a_spec_on_a_lastfm_layout(tmp_path: Path) -> None:
    folder = _lastfm_like(tmp_path / "lastfm-hetrec2011")
    result = import_tabular(items_path=folder / "artists.dat", interactions_path=folder / "user_artists.dat")
    ds = result.dataset
    assert ds.name == "lastfm-hetrec2011" and ds.noun == "artists"
    roles = {c.name: c.role for c in ds.catalog.schema.columns}
    assert roles["id"] is ColumnRole.ID and roles["name"] is ColumnRole.TITLE
    assert roles["url"] is ColumnRole.IGNORE and roles["pictureURL"] is ColumnRole.IGNORE
    log = result.resolved_spec["interactions"]
    assert (log["user"], log["item"], log["weight"], log["timestamp"]) == (
        "column1",
        "column2",
        "column3",
        None,
    )
    assert log["header"] is False and log["delimiter"] == "\t"
    assert log["order"] == "random"  # each user's artists are listed by id: the order says nothing
    assert ds.meta["event_order"] == "random"
    assert ds.catalog.title_of(4) == "Björk"
    assert ds.interactions.to_csr(values="weight").sum() == 13883 + 11690 + 11351 + 212 + 1 + 99 + 800 + 30
    # the resolved spec re-imports to the same dataset
    spec = tmp_path / "again.yaml"
    spec.write_text(result.spec_yaml())
    again = import_tabular(spec).dataset
    assert again.catalog.items.equals(ds.catalog.items)
    assert again.interactions.frame.equals(ds.interactions.frame)


def test_double_colon_and_headerless_names(tmp_path: Path) -> None:
    (tmp_path / "movies.dat").write_text(
        "1::Toy Story (1995)::Animation|Comedy\n2::Heat (1995)::Action|Crime\n"
    )
    (tmp_path / "ratings.dat").write_text("1::1::5::978300760\n1::2::3::978302109\n2::2::4::978301968\n")
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "items: {path: movies.dat, names: [item_id, title, genres]}\n"
        "interactions: {path: ratings.dat, names: [user, item, rating, ts], timestamp: ts}\n"
    )
    ds = import_tabular(spec).dataset
    assert ds.catalog.row(2)["genres"] == ["Action", "Crime"]
    assert ds.interactions.has_timestamps and ds.interactions.has_ratings
    assert int(ds.interactions.timestamps.max()) == 978302109
    # and with nothing given at all, '::' is sniffed and the epoch column found by its values
    quick = import_tabular(items_path=tmp_path / "movies.dat", interactions_path=tmp_path / "ratings.dat")
    log = quick.resolved_spec["interactions"]
    assert log["delimiter"] == "::" and log["timestamp"] == "column4" and log["rating"] == "column3"


def test_reading_options(tmp_path: Path) -> None:
    path = tmp_path / "items.txt"
    path.write_bytes(
        "# exported 2024-01-01\npreamble line\nsku;name;price\n# a comment\n007;Café crème;1,5\n008;Thé;2\n".encode(
            "latin-1"
        )
    )
    read = read_user_table(
        path, ReadOptions(delimiter=";", comment="#", skip_rows=2, encoding="latin-1", na_values=["n/a"])
    )
    assert read.frame["sku"].tolist() == ["007", "008"]  # codes with leading zeros stay text
    assert read.frame["name"].tolist() == ["Café crème", "Thé"]
    assert read.line_of(1) == 6
    semicolons = read_user_table(
        tmp_path / "items.txt", ReadOptions(skip_rows=2, comment="#", encoding="latin-1")
    )
    assert semicolons.options.delimiter == ";"


def test_compressed_and_bom_files(tmp_path: Path) -> None:
    text = "item_id,title\n1,Alpha\n2,Beta\n"
    with gzip.open(tmp_path / "items.csv.gz", "wt") as fh:
        fh.write(text)
    with zipfile.ZipFile(tmp_path / "items.zip", "w") as zf:
        zf.writestr("items.csv", text)
    (tmp_path / "items16.csv").write_bytes(text.encode("utf-16"))
    (tmp_path / "items8.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    for name in ("items.csv.gz", "items.zip", "items16.csv", "items8.csv"):
        frame = read_user_table(tmp_path / name).frame
        assert frame.columns.tolist() == ["item_id", "title"], name
        assert frame["title"].tolist() == ["Alpha", "Beta"], name


def test_multi_line_quoted_fields_keep_line_numbers_right(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text('item_id,title,blurb\n1,A,"two\nlines"\n2,B,"three\nmore\nlines"\n3,C\n')
    with pytest.raises(DataError) as err:
        read_user_table(path)
    assert err.value.line == 7 and "expected 3 fields, found 2" in str(err.value)
    path.write_text('item_id,title,blurb\n1,A,"two\nlines"\n2,B,ok\n')
    read = read_user_table(path)
    assert read.frame["blurb"].tolist() == ["two\nlines", "ok"]
    assert read.line_of(1) == 4


def test_side_tables_become_item_columns(tmp_path: Path) -> None:
    (tmp_path / "books.csv").write_text("book_id,goodreads_id,title\n1,501,Dune\n2,502,Emma\n3,503,Ulysses\n")
    (tmp_path / "book_tags.csv").write_text(
        "goodreads_book_id,tag_id,count\n501,10,50\n501,11,900\n501,12,5\n502,12,70\n502,10,3\n"
    )
    (tmp_path / "tags.csv").write_text("tag_id,tag_name\n10,Classics\n11,Science-Fiction\n12,Romance\n")
    (tmp_path / "ratings.csv").write_text("user_id,book_id,rating\n1,1,5\n1,2,3\n2,3,4\n")
    (tmp_path / "spec.yaml").write_text(
        """
name: books
items:
  path: books.csv
  id: book_id
  title: title
  attributes:
    - {name: tags, path: book_tags.csv, item: goodreads_book_id, key: goodreads_id, value: tag_id,
       weight: count, top: 2, lowercase: true, lookup: {path: tags.csv, key: tag_id, value: tag_name}}
interactions: {path: ratings.csv}
"""
    )
    result = import_tabular(tmp_path / "spec.yaml")
    ds = result.dataset
    assert ds.catalog.row(1)["tags"] == ["science-fiction", "classics"]  # heaviest first, top 2
    assert ds.catalog.row(2)["tags"] == ["romance", "classics"]
    assert ds.catalog.row(3)["tags"] == []
    assert ds.catalog.schema.column("tags").role is ColumnRole.MULTI_CATEGORICAL
    assert ds.catalog.ids_where("list_contains(tags, 'romance')") == [2]
    assert ds.noun == "books"
    assert result.resolved_spec["interactions"]["rating"] == "rating"


def test_derived_columns_rename_and_na_values(tmp_path: Path) -> None:
    (tmp_path / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n2,"Matrix, The (1999)",(no genres listed)\n'
    )
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,5.0,964981247\n"
    )
    (tmp_path / "spec.yaml").write_text(
        r"""
items:
  path: movies.csv
  rename: {movieId: item_id}
  na_values: ["(no genres listed)"]
  columns:
    - {name: item_id, role: id}
    - {name: title, role: title}
    - {name: genres, role: multi_categorical, separator: "|"}
  derive:
    - {name: year, from: title, pattern: '\((\d{4})\)\s*$', role: numeric, description: release year}
interactions: {path: ratings.csv, user: userId, item: movieId}
"""
    )
    ds = import_tabular(tmp_path / "spec.yaml").dataset
    assert ds.catalog.row(2) == {"item_id": 2, "title": "Matrix, The (1999)", "genres": [], "year": 1999.0}
    assert ds.interactions.has_timestamps and ds.interactions.has_ratings


def test_weights_filter_and_confidence(tmp_path: Path) -> None:
    folder = _games(tmp_path / "g")
    ds = import_tabular(items_path=folder / "item_info.dat", interactions_path=folder / "plays.dat").dataset
    assert ds.min_weight(5).interactions.describe()["interactions"] == 4
    m = ds.interactions.to_csr(values="weight")
    assert m.sum() == pytest.approx(12.5 + 300 + 2 + 40 + 1.5 + 3 + 7 + 0.5)
    from recai.rec import ALS, ItemKNN

    knn = ItemKNN(weighting="log").fit(ds.interactions)
    binary = ItemKNN().fit(ds.interactions)
    assert not np.allclose(knn.similarity_.toarray(), binary.similarity_.toarray())
    als = ALS(factors=4, iterations=2, weighting="log").fit(ds.interactions)
    assert als.fold_in_value_ == pytest.approx(float(np.median(np.log1p(m.data))))
    with pytest.raises(ValueError, match="needs event weights"):
        ItemKNN(weighting="log").fit(ds.interactions.from_frame(ds.interactions.frame.drop(columns="weight")))


def test_untimed_logs_split_by_file_order_or_at_random(tmp_path: Path) -> None:
    frame = pd.DataFrame({"user_id": ["a"] * 6 + ["b"] * 4, "item_id": [1, 2, 3, 4, 5, 6, 1, 3, 5, 2]})
    items = pd.DataFrame({"item_id": range(1, 7), "title": list("ABCDEF")})
    from recai.data import Catalog, Interactions

    catalog = Catalog(items)
    log = Interactions(frame, catalog.ids)
    ds = Dataset("t", catalog, log)
    by_file = ds.split("leave_one_out")
    assert by_file.test.frame["item_id"].tolist() == [6, 2] and by_file.valid.frame["item_id"].tolist() == [
        5,
        5,
    ]
    assert not by_file.train.has_timestamps
    rand = ds.split("leave_one_out", order="random", seed=3)
    assert rand.protocol.startswith("leave_one_out(order=random")
    assert len(rand.train) + len(rand.valid) + len(rand.test) == len(log)
    assert rand.test.n_users == 2 and rand.valid.n_users == 2
    pairs = set(zip(rand.test.frame["user_id"], rand.test.frame["item_id"], strict=True))
    assert not pairs & set(zip(rand.valid.frame["user_id"], rand.valid.frame["item_id"], strict=True))
    again = ds.split("leave_one_out", order="random", seed=3)
    assert again.test.frame.equals(rand.test.frame)
    random_default = Dataset("t", catalog, log, meta={"event_order": "random"}).split("leave_one_out")
    assert random_default.protocol.startswith("leave_one_out(order=random")
    with pytest.raises(ValueError, match="needs timestamps"):
        ds.split("temporal")
    from recai.rec import Popularity

    with pytest.raises(ValueError, match="needs timestamps"):
        Popularity(half_life_days=7).fit(log)


def test_sniffing_prefers_the_delimiter_that_splits_every_line_alike() -> None:
    lines = ["id\tname", "1\tHalf-Life, Episode One", "2\tPortal", "3\tCiv V, Gods, Kings"]
    assert sniff_delimiter(lines)[:1] == ("\t",)
    assert sniff_delimiter(["a,b,c", '1,"x, y",3', "2,z,4"])[0] == ","
    assert sniff_delimiter(["1::Heat (1995)::Action|Crime", "2::Toy Story (1995)::Animation"])[0] == "::"


@pytest.mark.parametrize(
    ("hints", "noun"),
    [
        (("ml-latest-small",), "films"),
        (("lastfm-hetrec2011", "artists.dat"), "artists"),
        (("goodbooks-10k",), "books"),
        (("my-shop", "sku"), "products"),
        (("steam-games",), "games"),
        (("widgets",), None),
    ],
)
def test_item_noun_from_names(hints: tuple[str, ...], noun: str | None) -> None:
    assert infer_noun(*hints) == noun


# --------------------------------------------------------------------------- errors


def _pair(
    tmp_path: Path, items: str, log: str, *, items_name: str = "items.csv", log_name: str = "log.csv"
) -> tuple[Path, Path]:
    (tmp_path / items_name).write_text(items)
    (tmp_path / log_name).write_text(log)
    return tmp_path / items_name, tmp_path / log_name


def test_short_rows_are_errors_not_nulls(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("item_id,title,year\n1,A,1999\n2,B\n")
    with pytest.raises(DataError) as err:
        read_user_table(path)
    assert err.value.line == 3 and "expected 3 fields, found 2" in str(err.value)


def test_a_sniffed_delimiter_that_fails_says_how_to_fix_it(tmp_path: Path) -> None:
    path = tmp_path / "items.dat"
    path.write_text("id\tname\n" + "".join(f"{i}\tname {i}\n" for i in range(40)) + "41\tbroken\textra\n")
    with pytest.raises(DataError, match=r"line 42.*expected 2 fields, found 3.*sniffed as tab.*delimiter:"):
        read_user_table(path)
    clean = tmp_path / "clean.csv"
    clean.write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(300)) + "41\n")
    with pytest.raises(DataError) as err:
        read_user_table(clean)
    assert err.value.line == 302 and "`delimiter:`" not in str(err.value)  # the delimiter is right: no hint


def test_text_after_a_closing_quote_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text('item_id,title\n1,"Alpha"beta\n2,Gamma\n')
    with pytest.raises(DataError, match=r"line 2.*malformed quoted field.*quote: null"):
        read_user_table(path)
    ok = read_user_table(path, ReadOptions(quote=None))
    assert ok.frame["title"].tolist() == ['"Alpha"beta', "Gamma"]


def test_empty_user_is_reported_on_its_line_under_the_files_column_name(tmp_path: Path) -> None:
    items, log = _pair(
        tmp_path,
        "item_id,title\n1,A\n2,B\n",
        'customer,item_id,note\n7,1,"a\nb"\n,2,x\n',
    )
    with pytest.raises(DataError) as err:
        import_tabular(items_path=items, interactions_path=log)
    assert (err.value.line, err.value.field) == (4, "customer")


def test_a_bad_timestamp_is_blamed_on_its_own_row(tmp_path: Path) -> None:
    items, log = _pair(
        tmp_path,
        "item_id,title\n1,A\n2,B\n",
        "user,item_id,ts\n1,1,964982703\n1,2,964982704\n2,1,yesterday\n2,2,964982705\n",
    )
    with pytest.raises(DataError) as err:
        import_tabular(items_path=items, interactions_path=log)
    assert err.value.line == 4 and err.value.field == "ts" and "yesterday" in str(err.value)


def test_spec_errors_name_the_column_and_the_fix(tmp_path: Path) -> None:
    _pair(tmp_path, "item_id,title\n1,A\n", "user,item_id,hours\n1,1,2\n")
    spec = tmp_path / "s.yaml"
    spec.write_text("items: {path: items.csv, id: sku}\ninteractions: {path: log.csv}\n")
    with pytest.raises(DataError, match=r"items.id names column 'sku'.*\['item_id', 'title'\]"):
        import_tabular(spec)
    spec.write_text("items: {path: items.csv}\ninteractions: {path: log.csv, timestamp: timestamp}\n")
    with pytest.raises(DataError, match=r"timestamp: null"):
        import_tabular(spec)
    spec.write_text(
        "items: {path: items.csv, columns: [{name: sku, role: id}, {name: title, role: title}]}\n"
        "interactions: {path: log.csv}\n"
    )
    with pytest.raises(DataError, match=r"items.columns names column\(s\) \['sku'\]"):
        import_tabular(spec)
    spec.write_text("items: {path: items.csv, delimitr: ','}\n")
    with pytest.raises(DataError) as err:
        import_tabular(spec)
    assert err.value.line == 1 and "delimitr" in str(err.value)


def test_folder_instead_of_file_and_empty_logs(tmp_path: Path) -> None:
    (tmp_path / "items").mkdir()
    _pair(tmp_path, "item_id,title\n1,A\n", "user,item_id\n")
    with pytest.raises(DataError, match="is a folder, not a file"):
        import_tabular(items_path=tmp_path / "items", interactions_path=tmp_path / "log.csv")
    with pytest.raises(DataError, match="header but no data rows"):
        import_tabular(items_path=tmp_path / "items.csv", interactions_path=tmp_path / "log.csv")
    (tmp_path / "log.csv").write_text("user,item_id,rating\n1,1,2\n")
    spec = tmp_path / "s.yaml"
    spec.write_text("items: {path: items.csv}\ninteractions: {path: log.csv, min_rating: 4}\n")
    with pytest.raises(DataError, match="no interactions left after min_rating"):
        import_tabular(spec)


def test_utf16_without_a_bom_gets_the_right_advice(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes("item_id,title\n1,Ä\n".encode("utf-16-le"))
    with pytest.raises(DataError, match="UTF-16") as err:
        read_user_table(path)
    assert "latin-1" not in str(err.value)
    assert read_user_table(path, ReadOptions(encoding="utf-16-le")).frame["title"].tolist() == ["Ä"]
    path.write_bytes("item_id,title\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="latin-1"):
        read_user_table(path)


def test_names_must_match_the_header(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match="names gives 2 columns but the header has 3"):
        read_user_table(path, ReadOptions(header=True, names=["x", "y"]))
    assert read_user_table(path, ReadOptions(header=False, names=["x", "y", "z"])).frame["x"].tolist() == [
        "a",
        "1",
    ]


def test_resolved_spec_is_valid_yaml_with_absolute_paths(tmp_path: Path) -> None:
    folder = _games(tmp_path / "g")
    result = import_tabular(items_path=folder / "item_info.dat", interactions_path=folder / "plays.dat")
    data = yaml.safe_load(result.spec_yaml())
    assert Path(data["items"]["path"]).is_absolute() and data["items"]["delimiter"] == "\t"
    assert {c["name"]: c["role"] for c in data["items"]["columns"]} == {"game_id": "id", "name": "title"}
