"""Leak-free train / validation / test splits.

Two protocols, both per the recommender-evaluation literature:
- leave-one-out by time: each user's last event is test, the one before is validation, the rest train;
  users too short to give up two events stay wholly in train. (Other users' later events can still be
  in train: leave-one-out is only per-user leak-free, which is what the literature reports.)
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
    """Three interaction logs over the same item vocabulary."""

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


def leave_one_out(interactions: Interactions, *, min_train: int = 1) -> Split:
    """Per user, hold out the last event as test and the one before as validation.

    A user with fewer than ``min_train + 2`` events keeps all of them in train.
    """
    indptr, _ = interactions.sequence_arrays()
    lengths = np.diff(indptr)
    n = len(interactions)
    role = np.zeros(n, dtype=np.int8)  # 0 train, 1 valid, 2 test
    eligible = lengths >= min_train + 2
    ends = indptr[1:][eligible]
    role[ends - 1] = 2
    role[ends - 2] = 1
    frame = interactions.frame
    vocab = interactions.item_ids
    return Split(
        train=Interactions(frame[role == 0], vocab),
        valid=Interactions(frame[role == 1], vocab),
        test=Interactions(frame[role == 2], vocab),
        protocol="leave_one_out",
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
    vocab = interactions.item_ids
    return Split(
        train=Interactions(frame[ts < valid_t], vocab),
        valid=Interactions(frame[(ts >= valid_t) & (ts < test_t)], vocab),
        test=Interactions(frame[ts >= test_t], vocab),
        protocol=f"temporal(valid_start={valid_t}, test_start={test_t})",
    )


def _to_seconds(value: float | str | pd.Timestamp) -> int:
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return int(value)  # epoch seconds, whatever the numeric type
    return int(pd.Timestamp(value).timestamp())
