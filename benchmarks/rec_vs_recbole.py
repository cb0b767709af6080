"""recai's classic recommenders side by side with RecBole 1.2.1 on the reference split.

Usage: python benchmarks/rec_vs_recbole.py [--budget-min 10] [--datasets ml100k ml-latest-small]
           [--recbole-work DIR] [--skip-recbole] [--out benchmarks/results/rec_vs_recbole.json]

Protocol (shared with RecBole's runner in ../shared/tools/recbole-baseline): implicit feedback, iterative
5-core, leave-one-out by time (ties by file row order; recai's split is checked against the reference
file), full ranking over the 5-core items, the user's history excluded for every model, test metrics
at 10 and 20 with the model selected on validation NDCG@10. Both SASRecs (CE loss, hidden 64, 2
layers, 2 heads, max length 50) get the same wall-clock budget. RecBole runs in its own virtual
environment through the shared runner and is never imported here. Runs are sequential so that the two
sides never compete for the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from recai.data import load
from recai.data.atomic import write_text_atomic
from recai.evaluate.recommender import evaluate_recommender
from recai.rec import ALS, BPR, ItemKNN, Popularity, SASRec
from reference_split import split_agreement

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"
DATASETS = {"ml100k": "ml-100k", "ml-latest-small": "ml-latest-small"}
RECBOLE_TAGS = {"Pop": "popularity", "ItemKNN": "itemcf", "BPR": "bpr", "SASRec_CE_bs256": "sasrec"}
METRICS = ("hit@10", "ndcg@10", "mrr@10", "hit@20", "ndcg@20", "mrr@20")


RECAI_MODELS = ("popularity", "itemcf", "bpr", "als", "sasrec")


def run_recai(
    name: str, budget_s: float, threads: int, only: tuple[str, ...] = RECAI_MODELS
) -> dict[str, Any]:
    ds = load(SHARED / "datasets" / DATASETS[name]).k_core(5)
    split = ds.split("leave_one_out")
    candidates = np.flatnonzero(ds.interactions.item_counts() > 0)
    out: dict[str, Any] = {
        "counts_after_5core": {
            "users": ds.interactions.n_users,
            "items": len(candidates),
            "interactions": len(ds.interactions),
        },
        "reference_split": split_agreement(split, SHARED / "datasets" / "splits" / f"{name}.5core_loo.tsv"),
        "models": {},
    }
    models = {
        "popularity": Popularity(),
        "itemcf": ItemKNN(neighbours=100),
        "bpr": BPR(),
        "als": ALS(),
        "sasrec": SASRec(time_budget_s=budget_s, epochs=10_000, patience=40, threads=threads),
    }
    for label, model in models.items():
        if label not in only:
            continue
        start = time.perf_counter()
        model.fit(split.train, valid=split.valid)
        fit_s = time.perf_counter() - start
        result = evaluate_recommender(
            model,
            split.train_and_valid(),
            split.test,
            candidates=candidates,
            item_counts=split.train.item_counts(),
        )
        history = getattr(model, "history_", [])
        row: dict[str, Any] = {
            "test_masked": {m: round(result[m]["mean"], 4) for m in METRICS},
            "test_ndcg@10_ci95": [
                round(result["ndcg@10"]["ci_low"], 4),
                round(result["ndcg@10"]["ci_high"], 4),
            ],
            "fit_s": round(fit_s, 1),
            "total_s": round(time.perf_counter() - start, 1),
        }
        if history:
            best = max(history, key=lambda h: h.get("valid_ndcg@10", -1))
            row["valid_ndcg@10_best"] = round(best["valid_ndcg@10"], 4)
            row["epochs"] = len(history)
            if label == "sasrec":
                row["s_per_epoch"] = round(history[-1]["seconds"] / len(history), 2)
                row["time_to_best_valid_s"] = round(best["seconds"], 1)
                row["best_epoch"] = best["epoch"]
                row["stopped_by"] = "time_budget" if history[-1]["seconds"] >= budget_s else "early_stopping"
            else:
                row["iterations"] = history[-1]["iteration"]
                row["time_to_best_valid_s"] = round(best["seconds"], 1)
        out["models"][label] = row
        print(name, label, json.dumps(row), flush=True)
    return out


def run_recbole(name: str, budget_min: float, work: Path, threads: int) -> dict[str, Any]:
    runner = SHARED / "tools" / "recbole-baseline" / "run.sh"
    env = {**os.environ, "RECBOLE_WORK": str(work)}
    out: dict[str, Any] = {}
    for tag, label in RECBOLE_TAGS.items():
        cmd = ["bash", str(runner), name, tag, "--threads", str(threads)]
        if label == "sasrec":
            cmd += ["--time-budget-min", str(budget_min)]
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        result_file = work / "results" / f"{name}__{tag}.json"
        if done.returncode != 0 or not result_file.exists():
            out[label] = {"error": (done.stderr or done.stdout)[-2000:]}
            continue
        r = json.loads(result_file.read_text())
        masked = r["independent_eval"]["test"]["masked"]
        epochs = r.get("epochs_trained", 1)
        best = r.get("best_epoch_0based", 0) or 0
        train_s, valid_s = r.get("train_epoch_s") or [], r.get("valid_epoch_s") or []
        out[label] = {
            "recbole_tag": tag,
            "test_masked": {m: round(masked[m], 4) for m in METRICS},
            "epochs": epochs,
            "s_per_epoch": round(r.get("mean_train_epoch_s") or 0.0, 2),
            "time_to_best_valid_s": round(sum(train_s[: best + 1]) + sum(valid_s[: best + 1]), 1),
            "stopped_by": r.get("stopped_by"),
            "fit_s": round(r.get("time_fit_s", 0.0), 1),
            "total_s": round(time.perf_counter() - start, 1),
        }
        print(name, "recbole", label, json.dumps(out[label]), flush=True)
    return out


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's acceptance checks, computed rather than eyeballed."""
    floors = {"ml100k": 0.107, "ml-latest-small": 0.061}
    checks: dict[str, Any] = {}
    for name, entry in results.items():
        ours = entry["recai"]["models"]
        theirs = entry.get("recbole", {})

        def ndcg(side: dict[str, Any], label: str) -> float | None:
            return side.get(label, {}).get("test_masked", {}).get("ndcg@10")

        checks[name] = {
            "sasrec_at_least_floor": ndcg(ours, "sasrec") is not None
            and ndcg(ours, "sasrec") >= floors[name],
            "sasrec_floor": floors[name],
        }
        for label in ("sasrec", "bpr", "itemcf"):
            a, b = ndcg(ours, label), ndcg(theirs, label)
            checks[name][f"{label}_at_least_recbole"] = None if a is None or b is None else a >= b
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--budget-min", type=float, default=10.0, help="wall-clock budget of each SASRec")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--recbole-work", type=Path, default=Path(os.environ.get("RECBOLE_WORK", ".recbole-work"))
    )
    parser.add_argument("--skip-recbole", action="store_true")
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(RECAI_MODELS),
        choices=RECAI_MODELS,
        help="recai models to run; with --merge, the others keep their numbers from --out",
    )
    parser.add_argument("--merge", action="store_true", help="update --out instead of replacing it")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "rec_vs_recbole.json")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if args.merge and args.out.exists():
        results = json.loads(args.out.read_text())["results"]
    for name in args.datasets:
        fresh = run_recai(name, args.budget_min * 60, args.threads, tuple(args.models))
        entry = results.setdefault(name, {})
        if args.merge and "recai" in entry:
            entry["recai"].update({k: v for k, v in fresh.items() if k != "models"})
            entry["recai"]["models"].update(fresh["models"])
        else:
            entry["recai"] = fresh
    if not args.skip_recbole:
        for name in args.datasets:
            results[name]["recbole"] = run_recbole(
                name, args.budget_min, args.recbole_work.resolve(), args.threads
            )
    report = {
        "benchmark": "rec_vs_recbole",
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "budget_min_per_sasrec": args.budget_min,
        "protocol": "implicit, iterative 5-core, leave-one-out by time, full ranking over 5-core items, "
        "history excluded, test metrics of the best-validation model",
        "results": results,
        "targets": targets(results) if all("recbole" in r for r in results.values()) else None,
    }
    write_text_atomic(args.out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
