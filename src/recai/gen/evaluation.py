"""Evaluate a generative recommender on the test examples of its tasks.

Each test example's prompt is answered by the model (constrained to the catalog or not), the reply is
parsed into items and scored by :mod:`recai.gen.metrics`. Runs live in a resumable run folder
(:class:`recai.evaluate.runs.RunFolder`): ``config.json``, ``records.jsonl`` (one line per sample,
written as soon as its batch is done), ``metrics.json`` (overall, with per-task blocks under ``extra``)
and ``report.md``; ``recai eval compare`` works on them like on every other run. Reopening a run
rescores its stored replies with the current scorer before anything new is generated.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recai.evaluate.generative import evaluate_batches
from recai.gen.examples import GenExample
from recai.gen.generate import GenRecommender, Parsed, name_position
from recai.gen.items import ItemNames
from recai.gen.metrics import DEFAULT_KS, GenScorer, metrics_summary


@dataclass(frozen=True)
class DecodeConfig:
    """How replies are generated.

    Attributes:
        constrained: Decode item spans only as catalog names
            (:class:`~recai.gen.constrained.CatalogLogitsProcessor`).
        exclude_seen: Under constraints only: the user's own items cannot be named.
        num_beams: Beam-search width (1: greedy or sampling).
        do_sample: Sample instead of taking the most likely token.
        temperature: Sampling temperature.
        top_p: Nucleus-sampling mass; ``None``: off.
        max_new_tokens: Token budget per reply; ``None``: enough for the requested list (see
            :func:`token_budget`).
        batch_size: Prompts generated at once.
        seed: Seed of sampling.
        repetition_penalty: Hugging Face's penalty on every token already in the prompt or the reply (1.0:
            none); it breaks greedy loops such as "The Godfather Part 4, Part 5, ..." of an undertrained
            model.
    """

    constrained: bool = True
    exclude_seen: bool = True
    num_beams: int = 1
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float | None = None
    max_new_tokens: int | None = None
    batch_size: int = 8
    seed: int = 0
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        if self.num_beams < 1 or self.batch_size < 1:
            raise ValueError("num_beams and batch_size must be at least 1")
        if not self.repetition_penalty > 0:
            raise ValueError("repetition_penalty must be positive (1.0: none)")
        object.__setattr__(self, "repetition_penalty", float(self.repetition_penalty))  # HF wants a float
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def token_budget(gen: GenRecommender, example: GenExample) -> int:
    """New tokens enough for the requested list: a sentence, then per item a number, the span markers
    and a long name (the 95th percentile of the catalog's name lengths)."""
    lengths = [len(s) for s in gen.trie.sequences]
    per_item = int(np.percentile(lengths, 95)) + 6 if lengths else 32
    k = example.k if example.k is not None else 4
    return 32 + k * per_item


def evaluate_generation(
    gen: GenRecommender,
    examples: Sequence[GenExample],
    config: DecodeConfig | None = None,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    skip_ids: set[str] | frozenset[str] = frozenset(),
    progress: bool = True,
) -> list[dict[str, Any]]:
    """One scored record per example not in ``skip_ids``, in order; ``on_record`` sees each as it is made."""
    config = config or DecodeConfig()
    scorer = GenScorer(gen.catalog, ks=ks)
    pending = [e for e in examples if e.id not in skip_ids]

    def evaluate(lo: int, batch: Sequence[GenExample]) -> Iterator[dict[str, Any]]:
        exclude = None
        if config.constrained and config.exclude_seen:
            exclude = [gen.catalog.index_of(list(e.seen), missing="drop").tolist() for e in batch]
        budget = config.max_new_tokens or max(token_budget(gen, e) for e in batch)
        started = time.perf_counter()
        outputs = gen.generate(
            [e.prompt for e in batch],
            constrained=config.constrained,
            exclude=exclude,
            max_new_tokens=budget,
            num_beams=config.num_beams,
            do_sample=config.do_sample,
            temperature=config.temperature,
            top_p=config.top_p,
            repetition_penalty=config.repetition_penalty,
            seed=config.seed + lo,
            batch_size=len(batch),
        )
        seconds = (time.perf_counter() - started) / len(batch)
        for example, output in zip(batch, outputs, strict=True):
            scores, grounded = scorer.score(example, output.parsed)
            yield {
                "id": example.id,
                "task": example.task,
                "k": example.k,
                "target": example.target,
                "control": example.control.to_dict() if example.control is not None else None,
                "text": output.text,
                "finished": output.finished,
                "from_spans": output.parsed.spans,
                "partial_span": output.parsed.partial,
                "new_tokens": len(output.token_ids),
                "seconds": round(seconds, 4),
                "positions": output.parsed.positions,
                "grounded": grounded.as_record(),
                "counts": grounded.counts(),
                "scores": scores,
            }

    return evaluate_batches(
        [pending],
        config.batch_size,
        evaluate,
        desc=f"generating ({gen.name})",
        on_record=on_record,
        progress=progress,
    )


def adopt_legacy_decode(folder: str | Path, gen: GenRecommender, config: DecodeConfig) -> bool:
    """Let a run folder written before ``repetition_penalty`` was a setting resume when its replies were
    decoded with the requested value: then the model's generation config decided (1.0 when it set none),
    and that value is written into the stored config. Returns whether the stored config was changed."""
    from recai.data.atomic import write_text_atomic
    from recai.evaluate.runs import CONFIG

    path = Path(folder) / CONFIG
    if not path.exists():
        return False
    stored = json.loads(path.read_text(encoding="utf-8"))
    decode = (stored.get("system") or {}).get("decode")
    if not isinstance(decode, dict) or "repetition_penalty" in decode:
        return False
    generation = getattr(gen.model, "generation_config", None)
    used = float(getattr(generation, "repetition_penalty", None) or 1.0)
    if used != config.repetition_penalty:
        return False  # the run folder then refuses the config, naming the key
    decode["repetition_penalty"] = used
    write_text_atomic(path, json.dumps(stored, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return True


def record_parsed(record: dict[str, Any], names: ItemNames) -> Parsed:
    """What a stored record's reply named, rebuilt without the model.

    Records store each name's catalog row (``positions``). Records written before they did are rebuilt
    from their names: a name listed as invalid stays invalid, any other is resolved as the parser
    resolves a name (its exact unique name, which is what a trie path spells, else the catalog's
    grounding at its threshold).
    """
    grounded = record["grounded"]
    found = record.get("positions")
    if found is not None:
        positions: list[int | None] = [None if p is None else int(p) for p in found]
    else:
        invalid = Counter(grounded["invalid"])
        positions = []
        for name in grounded["names"]:
            if invalid[name] > 0:
                invalid[name] -= 1
                positions.append(None)
                continue
            positions.append(name_position(names, name))
    return Parsed(
        list(grounded["names"]),
        positions,
        spans=bool(record["from_spans"]),
        partial=bool(record["partial_span"]),
    )


def rescore_records(run: Any, examples: Sequence[GenExample], scorer: GenScorer) -> int:
    """Recompute the scores of ``run``'s records with ``scorer``; rewrite them if any changed.

    A corrected or added metric then applies to earlier runs without generating again. Returns how
    many records changed; records of examples not in ``examples`` are kept as they are.
    """

    def fields(record: dict[str, Any], example: GenExample) -> dict[str, Any]:
        parsed = record_parsed(record, scorer.names)
        scores, grounded = scorer.score(example, parsed)
        return {
            "positions": parsed.positions,
            "grounded": grounded.as_record(),
            "counts": grounded.counts(),
            "scores": scores,
        }

    return int(run.update_records({e.id: e for e in examples}, fields))


def run_evaluation(
    gen: GenRecommender,
    examples: Sequence[GenExample],
    folder: str | Path,
    config: DecodeConfig | None = None,
    *,
    run_config: dict[str, Any] | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    resume: bool = True,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate into a run folder (resuming an interrupted run) and return its metrics document."""
    from recai.evaluate.runs import RunFolder

    config = config or DecodeConfig()
    # The decoding settings belong to the system: two runs that differ only there (constrained or not,
    # beams) are comparable with `recai eval compare`, sample by sample.
    full_config = {
        "system": {"name": gen.name, "decode": config.to_dict()},
        "ks": list(ks),
        **(run_config or {}),
    }
    if resume and not overwrite:
        adopt_legacy_decode(folder, gen, config)
    with RunFolder.open(folder, task="gen", config=full_config, resume=resume, overwrite=overwrite) as run:
        rescore_records(run, examples, GenScorer(gen.catalog, ks=ks))
        evaluate_generation(
            gen, examples, config, ks=ks, on_record=run.append, skip_ids=run.done_ids(), progress=progress
        )
        wanted = {e.id for e in examples}
        records = [r for r in run.records() if r["id"] in wanted]
        metrics = metrics_summary(records, seed=config.seed)
        run.write_metrics(metrics)
        run.write_report()
    return metrics
