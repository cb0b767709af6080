"""The trainer arguments every recai trainer shares, built from its config in one place.

Hugging Face's ``TrainingArguments``, TRL's ``GRPOConfig`` and sentence-transformers'
``SentenceTransformerTrainingArguments`` take the same core keywords. :func:`trainer_arguments` fills
them from any :class:`TrainingConfig` (learning rate, batch size, steps, seed, checkpoint and logging
cadence, device) plus, where the config has them, the fields in :data:`OPTIONAL_FIELDS` (epochs,
gradient accumulation, warm-up, weight decay, GRPO's group size and sampling); what a trainer needs that
is no config field (a batch sampler) it passes as extra keywords.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from recai.train.example_sets import ExampleRecord

Arguments = TypeVar("Arguments")
Example = TypeVar("Example", bound=ExampleRecord)

#: Config fields that not every trainer has, and the trainer keyword each one sets.
OPTIONAL_FIELDS = {
    "epochs": "num_train_epochs",
    "grad_accum": "gradient_accumulation_steps",
    "warmup": "warmup_steps",  # below 1: a share of the steps
    "warmup_ratio": "warmup_ratio",
    "weight_decay": "weight_decay",
    "num_generations": "num_generations",  # GRPO's group of replies per prompt
    "max_completion_length": "max_completion_length",
    "temperature": "temperature",
    "beta": "beta",  # GRPO's KL penalty
}


#: The precisions a run can train in; ``auto``: bf16 on a GPU that has it, else fp32.
Precision = Literal["auto", "fp32", "bf16", "fp16"]


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """The fields every recai training config has (:class:`~recai.train.sft.SFTConfig`,
    :class:`~recai.gen.rl.RLConfig`, the embedder's :class:`~recai.embed.training.TrainConfig`), so
    that they are named, checked and stored one way and :func:`trainer_arguments` can read any of them.

    A subclass adds its own fields and states its own schedule: the fields without a default here
    (batch size, learning rate, checkpoint cadence) differ between recipes, so each config declares them
    again with its defaults. A config is stored with the model and in its work folder's marker
    (:meth:`to_dict`), which a resumed run must match.

    Attributes:
        tasks: The tasks trained on; None: every task in the training data.
        max_steps: Stop after this many optimiser steps (overrides epochs when positive).
        batch_size: Examples (or completions) per device and step.
        learning_rate: Peak learning rate.
        seed: Seeds the model's initialisation and the order of the data.
        save_steps: A checkpoint every this many steps.
        save_total_limit: Checkpoints kept in the work folder.
        logging_steps: A loss record every this many steps.
        precision: ``auto`` (bf16 on a GPU that has it, else fp32), ``fp32``, ``bf16`` or ``fp16``
            (see :func:`resolve_precision`).
        device: ``cpu`` forces the CPU; None: CUDA when present, else CPU.
    """

    tasks: tuple[str, ...] | None = None
    max_steps: int = -1
    batch_size: int
    learning_rate: float
    seed: int = 0
    save_steps: int
    save_total_limit: int = 2
    logging_steps: int = 10
    precision: Precision = "auto"
    device: str | None = None

    def __post_init__(self) -> None:
        self.refuse_invalid(
            {
                "batch_size": self.batch_size >= 1,
                "learning_rate": self.learning_rate > 0,
                "save_steps": self.save_steps >= 1,
                "precision": self.precision in get_args(Precision),
            }
        )

    def refuse_invalid(self, checks: Mapping[str, bool]) -> None:
        """Raise ``ValueError`` naming the first field whose check failed (``SFTConfig.lora_r: invalid
        value 0``); a subclass's ``__post_init__`` passes the checks of its own fields."""
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{type(self).__name__}.{name}: invalid value {getattr(self, name)!r}")

    def selected_examples(self, examples: Iterable[Example]) -> list[Example]:
        """The examples of :attr:`tasks` (all of them when None), in order; refuses a task named there
        that has no example, so a misspelt task does not quietly train on the others only."""
        examples = list(examples)
        if self.tasks is None:
            return examples
        unknown = sorted(set(self.tasks) - {e.task for e in examples})
        if unknown:
            raise ValueError(f"{type(self).__name__}.tasks: no training examples for {unknown}")
        return [e for e in examples if e.task in self.tasks]

    def to_dict(self) -> dict[str, Any]:
        """The config as the JSON-ready dict stored with a model and in its work folder's marker: its
        fields (nested configs as dicts), tuples as lists."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


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
