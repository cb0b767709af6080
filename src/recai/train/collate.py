"""Dynamic padding for causal-LM training batches: each batch is as wide as its longest row."""

from __future__ import annotations

from typing import Any

from recai.train.chat import IGNORE_INDEX


class PadCollator:
    """Pads a batch to its longest row (right side): ids with the pad token, labels with -100.

    Counts the tokens it has batched (padding excluded), for the tokens-per-second record. Subclasses add
    what their model needs beside the tokens (scopes for the scope-masked loss, recommender vectors for
    the explainer) in :meth:`__call__`.

    Args:
        pad_id: The token id padding rows are filled with (the tokenizer's pad token).
    """

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id
        self.tokens = 0

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"], dtype=torch.long)
            labels[i, :n] = torch.tensor(r["labels"], dtype=torch.long)
            mask[i, :n] = 1
            self.tokens += n
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}
