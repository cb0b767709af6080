"""Logits only where the loss needs them: the training step skips the LM head at prompt positions.

Supervised fine-tuning trains on the assistant's tokens only, which are a small share of each sequence
(a recommendation prompt of a few hundred tokens, an answer of a few dozen). A causal LM's forward pass
still projects every position onto the vocabulary (49k to 152k columns), and the cross-entropy then
throws most of those rows away. The head and its softmax are a fifth to a third of a small model's
training step.

Hugging Face causal LMs accept ``logits_to_keep`` (a 1-D tensor of positions kept for every row). The
trainer here passes the positions whose *next* token is trained in any row of the batch, so the head
runs on those alone; rows that share a batch but not a position are masked by their ``-100`` labels. The
loss is the same number as the model's own loss on full logits (tested); a model without
``logits_to_keep`` gets full logits, sliced before the loss.
"""

from __future__ import annotations

import inspect
from typing import Any

from recai.train.chat import IGNORE_INDEX


def loss_positions(labels: Any) -> Any:
    """Positions ``t`` whose logits predict a trained token (``labels[row, t + 1] != -100``) in any row."""
    import torch

    trained = (labels[:, 1:] != IGNORE_INDEX).any(dim=0)
    return torch.nonzero(trained, as_tuple=False).flatten()


def accepts_logits_to_keep(model: Any) -> bool:
    """Whether ``model`` (or the model under a PEFT wrapper) takes ``logits_to_keep`` in ``forward``."""
    get_base = getattr(model, "get_base_model", None)
    base = get_base() if callable(get_base) else model
    try:
        return "logits_to_keep" in inspect.signature(base.forward).parameters
    except (TypeError, ValueError):
        return False


def logits_at(logits: Any, positions: Any) -> Any:
    """The logits at ``positions`` whether the model kept only those (``len(positions)`` columns) or
    returned every position."""
    if logits.shape[1] == positions.numel():
        return logits
    return logits[:, positions.to(logits.device), :]


def targets_at(labels: Any, positions: Any) -> Any:
    """The token each kept position predicts (``-100`` where that row does not train it)."""
    return labels[:, positions.to(labels.device) + 1]


def causal_loss_at(logits: Any, labels: Any, positions: Any, num_items_in_batch: Any = None) -> Any:
    """Next-token cross-entropy over the trained tokens, from the logits at ``positions`` only.

    The mean over trained tokens, or their sum divided by ``num_items_in_batch`` when the Trainer
    accumulates gradients over several batches (as the model's own loss does).
    """
    from torch.nn.functional import cross_entropy

    kept = logits_at(logits, positions)
    targets = targets_at(labels, positions).to(kept.device)
    summed = cross_entropy(
        kept.reshape(-1, kept.shape[-1]).float(),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    return per_trained_token(summed, targets, num_items_in_batch)


def per_trained_token(summed: Any, targets: Any, num_items_in_batch: Any = None) -> Any:
    """A summed token loss as the mean over the trained tokens of ``targets`` (not ``-100``), or divided
    by ``num_items_in_batch`` when the Trainer accumulates gradients over several batches (the count of
    trained tokens in all of them, so every token weighs the same whatever batch it fell in)."""
    import torch

    if num_items_in_batch is not None:
        return summed / torch.as_tensor(num_items_in_batch, device=summed.device).clamp(min=1)
    return summed / (targets != IGNORE_INDEX).sum().clamp(min=1)


def label_logits_trainer(trainer_class: Any) -> Any:
    """A subclass of ``trainer_class`` (the Hugging Face Trainer) whose forward pass computes logits at
    the trained positions only (:func:`loss_positions`), with the loss from :meth:`loss_from_logits`.

    The loss goes through the Trainer's ``compute_loss_func`` hook, so gradient accumulation is
    normalised by the number of trained tokens as for the model's own loss. Subclasses change
    :meth:`loss_from_logits` (the scope-masked loss does).
    """

    class LabelLogitsTrainer(trainer_class):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, compute_loss_func=self._loss_at_positions, **kwargs)
            self._positions: Any = None
            self._keeps_logits: bool | None = None

        def compute_loss(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            if self._keeps_logits is None:
                self._keeps_logits = accepts_logits_to_keep(self.accelerator.unwrap_model(model))
            self._positions = loss_positions(inputs["labels"])
            if self._keeps_logits:
                inputs = {**inputs, "logits_to_keep": self._positions}
            try:
                return super().compute_loss(model, inputs, *args, **kwargs)
            finally:
                self._positions = None

        def _loss_at_positions(self, outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
            if self._positions is None:
                raise RuntimeError("the loss was asked for outside compute_loss")
            return self.loss_from_logits(outputs.logits, labels, self._positions, num_items_in_batch)

        def loss_from_logits(self, logits: Any, labels: Any, positions: Any, num_items_in_batch: Any) -> Any:
            return causal_loss_at(logits, labels, positions, num_items_in_batch)

    return LabelLogitsTrainer
