"""The trainer arguments every recai trainer shares, built from its config in one place.

Hugging Face's ``TrainingArguments``, TRL's ``GRPOConfig`` and sentence-transformers'
``SentenceTransformerTrainingArguments`` take the same core keywords. :func:`trainer_arguments` fills
them from any config that has the fields of :class:`TrainingConfig` (learning rate, batch size, steps,
seed, checkpoint and logging cadence, device) plus, where the config has them, epochs, gradient
accumulation, warm-up and weight decay; what only one trainer knows (GRPO's group size, a batch sampler)
is passed by that trainer as extra keywords.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol, TypeVar

Arguments = TypeVar("Arguments")

#: Config fields that not every trainer has, and the trainer keyword each one sets.
OPTIONAL_FIELDS = {
    "epochs": "num_train_epochs",
    "grad_accum": "gradient_accumulation_steps",
    "warmup": "warmup_steps",  # below 1: a share of the steps
    "warmup_ratio": "warmup_ratio",
    "weight_decay": "weight_decay",
}


class TrainingConfig(Protocol):
    """The fields every recai training config has (``SFTConfig``, ``RLConfig``, the embedder's
    ``TrainConfig``).

    Attributes:
        learning_rate: Peak learning rate.
        batch_size: Examples (or completions) per device and step.
        max_steps: Stop after this many optimiser steps (overrides epochs when positive).
        seed: Seeds the model's initialisation and the order of the data.
        save_steps: A checkpoint every this many steps.
        save_total_limit: Checkpoints kept in the work folder.
        logging_steps: A loss record every this many steps.
        device: ``cpu`` forces the CPU; None: CUDA when present, else CPU.
    """

    learning_rate: float
    batch_size: int
    max_steps: int
    seed: int
    save_steps: int
    save_total_limit: int
    logging_steps: int
    device: str | None


def config_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as the JSON-ready dict stored with a model and in its work folder's marker:
    its fields (nested configs as dicts), tuples as lists."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def resolve_precision(precision: str, device: str | None) -> str:
    """``auto``: bf16 on a GPU that has it, else fp32; anything else as given (bf16 on a CPU without
    bf16 instructions with a warning: it runs, but far slower than fp32). Unlike inference
    (:func:`recai.llm.devices.default_dtype`), training stays fp32 on every CPU unless asked: bf16
    training changes the numbers, so it is opt-in where a GPU is not the reason."""
    import torch

    from recai.llm import devices

    on_gpu = device != "cpu" and torch.cuda.is_available()
    if precision == "bf16" and not on_gpu and not devices.cpu_has_fast_bf16():
        warnings.warn(
            "precision bf16 on a CPU without bf16 instructions (no AVX512-BF16 or AMX-BF16): "
            "its matrix products are emulated and can be tens of times slower than fp32; "
            "use precision fp32 (or auto) here",
            RuntimeWarning,
            stacklevel=2,
        )
    if precision != "auto":
        return precision
    return "bf16" if on_gpu and torch.cuda.is_bf16_supported() else "fp32"


def trainer_arguments(
    arguments_class: type[Arguments],
    config: TrainingConfig,
    *,
    output_dir: Path,
    precision: str,
    progress: bool,
    **specific: Any,
) -> Arguments:
    """``arguments_class(...)`` for a run of ``config``: seeded (model and data order), checkpoints in
    ``output_dir`` every ``save_steps``, no reporting to trackers, mixed precision as ``precision`` (see
    :func:`resolve_precision`), the CPU when asked or when there is no CUDA device. ``specific`` adds or
    overrides keywords for one trainer."""
    import torch

    on_cpu = config.device == "cpu" or not torch.cuda.is_available()
    optional = {key: getattr(config, name) for name, key in OPTIONAL_FIELDS.items() if hasattr(config, name)}
    return arguments_class(
        output_dir=str(output_dir),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed,
        data_seed=config.seed,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        logging_steps=config.logging_steps,
        report_to="none",
        disable_tqdm=not progress,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=on_cpu,
        dataloader_pin_memory=not on_cpu,
        **{**optional, **specific},
    )
