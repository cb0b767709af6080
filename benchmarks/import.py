"""Bring-your-own-data import: published datasets as they are, and a 10-million-row log.

Usage: python benchmarks/import.py [--datasets ../shared/datasets] [--rows 10000000]
       [--out benchmarks/results/import.json]

Three measurements, all through the generic importer (``recai.data.loaders.tabular``), never a
dataset-specific loader:

1. **Last.fm HetRec 2011 as published** (``artists.dat`` with a header, ``user_artists.dat`` without
   one, tabs, listen counts, no timestamps): the spec used is printed into the result; it must be at
   most 10 lines. Also the quick path with no spec at all, which must find the same columns.
2. **ml-latest-small through the generic importer**, with derived year, genres list and a tag side
   table, compared value by value with the MovieLens loader's dataset (items column by column, and the
   interaction frame).
3. **Scale**: a generated CSV log of ``--rows`` events (user, item, timestamp, rating) over 200,000
   items, imported and saved in a child process: wall time and peak resident memory (targets: under
   60 s and under 4 GB on the 2-core benchmark machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import recai
from recai.data.atomic import write_text_atomic

LASTFM_SPEC = """\
name: lastfm
noun: artists
items: {{path: {folder}/artists.dat, id: id, title: name}}
interactions:
  path: {folder}/user_artists.dat
  names: [userID, artistID, weight]
  user: userID
  item: artistID
  weight: weight
"""

ML_SPEC = r"""
name: ml-latest-small-generic
items:
  path: {folder}/movies.csv
  rename: {{movieId: item_id}}
  na_values: ["(no genres listed)"]
  columns:
    - {{name: item_id, role: id}}
    - {{name: title, role: title}}
    - {{name: genres, role: multi_categorical, separator: "|"}}
  derive:
    - {{name: year, from: title, pattern: '\((\d{{4}})(?:[-–]\d{{0,4}})?\)\s*$', role: numeric,
       description: release year}}
  attributes:
    - {{name: tags, path: {folder}/tags.csv, item: movieId, value: tag, lowercase: true, top: 10,
       from_interactions: true, description: user tags}}
interactions: {{path: {folder}/ratings.csv, user: userId, item: movieId, timestamp: timestamp,
  rating: rating}}
"""


def _norm(value: Any) -> Any:
    if isinstance(value, (list, np.ndarray)):
        return [str(v) for v in value]
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def lastfm(folder: Path, work: Path) -> dict[str, Any]:
    from recai.data.loaders.tabular import import_tabular

    spec_text = LASTFM_SPEC.format(folder=folder)
    spec = work / "lastfm.yaml"
    spec.write_text(spec_text)
    start = time.perf_counter()
    result = import_tabular(spec)
    seconds = time.perf_counter() - start
    ds = result.dataset
    quick_start = time.perf_counter()
    quick = import_tabular(items_path=folder / "artists.dat", interactions_path=folder / "user_artists.dat")
    quick_s = time.perf_counter() - quick_start
    log = quick.resolved_spec["interactions"]
    same = (
        quick.dataset.interactions.frame[["user_id", "item_id", "weight"]].equals(
            ds.interactions.frame[["user_id", "item_id", "weight"]]
        )
        and quick.dataset.catalog.ids.equals(ds.catalog.ids)
        and quick.dataset.catalog.titles == ds.catalog.titles
    )
    return {
        "spec": spec_text.replace(str(folder), "<datasets>/lastfm-hetrec2011"),
        "spec_lines": len(spec_text.strip().splitlines()),
        "seconds": round(seconds, 3),
        "items": len(ds.catalog),
        "interactions": len(ds.interactions),
        "users": ds.interactions.n_users,
        "has_timestamps": ds.interactions.has_timestamps,
        "weight": ds.interactions.describe()["weight"],
        "noun": ds.noun,
        "event_order": ds.meta.get("event_order"),
        "quick_path": {
            "seconds": round(quick_s, 3),
            "inferred": {k: log.get(k) for k in ("user", "item", "timestamp", "weight", "order")},
            "noun": quick.dataset.noun,
            "name": quick.dataset.name,
            "same_dataset_as_spec": bool(same),
            "notes": quick.notes,
        },
    }


def movielens(folder: Path, work: Path) -> dict[str, Any]:
    from recai.data.loaders.movielens import load_movielens_csv
    from recai.data.loaders.tabular import import_tabular

    spec = work / "ml.yaml"
    spec.write_text(ML_SPEC.format(folder=folder))
    start = time.perf_counter()
    generic = import_tabular(spec).dataset
    generic_s = time.perf_counter() - start
    start = time.perf_counter()
    loader = load_movielens_csv(folder)
    loader_s = time.perf_counter() - start
    columns: dict[str, Any] = {}
    for name in loader.catalog.items.columns:
        a = (
            [_norm(v) for v in generic.catalog.items[name].tolist()]
            if name in generic.catalog.items
            else None
        )
        b = [_norm(v) for v in loader.catalog.items[name].tolist()]
        differing = None if a is None else sum(x != y for x, y in zip(a, b, strict=True))
        columns[name] = {"equal": a == b, "differing_rows": differing}
    roles_equal = {(c.name, c.role, c.from_interactions) for c in generic.catalog.schema.columns} == {
        (c.name, c.role, c.from_interactions) for c in loader.catalog.schema.columns
    }
    return {
        "generic_seconds": round(generic_s, 3),
        "loader_seconds": round(loader_s, 3),
        "items": len(generic.catalog),
        "interactions": len(generic.interactions),
        "item_columns": columns,
        "roles_equal": roles_equal,
        "interactions_equal": bool(generic.interactions.frame.equals(loader.interactions.frame)),
        "noun": generic.noun,
        "equal": all(c["equal"] for c in columns.values())
        and roles_equal
        and bool(generic.interactions.frame.equals(loader.interactions.frame)),
    }


def _generate(work: Path, rows: int, seed: int = 0) -> tuple[Path, Path, float]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    n_items = 200_000
    items = pa.table({"item_id": np.arange(n_items), "title": [f"Item number {i}" for i in range(n_items)]})
    pacsv.write_csv(items, work / "items.csv")
    users = rng.integers(0, rows // 20, size=rows)
    popularity = rng.zipf(1.3, size=rows) % n_items
    events = pa.table(
        {
            "user_id": users,
            "item_id": popularity,
            "timestamp": 1_500_000_000 + rng.integers(0, 200_000_000, size=rows),
            "rating": rng.integers(1, 11, size=rows) / 2.0,
        }
    )
    pacsv.write_csv(events, work / "events.csv")
    return work / "items.csv", work / "events.csv", time.perf_counter() - start


def _large_worker(items: str, events: str, out: str) -> None:
    """Runs in a child process so that peak memory is the import's own."""
    from recai.data.loaders.tabular import import_tabular

    start = time.perf_counter()
    result = import_tabular(items_path=items, interactions_path=events, name="large")
    read_s = time.perf_counter() - start
    result.dataset.save(Path(out) / "large")
    total = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "import_s": round(read_s, 2),
                "import_and_save_s": round(total, 2),
                "peak_rss_gib": round(peak_kib / 2**20, 2),
                "interactions": len(result.dataset.interactions),
                "users": result.dataset.interactions.n_users,
            }
        )
    )


def scale(rows: int, work: Path) -> dict[str, Any]:
    items, events, gen_s = _generate(work, rows)
    proc = subprocess.run(
        [sys.executable, __file__, "--large-worker", str(items), str(events), str(work)],
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "rows": rows,
        "csv_mib": round(events.stat().st_size / 2**20, 1),
        "generate_s": round(gen_s, 1),
        **measured,
        "targets": {"seconds": 60, "peak_gib": 4},
        "meets_targets": measured["import_and_save_s"] < 60 and measured["peak_rss_gib"] < 4,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "datasets"
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "import.json")
    parser.add_argument("--large-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.large_worker:
        _large_worker(*args.large_worker)
        return
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["RECAI_HOME"] = str(work / "home")
        for key, folder, fn in (
            ("lastfm", args.datasets / "lastfm-hetrec2011", lastfm),
            ("ml-latest-small", args.datasets / "ml-latest-small", movielens),
        ):
            results[key] = fn(folder, work) if folder.exists() else {"skipped": f"{folder} not found"}
            print(key, json.dumps(results[key], default=str)[:400], flush=True)
        results["scale"] = scale(args.rows, work)
        print("scale", results["scale"], flush=True)
    report = {
        "benchmark": "import",
        "recai_version": recai.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "pandas": pd.__version__,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
