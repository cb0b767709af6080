"""RecLM-emb with an LLM backbone: SmolLM2-135M as a last-token-pooled embedder, LoRA-tuned, against MiniLM.

Usage: python benchmarks/decoder_embed.py [--decoder smollm2-135m-instruct] [--pooling lasttoken]
       [--per-task 200] [--max-steps 40] [--batch-size 16] [--lr 2e-4] [--lora-r 8]
       [--baseline st:all-minilm-l6-v2] [--out benchmarks/results/decoder_embed.json]

The demo dataset's embed examples (the ten matching tasks, split by user, seed 0) train the decoder
embedder (``decoder:NAME?pooling=...``, LoRA merged on save) for ``--max-steps`` steps; the baseline
(the default MiniLM embedder, not fine-tuned), the decoder before training and the decoder after are
evaluated with the embed evaluation (per-task Recall@k and NDCG@k over the full catalog, bootstrap
intervals), and the tuned decoder is compared with the baseline (paired, Holm-adjusted). The examples,
the model and the evaluations are kept in ``--work`` (ignored by git), so a rerun resumes.
``--decoder`` also takes a causal-LM folder (a tiny random one makes a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from recai.data import load
from recai.data.atomic import write_text_atomic
from recai.embed import load_encoder
from recai.embed.evaluation import compare_retrieval, evaluate_retrieval
from recai.embed.tasks import ExampleSplit, build_examples
from recai.embed.training import TRAINING_FILE, TrainConfig, train_embedder

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decoder", default="smollm2-135m-instruct", help="a known GGUF name or LM folder")
    parser.add_argument("--pooling", choices=("lasttoken", "mean"), default="lasttoken")
    parser.add_argument("--per-task", type=int, default=200)
    parser.add_argument("--max-steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--baseline", default="st:all-minilm-l6-v2")
    parser.add_argument("--work", type=Path, default=HERE / ".work" / "decoder_embed")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "decoder_embed.json")
    args = parser.parse_args()

    dataset = load("demo")
    data_dir = args.work / f"data-{args.per_task}"
    if not (data_dir / "meta.json").exists():
        build_examples(dataset, per_task=args.per_task, seed=0, noun="film", split_by="user").save(data_dir)
    split = ExampleSplit.load(data_dir)
    spec = f"decoder:{args.decoder}?pooling={args.pooling}"
    config = TrainConfig(
        base_model=spec,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        lora_r=args.lora_r,
        lora_alpha=2 * args.lora_r,
        max_seq_length=args.max_seq_length,
        save_steps=max(1, args.max_steps // 2),
        logging_steps=max(1, args.max_steps // 10),
    )
    settings = f"{Path(args.decoder).name}-{args.pooling}-{args.per_task}-{args.max_steps}-{args.batch_size}"
    model_dir = args.work / f"model-{settings}-r{args.lora_r}-{args.lr}"
    if not (model_dir / TRAINING_FILE).exists():
        train_embedder(split, dataset.catalog, model_dir, config)
    training = json.loads((model_dir / TRAINING_FILE).read_text())

    evaluations: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    encoders = {
        "baseline": lambda: load_encoder(args.baseline),
        "decoder_zero_shot": lambda: load_encoder(spec, max_seq_length=args.max_seq_length),
        "decoder_lora": lambda: load_encoder(f"st:{model_dir}"),  # its folder records its max length
    }
    for name, make_encoder in encoders.items():
        started = time.perf_counter()
        evaluations[name] = evaluate_retrieval(make_encoder(), dataset.catalog, split.test)
        seconds[name] = round(time.perf_counter() - started, 1)
        print(f"{name}: macro {json.dumps(evaluations[name].macro)} ({seconds[name]} s)")
    metrics = ("recall@10", "ndcg@10", "recall@1")
    report = {
        "benchmark": "decoder_embed",
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "python": platform.python_version(),
        "dataset": "demo",
        "catalog_items": len(dataset.catalog),
        "examples": split.counts(),
        "decoder": args.decoder,
        "pooling": args.pooling,
        "training": {
            "config": training["config"],
            "encoder": training.get("encoder"),
            "rows": training["data"]["rows"],
            "steps": training["training"]["steps"],
            "seconds": training["training"]["seconds_this_run"],
            "device": training["training"]["device"],
            "loss_curve": training["training"]["loss_curve"],
        },
        "evaluation_seconds": seconds,
        "macro": {name: e.macro for name, e in evaluations.items()},
        "evaluations": {name: e.to_dict() for name, e in evaluations.items()},
        "comparisons": {
            "decoder_lora_vs_baseline": compare_retrieval(
                evaluations["baseline"], evaluations["decoder_lora"], metrics=metrics
            ),
            "decoder_lora_vs_zero_shot": compare_retrieval(
                evaluations["decoder_zero_shot"], evaluations["decoder_lora"], metrics=metrics
            ),
        },
    }
    write_text_atomic(args.out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
