"""Load and split time for the real MovieLens files, and agreement with the reference split.

Usage: python benchmarks/data_load.py [--datasets ../shared/datasets] [--out results/data_load.json]

For each dataset: time to parse the publisher's raw files into a Dataset, time for the iterative
5-core plus leave-one-out split, and whether recai's split is identical (same user-item pairs in
train, valid and test) to the reference split in ``<datasets>/splits/`` when present. Times are the
median of ``--repeats`` runs in this process (after one warm-up load, so imports are not counted).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import recai
from recai.data import load
from recai.data.atomic import write_text_atomic
from reference_split import split_agreement

T = TypeVar("T")

DATASETS = {"ml-latest-small": ("ml-latest-small", "ml-latest-small"), "ml-100k": ("ml-100k", "ml100k")}


def _timed(fn: Callable[[], T], repeats: int) -> tuple[float, T]:
    times: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result  # type: ignore[possibly-undefined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "datasets"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "data_load.json")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    load("demo")  # warm-up: imports and DuckDB start-up are not what we measure
    results: dict[str, object] = {}
    demo_s, _ = _timed(lambda: load("demo"), args.repeats)
    results["demo"] = {"load_s": round(demo_s, 4)}
    for name, (folder, split_name) in DATASETS.items():
        path = args.datasets / folder
        if not path.exists():
            results[name] = {"skipped": f"{path} not found"}
            continue
        load_s, ds = _timed(lambda p=path: load(p), args.repeats)
        split_s, split = _timed(lambda d=ds: d.k_core(5).split("leave_one_out"), args.repeats)
        entry: dict[str, object] = {
            "load_s": round(load_s, 4),
            "kcore5_loo_split_s": round(split_s, 4),
            "items": len(ds.catalog),
            "interactions": len(ds.interactions),
            "users": ds.interactions.n_users,
            "split": split.describe(),
        }
        reference = args.datasets / "splits" / f"{split_name}.5core_loo.tsv"
        if reference.exists():
            entry["reference_split"] = split_agreement(split, reference)
        results[name] = entry
        print(name, json.dumps(entry))
    report = {
        "benchmark": "data_load",
        "recai_version": recai.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "repeats": args.repeats,
        "results": results,
    }
    write_text_atomic(args.out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
