"""Train/test split of examples, by item or by user, and deduplication of the test set.

Which keys (items or users) are test keys depends only on the seed and the key itself, never on which
examples were generated: a larger build keeps the same test items. A test example whose normalised
query equals a training query is dropped, so the test set measures generalisation, not recall of
training text; duplicates within each part are dropped too (the first one is kept).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from recai.embed.tasks.example import Example

SplitBy = Literal["item", "user"]


def normalise_query(text: str) -> str:
    """The form queries are compared in: accents folded, lower case, punctuation as spaces, single spaces."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return " ".join(re.sub(r"[^\w\s]", " ", folded).split())


def key_rank(seed: int, key: str) -> int:
    """A seeded, stable pseudo-random rank of a split key."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little")


def choose_test_keys(keys: Iterable[Any], *, prefix: str, fraction: float, seed: int) -> set[str]:
    """The ``round(fraction * n)`` keys (at least one when ``fraction > 0``) with the lowest seeded rank."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {fraction}")
    names = sorted({f"{prefix}:{k}" for k in keys})
    if fraction == 0.0 or not names:
        return set()
    n = max(1, round(fraction * len(names)))
    return set(sorted(names, key=lambda k: (key_rank(seed, k), k))[:n])


def split_key(example_user: Any, positive: Any, split_by: SplitBy) -> str:
    """ "user:ID" for examples built from a user when splitting by user, "item:ID" of the positive
    otherwise (examples without a user are split by their item in both modes)."""
    if split_by == "user" and example_user is not None:
        return f"user:{example_user}"
    return f"item:{positive}"


def split_examples(
    examples: Sequence[Example], test: set[str]
) -> tuple[list[Example], list[Example], dict[str, int]]:
    """(train, test, counts of what was dropped): an example is test when its ``split_key`` is in ``test``."""
    train_part: list[Example] = []
    test_part: list[Example] = []
    seen_train: set[str] = set()
    seen_test: set[str] = set()
    dropped: Counter[str] = Counter()
    for example in examples:
        if example.split_key not in test:
            key = normalise_query(example.query)
            if key in seen_train:
                dropped["train_duplicates"] += 1
                continue
            seen_train.add(key)
            train_part.append(example)
    for example in examples:
        if example.split_key in test:
            key = normalise_query(example.query)
            if key in seen_train:
                dropped["test_queries_seen_in_train"] += 1
                continue
            if key in seen_test:
                dropped["test_duplicates"] += 1
                continue
            seen_test.add(key)
            test_part.append(example)
    return train_part, test_part, dict(sorted(dropped.items()))
