"""A hand-made prefix tree and a dense reference of the scope-masked loss, shared by the unit tests and
the CUDA check (``benchmarks/gen_cuda/check_scope_loss.py``); no pytest needed."""

from __future__ import annotations

from typing import Any

from recai.gen.scope_loss import Scope
from recai.gen.trie import ItemTrie
from recai.train.chat import IGNORE_INDEX

START, END = 90, 91
# item 0: 5 6, item 1: 5 7 8, item 2: 9; so after 5 the choices are 6 or 7, and after 5 6 only the end
TRIE = ItemTrie([[5, 6], [5, 7, 8], [9]])


def dense_reference(logits: Any, labels: Any, scopes: list[Scope]) -> Any:
    """The same loss with a vocabulary-sized mask, position by position."""
    import torch

    losses = []
    for row in range(logits.shape[0]):
        scoped = dict(zip(scopes[row].positions, scopes[row].allowed, strict=True))
        for t in range(logits.shape[1] - 1):
            target = int(labels[row, t + 1])
            if target == IGNORE_INDEX:
                continue
            z = logits[row, t].float()
            if t in scoped:
                mask = torch.full_like(z, float("-inf"))
                mask[list(scoped[t])] = 0.0
                z = z + mask
            losses.append(torch.nn.functional.cross_entropy(z[None], torch.tensor([target])))
    return torch.stack(losses).mean()
