"""The interaction log: who interacted with what, when, how much they liked it, and how strongly.

Sequences are always time-ordered with ties broken by the original row order (the order the publisher
wrote the file in), because on MovieLens hundreds of users share timestamps and the tie rule decides the
held-out item.

Not every log has times (Last.fm's user-artist listen counts do not): such a log is *untimed*. Its
events keep the file's order, ``timestamp`` holds that order (0, 1, 2, ...) so that every sequence
operation still works, and :attr:`Interactions.has_timestamps` is False so that nothing presents those
positions as dates (``describe``, temporal splits and time-decayed popularity refuse or say so).

An optional ``weight`` (listen counts, hours played, purchase counts) is weighted implicit feedback:
models can use it as confidence (``to_csr(values="weight")``) and ``filter_weight`` cuts weak events.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recai.data.errors import DataError, first_flagged

USER, ITEM, TIMESTAMP, RATING, WEIGHT = "user_id", "item_id", "timestamp", "rating", "weight"
_ROW = "_row"


def _epoch_seconds(df: pd.DataFrame, source: str | None) -> pd.Series:
    """Whole epoch seconds; when the input is finer (datetimes, fractional or millisecond times),
    ``_row`` is renumbered so that events within the same second keep their true order."""
    ts = df[TIMESTAMP]
    if pd.api.types.is_integer_dtype(ts):
        return ts.astype(np.int64)
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(ts):
        precise = ts.astype("datetime64[ns]").astype(np.int64).to_numpy()
        seconds = precise // 1_000_000_000
    else:
        numeric = pd.to_numeric(ts, errors="coerce")
        row = first_flagged(numeric.isna())
        if row is not None:
            raise DataError(
                f"timestamp {ts.iloc[row]!r} is not a number or a datetime",
                path=source,
                line=row + 1,
                field=TIMESTAMP,
            )
        precise = numeric.to_numpy(dtype=np.float64)
        seconds = np.floor(precise).astype(np.int64)
    if (precise != seconds * (1_000_000_000 if precise.dtype.kind in "iu" else 1)).any():
        order = np.lexsort((df[_ROW].to_numpy(), precise))
        rows = np.empty(len(df), dtype=np.int64)
        rows[order] = np.arange(len(df))
        df[_ROW] = rows
    return pd.Series(seconds, index=df.index, dtype=np.int64)


class Interactions:
    """A time-ordered log of (user, item, timestamp[, rating][, weight]) events over a fixed item vocabulary.

    ``item_ids`` is the item vocabulary (normally the catalog's ids in row order), so that item codes
    agree with catalog positions across every split and model. Users get dense codes in order of first
    appearance in the sorted log.

    Args:
        frame: The events: user_id and item_id columns, optional timestamp, rating and weight.
        item_ids: The item vocabulary (default: the items in the log, in order of appearance).
        source: The file the log came from, named in errors.
        timed: Whether the timestamps are times. A frame without a ``timestamp`` column is an untimed
            log (see the module docstring); ``False`` marks a log whose ``timestamp`` column already
            holds file positions.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        item_ids: pd.Index | Iterable[Any] | None = None,
        *,
        source: str | None = None,
        timed: bool | None = None,
    ) -> None:
        missing = [c for c in (USER, ITEM) if c not in frame]
        if missing:
            raise DataError(f"interactions need columns {missing}; got {list(frame.columns)}", path=source)
        self._timed = TIMESTAMP in frame if timed is None else bool(timed)
        optional = [c for c in (RATING, WEIGHT) if c in frame]
        present = [USER, ITEM] + ([TIMESTAMP] if TIMESTAMP in frame else []) + optional
        df = frame[present + ([_ROW] if _ROW in frame else [])].copy()
        if _ROW not in df:
            df[_ROW] = np.arange(len(df), dtype=np.int64)
        if TIMESTAMP not in df:
            df.insert(2, TIMESTAMP, df[_ROW].to_numpy(dtype=np.int64))
        for col in (USER, ITEM, TIMESTAMP):
            row = first_flagged(df[col].isna())
            if row is not None:
                raise DataError("empty value", path=source, line=row + 1, field=col)
        df[TIMESTAMP] = _epoch_seconds(df, source)
        if RATING in df:
            df[RATING] = pd.to_numeric(df[RATING], errors="coerce").astype(np.float32)
        if WEIGHT in df:
            df[WEIGHT] = pd.to_numeric(df[WEIGHT], errors="coerce").astype(np.float32)
        df = df.sort_values([USER, TIMESTAMP, _ROW], kind="stable").reset_index(drop=True)
        self._frame = df
        self.item_ids = pd.Index(item_ids) if item_ids is not None else pd.Index(pd.unique(df[ITEM]))
        codes = self.item_ids.get_indexer(df[ITEM])
        if (codes < 0).any():
            unknown = pd.unique(df[ITEM][codes < 0])[:5].tolist()
            raise DataError(
                f"{int((codes < 0).sum())} interactions name items missing from the catalog, e.g. {unknown}",
                path=source,
                field=ITEM,
            )
        self._item_codes = codes.astype(np.int64)
        users = df[USER].to_numpy()
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(df) else np.empty(0, np.int64)
        self._indptr = np.r_[starts, len(df)].astype(np.int64)
        self.user_ids = pd.Index(users[starts]) if len(df) else pd.Index([])
        self._user_codes = np.repeat(np.arange(len(starts)), np.diff(self._indptr))

    # ----------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self._frame)

    def __repr__(self) -> str:
        return f"Interactions({len(self)} events, {self.n_users} users, {self.n_items} items in vocabulary)"

    @property
    def frame(self) -> pd.DataFrame:
        """The sorted log (user, time, original row order). Treat it as read-only."""
        return self._frame

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Size of the item vocabulary (including items nobody interacted with)."""
        return len(self.item_ids)

    @property
    def has_ratings(self) -> bool:
        return RATING in self._frame

    @property
    def has_weights(self) -> bool:
        """Whether events carry a strength (counts, hours) usable as confidence."""
        return WEIGHT in self._frame

    @property
    def has_timestamps(self) -> bool:
        """False for an untimed log, whose ``timestamp`` values are file positions, not times."""
        return self._timed

    def stored_frame(self) -> pd.DataFrame:
        """The log as it is saved: no internal row numbers, and no invented timestamps for an untimed
        log (so it loads back untimed)."""
        drop = [_ROW] + ([] if self._timed else [TIMESTAMP])
        return self._frame.drop(columns=drop)

    @property
    def item_codes(self) -> np.ndarray:
        """Item position of each event, aligned with :attr:`frame`."""
        return self._item_codes

    @property
    def user_codes(self) -> np.ndarray:
        return self._user_codes

    @property
    def timestamps(self) -> np.ndarray:
        return self._frame[TIMESTAMP].to_numpy()

    def user_index(self, user: Any) -> int:
        pos = self.user_ids.get_indexer([user])[0]
        if pos < 0 and pd.api.types.is_integer_dtype(self.user_ids.dtype):
            with contextlib.suppress(TypeError, ValueError):
                pos = self.user_ids.get_indexer([int(user)])[0]
        elif pos < 0:
            pos = self.user_ids.get_indexer([str(user)])[0]
        if pos < 0:
            raise KeyError(f"unknown user {user!r}")
        return int(pos)

    def sequence(self, user: Any) -> np.ndarray:
        """Time-ordered item codes of one user."""
        u = self.user_index(user)
        return self._item_codes[self._indptr[u] : self._indptr[u + 1]]

    def sequences(self) -> Iterator[tuple[Any, np.ndarray]]:
        """(user id, time-ordered item codes) for every user."""
        for u, user in enumerate(self.user_ids):
            yield user, self._item_codes[self._indptr[u] : self._indptr[u + 1]]

    def sequence_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR-style (indptr, item codes): user u's sequence is ``codes[indptr[u]:indptr[u+1]]``."""
        return self._indptr, self._item_codes

    def user_lengths(self) -> np.ndarray:
        return np.diff(self._indptr)

    def item_counts(self) -> np.ndarray:
        """Interactions per item code (zeros for items nobody touched)."""
        return np.bincount(self._item_codes, minlength=self.n_items)

    def to_csr(self, *, values: str = "binary") -> sp.csr_matrix:
        """User x item matrix; ``values`` is 'binary', 'count', 'rating' (the last rating wins) or
        'weight' (weights of repeated events add up, like listen counts)."""
        n = len(self)
        if values == "weight":
            if not self.has_weights:
                raise ValueError("these interactions carry no weights")
            w = self._frame[WEIGHT].fillna(0.0).to_numpy(np.float32)
            m = sp.csr_matrix((w, (self._user_codes, self._item_codes)), shape=(self.n_users, self.n_items))
            m.sum_duplicates()
            return m
        if values == "rating":
            if not self.has_ratings:
                raise ValueError("these interactions carry no ratings")
            frame = pd.DataFrame({"u": self._user_codes, "i": self._item_codes, "r": self._frame[RATING]})
            last = frame.drop_duplicates(["u", "i"], keep="last")
            return sp.csr_matrix(
                (last["r"].to_numpy(np.float32), (last["u"], last["i"])), shape=(self.n_users, self.n_items)
            )
        m = sp.csr_matrix(
            (np.ones(n, dtype=np.float32), (self._user_codes, self._item_codes)),
            shape=(self.n_users, self.n_items),
        )
        m.sum_duplicates()
        if values == "binary":
            m.data[:] = 1.0
        elif values != "count":
            raise ValueError("values must be 'binary', 'count', 'rating' or 'weight'")
        return m

    def describe(self) -> dict[str, Any]:
        lengths = self.user_lengths()
        counts = self.item_counts()
        ts = self.timestamps
        out: dict[str, Any] = {
            "interactions": len(self),
            "users": self.n_users,
            "items_with_interactions": int((counts > 0).sum()),
            "density": float(len(self) / max(self.n_users * max(int((counts > 0).sum()), 1), 1)),
            "user_length": _summary(lengths),
            "item_count": _summary(counts[counts > 0]),
        }
        if not self._timed:
            out["time_range"] = "no timestamps (events keep the file's order)"
        elif len(ts):
            out["time_range"] = [
                pd.Timestamp(int(ts.min()), unit="s").isoformat(),
                pd.Timestamp(int(ts.max()), unit="s").isoformat(),
            ]
        if self.has_ratings:
            out["rating_counts"] = {
                str(k): int(v) for k, v in self._frame[RATING].value_counts().sort_index().items()
            }
        if self.has_weights:
            w = self._frame[WEIGHT].dropna().to_numpy(np.float64)
            out["weight"] = _summary(w, counts=False)
        return out

    # ------------------------------------------------------------- transforms
    def _subset(self, mask: np.ndarray) -> Interactions:
        return Interactions(self._frame[mask], self.item_ids, timed=self._timed)

    def from_frame(self, frame: pd.DataFrame) -> Interactions:
        """Rows of this log's frame (a filtered copy) as a log over the same vocabulary, timed or not
        like this one; splits build their parts this way."""
        return Interactions(frame, self.item_ids, timed=self._timed)

    def with_items(self, item_ids: pd.Index) -> Interactions:
        """The same log over another item vocabulary (must contain every item used)."""
        return Interactions(self._frame, item_ids, timed=self._timed)

    def filter_rating(self, min_rating: float) -> Interactions:
        """Keep events rated at least ``min_rating`` (implicit feedback from explicit ratings)."""
        if not self.has_ratings:
            raise ValueError("cannot filter by rating: these interactions carry no ratings")
        return self._subset((self._frame[RATING] >= min_rating).to_numpy())

    def filter_weight(self, min_weight: float) -> Interactions:
        """Keep events whose weight is at least ``min_weight`` (drop one-off plays, short sessions)."""
        if not self.has_weights:
            raise ValueError("cannot filter by weight: these interactions carry no weights")
        return self._subset((self._frame[WEIGHT] >= min_weight).to_numpy())

    def deduplicate(self, keep: str = "last") -> Interactions:
        """One event per (user, item), keeping the first or last by time."""
        dup = self._frame.duplicated([USER, ITEM], keep=keep)
        return self._subset(~dup.to_numpy())

    def k_core(self, k: int = 5, *, user_k: int | None = None, item_k: int | None = None) -> Interactions:
        """Iteratively drop users with fewer than ``user_k`` and items with fewer than ``item_k`` events."""
        user_k = k if user_k is None else user_k
        item_k = k if item_k is None else item_k
        keep = np.ones(len(self), dtype=bool)
        users, items = self._user_codes, self._item_codes
        while True:
            u_counts = np.bincount(users[keep], minlength=self.n_users)
            i_counts = np.bincount(items[keep], minlength=self.n_items)
            bad = keep & ((u_counts[users] < user_k) | (i_counts[items] < item_k))
            if not bad.any():
                break
            keep &= ~bad
        return self._subset(keep)

    def for_users(self, users: Iterable[Any]) -> Interactions:
        wanted = set(users)
        return self._subset(self._frame[USER].isin(wanted).to_numpy())

    def before(self, timestamp: int) -> Interactions:
        """Events strictly before ``timestamp``."""
        if not self._timed:
            raise ValueError("this log has no timestamps: there is no 'before' a time")
        return self._subset((self._frame[TIMESTAMP] < timestamp).to_numpy())

    def concat(self, other: Interactions) -> Interactions:
        """Union of two logs over the same vocabulary (original row order kept for tie-breaking)."""
        if not self.item_ids.equals(other.item_ids):
            raise ValueError("cannot concatenate interactions over different item vocabularies")
        if self._timed != other._timed:
            raise ValueError("cannot concatenate a timed log with an untimed one")
        return Interactions(
            pd.concat([self._frame, other._frame], ignore_index=True), self.item_ids, timed=self._timed
        )


def _summary(values: np.ndarray, *, counts: bool = True) -> dict[str, float]:
    """Min, median, mean and max; ``counts`` keeps min and max whole and rounds the mean to 2 places,
    otherwise (weights) everything is a float and the mean has 3."""
    number = int if counts else float
    if len(values) == 0:
        return {"min": number(0), "median": number(0), "mean": number(0), "max": number(0)}
    return {
        "min": number(values.min()),
        "median": float(np.median(values)),
        "mean": round(float(values.mean()), 2 if counts else 3),
        "max": number(values.max()),
    }
