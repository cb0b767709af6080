"""Training an explainer in one of the three modes: LoRA on the LM, plus the projectors in intention and
hybrid modes. The target recommender and the LM's embedding matrix and head stay frozen.

Follows the shared SFT recipe (:mod:`recai.train.sft`): the same :class:`~recai.train.sft.SFTConfig`
for the LM side, loss on assistant tokens read off the chat template (:func:`recai.train.chat.encode_chat`),
examples longer than ``max_length`` dropped and counted, dynamic padding, the Hugging Face ``Trainer``
(seeded, progress, ``accelerate launch`` for several GPUs), checkpoints in ``OUTPUT.work/`` that a rerun
with the same data and config resumes from. Checkpoints hold only what training changes (LoRA and
projector weights), never the frozen base.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recai.data.atomic import atomic_directory
from recai.explain.config import ExplainConfig
from recai.explain.examples import CATALOG_DIR, ExplainData, ExplainExample, save_catalog
from recai.explain.model import (
    EXPLAIN_FILE,
    PROJECTORS_FILE,
    TARGET_DIR,
    ExplainerModel,
    add_placeholder_tokens,
    batch_vectors,
    projector_dims,
)
from recai.explain.render import Renderer, uses_embeddings
from recai.train.chat import encode_chat
from recai.train.collate import PadCollator
from recai.train.label_logits import label_logits_trainer
from recai.train.sft import drop_reason, load_base_lm, prepare_lm, sft_arguments
from recai.train.work import TrainingResult, WorkFolder, examples_fingerprint, refuse_existing

CHECKPOINT_FILE = "explainer_trainable.safetensors"


@dataclass
class ExplainResult(TrainingResult):
    """What :func:`train_explainer` did (see :class:`~recai.train.work.TrainingResult`), and the
    examples it trained on.

    Attributes:
        examples: Training examples encoded (after drops).
    """

    examples: int


class ExplainCollator(PadCollator):
    """Pads ids and labels (:class:`~recai.train.collate.PadCollator`) and adds the batch's user and item
    vectors in order.

    Args:
        pad_id: The token id padding rows are filled with.
        target: The target recommender whose vectors fill the placeholders.
        item_table: Its item vectors, one row per catalog item.
    """

    def __init__(self, pad_id: int, target: Any, item_table: np.ndarray) -> None:
        super().__init__(pad_id)
        self.target = target
        self.item_table = item_table

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super().__call__(rows)
        users, items = batch_vectors(self.target, [r["rendered"] for r in rows], self.item_table)
        if users is not None:
            batch["user_vectors"] = users
        if items is not None:
            batch["item_vectors"] = items
        return batch


def encode(
    examples: Sequence[ExplainExample],
    renderer: Renderer,
    tokenizer: Any,
    *,
    max_length: int,
    ids: tuple[int, int],
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Rendered, tokenised rows (loss on assistant tokens) and counts of what was dropped and why."""
    rows: list[dict[str, Any]] = []
    dropped = {"too_long": 0, "no_answer_tokens": 0, "not_in_mode": 0}
    for example in examples:
        if not renderer.applies(example):
            dropped["not_in_mode"] += 1
            continue
        rendered = renderer.render(example)
        encoded = encode_chat(tokenizer, rendered.messages)
        users = sum(1 for t in encoded.input_ids if t == ids[0])
        items = sum(1 for t in encoded.input_ids if t == ids[1])
        if (users, items) != (len(rendered.users), len(rendered.items)):
            raise ValueError(
                f"example {example.id}: the chat has {users} user and {items} item placeholders after "
                f"tokenisation, the example fills {len(rendered.users)} and {len(rendered.items)}"
            )
        reason = drop_reason(encoded, max_length)
        if reason is None:
            rows.append({"input_ids": encoded.input_ids, "labels": encoded.labels, "rendered": rendered})
        else:
            dropped[reason] += 1
    return rows, dropped


def fit_projector_scales(model: ExplainerModel, target: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Fit the projectors' input scaling: items on the whole catalog's vectors, users on the training
    examples' user vectors (each computed from its example's history, as in training)."""
    if model.item_proj is not None:
        model.item_proj.fit_scale(target.item_vectors())
    if model.user_proj is not None:
        users, _ = batch_vectors(target, [r["rendered"] for r in rows], target.item_vectors())
        if users is not None and users.shape[0] >= 2:
            model.user_proj.fit_scale(users)


def _trainer_class() -> type:
    """A Trainer whose checkpoints hold only the trainable weights (LoRA and projectors) and whose
    forward pass computes logits at the trained positions only."""
    from safetensors.torch import load_file, save_file
    from transformers import Trainer

    class ExplainTrainer(label_logits_trainer(Trainer)):  # type: ignore[misc]
        def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
            output_dir = output_dir or self.args.output_dir
            if not self.args.should_save:
                return
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            model = self.accelerator.unwrap_model(self.model)
            save_file(
                model.trainable_state(), str(Path(output_dir) / CHECKPOINT_FILE), metadata={"format": "pt"}
            )

        def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
            model = self.accelerator.unwrap_model(model or self.model)
            state = load_file(str(Path(resume_from_checkpoint) / CHECKPOINT_FILE))
            missing = sorted(set(model.trainable_state()) - set(state))
            if missing:
                raise ValueError(f"{resume_from_checkpoint} lacks trainable weights {missing[:3]}")
            model.load_state_dict(state, strict=False)

    return ExplainTrainer


def train_explainer(
    data: ExplainData | str | Path,
    output: str | Path,
    config: ExplainConfig | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
) -> ExplainResult:
    """Align ``config.sft.base_model`` to the data's target model in ``config.mode`` and save it.

    The result folder holds the LoRA adapter (no embedding matrix), the projectors, the tokenizer with
    the placeholder tokens, a copy of the target model and ``recai_explain.json``.
    """
    config = config or ExplainConfig()
    sft = config.sft
    split = data if isinstance(data, ExplainData) else ExplainData.load(data)
    output = refuse_existing(output, overwrite)
    if split.target is None:
        raise ValueError("the data has no target model")
    examples = sft.selected_examples(split.train)
    if not examples:
        raise ValueError("no training examples")

    target = split.target
    target.freeze()
    identity = {"config": config.to_dict(), "data": examples_fingerprint(examples), "examples": len(examples)}
    work = WorkFolder.open(output, identity)
    base = load_base_lm(sft, progress=progress)
    tokenizer = base.tokenizer
    ids = add_placeholder_tokens(tokenizer, base.model)
    if split.catalog is None:
        raise ValueError("the data has no catalog")
    renderer = Renderer(split.catalog, config.mode)
    rows, dropped = encode(examples, renderer, tokenizer, max_length=sft.max_length, ids=ids)
    if not rows:
        raise ValueError(f"every training example was dropped ({dropped})")
    lm = prepare_lm(base.model, sft, [])
    dims = projector_dims(target, config.mode, config.projector_hidden)
    model = ExplainerModel(
        lm,
        user_token_id=ids[0],
        item_token_id=ids[1],
        user_dim=dims["user"],
        item_dim=dims["item"],
        projector_hidden=config.projector_hidden,
    )
    fit_projector_scales(model, target, rows)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    args = sft_arguments(sft, work.path, precision=base.precision, progress=progress)
    collator = ExplainCollator(int(tokenizer.pad_token_id), target, target.item_vectors())
    trainer = _trainer_class()(
        model=model, args=args, train_dataset=rows, data_collator=collator, callbacks=list(callbacks) or None
    )
    record, seconds = work.run(trainer)
    summary = {
        "name": f"explainer-{config.mode}",
        "mode": config.mode,
        "base_model": sft.base_model,
        "base_model_path": str(base.path.resolve()),
        "config": config.to_dict(),
        "dims": dims,
        "placeholders": {"user": ids[0], "item": ids[1]},
        "target": target.name,
        "data": {
            "fingerprint": identity["data"],
            "meta": {
                k: split.meta.get(k)
                for k in (
                    "dataset",
                    "dataset_spec",
                    "target",
                    "tasks",
                    "seed",
                    "noun",
                    "k",
                    "top_share",
                    "history_len",
                )
            },
            "examples": len(examples),
            "encoded": len(rows),
            "dropped": dropped,
            "tokens": sum(len(r["input_ids"]) for r in rows),
        },
        "training": {
            **record,
            "tokens_per_second": round(collator.tokens / seconds, 1) if seconds > 0 else None,
            "trainable_parameters": trainable,
            "parameters": total,
            "precision": base.precision,
        },
    }

    def save() -> None:
        from safetensors.torch import save_file

        with atomic_directory(output, overwrite=overwrite) as tmp:
            model.lm.save_pretrained(str(tmp), save_embedding_layers=False)
            if uses_embeddings(config.mode):
                save_file(model.projector_state(), str(tmp / PROJECTORS_FILE), metadata={"format": "pt"})
            tokenizer.save_pretrained(str(tmp))
            target.save(tmp / TARGET_DIR)
            save_catalog(split.catalog, tmp / CATALOG_DIR)
            (tmp / EXPLAIN_FILE).write_text(
                json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8"
            )

    work.finish(trainer, save)
    return ExplainResult(output, record["steps"], seconds, work.resume_from, summary, examples=len(rows))
