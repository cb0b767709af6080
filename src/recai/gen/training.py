"""Supervised fine-tuning of a causal LM on the gen tasks: LoRA (default) or full, assistant tokens only.

- Every example is rendered with the base model's chat template and labelled by :mod:`recai.train.chat`
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recai.data.atomic import atomic_directory
from recai.gen.examples import GenData, GenExample
from recai.gen.items import DEFAULT_FORMAT, add_item_tokens
from recai.gen.models import GEN_FILE
from recai.gen.scope_loss import ScopeCollator, scope_loss_trainer, scope_of
from recai.gen.trie import ItemTrie
from recai.train.chat import Encoded, TemplateError, encode_chat
from recai.train.collate import PadCollator
from recai.train.label_logits import label_logits_trainer
from recai.train.sft import SFTConfig, drop_reason, load_base_lm, prepare_lm, sft_arguments
from recai.train.token_rows import token_rate_trainer
from recai.train.work import TrainingResult, WorkFolder, examples_fingerprint, refuse_existing


@dataclass
class SFTResult(TrainingResult):
    """What :func:`train_sft` did (see :class:`~recai.train.work.TrainingResult`), and the
    examples it trained on.

    Attributes:
        examples: Training examples encoded (after drops).
    """

    examples: int


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
        reason = drop_reason(encoded, max_length)
        if reason is None:
            kept.append(encoded)
        else:
            dropped[reason] += 1
    return kept, dropped


def finished_sft(output: str | Path, config: SFTConfig, data: GenData) -> dict[str, Any] | None:
    """The ``recai_gen.json`` summary of a finished :func:`train_sft` in ``output`` on the same config and
    examples, else None: a caller that reruns a pipeline reuses it instead of training again."""
    info_path = Path(output) / "recai_gen.json"
    if not info_path.exists():
        return None
    info = json.loads(info_path.read_text(encoding="utf-8"))
    same_config = info.get("config") == json.loads(json.dumps(config.to_dict(), default=str))
    fingerprint = examples_fingerprint(config.selected_examples(data.train))
    same_data = (info.get("data") or {}).get("fingerprint") == fingerprint
    return info if same_config and same_data and "training" in info else None


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
    output = refuse_existing(output, overwrite)
    examples = config.selected_examples(split.train)
    if not examples:
        raise ValueError("no training examples")
    scope_names = list(catalog_names or []) if config.scope_loss else []
    if config.scope_loss and not scope_names:
        raise ValueError("SFTConfig.scope_loss needs catalog_names (the catalog's item names)")

    identity = {"config": config.to_dict(), "data": examples_fingerprint(examples), "examples": len(examples)}
    if scope_names:
        identity["catalog"] = hashlib.sha256("\n".join(scope_names).encode()).hexdigest()[:16]
    work = WorkFolder.open(output, identity)
    base = load_base_lm(config, progress=progress)
    tokenizer, model = base.tokenizer, base.model
    start_id, end_id = add_item_tokens(tokenizer, model, DEFAULT_FORMAT)
    encoded, dropped = encode_examples(examples, tokenizer, max_length=config.max_length)
    if not encoded:
        raise ValueError(f"every training example was dropped ({dropped}); raise max_length")
    model = prepare_lm(model, config, [start_id, end_id])
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    from transformers import Trainer

    args = sft_arguments(config, work.path, precision=base.precision, progress=progress)
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
    trainer_class = token_rate_trainer(trainer_class, config.token_lr_scale)
    collator = (ScopeCollator if scope_names else PadCollator)(int(tokenizer.pad_token_id))
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=rows,
        data_collator=collator,
        callbacks=list(callbacks) or None,
    )
    record, seconds = work.run(trainer)
    summary = {
        "base_model": config.base_model,
        "base_model_path": str(base.path.resolve()),
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
            **record,
            "tokens_this_run": collator.tokens,
            "tokens_per_second": round(collator.tokens / seconds, 1) if seconds > 0 else None,
            "trainable_parameters": trainable,
            "parameters": total,
            "precision": base.precision,
            "device": str(next(model.parameters()).device),
        },
    }

    def save() -> None:
        with atomic_directory(output, overwrite=overwrite) as tmp:
            if config.method == "lora":
                # The span tokens' rows are in the adapter (trainable tokens); the resized embedding
                # matrix itself need not be copied into it.
                trainer.model.save_pretrained(str(tmp), save_embedding_layers=False)
            else:
                trainer.model.save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
            (tmp / GEN_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")

    work.finish(trainer, save)
    return SFTResult(output, record["steps"], seconds, work.resume_from, summary, examples=len(encoded))
