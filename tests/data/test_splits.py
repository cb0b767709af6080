from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recai.data import Catalog, Interactions, leave_one_out, temporal_split
from recai.testing.data import make_log


def test_leave_one_out_holds_out_the_last_two_events(catalog: Catalog, log: pd.DataFrame) -> None:
    split = leave_one_out(Interactions(log, catalog.ids))
    test = split.test.frame.set_index("user_id")["item_id"].to_dict()
    valid = split.valid.frame.set_index("user_id")["item_id"].to_dict()
    assert test == {"a": 13, "b": 17}  # the tie at t=300 goes to the later file row
    assert valid == {"a": 12, "b": 16}
    assert sorted(split.train.frame["user_id"]) == ["a", "a", "b", "c"]  # c is too short to hold out
    assert split.train.item_ids.equals(catalog.ids) and split.test.item_ids.equals(catalog.ids)
    assert split.describe()["test_users"] == 2


def test_min_train_keeps_short_users_whole(catalog: Catalog, log: pd.DataFrame) -> None:
    split = leave_one_out(Interactions(log, catalog.ids), min_train=2)
    assert set(split.test.frame["user_id"]) == {"a"}


def test_temporal_split_uses_global_cut_offs(catalog: Catalog, log: pd.DataFrame) -> None:
    split = temporal_split(Interactions(log, catalog.ids), valid_start=100, test_start=300)
    assert split.train.timestamps.max() < 100
    assert set(split.valid.timestamps) == {100, 200}
    assert set(split.test.timestamps) == {300}
    with pytest.raises(ValueError, match="must not be later"):
        temporal_split(Interactions(log, catalog.ids), valid_start=300, test_start=100)


def test_temporal_split_accepts_dates_and_fractions(catalog: Catalog, log: pd.DataFrame) -> None:
    inter = Interactions(log, catalog.ids)
    by_date = temporal_split(inter, valid_start="1970-01-01 00:01:40", test_start="1970-01-01 00:05:00")
    assert len(by_date.test) == 2
    by_fraction = temporal_split(inter, test_fraction=0.25, valid_fraction=0.25)
    assert len(by_fraction.train) + len(by_fraction.valid) + len(by_fraction.test) == len(inter)


def test_train_and_valid_reunites_the_two(catalog: Catalog, log: pd.DataFrame) -> None:
    split = leave_one_out(Interactions(log, catalog.ids))
    assert len(split.train_and_valid()) == len(split.train) + len(split.valid)


events = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 9), st.integers(0, 20)), min_size=1, max_size=80
)


@settings(max_examples=60, deadline=None)
@given(events)
def test_no_future_event_of_a_user_leaks_into_train(rows: list[tuple[int, int, int]]) -> None:
    inter = Interactions(make_log([(u, i, t, 1.0) for u, i, t in rows]), pd.Index(range(10)))
    split = leave_one_out(inter)
    assert len(split.train) + len(split.valid) + len(split.test) == len(inter)
    for part_a, part_b in ((split.train, split.valid), (split.valid, split.test), (split.train, split.test)):
        a = part_a.frame.groupby("user_id")["timestamp"].max()
        b = part_b.frame.groupby("user_id")["timestamp"].min()
        common = a.index.intersection(b.index)
        assert (a[common] <= b[common]).all()
    # Within ties, the original row order decides: each held-out event is the user's last row at that time.
    for user, group in split.test.frame.groupby("user_id"):
        full = inter.frame[inter.frame.user_id == user]
        assert group["_row"].iloc[0] == full["_row"].iloc[-1]
    temporal = temporal_split(inter, valid_start=7, test_start=14)
    assert temporal.train.timestamps.max(initial=-1) < 7 <= temporal.valid.timestamps.min(initial=7)
    assert temporal.valid.timestamps.max(initial=0) < 14 <= temporal.test.timestamps.min(initial=14)
    assert np.array_equal(
        np.sort(np.r_[temporal.train.timestamps, temporal.valid.timestamps, temporal.test.timestamps]),
        np.sort(inter.timestamps),
    )


def test_numeric_cut_offs_of_any_type_are_epoch_seconds(catalog: Catalog, log: pd.DataFrame) -> None:
    inter = Interactions(log, catalog.ids)
    as_float = temporal_split(inter, valid_start=np.float64(100.0), test_start=300.0)
    as_int = temporal_split(inter, valid_start=100, test_start=300)
    assert len(as_float.test) == len(as_int.test) == 2 and len(as_float.train) == len(as_int.train)
