"""How much do length-grouped batches and logits at trained positions only save in a training epoch?

Protocol: the explain benchmark's data (``benchmarks/explain.py`` builds it in ``--data``), a seeded
sample of ``--examples`` training examples, one epoch of explainer training per variant with the same
base model, mode, batch size and seed:

- ``baseline``: random batches, logits at every position (the recipe before 2026-11-27);
- ``grouped``: length-grouped batches, logits at every position;
- ``grouped+kept``: length-grouped batches, logits only where the loss is taken (the default now).

"Logits at every position" is the same trainer with ``logits_to_keep`` switched off, so the LM head runs
over the whole sequence and the loss slices the trained positions out of it. Every variant trains the
same examples once, so their wall times compare directly; the final training losses are reported too
(length grouping changes which examples share a step, so they differ slightly). Writes
``results/train_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from recai.data.atomic import write_text_atomic
from recai.explain import examples as explain_examples
from recai.explain import model as explain_model
from recai.explain.config import ExplainConfig
from recai.explain.training import train_explainer
from recai.train.sft import SFTConfig

HERE = Path(__file__).resolve().parent
VARIANTS = {"baseline": (False, False), "grouped": (True, False), "grouped+kept": (True, True)}


def run_variant(data: Any, name: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    grouped, kept = VARIANTS[name]
    original = explain_model.accepts_logits_to_keep
    if not kept:  # the explainer's LM is then called without logits_to_keep
        explain_model.accepts_logits_to_keep = lambda model: False  # type: ignore[assignment]
    try:
        sft = SFTConfig(
            base_model=args.base, epochs=1, batch_size=args.batch_size, precision=args.precision,
            device=args.device, seed=args.seed, group_by_length=grouped, save_steps=10_000,
        )  # fmt: skip
        started = time.perf_counter()
        result = train_explainer(data, root / name, ExplainConfig(mode=args.mode, sft=sft))
        seconds = time.perf_counter() - started
    finally:
        explain_model.accepts_logits_to_keep = original
    training = result.summary["training"]
    return {
        "grouped_batches": grouped,
        "logits_at_trained_positions": kept,
        "seconds": round(seconds, 1),
        "train_seconds": training["seconds_this_run"],
        "steps": training["steps"],
        "tokens_per_second": training["tokens_per_second"],
        "train_loss": round(training["train_loss"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE / ".work" / "explain" / "data")
    parser.add_argument("--base", default="smollm2-135m-instruct")
    parser.add_argument("--mode", default="hybrid", choices=["behaviour", "intention", "hybrid"])
    parser.add_argument("--examples", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "train_speed.json")
    args = parser.parse_args()

    if not (args.data / "meta.json").exists():
        raise SystemExit(
            f"{args.data}: no explain data; build it with benchmarks/explain.py or `recai explain data`"
        )
    data = explain_examples.ExplainData.load(args.data)
    sample = random.Random(args.seed).sample(data.train, min(args.examples, len(data.train)))
    data.train = sample
    tasks: dict[str, int] = {}
    for example in sample:
        tasks[example.task] = tasks.get(example.task, 0) + 1
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="recai-train-speed-") as tmp:
        for name in args.variants:
            results[name] = run_variant(data, name, args, Path(tmp))
            print(name, results[name], flush=True)
    baseline = results.get("baseline")
    if baseline:
        for row in results.values():
            row["speedup"] = round(baseline["train_seconds"] / row["train_seconds"], 2)
    summary = {
        "question": __doc__.splitlines()[0],
        "data": str(args.data),
        "examples": len(sample),
        "tasks": dict(sorted(tasks.items())),
        "base": args.base,
        "mode": args.mode,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "variants": results,
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_text_atomic(args.out, json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
