"""Scope-masked loss (RecLM-cgen): inside an item span, the softmax runs over the catalog's valid
continuations only.

At decoding time :class:`~recai.gen.constrained.CatalogLogitsProcessor` masks every token that would
leave the catalog's prefix tree; training with the plain loss spends probability mass on tokens the
decoder can never pick. With the scope-masked loss, the prediction of each token inside a span (after
``<|item_start|>`` up to and including ``<|item_end|>``) is a softmax over the children of the trie node
reached so far (plus the end marker where an item ends there), so the model learns to choose *between
catalog items* rather than to spell. Outside spans the loss is the usual cross-entropy.

It is computed sparsely: per scoped position only the allowed tokens' logits are gathered (a flat list of
(position, token) pairs) and reduced with a segment log-sum-exp, never a vocabulary-sized mask. A span
whose name leaves the tree (a title not in this catalog) is scoped up to where it leaves, then trained
with the plain loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from recai.gen.trie import ItemTrie
from recai.train.chat import IGNORE_INDEX
from recai.train.collate import PadCollator
from recai.train.label_logits import label_logits_trainer, logits_at, per_trained_token, targets_at

#: The collated batch keys that carry the scope (popped before the model's forward pass).
SCOPE_KEYS = ("scope_row", "scope_position", "pair_scope", "pair_token")


@dataclass(frozen=True)
class Scope:
    """The scoped predictions of one sequence: ``positions[i]`` is the logits index (it predicts token
    ``positions[i] + 1``) and ``allowed[i]`` the token ids the catalog allows there."""

    positions: tuple[int, ...]
    allowed: tuple[tuple[int, ...], ...]

    def __len__(self) -> int:
        return len(self.positions)


def _allowed_at(trie: ItemTrie, node: int, end_id: int) -> tuple[int, ...]:
    children = tuple(trie.children[node])
    return (*children, end_id) if trie.items_at[node] else children


def scope_of(
    input_ids: Sequence[int], labels: Sequence[int], trie: ItemTrie, start_id: int, end_id: int
) -> Scope:
    """The scoped positions of one tokenised chat (trained tokens inside spans only)."""
    positions: list[int] = []
    allowed: list[tuple[int, ...]] = []
    n = len(input_ids)
    i = 0
    while i < n:
        if input_ids[i] != start_id:
            i += 1
            continue
        node: int | None = 0
        j = i
        while j + 1 < n and node is not None:
            following = int(input_ids[j + 1])
            options = _allowed_at(trie, node, end_id)
            if following not in options:
                break  # the name leaves the catalog here: plain loss from here on
            if labels[j + 1] != IGNORE_INDEX:
                positions.append(j)
                allowed.append(options)
            if following == end_id:
                break
            node = trie.children[node].get(following)
            j += 1
        i = j + 1
    return Scope(tuple(positions), tuple(allowed))


def collate_scopes(scopes: Sequence[Scope]) -> dict[str, Any]:
    """Flat tensors for a batch: one entry per scoped position (its row and logits index) and one per
    (scoped position, allowed token) pair."""
    import torch

    rows: list[int] = []
    positions: list[int] = []
    pair_scope: list[int] = []
    pair_token: list[int] = []
    for row, scope in enumerate(scopes):
        for position, options in zip(scope.positions, scope.allowed, strict=True):
            index = len(rows)
            rows.append(row)
            positions.append(position)
            pair_scope.extend([index] * len(options))
            pair_token.extend(options)
    as_long = {"dtype": torch.long}
    return {
        "scope_row": torch.tensor(rows, **as_long),
        "scope_position": torch.tensor(positions, **as_long),
        "pair_scope": torch.tensor(pair_scope, **as_long),
        "pair_token": torch.tensor(pair_token, **as_long),
    }


class ScopeCollator(PadCollator):
    """Pads a batch (:class:`~recai.train.collate.PadCollator`) and adds its rows' scopes
    (:func:`collate_scopes`), which every row carries under ``scope``.

    Args:
        pad_id: The token id padding rows are filled with.
    """

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {**super().__call__(rows), **collate_scopes([r["scope"] for r in rows])}


def scope_masked_loss(
    logits: Any, labels: Any, scope: dict[str, Any], num_items_in_batch: Any = None, positions: Any = None
) -> Any:
    """Cross-entropy over the whole vocabulary outside spans and over the allowed tokens inside them.

    ``labels`` are unshifted (Hugging Face convention: logits at ``t`` predict ``labels[t + 1]``).
    ``positions`` are the sequence positions ``logits`` were kept at (``logits_to_keep``,
    :mod:`recai.train.label_logits`); None means every position. Each scoped position must be among them.
    The result is the mean over trained tokens, or the sum divided by ``num_items_in_batch`` when the
    Trainer accumulates gradients over several batches.
    """
    import torch
    from torch.nn.functional import cross_entropy

    if positions is None:
        positions = torch.arange(logits.shape[1] - 1, device=logits.device)
    kept = logits_at(logits, positions)
    width, vocab = kept.shape[1], kept.shape[2]
    targets = targets_at(labels, positions).to(kept.device)
    per_token = cross_entropy(
        kept.reshape(-1, vocab).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none"
    )
    rows = scope["scope_row"].to(kept.device)
    if rows.numel():
        column_of = torch.full((int(labels.shape[1]),), -1, dtype=torch.long, device=kept.device)
        column_of[positions.to(kept.device)] = torch.arange(width, device=kept.device)
        columns = column_of[scope["scope_position"].to(kept.device)]
        if bool((columns < 0).any()):
            raise ValueError("a scoped position has no kept logits (it is not a trained position)")
        pair_scope = scope["pair_scope"].to(kept.device)
        pair_token = scope["pair_token"].to(kept.device)
        chosen = kept[rows, columns, targets[rows, columns]].float()
        gathered = kept[rows[pair_scope], columns[pair_scope], pair_token].float()
        # segment log-sum-exp; the max is only for stability, so it needs no gradient
        peak = torch.full((rows.numel(),), float("-inf"), device=kept.device)
        peak = peak.scatter_reduce(0, pair_scope, gathered.detach(), reduce="amax")
        total = torch.zeros_like(peak).index_add(0, pair_scope, torch.exp(gathered - peak[pair_scope]))
        scoped = peak + torch.log(total) - chosen
        per_token = per_token.index_put((rows * width + columns,), scoped)
    summed = per_token[targets.reshape(-1) != IGNORE_INDEX].sum()
    return per_trained_token(summed, targets, num_items_in_batch)


def scope_loss_trainer(trainer_class: Any) -> Any:
    """A subclass of ``trainer_class`` (the Hugging Face Trainer) that trains with the scope-masked loss,
    on logits kept at the trained positions only (:func:`~recai.train.label_logits.label_logits_trainer`).

    The scope tensors are taken out of the batch before the forward pass; the loss goes through the
    Trainer's ``compute_loss_func`` hook, so gradient accumulation is normalised as for its own loss.
    """

    class ScopeLossTrainer(label_logits_trainer(trainer_class)):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._scope: dict[str, Any] | None = None

        def compute_loss(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            self._scope = {key: inputs.pop(key) for key in SCOPE_KEYS}
            try:
                return super().compute_loss(model, inputs, *args, **kwargs)
            finally:
                self._scope = None

        def loss_from_logits(self, logits: Any, labels: Any, positions: Any, num_items_in_batch: Any) -> Any:
            if self._scope is None:
                raise RuntimeError("the batch has no scope tensors: use the scope collator")
            return scope_masked_loss(logits, labels, self._scope, num_items_in_batch, positions)

    return ScopeLossTrainer
