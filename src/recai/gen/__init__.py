"""RecLM-gen / cgen: a generative recommender that names catalog items inside natural replies.

- :mod:`recai.gen.tasks`: SFT examples (sequential, category and count control, catalog grounding);
- :mod:`recai.gen.training`: LoRA or full SFT, loss on assistant tokens only (on :mod:`recai.train`);
- :mod:`recai.gen.constrained` and :mod:`recai.gen.trie`: catalog-constrained decoding (cgen);
- :mod:`recai.gen.generate`, :mod:`recai.gen.metrics`, :mod:`recai.gen.evaluation`: generation, parsing
  to item ids, and scoring;
- :mod:`recai.gen.models`: loading trained folders, merging adapters (base models: :mod:`recai.train.models`).

Modules import torch and transformers only when they need them.

The names are imported on first access (``recai gen --help`` reads only the SFT defaults).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recai._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".examples": ["Control", "GenData", "GenExample"],
        ".items": ["ITEM_END", "ITEM_START", "ItemNames", "SpanFormat", "add_item_tokens"],
        ".tasks": [
            "GEN_TASKS",
            "LIST_TASKS",
            "TASKS",
            "GenContext",
            "GenTask",
            "GenTaskBuilder",
            "build_gen_data",
            "fit_teacher",
        ],
        ".trie": ["ItemTrie"],
    },
)

__all__ = [
    "GEN_TASKS",
    "ITEM_END",
    "ITEM_START",
    "LIST_TASKS",
    "TASKS",
    "Control",
    "GenContext",
    "GenData",
    "GenExample",
    "GenTask",
    "GenTaskBuilder",
    "ItemNames",
    "ItemTrie",
    "SpanFormat",
    "add_item_tokens",
    "build_gen_data",
    "fit_teacher",
]

if TYPE_CHECKING:
    from recai.gen.examples import Control, GenData, GenExample
    from recai.gen.items import ITEM_END, ITEM_START, ItemNames, SpanFormat, add_item_tokens
    from recai.gen.tasks import (
        GEN_TASKS,
        LIST_TASKS,
        TASKS,
        GenContext,
        GenTask,
        GenTaskBuilder,
        build_gen_data,
        fit_teacher,
    )
    from recai.gen.trie import ItemTrie
