"""What an embedder training run depends on (:class:`TrainConfig`), apart from the trainer that runs it.

A light module (dataclasses only), so ``recai embed train --help`` reads the defaults without importing
the catalog, numpy or sentence-transformers; :mod:`recai.embed.training` trains from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from recai.train.arguments import Precision, TrainingConfig

LossName = Literal["mnrl", "cached-mnrl"]


@dataclass(frozen=True, kw_only=True)
class TrainConfig(TrainingConfig):
    """What an embedder training run depends on: the schedule every trainer has
    (:class:`~recai.train.arguments.TrainingConfig`: tasks, steps, batch size, learning rate, seed,
    checkpoints, precision, device) and the contrastive recipe below.

    Attributes:
        base_model: An encoder spec: a sentence-transformers model name or folder (``st:`` optional),
            ``decoder:NAME_OR_PATH`` for a causal LM, with ``?prefixes=``/``?query=``/``?item=`` and
            (decoder) ``?pooling=`` options.
        epochs: Passes over the training rows (``max_steps``, when positive, overrides them).
        batch_size: Rows per batch (the in-batch negatives); at least 2.
        warmup_ratio: Warm-up, as a share of the steps.
        weight_decay: AdamW weight decay.
        scale: 1 / temperature of the softmax over in-batch candidates.
        hard_negatives: Hard negatives per row, taken closest first from the example's negatives.
        loss: ``mnrl`` (in-batch InfoNCE, masking false negatives) or ``cached-mnrl`` (GradCache).
        mask_false_negatives: mnrl only: other rows' items that answer a query are not its negatives.
        mini_batch_size: cached-mnrl only: rows per forward pass.
        max_seq_length: Longest input in tokens; None: the base model's own.
        item_max_chars: Item text length, as the catalog index renders items, so training matches
            retrieval.
        lora_r: LoRA rank; 0 trains every weight. The adapter is merged into the saved weights.
        lora_alpha: LoRA scaling numerator (the update is scaled by ``lora_alpha / lora_r``).
        lora_dropout: Dropout on the LoRA branch.
    """

    base_model: str = "all-minilm-l6-v2"
    epochs: float = 1.0
    batch_size: int = 64
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    scale: float = 20.0
    hard_negatives: int = 1
    loss: LossName = "mnrl"
    mask_false_negatives: bool = True
    mini_batch_size: int = 32
    max_seq_length: int | None = None
    item_max_chars: int = 512
    save_steps: int = 100
    precision: Precision = "fp32"
    lora_r: int = 0
    lora_alpha: int = 16
    lora_dropout: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        self.refuse_invalid(
            {
                "batch_size": self.batch_size >= 2,
                "scale": self.scale > 0,
                "hard_negatives": self.hard_negatives >= 0,
                "epochs": self.epochs > 0 or self.max_steps > 0,
                "warmup_ratio": 0 <= self.warmup_ratio < 1,
                "mini_batch_size": self.mini_batch_size >= 1,
                "item_max_chars": self.item_max_chars >= 16,
                "lora_r": self.lora_r >= 0,
                "lora_alpha": self.lora_alpha > 0,
                "lora_dropout": 0 <= self.lora_dropout < 1,
            }
        )
        if self.loss not in ("mnrl", "cached-mnrl"):
            raise ValueError(f"TrainConfig.loss: expected 'mnrl' or 'cached-mnrl', got {self.loss!r}")
        if self.loss == "cached-mnrl" and self.mask_false_negatives:
            raise ValueError(
                "TrainConfig.mask_false_negatives: the cached loss cannot mask false negatives; "
                "pass mask_false_negatives=False with loss='cached-mnrl'"
            )
