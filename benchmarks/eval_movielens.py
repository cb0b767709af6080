"""The evaluator's reference measurements on ml-latest-small (leave-one-out by time, 5-core).

Usage: python benchmarks/eval_movielens.py [--data ../shared/datasets/ml-latest-small] [--users 200]
       [--full random popularity itemcf bpr sasrec] [--ranking popularity sasrec llm:SPEC ...]

1. Full-catalog ranking of every test user (history excluded) for the classic systems.
2. 20-candidate ranking (uniform negatives, seeded) for ``--users`` users: the offline Qwen2.5 1.5B and
   0.5B models zero-shot, with popularity and SASRec on the same candidates.
Each system gets a run folder (config, per-sample records, metrics with 95% bootstrap CIs, usage,
report.md with plots) under benchmarks/results/eval/ml-latest-small/, and a summary JSON is written
next to them. Runs resume: re-running skips samples that are already recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from recai.data.atomic import write_text_atomic
from recai.evaluate.generative import ListSampling
from recai.evaluate.prepare import DataOptions
from recai.evaluate.runners import run_list_eval, run_recommender_eval
from recai.evaluate.runs import RunFolder

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED / "datasets" / "ml-latest-small"))
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--sasrec-budget-s", type=float, default=240.0)
    parser.add_argument("--full", nargs="*", default=["random", "popularity", "itemcf", "bpr", "sasrec"])
    parser.add_argument(
        "--ranking",
        nargs="*",
        default=[
            "popularity",
            "sasrec",
            "llm:local:qwen2.5-0.5b-instruct",
            "llm:local:qwen2.5-1.5b-instruct",
        ],
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "eval" / "ml-latest-small")
    args = parser.parse_args()
    data = DataOptions(args.data, k_core=5, seed=0)
    summary: dict = {
        "benchmark": "eval_movielens",
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "data": "ml-latest-small, implicit, 5-core, leave-one-out by time",
        "full_ranking": {},
        "candidate_ranking": {
            "users": args.users,
            "candidates": 20,
            "negatives": "uniform",
            "history_len": 20,
        },
    }
    for system in args.full:
        started = time.perf_counter()
        report = run_recommender_eval(
            system, args.out / f"full-{system}", data=data, sasrec_budget_s=args.sasrec_budget_s
        )
        metrics = RunFolder.load(report.parent).read_metrics()
        summary["full_ranking"][system] = {
            "ndcg@10": metrics["metrics"]["ndcg@10"],
            "hit@10": metrics["metrics"]["hit@10"],
            "users": metrics["n"],
            "wall_s_this_invocation": round(time.perf_counter() - started, 1),
        }
        print(system, json.dumps(summary["full_ranking"][system]), flush=True)
    for system in args.ranking:
        started = time.perf_counter()
        report = run_list_eval(
            "ranking",
            system,
            args.out / f"ranking-{system.replace(':', '_')}",
            data=data,
            sasrec_budget_s=args.sasrec_budget_s,
            sampling=ListSampling(n_users=args.users),
        )
        metrics = RunFolder.load(report.parent).read_metrics()
        summary["candidate_ranking"][system] = {
            "ndcg@10": metrics["metrics"]["ndcg@10"],
            "hit@1": metrics["metrics"]["hit@1"],
            "hit@10": metrics["metrics"]["hit@10"],
            "counts": metrics.get("counts"),
            "users": metrics["n"],
            "wall_s_this_invocation": round(time.perf_counter() - started, 1),
        }
        print(system, json.dumps(summary["candidate_ranking"][system]), flush=True)
    target = HERE / "results" / "eval_movielens.json"
    write_text_atomic(target, json.dumps(summary, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
