"""New special tokens' embedding rows learn at their own, higher learning rate.

A LoRA run that adds tokens (the item-span markers) trains their embedding rows through PEFT's trainable
tokens. Adam moves each weight by about the learning rate per step, so at a LoRA rate (2e-4) a row
crosses only a few percent of an embedding's scale in a short run, while the low-rank adapter, scaled by
``lora_alpha / r``, adapts far faster. The model then learns *where* a span begins but cannot emit the
marker: measured on SmolLM2-135M after 80 steps, the hidden state at a list position pointed at the
marker's input row, yet its tied output row still scored 9 nats below the best token, and not one of 300
replies held a span. The rows' own parameter group, at ``learning_rate * scale``, fixes that without
touching the adapter's rate; the scheduler scales both groups alike.
"""

from __future__ import annotations

from typing import Any

TOKEN_ROWS = "trainable_tokens_delta"  # PEFT's name for the trained rows of added tokens


def split_token_rows(optimizer: Any, model: Any, scale: float) -> int:
    """Move ``model``'s trainable token rows out of ``optimizer``'s groups into groups of their own at
    ``scale`` times the rate of the group they came from (weight decay and other settings kept).

    Returns how many tensors moved. Call before the first step: the moved tensors carry no state yet.
    """
    if scale == 1.0:
        return 0
    rows = {id(p) for name, p in model.named_parameters() if TOKEN_ROWS in name and p.requires_grad}
    if not rows:
        return 0
    kept_groups: list[dict[str, Any]] = []
    new_groups: list[dict[str, Any]] = []
    for group in optimizer.param_groups:
        moved = [p for p in group["params"] if id(p) in rows]
        group["params"] = [p for p in group["params"] if id(p) not in rows]
        if group["params"]:
            kept_groups.append(group)
        if moved:
            settings = {k: v for k, v in group.items() if k != "params"}
            new_groups.append({**settings, "params": moved, "lr": group["lr"] * scale})
    optimizer.param_groups = kept_groups
    for group in new_groups:
        optimizer.add_param_group(group)
    return sum(len(g["params"]) for g in new_groups)


def token_rate_trainer(trainer_class: Any, scale: float) -> Any:
    """``trainer_class`` whose optimizer trains added tokens' rows at ``scale`` times the learning rate
    (:func:`split_token_rows`). The groups are rebuilt the same way on resume, so a checkpoint's
    optimizer state loads into them."""

    class TokenRateTrainer(trainer_class):  # type: ignore[misc,valid-type]
        def create_optimizer(self, model: Any = None) -> Any:
            fresh = self.optimizer is None
            optimizer = super().create_optimizer(model) if model is not None else super().create_optimizer()
            if fresh:
                split_token_rows(optimizer, self.model if model is None else model, scale)
            return optimizer

    return TokenRateTrainer
