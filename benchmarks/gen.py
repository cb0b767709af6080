"""RecLM-gen / cgen: zero-shot vs SFT vs SFT with catalog-constrained decoding, against the SASRec teacher.

Usage: python benchmarks/gen.py [--datasets demo ml-latest-small] [--base qwen2.5-0.5b-instruct]
       [--per-task 300] [--test-per-task 50] [--max-steps 400] [--batch-size 4]
       [--grad-accum 1] [--precision auto|fp32|bf16] [--repetition-penalty 1.1]
       [--limit-per-task N] [--configs zero-shot sft sft-cgen sasrec popularity] [--device cpu|cuda]
       [--eval-tasks sequential ...] [--name gen] [--decode-batch-size 8] [--rescore-only]

Per dataset: a leave-one-out split (5-core on MovieLens), a SASRec teacher fitted on the training log
only, the eight gen tasks built with the teacher's top-k as list labels, LoRA SFT of the base model,
and evaluation on the test examples (held-out users' last event): the base model zero-shot (free
decoding, parsed and grounded to the catalog), the SFT model with free decoding, the SFT model with
catalog-constrained decoding, and the SASRec teacher's own top-10 on the sequential test examples (the
same users), next to the most popular training items (what a model that learned only popularity
scores). Every ratio is over all samples, empty replies included. Training time and tokens/s are
recorded. Everything resumes (data, checkpoints, run folders in benchmarks/.work/gen/ and
benchmarks/results/gen/DATASET/), and the summary goes to benchmarks/results/gen.json with a report in
benchmarks/results/gen/report.md. Ranking metrics (NDCG, recall) are compared on the sequential test
examples only, for every row: the other list tasks' held-out items can lie outside the category they
ask for, and the recommenders answer the sequential examples only. ``--rescore-only`` rescores the
stored replies of the existing LLM runs with the current scorer (no model is loaded) and rewrites the
summary, for a corrected or added metric.

The ranking measurement (every row on the same few hundred users' next item, so systems separate):
``--eval-tasks sequential --test-per-task 300 --name gen_ranking``. SFT still trains on every task;
only the sequential test examples are answered. Every pair of rows (the LLM rows with each other and
with SASRec and popularity) is compared on the same examples: the paired bootstrap interval of the
difference and the sign-flip p, Holm-corrected over the pairs of each metric.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from recai.data import load
from recai.data.atomic import write_text_atomic
from recai.evaluate.compare import holm, paired_statistics
from recai.evaluate.generative import single_target_scores
from recai.evaluate.metrics import bootstrap_ci
from recai.evaluate.runs import RunFolder
from recai.gen import build_gen_data
from recai.gen.evaluation import DecodeConfig, run_evaluation
from recai.gen.examples import GenData, first_per_task
from recai.gen.generate import GenRecommender
from recai.gen.models import GEN_FILE
from recai.gen.tasks import LIST_TASKS, fit_teacher
from recai.gen.training import train_sft
from recai.train.models import resolve_base
from recai.train.sft import SFTConfig

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
SOURCES = {
    "demo": ("demo", 0, "film"),
    "ml-latest-small": (str(SHARED / "datasets" / "ml-latest-small"), 5, "movie"),
}
CONFIGS = ("zero-shot", "sft", "sft-cgen", "sasrec", "popularity")
LLM_ROWS = ("zero-shot", "sft", "sft-cgen")
PAIRS = (
    ("zero-shot", "sft"),
    ("sft", "sft-cgen"),
    ("zero-shot", "sft-cgen"),
    ("popularity", "sft-cgen"),
    ("sasrec", "sft-cgen"),
    ("popularity", "sasrec"),
)
KS = (1, 5, 10)
RANKING = ("ndcg@10", "recall@10")
HEADLINE = (
    "ndcg@10",
    "recall@10",
    "validity",
    "exact_validity",
    "repeats",
    "in_history",
    "count_correct",
    "compliance",
    "empty",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--base", default="qwen2.5-0.5b-instruct")
    parser.add_argument("--per-task", type=int, default=300)
    parser.add_argument("--test-per-task", type=int, default=50)
    parser.add_argument("--max-steps", type=int, default=400)
    parser.add_argument(
        "--token-lr-scale", type=float, default=SFTConfig.token_lr_scale,
        help="the span markers' rows learn at the learning rate times this (1: as runs before 2026-12-07)",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument(
        "--precision", default="auto", choices=["auto", "fp32", "bf16"], help="training precision"
    )
    parser.add_argument(
        "--group-by-length", action=argparse.BooleanOptionalAction, default=True,
        help="SFT batches of similar length (--no-group-by-length: random, as runs before 2026-11-27)",
    )  # fmt: skip
    parser.add_argument(
        "--limit-per-task",
        type=int,
        default=None,
        help="evaluate only the first N test examples of each task (every row alike)",
    )
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument(
        "--eval-tasks",
        nargs="*",
        default=None,
        choices=list(LIST_TASKS),
        help="answer only these tasks' test examples (default: all); SFT trains on every task",
    )
    parser.add_argument(
        "--name",
        default="gen",
        help="the summary (RESULTS/NAME.json) and run folders (RESULTS/NAME/DATASET/) of this measurement",
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")
    parser.add_argument("--sasrec-budget-s", type=float, default=240.0)
    parser.add_argument(
        "--repetition-penalty",
        type=float,
        default=1.1,
        help="for every LLM row alike (Qwen2.5 instruct models ship 1.05 to 1.1 in their "
        "generation config; 1.0: none)",
    )
    parser.add_argument(
        "--decode-batch-size",
        type=int,
        default=8,
        help="prompts generated at once (SmolLM2-135M on 2 CPU cores: 16 gives 1.5x the tokens/s of 8)",
    )
    parser.add_argument("--work", type=Path, default=HERE / ".work" / "gen")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--rescore-only", action="store_true", help="rescore the stored LLM runs; generate and train nothing"
    )
    args = parser.parse_args()
    summary_path = args.out / f"{args.name}.json"
    summary: dict[str, Any] = (
        json.loads(summary_path.read_text()) if summary_path.exists() else {"datasets": {}}
    )
    summary.update(
        {
            "benchmark": "gen",
            "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
            "base_model": args.base,
            "targets": "100% validity with constrained decoding; "
            "SFT beats zero-shot on NDCG@10 and every control metric",
        }
    )
    for name in args.datasets:
        previous = summary["datasets"].get(name, {})
        run = rescore_dataset if args.rescore_only else run_dataset
        summary["datasets"][name] = run(name, args, previous)
        write_text_atomic(summary_path, json.dumps(summary, indent=2) + "\n")
        write_text_atomic(args.out / args.name / "report.md", report(summary))


def run_dataset(name: str, args: argparse.Namespace, previous: dict[str, Any]) -> dict[str, Any]:
    source, k_core, noun = SOURCES[name]
    work = args.work / name
    dataset = load(source)
    if k_core:
        dataset = dataset.k_core(k_core)
    split = dataset.split("leave_one_out")
    result: dict[str, Any] = {**previous, "source": name, "catalog_items": len(dataset.catalog)}
    if {"zero-shot", "sft", "sft-cgen"} <= set(args.configs):
        result.pop("protocol", None)  # a note on an earlier run's rows; every LLM row is remade now
    result["settings"] = {
        key: getattr(args, key)
        for key in (
            "per_task",
            "test_per_task",
            "max_steps",
            "batch_size",
            "grad_accum",
            "precision",
            "repetition_penalty",
            "limit_per_task",
            "eval_tasks",
        )
    }
    data_dir = work / f"data-{args.per_task}-{args.test_per_task}"
    teacher = None
    if not (data_dir / "meta.json").exists() or "sasrec" in args.configs:
        started = time.perf_counter()
        teacher = fit_teacher(split, "sasrec", time_budget_s=args.sasrec_budget_s, seed=0)
        result["teacher_seconds"] = round(time.perf_counter() - started, 1)
    if not (data_dir / "meta.json").exists():
        data = build_gen_data(
            dataset,
            per_task=args.per_task,
            test_per_task=args.test_per_task,
            split=split,
            teacher=teacher,
            noun=noun,
        )
        data.save(data_dir)
    data = evaluated(GenData.load(data_dir), args)

    def decode(*, constrained: bool) -> DecodeConfig:
        """Greedy decoding, the same penalty for every LLM row."""
        return DecodeConfig(
            constrained=constrained,
            repetition_penalty=args.repetition_penalty,
            batch_size=args.decode_batch_size,
        )

    result["examples"] = {"train": len(data.train), "test": len(data.test)}
    runs = args.out / args.name / name
    configs = result.setdefault("configs", {})
    base = resolve_base(args.base)
    if "zero-shot" in args.configs:
        gen = GenRecommender.load(
            base, dataset.catalog, device=args.device or _device(), name=f"{args.base}-zero-shot"
        )
        configs["zero-shot"] = _metrics(
            run_evaluation(
                gen,
                data.test,
                runs / "zero-shot",
                decode(constrained=False),
            )
        )
    if {"sft", "sft-cgen"} & set(args.configs):
        model_dir = work / f"sft-{args.base}-{args.per_task}-{args.max_steps}-{args.batch_size}"
        if args.grad_accum > 1 or args.precision != "auto":
            model_dir = model_dir.with_name(f"{model_dir.name}-x{args.grad_accum}-{args.precision}")
        if args.group_by_length:
            model_dir = model_dir.with_name(f"{model_dir.name}-grouped")
        if args.token_lr_scale != 1:
            model_dir = model_dir.with_name(f"{model_dir.name}-t{args.token_lr_scale:g}")
        if not model_dir.exists():
            config = SFTConfig(
                base_model=str(base),
                max_steps=args.max_steps,
                batch_size=args.batch_size,
                grad_accum=args.grad_accum,
                precision=args.precision,
                device=args.device,
                group_by_length=args.group_by_length,
                token_lr_scale=args.token_lr_scale,
            )
            train_sft(data, model_dir, config)
        trained = json.loads((model_dir / GEN_FILE).read_text())["training"]
        result["training"] = {
            key: trained[key]
            for key in ("steps", "seconds_this_run", "tokens_per_second", "precision", "device", "train_loss")
        }
        result["training"]["batches"] = "by length" if args.group_by_length else "random"
        result["training"]["token_lr_scale"] = args.token_lr_scale
        model_run = {"model": model_dir.name}  # a row's records resume only with the model that wrote them
        gen = GenRecommender.load(model_dir, dataset.catalog, device=args.device or _device(), name="sft")
        if "sft" in args.configs:
            configs["sft"] = _metrics(
                run_evaluation(
                    gen,
                    data.test,
                    runs / "sft",
                    decode(constrained=False),
                    run_config=model_run,
                )
            )
        if "sft-cgen" in args.configs:
            configs["sft-cgen"] = _metrics(
                run_evaluation(
                    gen,
                    data.test,
                    runs / "sft-cgen",
                    decode(constrained=True),
                    run_config=model_run,
                )
            )
    per_example: dict[str, dict[str, dict[str, float]]] = {}
    if "sasrec" in args.configs and teacher is not None:
        configs["sasrec"], per_example["sasrec"] = teacher_scores(teacher, dataset.catalog, data)
    if "popularity" in args.configs:
        configs["popularity"], per_example["popularity"] = teacher_scores(
            fit_teacher(split, "popularity"), dataset.catalog, data
        )
    for config in LLM_ROWS:
        if config in args.configs and (runs / config / "config.json").exists():
            per_example[config] = run_scores(runs / config, data)
    if len(per_example) > 1:
        result["paired"] = {**result.get("paired", {}), **paired_rows(per_example)}
    for config in args.configs:  # a later partial rerun must not relabel the rows it did not rerun
        if config in configs:
            configs[config]["settings"] = result["settings"]
    return result


def rescore_dataset(name: str, args: argparse.Namespace, previous: dict[str, Any]) -> dict[str, Any]:
    """The stored LLM runs of one dataset rescored with the current scorer, their summaries replaced."""
    from recai.evaluate.runs import RunFolder
    from recai.gen.evaluation import rescore_records
    from recai.gen.metrics import GenScorer, metrics_summary

    source, k_core, _ = SOURCES[name]
    dataset = load(source)
    if k_core:
        dataset = dataset.k_core(k_core)
    data = evaluated(GenData.load(args.work / name / f"data-{args.per_task}-{args.test_per_task}"), args)
    scorer = GenScorer(dataset.catalog, ks=KS)
    result = dict(previous)
    configs = result.setdefault("configs", {})
    wanted = {e.id for e in data.test}
    for config in ("zero-shot", "sft", "sft-cgen"):
        folder = args.out / args.name / name / config
        if config not in args.configs or not (folder / "config.json").exists():
            continue
        stored = json.loads((folder / "config.json").read_text())
        run_config = {k: v for k, v in stored.items() if k != "task"}
        with RunFolder.open(folder, task=stored["task"], config=run_config, resume=True) as run:
            changed = rescore_records(run, data.test, scorer)
            records = [r for r in run.records() if r["id"] in wanted]
            document = metrics_summary(records, seed=int(stored["system"]["decode"].get("seed", 0)))
            run.write_metrics(document)
            run.write_report()
        configs[config] = _metrics(document)
        print(f"{name} {config}: {changed} of {len(records)} records rescored")
    return result


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _metrics(document: dict[str, Any]) -> dict[str, Any]:
    """The headline metrics with their intervals, overall and per task; the ranking metrics (NDCG,
    recall) from the sequential examples, where the recommenders are scored too."""
    tasks = document.get("extra", {}).get("tasks", {})
    sequential = tasks.get("sequential", {}).get("metrics", {})
    metrics = {m: document["metrics"][m] for m in HEADLINE if m in document["metrics"]}
    for m in RANKING:
        if m in sequential:
            metrics[m] = sequential[m]
    return {
        "n": document.get("n"),
        "n_sequential": tasks.get("sequential", {}).get("n"),
        "metrics": metrics,
        "ranking_on": "sequential",
        "tasks": tasks,
    }


def evaluated(data: GenData, args: argparse.Namespace) -> GenData:
    """The test examples every row answers: the chosen tasks', the first N of each."""
    test = [e for e in data.test if args.eval_tasks is None or e.task in args.eval_tasks]
    return replace(data, test=first_per_task(test, args.limit_per_task))


def run_scores(folder: Path, data: GenData) -> dict[str, dict[str, float]]:
    """{example id: {ranking metric: score}} of an LLM row's sequential test examples."""
    wanted = {e.id for e in data.test if e.task == "sequential"}
    out: dict[str, dict[str, float]] = {}
    for record in RunFolder.load(folder).records():
        scores = record.get("scores") or {}
        if record["id"] in wanted:
            out[record["id"]] = {m: float(scores[m]) for m in RANKING if scores.get(m) is not None}
    return out


def paired_rows(per_example: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    """B - A for each pair of rows present, on the sequential examples both answered, Holm-corrected
    over the pairs of each metric (the question is which rows differ, asked of every pair at once)."""
    pairs = [(a, b) for a, b in PAIRS if a in per_example and b in per_example]
    out: dict[str, Any] = {f"{b} - {a}": {} for a, b in pairs}
    for metric in RANKING:
        stats = []
        for a, b in pairs:
            ids = sorted(i for i in set(per_example[a]) & set(per_example[b]) if metric in per_example[a][i])
            ids = [i for i in ids if metric in per_example[b][i]]
            if not ids:
                continue
            sa = np.array([per_example[a][i][metric] for i in ids])
            sb = np.array([per_example[b][i][metric] for i in ids])
            entry = paired_statistics(sa, sb, seed=0, n_resamples=10000)
            out[f"{b} - {a}"][metric] = entry
            stats.append(entry)
        for entry, p in zip(stats, holm([s["p_permutation"] for s in stats]), strict=True):
            entry["p_holm"] = p
    return out


def teacher_scores(
    teacher: Any, catalog: Any, data: GenData
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """A recommender's top-10 on the sequential test examples (the same users and targets as the LLMs),
    summarised, and each example's scores (for pairing with the other rows)."""
    per: dict[str, list[float]] = {}
    by_example: dict[str, dict[str, float]] = {}
    for example in data.test:
        if example.task != "sequential" or example.target is None:
            continue
        history = [int(p) for p in catalog.index_of(list(example.history))]
        seen = [int(p) for p in catalog.index_of(list(example.seen or example.history), missing="drop")]
        positions, _ = teacher.recommend(history, max(KS), exclude=seen)
        target = int(catalog.index_of([example.target])[0])
        scores = {
            key.replace("hit@", "recall@"): value
            for key, value in single_target_scores([int(p) for p in positions], target, KS).items()
        }
        by_example[example.id] = scores
        for key, value in scores.items():
            per.setdefault(key, []).append(value)
    metrics = {}
    for key, values in per.items():
        low, high = bootstrap_ci(np.array(values))
        metrics[key] = {"mean": float(np.mean(values)), "low": low, "high": high}
    summary = {"n": len(next(iter(per.values()), [])), "metrics": metrics, "task": "sequential only"}
    return summary, by_example


def report(summary: dict[str, Any]) -> str:
    lines = [
        f"# Generative recommendation with {summary['base_model']}",
        "",
        "All ratios over all test samples, an empty reply scoring the worst value on each; NDCG and recall "
        "on the sequential examples only (the n_seq column), for every row; intervals are in the JSON.",
        "",
    ]
    for name, result in summary["datasets"].items():
        lines += [f"## {name}", ""]
        if "protocol" in result:
            lines += [f"Protocol: {result['protocol']}.", ""]
        if "settings" in result:
            lines += ["Settings: " + ", ".join(f"{k} {v}" for k, v in result["settings"].items()) + ".", ""]
        if "training" in result:
            t = result["training"]
            lines += [
                f"SFT: {t['steps']} steps in {t['seconds_this_run']} s on {t['device']} ({t['precision']}), "
                f"{t['tokens_per_second']} tokens/s, final training loss {t['train_loss']:.3f}.",
                "",
            ]
        settings = result.get("settings", {})
        for config, entry in result.get("configs", {}).items():
            theirs = entry.get("settings")
            if theirs is None:
                lines += [
                    f"`{config}`: settings not recorded (a run from before they were kept per row).",
                    "",
                ]
            elif theirs != settings:
                differ = ", ".join(
                    f"{k} {theirs.get(k)}"
                    for k in sorted(set(theirs) | set(settings))
                    if theirs.get(k) != settings.get(k)
                )
                lines += [f"`{config}` ran with other settings: {differ}.", ""]
        header = "| config | n | n_seq | " + " | ".join(HEADLINE) + " |"
        lines += [header, "|---" * (len(HEADLINE) + 3) + "|"]
        for config, entry in result.get("configs", {}).items():
            cells = [_cell(entry["metrics"].get(m), interval=m in RANKING) for m in HEADLINE]
            n_seq = entry.get("n_sequential", entry["n"])
            lines.append(f"| {config} | {entry['n']} | {n_seq} | " + " | ".join(cells) + " |")
        lines.append("")
        if result.get("paired"):
            lines += [
                "Paired on the same sequential examples (B - A, 95% paired bootstrap interval, sign-flip p "
                "Holm-corrected over the pairs):",
                "",
                "| B - A | n | " + " | ".join(RANKING) + " |",
                "|---" * (len(RANKING) + 2) + "|",
            ]
            for pair, stats in result["paired"].items():
                n = next((s["n"] for s in stats.values()), 0)
                cells = [
                    f"{stats[m]['diff']:+.3f} [{stats[m]['diff_low']:+.3f}, {stats[m]['diff_high']:+.3f}] "
                    f"p={stats[m]['p_holm']:.3g}"
                    if m in stats
                    else "-"
                    for m in RANKING
                ]
                lines.append(f"| {pair} | {n} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def _cell(stat: dict[str, Any] | None, *, interval: bool) -> str:
    """A table cell: the mean, with its 95% interval where asked."""
    if stat is None:
        return "-"
    if interval and "low" in stat:
        return f"{stat['mean']:.3f} [{stat['low']:.3f}, {stat['high']:.3f}]"
    return f"{stat['mean']:.3f}"


if __name__ == "__main__":
    main()
