"""Supervised fine-tuning of a causal LM on the gen tasks: LoRA (default) or full, assistant tokens only.

- Every example is rendered with the base model's chat template and labelled by :mod:`recai.gen.chat`
  (loss on assistant turns only, end-of-turn included). Examples longer than ``max_length`` are dropped
  and counted rather than cut, so no label is ever separated from its prompt.
- The item-span tokens are added to the tokenizer; with LoRA their embedding rows (and LM-head rows when
  the head is not tied) are trained through PEFT's trainable tokens, so the adapter stays small.
- Batches are padded to their longest row (dynamic padding). Training runs on the Hugging Face Trainer:
  seeded, with progress, checkpoints in ``OUTPUT.work/`` that a rerun with the same data and config
  resumes from, and ``accelerate launch`` for several GPUs.
- The result is written atomically: the adapter (or full model), the tokenizer and ``recai_gen.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from recai.data.atomic import atomic_directory
from recai.data.checkpoints import prepare_work_folder
from recai.gen.chat import IGNORE_INDEX, Encoded, TemplateError, encode_chat
from recai.gen.examples import GenData, GenExample
from recai.gen.items import DEFAULT_FORMAT, add_item_tokens
from recai.gen.label_logits import label_logits_trainer
from recai.gen.models import GEN_FILE, resolve_base
from recai.gen.scope_loss import collate_scopes, scope_loss_trainer, scope_of
from recai.gen.trie import ItemTrie
from recai.llm.devices import cpu_has_fast_bf16

WORK_SUFFIX = ".work"


@dataclass(frozen=True)
class SFTConfig:
    """What a training run depends on; stored with the model and checked when a run resumes."""

    base_model: str = "qwen2.5-0.5b-instruct"
    method: Literal["lora", "full"] = "lora"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] | None = None  # None: every linear layer of the transformer blocks
    epochs: float = 1.0
    max_steps: int = -1  # overrides epochs when positive
    batch_size: int = 4
    grad_accum: int = 1
    learning_rate: float = 2e-4
    warmup: float = 0.03  # share of the steps
    weight_decay: float = 0.0
    max_length: int = 1024
    tasks: tuple[str, ...] | None = None  # None: every task in the data
    seed: int = 0
    save_steps: int = 200
    save_total_limit: int = 2
    logging_steps: int = 10
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 on a GPU that has it, else fp32
    gradient_checkpointing: bool = False
    device: str | None = None  # None: CUDA when present, else CPU
    scope_loss: bool = False  # inside item spans, softmax over the catalog's valid continuations only
    group_by_length: bool = True  # batches of similar lengths (less padding), order seeded

    def __post_init__(self) -> None:
        checks = {
            "method": self.method in ("lora", "full"),
            "lora_r": self.lora_r >= 1,
            "batch_size": self.batch_size >= 1,
            "grad_accum": self.grad_accum >= 1,
            "learning_rate": self.learning_rate > 0,
            "epochs": self.epochs > 0 or self.max_steps > 0,
            "warmup": 0 <= self.warmup < 1,
            "max_length": self.max_length >= 16,
            "save_steps": self.save_steps >= 1,
            "precision": self.precision in ("auto", "fp32", "bf16", "fp16"),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"SFTConfig.{name}: invalid value {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("tasks", "target_modules"):
            data[key] = list(data[key]) if data[key] is not None else None
        return data


@dataclass
class SFTResult:
    """Where the model went and what the run did."""

    model_dir: Path
    steps: int
    seconds: float
    examples: int
    resumed_from: str | None
    summary: dict[str, Any] = field(default_factory=dict)


def data_fingerprint(examples: Sequence[GenExample]) -> str:
    digest = hashlib.sha256()
    for e in examples:
        digest.update(json.dumps(e.to_dict(), sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def encode_examples(
    examples: Sequence[GenExample], tokenizer: Any, *, max_length: int
) -> tuple[list[Encoded], dict[str, int]]:
    """Tokenised examples that fit ``max_length`` and train on at least one token, and what was dropped."""
    kept: list[Encoded] = []
    dropped = {"too_long": 0, "no_answer_tokens": 0}
    for example in examples:
        try:
            encoded = encode_chat(tokenizer, example.messages)
        except TemplateError as exc:
            raise TemplateError(f"example {example.id}: {exc}") from None
        if len(encoded) > max_length:
            dropped["too_long"] += 1
        elif encoded.assistant_tokens == 0:
            dropped["no_answer_tokens"] += 1
        else:
            kept.append(encoded)
    return kept, dropped


class PadCollator:
    """Pads a batch to its longest row (right side): ids with the pad token, labels with -100.

    Counts the tokens it has batched (padding excluded), for the tokens-per-second record.
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
        batch = {"input_ids": ids, "labels": labels, "attention_mask": mask}
        if "scope" in rows[0]:
            batch.update(collate_scopes([r["scope"] for r in rows]))
        return batch


def selected_examples(data: GenData, config: SFTConfig) -> list[GenExample]:
    """The training examples ``config`` trains on (``config.tasks`` of them, or all)."""
    return [e for e in data.train if config.tasks is None or e.task in config.tasks]


def finished_sft(output: str | Path, config: SFTConfig, data: GenData) -> dict[str, Any] | None:
    """The ``recai_gen.json`` summary of a finished :func:`train_sft` in ``output`` on the same config and
    examples, else None: a caller that reruns a pipeline reuses it instead of training again."""
    info_path = Path(output) / "recai_gen.json"
    if not info_path.exists():
        return None
    info = json.loads(info_path.read_text(encoding="utf-8"))
    same_config = info.get("config") == json.loads(json.dumps(config.to_dict(), default=str))
    fingerprint = data_fingerprint(selected_examples(data, config))
    same_data = (info.get("data") or {}).get("fingerprint") == fingerprint
    return info if same_config and same_data and "training" in info else None


def resolve_precision(precision: str, device: str | None) -> str:
    """``auto``: bf16 on a GPU that has it, else fp32; anything else as given (bf16 on a CPU without
    bf16 instructions with a warning: it runs, but far slower than fp32). Unlike inference
    (:func:`recai.llm.devices.default_dtype`), training stays fp32 on every CPU unless asked: bf16
    training changes the numbers, so it is opt-in where a GPU is not the reason."""
    import torch

    on_gpu = device != "cpu" and torch.cuda.is_available()
    if precision == "bf16" and not on_gpu and not cpu_has_fast_bf16():
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


def _lora_model(model: Any, config: SFTConfig, token_ids: list[int]) -> Any:
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
        trainable_token_indices=trainable if token_ids else None,  # none: the vocabulary rows stay frozen
    )
    return get_peft_model(model, lora)


def train_sft(
    data: GenData | str | Path,
    output: str | Path,
    config: SFTConfig | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
    catalog_names: Sequence[str] | None = None,
) -> SFTResult:
    """Fine-tune ``config.base_model`` on ``data.train`` and write the result to ``output``.

    The base model is a local model folder, or a known GGUF model converted once. Checkpoints go to
    ``OUTPUT.work/``: a rerun with the same data and config resumes from the latest one, a rerun with
    different ones is refused. ``callbacks`` are Hugging Face ``TrainerCallback`` objects.
    ``catalog_names`` (:class:`~recai.gen.items.ItemNames` ``.names``, the names the decoder is constrained
    to) are required with ``config.scope_loss``.
    """
    config = config or SFTConfig()
    split = data if isinstance(data, GenData) else GenData.load(data)
    output = Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} already exists (pass overwrite=True to replace it)")
    examples = selected_examples(split, config)
    if config.tasks is not None:
        unknown = sorted(set(config.tasks) - {e.task for e in split.train})
        if unknown:
            raise ValueError(f"SFTConfig.tasks: no training examples for {unknown}")
    if not examples:
        raise ValueError("no training examples")
    scope_names = list(catalog_names or []) if config.scope_loss else []
    if config.scope_loss and not scope_names:
        raise ValueError("SFTConfig.scope_loss needs catalog_names (the catalog's item names)")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from accelerate import PartialState
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments, set_seed

    work = output.with_name(output.name + WORK_SUFFIX)
    identity = {"config": config.to_dict(), "data": data_fingerprint(examples), "examples": len(examples)}
    if scope_names:
        identity["catalog"] = hashlib.sha256("\n".join(scope_names).encode()).hexdigest()[:16]
    state = PartialState()
    with state.main_process_first():
        resume_from = prepare_work_folder(work, identity)

    set_seed(config.seed)
    precision = resolve_precision(config.precision, config.device)
    base_path = resolve_base(config.base_model, progress=progress)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    # LoRA keeps the frozen base in bf16 when training in bf16 (PEFT holds the adapter in fp32);
    # full fine-tuning keeps fp32 master weights under bf16 autocast.
    load_dtype = torch.bfloat16 if precision == "bf16" and config.method == "lora" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=load_dtype)
    start_id, end_id = add_item_tokens(tokenizer, model, DEFAULT_FORMAT)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    encoded, dropped = encode_examples(examples, tokenizer, max_length=config.max_length)
    if not encoded:
        raise ValueError(f"every training example was dropped ({dropped}); raise max_length")
    if config.method == "lora":
        model = _lora_model(model, config, [start_id, end_id])
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        if config.method == "lora":
            model.enable_input_require_grads()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    args = TrainingArguments(
        output_dir=str(work),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup,
        weight_decay=config.weight_decay,
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
        use_cpu=config.device == "cpu" or not torch.cuda.is_available(),
        dataloader_pin_memory=torch.cuda.is_available() and config.device != "cpu",
        remove_unused_columns=False,
        **sampling_arguments(config),
    )
    collator = PadCollator(int(tokenizer.pad_token_id))
    rows: list[dict[str, Any]] = [{"input_ids": e.input_ids, "labels": e.labels} for e in encoded]
    trainer_class: Any = label_logits_trainer(Trainer)
    scope_summary = None
    if scope_names:
        trie = ItemTrie.from_names(scope_names, tokenizer, DEFAULT_FORMAT)
        for row in rows:
            row["scope"] = scope_of(row["input_ids"], row["labels"], trie, start_id, end_id)
        scoped = sum(len(row["scope"]) for row in rows)
        if scoped == 0:
            raise ValueError("scope_loss: no trained token lies inside a catalog item span")
        scope_summary = {"catalog_items": len(trie), "scoped_tokens": scoped}
        trainer_class = scope_loss_trainer(Trainer)
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=rows,
        data_collator=collator,
        callbacks=list(callbacks) or None,
    )
    started = time.perf_counter()
    outcome = trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.perf_counter() - started
    history = trainer.state.log_history
    summary = {
        "base_model": config.base_model,
        "base_model_path": str(base_path.resolve()),
        "method": config.method,
        "config": config.to_dict(),
        "span": {"start": DEFAULT_FORMAT.start, "end": DEFAULT_FORMAT.end, "ids": [start_id, end_id]},
        "data": {
            "fingerprint": identity["data"],
            "meta": {
                k: split.meta.get(k) for k in ("dataset", "seed", "tasks", "k", "category", "noun", "teacher")
            },
            "examples": len(examples),
            "encoded": len(encoded),
            "dropped": dropped,
            "tokens": sum(len(e) for e in encoded),
            "assistant_tokens": sum(e.assistant_tokens for e in encoded),
            "scope_loss": scope_summary,
        },
        "training": {
            "steps": int(trainer.state.global_step),
            "seconds_this_run": round(seconds, 2),
            "tokens_this_run": collator.tokens,
            "tokens_per_second": round(collator.tokens / seconds, 1) if seconds > 0 else None,
            "resumed_from": Path(resume_from).name if resume_from else None,
            "train_loss": float(outcome.training_loss),
            "loss_curve": [
                {"step": h["step"], "loss": round(float(h["loss"]), 4)} for h in history if "loss" in h
            ],
            "trainable_parameters": trainable,
            "parameters": total,
            "precision": precision,
            "device": str(next(model.parameters()).device),
            "processes": state.num_processes,
        },
    }
    if trainer.is_world_process_zero():
        with atomic_directory(output, overwrite=overwrite) as tmp:
            if config.method == "lora":
                # The span tokens' rows are in the adapter (trainable tokens); the resized embedding
                # matrix itself need not be copied into it.
                trainer.model.save_pretrained(str(tmp), save_embedding_layers=False)
            else:
                trainer.model.save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
            (tmp / GEN_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        shutil.rmtree(work, ignore_errors=True)
    state.wait_for_everyone()
    return SFTResult(output, summary["training"]["steps"], seconds, len(encoded), resume_from, summary)
