"""Contrastive fine-tuning of a sentence-transformers embedder on the matching tasks' examples.

Each training row is (query, the positive item's text, hard negatives' texts). The default loss is
in-batch InfoNCE (MultipleNegativesRankingLoss) with one change that matters for this data: an in-batch
item that *also* answers a row's query is not used as a negative for it. "A film from before 1990" is
answered by hundreds of films, and the other rows' positives are often among them; pushing the query
away from them teaches the model to ignore the very condition it states. Which items answer a query
comes from the example's predicates (``Example.satisfying``), the same objects that proved its hard
negatives wrong. The cached variant (GradCache, for batches larger than memory allows) is the stock
sentence-transformers loss and does not mask.

Training runs on sentence-transformers' trainer (so ``accelerate launch`` and several GPUs work as
they do for any Hugging Face trainer) with no-duplicate batches, seeded, with checkpoints that an
interrupted run resumes from. The finished model is written atomically as a plain sentence-transformers
folder, with a model card and ``recai_training.json``, and loads anywhere by path (``st:FOLDER``).

The base is an encoder spec (:func:`recai.embed.encoder.parse_encoder_spec`): ``st:NAME?prefixes=e5``
trains with the prefixes the model expects (anchors get the query prefix, positives and negatives the
item prefix) and records them in the saved folder; ``decoder:PATH`` trains a causal LM pooled into an
embedder (:mod:`recai.embed.decoder`), usually with LoRA (``lora_r``), whose adapter is merged into the
weights when the model is saved, so the folder is an ordinary sentence-transformers model.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recai.data.atomic import atomic_directory, write_text_atomic
from recai.data.catalog import Catalog
from recai.embed.tasks.example import Example, ExampleSplit
from recai.embed.train_config import TrainConfig
from recai.train.arguments import resolve_precision, trainer_arguments
from recai.train.work import TrainingResult, WorkFolder, data_fingerprint, refuse_existing

TRAINING_FILE = "recai_training.json"


@dataclass
class TrainingRows:
    """The examples as the trainer sees them: texts, plus the item positions the false-negative mask needs.

    ``items[r]`` holds the catalog positions of row r's positive and its hard negatives, in the
    trainer's column order; ``answers[r]`` is the packed bit mask of every item that answers row r's
    query, or None when only its positive does.
    """

    queries: list[str]
    documents: list[list[str]]  # per row: positive text, then hard-negative texts
    items: np.ndarray  # (rows, 1 + hard_negatives) int64 catalog positions
    answers: list[np.ndarray | None]
    n_items: int
    padded_rows: int = 0  # rows with fewer hard negatives than asked, padded by repeating the last
    per_task: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.queries)

    def answer_matrix(self, rows: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """(len(rows), len(candidates)) bool: does candidate item c answer row r's query?"""
        out = self.items[rows, :1] == candidates[None, :]
        for i, r in enumerate(rows):
            packed = self.answers[int(r)]
            if packed is not None:
                out[i] |= np.unpackbits(packed, count=self.n_items)[candidates].astype(bool)
        return out

    def dataset_dict(self, query_prefix: str = "", item_prefix: str = "") -> dict[str, list[Any]]:
        """The trainer's columns; anchors get ``query_prefix`` and item texts ``item_prefix``, as the
        encoder prefixes them at retrieval time."""
        columns: dict[str, list[Any]] = {
            "anchor": [query_prefix + q for q in self.queries],
            "positive": [item_prefix + d[0] for d in self.documents],
        }
        for j in range(1, self.items.shape[1]):
            columns[f"negative_{j}"] = [item_prefix + d[j] for d in self.documents]
        columns["label"] = list(range(len(self.queries)))  # the row, so the loss can find its mask
        return columns


def training_rows(
    examples: Sequence[Example], catalog: Catalog, *, hard_negatives: int = 1, item_max_chars: int = 512
) -> TrainingRows:
    """Turn examples into trainer rows; item texts are rendered exactly as the catalog index renders them."""
    if not examples:
        raise ValueError("no training examples")
    texts = catalog.texts(max_chars=item_max_chars)
    n_items = len(catalog)
    queries: list[str] = []
    documents: list[list[str]] = []
    items: list[list[int]] = []
    answers: list[np.ndarray | None] = []
    padded = 0
    per_task: Counter[str] = Counter()
    for example in examples:
        try:
            positive = int(catalog.index_of([example.positive])[0])
            negatives = [int(p) for p in catalog.index_of(list(example.negatives)[:hard_negatives])]
        except (KeyError, ValueError) as exc:
            raise ValueError(f"example {example.id}: an item is not in the catalog ({exc})") from None
        if hard_negatives and not negatives:
            raise ValueError(f"example {example.id}: no hard negatives, {hard_negatives} needed")
        if len(negatives) < hard_negatives:
            padded += 1
            negatives += [negatives[-1]] * (hard_negatives - len(negatives))
        row = [positive, *negatives]
        queries.append(example.query)
        documents.append([texts[p] for p in row])
        items.append(row)
        if example.predicates:
            mask = example.satisfying(catalog)
            if not mask[positive]:
                raise ValueError(f"example {example.id}: its positive does not satisfy its own predicates")
            answers.append(np.packbits(mask))
        else:
            answers.append(None)
        per_task[example.task] += 1
    return TrainingRows(
        queries,
        documents,
        np.asarray(items, dtype=np.int64),
        answers,
        n_items,
        padded_rows=padded,
        per_task=dict(sorted(per_task.items())),
    )


def masked_ranking_loss(model: Any, rows: TrainingRows, *, scale: float, mask: bool = True) -> Any:
    """In-batch InfoNCE over (positive, hard negatives, other rows' items), masking false negatives."""
    import torch
    from torch.nn import functional

    class MaskedMultipleNegativesRankingLoss(torch.nn.Module):
        """MultipleNegativesRankingLoss whose in-batch candidates exclude items that answer the query."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.scale = scale
            self.mask = mask
            self.masked_total = 0  # how many candidate logits were masked so far (for the record)

        def forward(self, sentence_features: Any, labels: torch.Tensor) -> torch.Tensor:
            embeddings = [self.model(f)["sentence_embedding"] for f in sentence_features]
            queries = functional.normalize(embeddings[0], dim=-1)
            # Column order: every row's positive, then every row's first negative, and so on.
            docs = functional.normalize(torch.cat(embeddings[1:]), dim=-1)
            scores = queries @ docs.T * self.scale
            batch = queries.shape[0]
            target = torch.arange(batch, device=scores.device)
            if self.mask:
                row_ids = labels.detach().cpu().numpy().astype(np.int64)
                candidates = rows.items[row_ids].T.reshape(-1)
                answers = rows.answer_matrix(row_ids, candidates)
                answers[np.arange(batch), np.arange(batch)] = False  # the row's own positive stays
                if answers.any():
                    self.masked_total += int(answers.sum())
                    block = torch.from_numpy(answers).to(scores.device)
                    scores = scores.masked_fill(block, float("-inf"))
            return functional.cross_entropy(scores, target)

        def get_config_dict(self) -> dict[str, Any]:
            return {"scale": self.scale, "mask_false_negatives": self.mask}

    return MaskedMultipleNegativesRankingLoss()


@dataclass
class TrainResult(TrainingResult):
    """What :func:`train_embedder` did (see :class:`~recai.train.work.TrainingResult`), and the
    rows it trained on.

    Attributes:
        rows: Training rows (one per example).
    """

    rows: int


def example_lines(examples: Sequence[Example]) -> list[str]:
    """One line per example for the data fingerprint: what a training row is made of."""
    return [f"{e.id}\t{e.query}\t{e.positive}\t{list(e.negatives)}" for e in examples]


def train_embedder(
    data: ExampleSplit | str | Path,
    catalog: Catalog,
    output: str | Path,
    config: TrainConfig | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Fine-tune ``config.base_model`` on ``data.train`` and write the model to ``output``.

    Checkpoints go to ``OUTPUT.work/`` and a rerun with the same data and config resumes from the
    latest one; a rerun with different ones is refused (delete the work folder to start over). The
    work folder is removed once the model is written. ``callbacks`` are Hugging Face
    ``TrainerCallback`` objects (logging to your tracker, early stopping).
    """
    config = config or TrainConfig()
    split = data if isinstance(data, ExampleSplit) else ExampleSplit.load(data)
    output = refuse_existing(output, overwrite)
    examples = config.selected_examples(split.train)
    rows = training_rows(
        examples, catalog, hard_negatives=config.hard_negatives, item_max_chars=config.item_max_chars
    )
    fingerprint = data_fingerprint(example_lines(examples))
    identity = {"config": config.to_dict(), "data": fingerprint, "rows": len(rows)}
    work = WorkFolder.open(output, identity)  # under `accelerate launch`: one per process
    from datasets import Dataset as HFDataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    from recai.embed.decoder import pooling_mode
    from recai.embed.encoder import parse_encoder_spec
    from recai.embed.st_encoder import load_sentence_transformer, record_prefixes, recorded_prefixes

    spec = parse_encoder_spec(config.base_model)
    if spec.backend == "openai":
        raise ValueError(
            f"TrainConfig.base_model: {config.base_model!r} is served over HTTP and cannot be trained"
        )
    model, base_path = load_sentence_transformer(
        spec.model,
        decoder=spec.backend == "decoder",
        pooling=spec.pooling,
        device=config.device,
        max_seq_length=config.max_seq_length,
    )
    saved_query, saved_item = recorded_prefixes(model)
    query_prefix = saved_query if spec.query_prefix is None else spec.query_prefix
    item_prefix = saved_item if spec.item_prefix is None else spec.item_prefix
    record_prefixes(model, query_prefix, item_prefix)  # checkpoints and the saved folder carry them
    if config.lora_r:
        add_lora(model, config)
    if config.loss == "cached-mnrl":
        loss: Any = CachedMultipleNegativesRankingLoss(
            model, scale=config.scale, mini_batch_size=config.mini_batch_size
        )
    else:
        loss = masked_ranking_loss(model, rows, scale=config.scale, mask=config.mask_false_negatives)
    args = trainer_arguments(
        SentenceTransformerTrainingArguments,
        config,
        output_dir=work.path,
        precision=resolve_precision(config.precision, config.device),
        progress=progress,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        dataloader_drop_last=True,  # a last tiny batch has almost no in-batch negatives
    )
    trainer_class = lora_trainer(SentenceTransformerTrainer) if config.lora_r else SentenceTransformerTrainer
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=HFDataset.from_dict(rows.dataset_dict(query_prefix, item_prefix)),
        loss=loss,
        callbacks=list(callbacks) or None,
    )
    record, seconds = work.run(trainer)
    summary = {
        "base_model": config.base_model,
        "base_model_path": str(base_path),
        "config": config.to_dict(),
        "data": {
            "fingerprint": identity["data"],
            "meta": {k: split.meta.get(k) for k in ("dataset", "seed", "split_by", "test_fraction", "llm")},
            "rows": len(rows),
            "per_task": rows.per_task,
            "padded_rows": rows.padded_rows,
        },
        "training": {
            **record,
            "seconds_this_run": round(seconds, 1),
            "final_loss": _last_loss(trainer.state.log_history),
            "masked_false_negatives": int(getattr(loss, "masked_total", 0)),
            "device": str(model.device),
        },
    }
    if spec.backend == "decoder" or query_prefix or item_prefix or config.lora_r:
        summary["encoder"] = {
            "backend": spec.backend,
            "pooling": pooling_mode(model),
            "query_prefix": query_prefix,
            "item_prefix": item_prefix,
            "lora": "merged into the weights" if config.lora_r else None,
        }

    def save() -> None:
        if config.lora_r:
            merge_lora(model)
        with atomic_directory(output, overwrite=overwrite) as tmp:
            model.save(str(tmp), create_model_card=False)
            (tmp / TRAINING_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n")
            (tmp / "README.md").write_text(model_card(summary))

    work.finish(trainer, save)  # no process reads OUTPUT before the main one has written it
    return TrainResult(output, record["steps"], seconds, work.resume_from, summary, rows=len(rows))


def add_lora(model: Any, config: TrainConfig) -> None:
    """Put a LoRA adapter on the model's transformer, in place (peft picks the projections it knows for
    the architecture); only the adapter trains.

    peft injects the layers itself: ``SentenceTransformer.add_adapter`` goes through transformers, whose
    adapter support needs a newer peft than recai's. Checkpoints therefore hold the whole state, adapter
    included, and :func:`lora_trainer` resumes from them."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ModuleNotFoundError as exc:
        raise ImportError("LoRA fine-tuning of an embedder needs peft: pip install 'recai[train]'") from exc

    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        task_type="FEATURE_EXTRACTION",
    )
    inject_adapter_in_model(lora, model[0].auto_model)


def lora_trainer(trainer_class: Any) -> Any:
    """``trainer_class`` resuming a LoRA run: a checkpoint's weights (base and adapter layers) are loaded
    into the model as they are, where the stock resume would rebuild a model without the adapter."""

    class LoraTrainer(trainer_class):  # type: ignore[misc, valid-type]
        def _load_from_checkpoint(self, checkpoint_path: str, model: Any = None) -> None:
            from safetensors.torch import load_file

            backbone = self.model[0].auto_model
            backbone.load_state_dict(load_file(str(Path(checkpoint_path) / "model.safetensors")))

    return LoraTrainer


def merge_lora(model: Any) -> None:
    """Fold the trained LoRA updates into the transformer's weights and drop the adapter, so the model
    saves (and loads) as a plain sentence-transformers folder."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    backbone = model[0].auto_model
    for name, module in list(backbone.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = backbone.get_submodule(parent_name) if parent_name else backbone
            setattr(parent, child, module.get_base_layer())


def _last_loss(history: list[dict[str, Any]]) -> float | None:
    losses = [h["loss"] for h in history if "loss" in h]
    return round(float(losses[-1]), 4) if losses else None


def model_card(summary: dict[str, Any], metrics: dict[str, Any] | None = None) -> str:
    """A README for the model folder: what it was trained from, on what, how, and how well it retrieves."""
    cfg = summary["config"]
    data = summary["data"]
    train = summary["training"]
    lines = [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        "tags: [recai, recommendation, retrieval, contrastive]",
        "---",
        "",
        f"# Item retriever fine-tuned from {cfg['base_model']}",
        "",
        "Fine-tuned by recai (`recai embed train`) to retrieve catalog items from the text a recommender",
        "sees: histories, taste summaries, searches, misspelled names, conditions. Load it by path:",
        "",
        "```python",
        "from recai.embed import load_encoder",
        'encoder = load_encoder("st:PATH_TO_THIS_FOLDER")',
        "```",
        "",
        "or `--encoder st:PATH` on the command line (agent, evaluator, index).",
        "",
        "## Training data",
        "",
        f"Dataset `{data['meta'].get('dataset')}`, split by {data['meta'].get('split_by')} "
        f"(test fraction {data['meta'].get('test_fraction')}), seed {data['meta'].get('seed')}, "
        f"LLM-written text: {data['meta'].get('llm') or 'none (templates)'}. "
        f"{data['rows']} training rows:",
        "",
        "| task | rows |",
        "|---|---|",
        *[f"| {task} | {n} |" for task, n in data["per_task"].items()],
        "",
        "## Training",
        "",
        f"- loss: {cfg['loss']}, scale {cfg['scale']} (temperature {1 / cfg['scale']:.3f}), "
        f"{cfg['hard_negatives']} hard negative(s) per row, false-negative masking "
        f"{'on' if cfg['mask_false_negatives'] else 'off'}",
        f"- batch {cfg['batch_size']} (no duplicate texts in a batch), learning rate {cfg['learning_rate']}, "
        f"warm-up {cfg['warmup_ratio']}, epochs {cfg['epochs']}, max steps {cfg['max_steps']}, "
        f"seed {cfg['seed']}",
        f"- {train['steps']} steps on {train['device']}, {train['seconds_this_run']} s in the last run "
        f"(resumed from {train['resumed_from'] or 'nothing'}), final logged loss {train['final_loss']}",
        f"- in-batch candidates masked as false negatives: {train['masked_false_negatives']}",
        *encoder_card_lines(summary.get("encoder"), cfg),
        "",
    ]
    if metrics:
        lines += ["## Retrieval on held-out test queries", "", *metrics_table(metrics), ""]
    return "\n".join(lines)


def encoder_card_lines(encoder: dict[str, Any] | None, cfg: dict[str, Any]) -> list[str]:
    """The card's lines on pooling, prefixes and LoRA (absent for a plain fine-tune without prefixes)."""
    if not encoder:
        return []
    lines = [
        f"- {encoder['backend']} backbone, {encoder['pooling']} pooling; prefixes recorded in the folder "
        f"(query {encoder['query_prefix']!r}, item {encoder['item_prefix']!r}) and applied when it is loaded"
    ]
    if encoder.get("lora"):
        lines.append(f"- LoRA r={cfg['lora_r']}, alpha {cfg['lora_alpha']}, {encoder['lora']}")
    return lines


def metrics_table(metrics: dict[str, Any], *, k: int = 10) -> list[str]:
    """Markdown rows of per-task Recall@k, NDCG@k and coverage@k from an evaluation summary."""
    rows = [f"| task | n | Recall@{k} | NDCG@{k} | coverage@{k} |", "|---|---|---|---|---|"]
    for task, m in metrics["tasks"].items():
        cov = m.get(f"coverage@{k}")
        cells = [task, str(m["n"]), f"{m[f'recall@{k}']['mean']:.3f}", f"{m[f'ndcg@{k}']['mean']:.3f}"]
        cells.append(f"{cov['mean']:.3f}" if cov else "-")
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def write_model_card(model_dir: str | Path, metrics: dict[str, Any] | None = None) -> Path:
    """Rewrite a trained model's README with its training summary and (new) evaluation metrics.

    Under ``accelerate launch`` only the main process writes (the others return the path unchanged)."""
    model_dir = Path(model_dir)
    if not is_main_process():
        return model_dir / "README.md"
    summary = json.loads((model_dir / TRAINING_FILE).read_text())
    if metrics is not None:
        summary["metrics"] = metrics
        write_text_atomic(model_dir / TRAINING_FILE, json.dumps(summary, indent=2, default=str) + "\n")
    return write_text_atomic(model_dir / "README.md", model_card(summary, summary.get("metrics")))


def is_main_process() -> bool:
    """False only in a non-main process of a distributed run (``accelerate launch``, ``torchrun``)."""
    try:
        import torch.distributed as dist
    except ImportError:
        return True
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0
