"""Supervised fine-tuning of a causal LM on chats: the recipe gen's recommender, explain's explainer and
the agent's distilled planner share.

:class:`SFTConfig` is what a run depends on. The base model is loaded in the precision the run trains in
(:func:`load_base_lm`), adapted with LoRA (or trained in full) by :func:`prepare_lm`, fed chats encoded
with loss on the assistant's tokens only (:func:`recai.train.chat.encode_chat`; :func:`drop_reason` says
which examples are left out), and trained by the Hugging Face ``Trainer`` with :func:`sft_arguments`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from recai.train.arguments import TrainingConfig, resolve_precision, trainer_arguments
from recai.train.chat import Encoded
from recai.train.models import resolve_base


@dataclass(frozen=True, kw_only=True)
class SFTConfig(TrainingConfig):
    """What a supervised fine-tuning run depends on: the schedule every trainer has
    (:class:`~recai.train.arguments.TrainingConfig`: tasks, steps, batch size, learning rate, seed,
    checkpoints, precision, device) and the LM recipe below.

    Attributes:
        base_model: A causal-LM folder or a known GGUF model (converted once).
        method: ``lora`` (an adapter on the frozen base) or ``full`` (every weight).
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling numerator (the update is scaled by ``lora_alpha / lora_r``).
        lora_dropout: Dropout on the LoRA branch.
        target_modules: Module names LoRA adapts; None: every linear layer of the transformer blocks.
        epochs: Passes over the training examples (``max_steps``, when positive, overrides them).
        grad_accum: Gradient accumulation steps.
        warmup: Warm-up, as a share of the steps.
        weight_decay: AdamW weight decay.
        max_length: Longest example in tokens; longer ones are dropped, never cut.
        gradient_checkpointing: Recompute activations in the backward pass (less memory, more compute).
        scope_loss: Inside item spans, softmax over the catalog's valid continuations only (gen).
        group_by_length: Batches of similar lengths (less padding), their order seeded.
        token_lr_scale: Added tokens' embedding rows (the item-span markers) learn at ``learning_rate``
            times this (:mod:`recai.train.token_rows`): at the adapter's rate they barely move in a
            short run, and the model never emits them. LoRA only; ``full`` trains every row alike.
    """

    base_model: str = "qwen2.5-0.5b-instruct"
    method: Literal["lora", "full"] = "lora"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] | None = None
    epochs: float = 1.0
    batch_size: int = 4
    grad_accum: int = 1
    learning_rate: float = 2e-4
    warmup: float = 0.03
    weight_decay: float = 0.0
    max_length: int = 1024
    save_steps: int = 200
    gradient_checkpointing: bool = False
    scope_loss: bool = False
    group_by_length: bool = True
    token_lr_scale: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.refuse_invalid(
            {
                "method": self.method in ("lora", "full"),
                "lora_r": self.lora_r >= 1,
                "grad_accum": self.grad_accum >= 1,
                "epochs": self.epochs > 0 or self.max_steps > 0,
                "warmup": 0 <= self.warmup < 1,
                "max_length": self.max_length >= 16,
                "token_lr_scale": self.token_lr_scale > 0,
            }
        )


@dataclass
class BaseLM:
    """A base causal LM loaded for fine-tuning.

    Attributes:
        path: The folder it was loaded from (a converted copy for a known GGUF model).
        tokenizer: Its tokenizer, with a pad token (the end-of-sequence one when it had none).
        model: The model, in bf16 for LoRA in bf16 (PEFT keeps the adapter in fp32), else in fp32
            (full fine-tuning keeps fp32 master weights under bf16 autocast).
        precision: The precision the run trains in (:func:`~recai.train.arguments.resolve_precision`).
    """

    path: Path
    tokenizer: Any
    model: Any
    precision: str


def load_base_lm(config: SFTConfig, *, progress: bool = True) -> BaseLM:
    """Seed the run, then load ``config.base_model`` and its tokenizer for training."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    set_seed(config.seed)
    precision = resolve_precision(config.precision, config.device)
    path = resolve_base(config.base_model, progress=progress)
    tokenizer = AutoTokenizer.from_pretrained(path)
    dtype = torch.bfloat16 if precision == "bf16" and config.method == "lora" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return BaseLM(path, tokenizer, model, precision)


def lora_model(model: Any, config: SFTConfig, token_ids: list[int]) -> Any:
    """``model`` with a LoRA adapter; the embedding rows (and untied LM-head rows) of ``token_ids`` are
    trained too through PEFT's trainable tokens, so new special tokens learn while the adapter stays
    small. No ``token_ids``: the vocabulary stays frozen."""
    from peft import LoraConfig, get_peft_model

    embed = model.get_input_embeddings()
    names = {module: name for name, module in model.named_modules()}
    trainable: dict[str, list[int]] = {names[embed].rsplit(".", 1)[-1]: token_ids}
    head = model.get_output_embeddings()
    tied = head is not None and head.weight.data_ptr() == embed.weight.data_ptr()
    if head is not None and not tied:
        trainable[names[head].rsplit(".", 1)[-1]] = token_ids
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules) if config.target_modules else "all-linear",
        trainable_token_indices=trainable if token_ids else None,
    )
    return get_peft_model(model, lora)


def prepare_lm(model: Any, config: SFTConfig, token_ids: list[int]) -> Any:
    """The model as ``config.method`` trains it (LoRA via :func:`lora_model`, or in full), with gradient
    checkpointing when asked."""
    if config.method == "lora":
        model = lora_model(model, config, token_ids)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        if config.method == "lora":
            model.enable_input_require_grads()  # the frozen embeddings' outputs need grads for checkpointing
    return model


def drop_reason(encoded: Encoded, max_length: int) -> str | None:
    """Why an encoded example is left out of training (``too_long``, ``no_answer_tokens``), or None."""
    if len(encoded) > max_length:
        return "too_long"
    if encoded.assistant_tokens == 0:
        return "no_answer_tokens"
    return None


def sampling_strategy(config: SFTConfig) -> str:
    """The Trainer's ``train_sampling_strategy``: length-grouped batches (within a seeded shuffle, in
    megabatches of up to 50 batches) waste far less compute on padding than random ones when prompts vary
    in length, as recommendation prompts do."""
    return "group_by_length" if config.group_by_length else "random"


def sampling_arguments(config: SFTConfig) -> dict[str, Any]:
    """The ``TrainingArguments`` keyword for :func:`sampling_strategy` in the installed transformers:
    ``train_sampling_strategy`` since the sampler unification in 5.x, ``group_by_length`` before it."""
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    if "train_sampling_strategy" in fields:
        return {"train_sampling_strategy": sampling_strategy(config)}
    return {"group_by_length": config.group_by_length} if "group_by_length" in fields else {}


def sft_arguments(config: SFTConfig, output_dir: Path, *, precision: str, progress: bool) -> Any:
    """The Hugging Face ``TrainingArguments`` of an SFT run (:func:`~recai.train.arguments.trainer_arguments`
    with length-grouped batches, keeping the extra columns the collators read)."""
    from transformers import TrainingArguments

    return trainer_arguments(
        TrainingArguments,
        config,
        output_dir=output_dir,
        precision=precision,
        progress=progress,
        remove_unused_columns=False,
        **sampling_arguments(config),
    )
