"""RecLM-gen RL: SFT vs SFT+GRPO on the list reward vs SFT+GRPO with item-level rewards, on one model.

Usage: python benchmarks/gen_rl.py [--dataset demo|ml-latest-small] [--base smollm2-135m-instruct]
       [--per-task 40] [--test-per-task 20] [--limit-per-task 10] [--teacher sasrec|none]
       [--data-dir FOLDER] [--sft FOLDER] [--sft-steps 80] [--rl-steps 30] [--item-weight 0.5]
       [--rl-batch-size 8] [--num-generations 4] [--max-completion-length 160] [--rl-lr 5e-5]
       [--beta 0.04] [--decoding free cgen] [--seed 0] [--device cpu|cuda]

One dataset: the leave-one-out split (5-core on MovieLens), the gen tasks (list labels from a SASRec
teacher fitted on the training log, as in ``benchmarks/gen.py``), LoRA SFT of the base model (or the
SFT folder given with ``--sft``, e.g. the gen benchmark's), then two GRPO runs from that SFT model with
the same seed, prompts and steps: ``rl-list`` (``item_weight`` 0: TRL's list-level advantage) and
``rl-item`` (plus ``--item-weight`` times each item's own advantage on its tokens). All three models
answer the same test examples, greedily, with free decoding (where invalid, repeated and already-seen
names can occur: what the item rewards penalise) and with catalog-constrained decoding. Each row has
bootstrap intervals; the pairs rl-list - sft, rl-item - sft and rl-item - rl-list are compared sample
by sample (paired bootstrap interval, sign-flip p, Holm over the metrics; ``recai eval compare``).

Everything resumes and is seeded: the data, the SFT and RL models (checkpoints in their ``.work``
folders under benchmarks/.work/gen_rl/DATASET/) and the run folders (benchmarks/results/gen_rl/DATASET/,
one per model folder, so other settings start new ones); the summary goes to
benchmarks/results/gen_rl.json after every stage, with a report in benchmarks/results/gen_rl/report.md.
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
from recai.evaluate.compare import compare_runs
from recai.gen import build_gen_data
from recai.gen.evaluation import DecodeConfig, run_evaluation
from recai.gen.examples import GenData, first_per_task
from recai.gen.generate import GenRecommender
from recai.gen.models import GEN_FILE
from recai.gen.rl import train_grpo
from recai.gen.rl_config import RLConfig
from recai.gen.tasks import fit_teacher
from recai.gen.training import train_sft
from recai.train.models import resolve_base
from recai.train.sft import SFTConfig

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
SOURCES = {
    "demo": ("demo", 0, "film"),
    "ml-latest-small": (str(SHARED / "datasets" / "ml-latest-small"), 5, "movie"),
}
DECODINGS = {"free": False, "cgen": True}
HEADLINE = (
    "validity",
    "exact_validity",
    "repeats",
    "in_history",
    "count_correct",
    "compliance",
    "empty",
    "ndcg@10",
    "recall@10",
)
PAIRS = (("sft", "rl-list"), ("sft", "rl-item"), ("rl-list", "rl-item"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="demo", choices=list(SOURCES))
    parser.add_argument("--base", default="smollm2-135m-instruct")
    parser.add_argument("--per-task", type=int, default=40)
    parser.add_argument("--test-per-task", type=int, default=20)
    parser.add_argument(
        "--limit-per-task", type=int, default=10, help="test examples per task (all rows alike)"
    )
    parser.add_argument("--teacher", default="sasrec", choices=["sasrec", "none"])
    parser.add_argument("--sasrec-budget-s", type=float, default=240.0)
    parser.add_argument("--data-dir", type=Path, default=None, help="a `recai gen data` folder to reuse")
    parser.add_argument("--sft", type=Path, default=None, help="an SFT folder to reuse (else trained here)")
    parser.add_argument("--sft-steps", type=int, default=80)
    parser.add_argument("--sft-batch-size", type=int, default=4)
    parser.add_argument("--rl-steps", type=int, default=30)
    parser.add_argument("--item-weight", type=float, default=0.5)
    parser.add_argument("--rl-batch-size", type=int, default=8)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--max-completion-length", type=int, default=160)
    parser.add_argument("--rl-lr", type=float, default=5e-5)
    parser.add_argument("--beta", type=float, default=0.04)
    parser.add_argument(
        "--repetition-penalty", type=float, default=1.1, help="at evaluation, every row alike"
    )
    parser.add_argument("--decoding", nargs="*", default=list(DECODINGS), choices=list(DECODINGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")
    parser.add_argument("--work", type=Path, default=HERE / ".work" / "gen_rl")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    if args.item_weight <= 0:
        parser.error("--item-weight must be positive (rl-list is the item_weight 0 row)")

    summary_path = args.out / "gen_rl.json"
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    summary: dict[str, Any] = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if summary.get("settings") != settings:  # rows of other settings must not mix into this report
        summary = {}
    summary.update(
        {
            "benchmark": "gen_rl",
            "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
            "base_model": args.base,
            "dataset": args.dataset,
            "settings": settings,
        }
    )
    summary.setdefault("stages", {})
    summary.setdefault("rows", {})

    def save() -> None:
        write_text_atomic(summary_path, json.dumps(summary, indent=2) + "\n")

    source, k_core, noun = SOURCES[args.dataset]
    work = args.work / args.dataset
    dataset = load(source)
    if k_core:
        dataset = dataset.k_core(k_core)
    data_dir = args.data_dir or work / f"data-{args.per_task}-{args.test_per_task}-{args.teacher}-{args.seed}"
    if not (data_dir / "meta.json").exists():
        split = dataset.split("leave_one_out")
        started = time.perf_counter()
        teacher = None
        if args.teacher != "none":
            teacher = fit_teacher(split, args.teacher, time_budget_s=args.sasrec_budget_s, seed=args.seed)
        build_gen_data(
            dataset,
            per_task=args.per_task,
            test_per_task=args.test_per_task,
            split=split,
            teacher=teacher,
            noun=noun,
            seed=args.seed,
        ).save(data_dir)
        summary["stages"]["data_seconds"] = round(time.perf_counter() - started, 1)
    data = GenData.load(data_dir)
    test = first_per_task(data.test, args.limit_per_task)
    summary["examples"] = {"train": len(data.train), "test": len(test), "data_dir": str(data_dir)}
    device = args.device or _device()

    base_name = Path(args.base).name  # a model name, or a folder's
    # named after its data too, so other data (teacher, test share, --data-dir) never reuses this model
    sft_dir = args.sft or work / (
        f"sft-{base_name}-{data_dir.name}-{args.sft_steps}-{args.sft_batch_size}-s{args.seed}"
        f"-t{SFTConfig.token_lr_scale:g}"
    )
    if not (sft_dir / GEN_FILE).exists():
        config = SFTConfig(
            base_model=str(resolve_base(args.base)),
            max_steps=args.sft_steps,
            batch_size=args.sft_batch_size,
            precision="fp32" if device == "cpu" else "auto",
            seed=args.seed,
            device=args.device,
        )
        train_sft(data, sft_dir, config)
    summary["stages"]["sft"] = _training(sft_dir)
    save()

    models = {"sft": sft_dir}
    for row, weight in (("rl-list", 0.0), ("rl-item", args.item_weight)):
        name = (
            f"{row}-{args.rl_steps}-{args.rl_batch_size}x{args.num_generations}-c{args.max_completion_length}"
            f"-{args.rl_lr:g}-b{args.beta:g}-w{weight:g}"
        )
        model_dir = work / f"{sft_dir.name}-{name}"
        if not (model_dir / GEN_FILE).exists():
            config = RLConfig(
                sft_model=str(sft_dir),
                max_steps=args.rl_steps,
                batch_size=args.rl_batch_size,
                num_generations=args.num_generations,
                max_completion_length=args.max_completion_length,
                learning_rate=args.rl_lr,
                beta=args.beta,
                item_weight=weight,
                seed=args.seed,
                save_steps=5,
                logging_steps=1,
                precision="fp32" if device == "cpu" else "auto",
                device=args.device,
            )
            train_grpo(data, dataset.catalog, model_dir, config)
        summary["stages"][row] = _training(model_dir)
        models[row] = model_dir
        save()

    runs = args.out / "gen_rl" / args.dataset
    for decoding in args.decoding:
        decode = DecodeConfig(
            constrained=DECODINGS[decoding], repetition_penalty=args.repetition_penalty, seed=args.seed
        )
        for row, model_dir in models.items():
            gen = GenRecommender.load(model_dir, dataset.catalog, device=device, name=row)
            # one run folder per model folder, so a rerun with other settings never reuses stale replies
            document = run_evaluation(gen, test, runs / f"{model_dir.name}-{decoding}", decode)
            summary["rows"][f"{row}-{decoding}"] = _metrics(document)
            save()
        summary.setdefault("paired", {})[decoding] = {
            f"{b} - {a}": _paired(
                runs / f"{models[a].name}-{decoding}", runs / f"{models[b].name}-{decoding}"
            )
            for a, b in PAIRS
        }
        save()
    write_text_atomic(args.out / "gen_rl" / "report.md", report(summary))


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _training(model_dir: Path) -> dict[str, Any]:
    """What the model folder records of its training: steps, time, loss, and for GRPO its reward curve."""
    info = json.loads((model_dir / GEN_FILE).read_text())
    trained = info["training"]
    kept = (
        "steps",
        "seconds_this_run",
        "train_loss",
        "precision",
        "device",
        "reward_curve",
        "item_reward_curve",
    )
    return {"folder": str(model_dir), **{k: trained[k] for k in kept if k in trained}}


def _metrics(document: dict[str, Any]) -> dict[str, Any]:
    """The headline metrics with their intervals; NDCG and recall from the sequential examples."""
    tasks = document.get("extra", {}).get("tasks", {})
    sequential = tasks.get("sequential", {}).get("metrics", {})
    metrics = {m: document["metrics"][m] for m in HEADLINE if m in document["metrics"]}
    metrics.update({m: sequential[m] for m in ("ndcg@10", "recall@10") if m in sequential})
    return {"n": document.get("n"), "metrics": metrics}


def _paired(run_a: Path, run_b: Path) -> dict[str, Any]:
    """B - A on the same test examples for the headline metrics (paired bootstrap, sign-flip p, Holm)."""
    compared = compare_runs(run_a, run_b, n_resamples=10000)
    return {
        "paired": compared["paired"],
        "metrics": {
            m: {k: stats[k] for k in ("n", "mean_a", "mean_b", "diff", "diff_low", "diff_high", "p_holm")}
            for m, stats in compared["metrics"].items()
            if m in HEADLINE
        },
    }


def report(summary: dict[str, Any]) -> str:
    lines = [
        "# SFT vs SFT+GRPO with and without item-level rewards "
        f"({summary['base_model']}, {summary['dataset']})",
        "",
        "Greedy replies to the same test examples; ratios over all samples, NDCG and recall on the "
        "sequential examples; intervals and paired tests in gen_rl.json.",
        "",
        "| row | n | " + " | ".join(HEADLINE) + " |",
        "|---" * (len(HEADLINE) + 2) + "|",
    ]
    for row, entry in summary["rows"].items():
        cells = [f"{entry['metrics'][m]['mean']:.3f}" if m in entry["metrics"] else "-" for m in HEADLINE]
        lines.append(f"| {row} | {entry['n']} | " + " | ".join(cells) + " |")
    for decoding, pairs in summary.get("paired", {}).items():
        lines += ["", f"Paired differences, {decoding} decoding (95% interval, Holm p):", ""]
        for pair, entry in pairs.items():
            shown = [
                f"{m} {s['diff']:+.3f} [{s['diff_low']:+.3f}, {s['diff_high']:+.3f}] p {s['p_holm']:.3f}"
                for m, s in entry["metrics"].items()
            ]
            lines.append(f"- {pair} (n {entry['paired']}): " + "; ".join(shown))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
