"""Leak-free train / validation / test splits.

Two protocols, both per the recommender-evaluation literature:
- leave-one-out by time: each user's last event is test, the one before is validation, the rest train;
  users too short to give up two events stay wholly in train. (Other users' later events can still be
  in train: leave-one-out is only per-user leak-free, which is what the literature reports.)
  On a log without timestamps "last" means last in file order; ``order="random"`` instead holds out
  two events per user drawn with a seed, for files whose order means nothing (sorted by item id).
- temporal cut-off: everything before ``valid_start`` trains, events in [valid_start, test_start)
  validate and events from ``test_start`` on test, so no training event is later than any evaluated one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recai.data.interactions import TIMESTAMP, Interactions


@dataclass(frozen=True)
class Split:
    """Three interaction logs over the same item vocabulary: what every model trains and is scored on.

    Attributes:
        train: Events to fit on.
        valid: Events to tune and stop early on.
        test: Held-out events to score.
        protocol: How the split was made (e.g. "leave_one_out", "temporal(valid_start=..., test_start=...)").
    """

    train: Interactions
    valid: Interactions
    test: Interactions
    protocol: str

    def describe(self) -> dict[str, object]:
        return {
            "protocol": self.protocol,
            "train": len(self.train),
            "valid": len(self.valid),
            "test": len(self.test),
            "test_users": self.test.n_users,
        }

    def train_and_valid(self) -> Interactions:
        """Train plus validation events, to refit after model selection before the final test."""
        return self.train.concat(self.valid)


def leave_one_out(
    interactions: Interactions, *, min_train: int = 1, order: str = "time", seed: int = 0
) -> Split:
    """Per user, hold out the last event as test and the one before as validation.

    A user with fewer than ``min_train + 2`` events keeps all of them in train. ``order="time"`` takes
    the last events of each sequence (file order on an untimed log); ``order="random"`` draws the two
    held-out events of each user at random (seeded), the honest choice when the order means nothing.
    """
    if order not in ("time", "random"):
        raise ValueError(f"order must be 'time' or 'random', not {order!r}")
    indptr, _ = interactions.sequence_arrays()
    lengths = np.diff(indptr)
    n = len(interactions)
    role = np.zeros(n, dtype=np.int8)  # 0 train, 1 valid, 2 test
    eligible = lengths >= min_train + 2
    starts, ends = indptr[:-1][eligible], indptr[1:][eligible]
    if order == "time":
        role[ends - 1] = 2
        role[ends - 2] = 1
    else:
        rng = np.random.default_rng(seed)
        sizes = (ends - starts).astype(np.float64)
        test = starts + np.floor(rng.random(len(starts)) * sizes).astype(np.int64)
        # the validation event is another random one: draw from the remaining size-1 and skip the test
        other = starts + np.floor(rng.random(len(starts)) * (sizes - 1)).astype(np.int64)
        valid = np.where(other >= test, other + 1, other)
        role[test] = 2
        role[valid] = 1
    frame = interactions.frame
    protocol = "leave_one_out" if order == "time" else f"leave_one_out(order=random, seed={seed})"
    return Split(
        train=interactions.from_frame(frame[role == 0]),
        valid=interactions.from_frame(frame[role == 1]),
        test=interactions.from_frame(frame[role == 2]),
        protocol=protocol,
    )


def temporal_split(
    interactions: Interactions,
    *,
    test_start: float | str | pd.Timestamp | None = None,
    valid_start: float | str | pd.Timestamp | None = None,
    test_fraction: float = 0.1,
    valid_fraction: float = 0.1,
) -> Split:
    """Split at global time points; defaults put the last 10% of events in test and 10% in validation.

    Cut-offs can be epoch seconds, ISO dates or timestamps. Events at exactly ``test_start`` are test.
    """
    if not interactions.has_timestamps:
        raise ValueError(
            "a temporal split needs timestamps and this log has none: use leave_one_out "
            "(file order, or order='random')"
        )
    ts = interactions.frame[TIMESTAMP].to_numpy()
    if len(ts) == 0:
        raise ValueError("cannot split an empty interaction log")
    test_t = _to_seconds(test_start) if test_start is not None else int(np.quantile(ts, 1 - test_fraction))
    if valid_start is not None:
        valid_t = _to_seconds(valid_start)
    else:
        valid_t = int(np.quantile(ts, max(1 - test_fraction - valid_fraction, 0.0)))
    if valid_t > test_t:
        raise ValueError(f"valid_start ({valid_t}) must not be later than test_start ({test_t})")
    frame = interactions.frame
    return Split(
        train=interactions.from_frame(frame[ts < valid_t]),
        valid=interactions.from_frame(frame[(ts >= valid_t) & (ts < test_t)]),
        test=interactions.from_frame(frame[ts >= test_t]),
        protocol=f"temporal(valid_start={valid_t}, test_start={test_t})",
    )


def _to_seconds(value: float | str | pd.Timestamp) -> int:
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return int(value)  # epoch seconds, whatever the numeric type
    return int(pd.Timestamp(value).timestamp())
