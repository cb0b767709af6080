"""How a generative recommender writes catalog items: a unique name per item, wrapped in item-span tokens.

Every item the model names sits between two special tokens added to the tokenizer
(``<|item_start|>Heat (1995)<|item_end|>``). The span makes items machine-readable (no fuzzy guessing
of where a title starts) and lets decoding be constrained to catalog names inside spans while the rest
of the reply stays free text. Names are the catalog's display titles (title plus year when the catalog
has one); two items with the same display title would be indistinguishable, so all but the most popular
get their id appended (``Emma (1996) (#838)``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from recai.data.catalog import Catalog
from recai.data.errors import plain_value
from recai.train.models import add_special_tokens

ITEM_START = "<|item_start|>"
ITEM_END = "<|item_end|>"


@dataclass(frozen=True)
class SpanFormat:
    """The two marker strings around an item name; they become special tokens of the tokenizer."""

    start: str = ITEM_START
    end: str = ITEM_END

    def __post_init__(self) -> None:
        if not self.start or not self.end or self.start == self.end:
            raise ValueError(f"span markers must be two different non-empty strings, got {self!r}")

    def wrap(self, name: str) -> str:
        return f"{self.start}{name}{self.end}"

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """Matches one span in text; group 1 is the name. An unterminated span is not matched."""
        return re.compile(re.escape(self.start) + "(.*?)" + re.escape(self.end), re.S)

    def strip(self, text: str) -> str:
        """``text`` with the markers removed (for showing a reply to a person)."""
        return text.replace(self.start, "").replace(self.end, "")


DEFAULT_FORMAT = SpanFormat()


def add_item_tokens(
    tokenizer: Any, model: Any | None = None, fmt: SpanFormat = DEFAULT_FORMAT
) -> tuple[int, int]:
    """Add the span markers as special tokens (:func:`recai.train.models.add_special_tokens`) and grow the
    model's embeddings to match; new rows start at the mean embedding. Returns (start id, end id).

    Calling it again is harmless: present tokens are not added twice.
    """
    start_id, end_id = add_special_tokens(tokenizer, (fmt.start, fmt.end))
    if model is not None:
        rows = model.get_input_embeddings().weight.shape[0]
        if rows <= max(start_id, end_id):
            model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    return start_id, end_id


def span_token_ids(tokenizer: Any, fmt: SpanFormat = DEFAULT_FORMAT) -> tuple[int, int]:
    """The ids of the span markers; a clear error when the tokenizer was never given them."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in (fmt.start, fmt.end) if t not in vocab]
    if missing:
        raise ValueError(
            f"the tokenizer has no {missing} token(s): add them with recai.gen.items.add_item_tokens "
            "(a model trained by `recai gen train` has them)"
        )
    return vocab[fmt.start], vocab[fmt.end]


def _clean(name: str, fmt: SpanFormat) -> str:
    """One line of text without the span markers, so a name can never open or close a span itself."""
    name = fmt.strip(name)
    return " ".join(name.split())


class ItemNames:
    """A unique name for every catalog item (by row position), and the way back from a name."""

    def __init__(self, catalog: Catalog, fmt: SpanFormat = DEFAULT_FORMAT) -> None:
        self.catalog = catalog
        self.fmt = fmt
        n = len(catalog)
        base = [_clean(catalog.display_title(i), fmt) or f"#{plain_value(catalog.ids[i])}" for i in range(n)]
        popularity = catalog.popularity()
        pop = np.zeros(n) if popularity is None else np.asarray(popularity, dtype=float)
        counts = Counter(base)
        names = list(base)
        for title, count in counts.items():
            if count < 2:
                continue
            holders = [i for i in range(n) if base[i] == title]
            holders.sort(key=lambda i: (-pop[i], i))  # the most popular keeps the plain name
            for i in holders[1:]:
                names[i] = f"{title} (#{plain_value(catalog.ids[i])})"
        self.names: list[str] = names
        self._by_name = {name: i for i, name in enumerate(names)}

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, position: int) -> str:
        return self.names[int(position)]

    def position(self, name: str) -> int | None:
        """The row whose name is exactly ``name`` (after whitespace clean-up), else None."""
        return self._by_name.get(_clean(name, self.fmt))

    def span(self, position: int) -> str:
        """The item as the model writes it: its name between the markers."""
        return self.fmt.wrap(self.names[int(position)])
