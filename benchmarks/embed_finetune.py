"""RecLM-emb: the base all-MiniLM-L6-v2 against the same model fine-tuned on the ten matching tasks.

Usage: python benchmarks/embed_finetune.py [--datasets demo ml-latest-small] [--per-task 800]
       [--epochs 1] [--batch-size 32] [--hard-negatives 1] [--llm SPEC]

For each dataset: build the examples (split by item, 10% of items held out, seed 0), fine-tune on the
training examples, and evaluate both models on the held-out test queries over the full catalog. Per
task: Recall@k, NDCG@k and coverage@k with bootstrap intervals, and paired differences with
Holm-adjusted p-values. Writes benchmarks/results/embed_finetune.json and a report per dataset under
benchmarks/results/embed/DATASET/report.md. Every stage resumes: examples, checkpoints and evaluations
are kept in benchmarks/.work/embed/ (ignored by git; the examples quote the dataset).
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
from recai.embed.evaluation import compare_retrieval, evaluate_retrieval, summarize_records
from recai.embed.tasks import ExampleSplit, build_examples
from recai.embed.training import TRAINING_FILE, TrainConfig, train_embedder, write_model_card

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
SOURCES = {"demo": "demo", "ml-latest-small": str(SHARED / "datasets" / "ml-latest-small")}
NOUNS = {"demo": "film", "ml-latest-small": "movie"}
TARGET_TASKS, TARGET_GAIN = 8, 0.30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=list(SOURCES))
    parser.add_argument("--per-task", type=int, default=800)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hard-negatives", type=int, default=1)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument(
        "--split-by",
        choices=("user", "item"),
        default="user",
        help="user: history tasks hold out users (their items stay known), item tasks hold out items",
    )
    parser.add_argument("--llm", default=None, help="a chat model to write summaries and searches")
    parser.add_argument("--work", type=Path, default=HERE / ".work" / "embed")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    summary_path = args.out / "embed_finetune.json"
    summary: dict[str, Any] = (
        json.loads(summary_path.read_text()) if summary_path.exists() else {"datasets": {}}
    )
    summary.update(
        {
            "benchmark": "embed_finetune",
            "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
            "base_model": "all-MiniLM-L6-v2 (packaged offline copy)",
            "split": f"by {args.split_by}, 10% held out, seed 0; test queries deduplicated against training",
            "target": f"fine-tuned beats base on >= {TARGET_TASKS} of 10 tasks and by >= "
            f"{TARGET_GAIN:.0%} relative Recall@10 averaged over tasks",
        }
    )
    for name in args.datasets:
        summary["datasets"][name] = run_dataset(name, args)
        write_text_atomic(summary_path, json.dumps(summary, indent=2) + "\n")
    print(json.dumps({n: d["verdict"] for n, d in summary["datasets"].items()}, indent=2))


def run_dataset(name: str, args: argparse.Namespace) -> dict[str, Any]:
    work = args.work / name
    dataset = load(SOURCES[name])
    data_dir = work / f"data-{args.per_task}-{args.split_by}"
    started = time.perf_counter()
    if not (data_dir / "meta.json").exists():
        split = build_examples(
            dataset,
            per_task=args.per_task,
            seed=0,
            noun=NOUNS.get(name),
            llm=_llm(args),
            split_by=args.split_by,
        )
        split.save(data_dir)
    split = ExampleSplit.load(data_dir)
    data_seconds = time.perf_counter() - started
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        hard_negatives=args.hard_negatives,
        learning_rate=args.lr,
        save_steps=50,
    )
    settings = (
        f"{args.per_task}-{args.split_by}-{args.batch_size}-{args.hard_negatives}-{args.lr}-{args.epochs}"
    )
    model_dir = work / f"model-{settings}"
    if not (model_dir / TRAINING_FILE).exists():
        train_embedder(split, dataset.catalog, model_dir, config)
    training = json.loads((model_dir / TRAINING_FILE).read_text())
    base = _evaluation(work / f"eval-base-{args.split_by}.json", "st:all-minilm-l6-v2", dataset, split)
    tuned = _evaluation(model_dir / "eval-test.json", f"st:{model_dir}", dataset, split)
    write_model_card(model_dir, tuned.to_dict())
    comparison = compare_retrieval(base, tuned, metrics=("recall@10", "ndcg@10", "recall@1"))
    recall = comparison["summary"]["recall@10"]
    result = {
        "source": name,
        "split_by": args.split_by,
        "catalog_items": len(dataset.catalog),
        "examples": split.counts(),
        "llm": split.meta.get("llm"),
        "data_seconds": round(data_seconds, 1),
        "training": {
            "config": training["config"],
            "rows": training["data"]["rows"],
            "steps": training["training"]["steps"],
            "seconds": training["training"]["seconds_this_run"],
            "device": training["training"]["device"],
            "masked_false_negatives": training["training"]["masked_false_negatives"],
            "loss_curve": training["training"]["loss_curve"],
        },
        "base": base.to_dict(),
        "tuned": tuned.to_dict(),
        "comparison": comparison,
        "verdict": {
            "tasks_improved_recall@10": recall["tasks_improved"],
            "tasks_improved_significantly": recall["tasks_improved_significantly"],
            "macro_recall@10": [round(recall["base_macro"], 4), round(recall["tuned_macro"], 4)],
            "relative_gain_of_macro": round(recall["relative_gain"], 3),
            "mean_per_task_relative_gain": round(recall["mean_task_relative_gain"], 3),
            "target_met": recall["tasks_improved"] >= TARGET_TASKS and recall["relative_gain"] >= TARGET_GAIN,
        },
    }
    report = args.out / "embed" / name / "report.md"
    write_text_atomic(report, _report(name, result))
    return result


def _llm(args: argparse.Namespace) -> Any:
    if not args.llm:
        return None
    from recai.llm import load_chat_model

    return load_chat_model(args.llm)


def _evaluation(path: Path, spec: str, dataset: Any, split: ExampleSplit) -> Any:
    """Evaluate once and keep the per-query records, so a rerun only recomputes the summary."""
    if path.exists():
        stored = json.loads(path.read_text())
        return summarize_records(stored["encoder"], stored["ks"], stored["records"])
    evaluation = evaluate_retrieval(load_encoder(spec), dataset.catalog, split.test)
    write_text_atomic(path, json.dumps(evaluation.to_dict(with_records=True)) + "\n")
    return evaluation


def _report(name: str, r: dict[str, Any]) -> str:
    t = r["training"]
    v = r["verdict"]
    lines = [
        f"# Fine-tuned all-MiniLM-L6-v2 on `{name}`",
        "",
        f"{r['catalog_items']} catalog items; {t['rows']} training rows, {t['steps']} steps of "
        f"{t['config']['batch_size']} with {t['config']['hard_negatives']} hard negative(s), "
        f"learning rate {t['config']['learning_rate']}, in {t['seconds']:.0f} s on {t['device']} "
        f"({r['data_seconds']:.0f} s to build the examples; LLM: {r['llm'] or 'none, templates'}).",
        "",
        f"Held-out test queries (split by {r['split_by']}: history tasks hold out "
        + ("users" if r["split_by"] == "user" else "items")
        + ", item tasks hold out items), ranked over the full catalog.",
        "Recall@10 and NDCG@10 with 95% bootstrap intervals; the difference is paired, with Holm-adjusted",
        "sign-flip p-values over the ten tasks.",
        "",
        "| task | n | Recall@10 base | Recall@10 tuned | diff [95% CI] | p (Holm) | NDCG@10 base "
        "| NDCG@10 tuned | coverage@10 base | coverage@10 tuned |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task, entry in r["comparison"]["tasks"].items():
        b, u = r["base"]["tasks"][task], r["tuned"]["tasks"][task]
        rc = entry["recall@10"]
        cov = (
            f"{b['coverage@10']['mean']:.3f} | {u['coverage@10']['mean']:.3f}"
            if "coverage@10" in b
            else "- | -"
        )
        lines.append(
            f"| {task} | {b['n']} | {_ci(b['recall@10'])} | {_ci(u['recall@10'])} | "
            f"{rc['diff']:+.3f} [{rc['diff_low']:+.3f}, {rc['diff_high']:+.3f}] | {rc['p_holm']:.3g} | "
            f"{b['ndcg@10']['mean']:.3f} | {u['ndcg@10']['mean']:.3f} | {cov} |"
        )
    lines += [
        "",
        f"Macro Recall@10: {v['macro_recall@10'][0]:.3f} -> {v['macro_recall@10'][1]:.3f} "
        f"({v['relative_gain_of_macro']:+.1%} relative; mean of per-task relative gains "
        f"{v['mean_per_task_relative_gain']:+.1%}). Better on {v['tasks_improved_recall@10']} of 10 tasks "
        f"({v['tasks_improved_significantly']} significant at 0.05 after Holm). "
        f"Target met: {'yes' if v['target_met'] else 'no'}.",
        "",
    ]
    return "\n".join(lines)


def _ci(m: dict[str, float]) -> str:
    return f"{m['mean']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"


if __name__ == "__main__":
    main()
