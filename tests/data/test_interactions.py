from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recai.data import Catalog, DataError, Interactions
from recai.testing.data import make_log


def test_sequences_are_time_ordered_with_file_order_breaking_ties(
    catalog: Catalog, log: pd.DataFrame
) -> None:
    inter = Interactions(log, catalog.ids)
    seq = catalog.ids[inter.sequence("a")].tolist()
    assert seq == [10, 11, 12, 13]  # 12 and 13 share t=300: file order decides
    swapped = pd.concat([log.iloc[[4]], log.drop(index=4)], ignore_index=True)
    assert catalog.ids[Interactions(swapped, catalog.ids).sequence("a")].tolist() == [10, 11, 13, 12]
    assert dict((u, len(s)) for u, s in inter.sequences()) == {"a": 4, "b": 3, "c": 1}
    indptr, codes = inter.sequence_arrays()
    assert indptr.tolist() == [0, 4, 7, 8] and len(codes) == 8


def test_counts_and_matrix(catalog: Catalog, log: pd.DataFrame) -> None:
    inter = Interactions(log, catalog.ids)
    assert inter.n_users == 3 and inter.n_items == len(catalog)
    assert inter.item_counts().tolist() == [2, 1, 1, 1, 0, 0, 2, 1]
    m = inter.to_csr()
    assert m.shape == (3, 8) and m.sum() == 8
    ratings = inter.to_csr(values="rating")
    assert ratings[inter.user_index("a"), 0] == 5.0
    with pytest.raises(ValueError, match="values must be"):
        inter.to_csr(values="weird")


def test_unknown_items_and_empty_values_are_reported(catalog: Catalog) -> None:
    with pytest.raises(
        DataError, match=r"ratings.csv, field 'item_id': 1 interactions name items missing.*\[99\]"
    ):
        Interactions(make_log([("a", 99, 1, 1.0)]), catalog.ids, source="ratings.csv")
    bad = make_log([("a", 10, 1, 1.0)]).astype({"timestamp": object})
    bad.loc[0, "timestamp"] = "yesterday"
    with pytest.raises(DataError, match="timestamp 'yesterday' is not a number"):
        Interactions(bad, catalog.ids)
    with pytest.raises(DataError, match=r"need columns \['item_id'\]"):
        Interactions(pd.DataFrame({"user_id": [1], "timestamp": [10]}), catalog.ids)
    untimed = Interactions(pd.DataFrame({"user_id": [1, 1], "item_id": [10, 11]}), catalog.ids)
    assert not untimed.has_timestamps and untimed.timestamps.tolist() == [0, 1]
    assert "timestamp" not in untimed.stored_frame()


def test_datetime_timestamps_become_epoch_seconds(catalog: Catalog) -> None:
    frame = pd.DataFrame({"user_id": [1], "item_id": [10], "timestamp": pd.to_datetime(["1970-01-02"])})
    assert Interactions(frame, catalog.ids).timestamps.tolist() == [86400]


def test_rating_filter_and_dedup(catalog: Catalog, log: pd.DataFrame) -> None:
    inter = Interactions(log, catalog.ids)
    liked = inter.filter_rating(4.0)
    assert len(liked) == 6 and (liked.frame["rating"] >= 4).all()
    doubled = Interactions(pd.concat([log, log.iloc[[0]].assign(timestamp=999)]), catalog.ids)
    assert len(doubled.deduplicate()) == len(log)
    kept = doubled.deduplicate(keep="last")
    assert kept.frame.loc[(kept.frame.user_id == "a") & (kept.frame.item_id == 10), "timestamp"].item() == 999
    no_ratings = Interactions(log.drop(columns=["rating"]), catalog.ids)
    with pytest.raises(ValueError, match="no ratings"):
        no_ratings.filter_rating(3)


def test_k_core_is_iterative() -> None:
    # Item 3 has 2 users; removing it drops user u3 below 2, which drops item 4 below 2, and so on.
    rows = [
        ("u1", 1, 1, 1.0),
        ("u1", 2, 2, 1.0),
        ("u2", 1, 1, 1.0),
        ("u2", 2, 2, 1.0),
        ("u3", 3, 1, 1.0),
        ("u3", 4, 2, 1.0),
        ("u4", 4, 1, 1.0),
        ("u4", 1, 2, 1.0),
    ]
    inter = Interactions(make_log(rows))
    core = inter.k_core(2)
    assert set(core.frame["user_id"]) == {"u1", "u2"}
    assert set(core.frame["item_id"]) == {1, 2}
    assert core.k_core(2).frame.equals(core.frame)
    assert len(inter.k_core(1)) == len(inter)


def test_k_core_matches_a_brute_force_fixpoint() -> None:
    rng = np.random.default_rng(0)
    frame = make_log(
        [(int(u), int(i), int(t), 1.0) for t, (u, i) in enumerate(rng.integers(0, 30, (400, 2)))]
    )
    frame = frame.drop_duplicates(["user_id", "item_id"])
    core = Interactions(frame).k_core(5).frame
    f = frame.copy()
    while True:
        u = f.groupby("user_id")["item_id"].transform("size")
        i = f.groupby("item_id")["user_id"].transform("size")
        keep = (u >= 5) & (i >= 5)
        if keep.all():
            break
        f = f[keep]
    assert sorted(map(tuple, core[["user_id", "item_id"]].to_numpy().tolist())) == sorted(
        map(tuple, f[["user_id", "item_id"]].to_numpy().tolist())
    )


def test_describe(catalog: Catalog, log: pd.DataFrame) -> None:
    d = Interactions(log, catalog.ids).describe()
    assert d["interactions"] == 8 and d["users"] == 3 and d["items_with_interactions"] == 6
    assert d["rating_counts"] == {"2.0": 1, "3.0": 1, "4.0": 3, "5.0": 3}


def test_timezone_aware_times_are_converted_to_utc(catalog: Catalog) -> None:
    frame = pd.DataFrame(
        {"user_id": [1], "item_id": [10], "timestamp": [pd.Timestamp("1970-01-02 01:00", tz="Europe/Paris")]}
    )
    assert Interactions(frame, catalog.ids).timestamps.tolist() == [86400]
