"""The knowledge plugin's measurement: does domain knowledge in the prompt make a small offline LLM rank
better, and how does it compare with classic recommenders on the same candidates?

Usage:
    python benchmarks/knowledge.py [--datasets ml-latest-small ml-100k] [--users 200]
        [--configs none attributes cooccurrence embedding recommender patterns graph all
                   popularity itemcf sasrec]
        [--llm local:qwen2.5-1.5b-instruct] [--budget 400] [--sasrec-budget-s 240]
        [--out benchmarks/results/knowledge] [--summary benchmarks/results/knowledge.json]

Protocol (per dataset): implicit feedback, 5-core, leave-one-out by time, seed 0; ``--users`` test users
(a seeded prefix, so a larger number extends the runs), each with the held-out item plus 19 negatives
drawn by training popularity, in a seeded order; the 20 most recent history items shown. One knowledge
base per dataset (``<out>/<dataset>/base``: every extractor fitted on the training part, SASRec for the
embedding and recommender knowledge) is built once and shared by every configuration, so "SASRec alone"
and "the LLM told what SASRec thinks" use the same SASRec. The catalog's ``tags`` column
(ml-latest-small) is left out of the attributes and the graph: MovieLens tags are written by the
users, with timestamps, and can come from the very events that are held out.

Configurations: ``none`` (the same ranker prompt without knowledge), each extractor alone, ``all``
combined (the LLM ones), and the ``popularity``, ``itemcf`` and ``sasrec`` rankers. Each is a run folder
under ``<out>/<dataset>/<config>`` (config, per-sample records, metrics with 95% bootstrap intervals,
usage, report.md), resumed when run again. The summary JSON (merged with what earlier invocations
wrote, so ``--configs`` can run a few at a time) has NDCG@1/5/10 and Hit@1/5/10 with intervals, the
average prompt and knowledge size in the target model's tokens, the answer repairs, and each knowledge
configuration's paired difference to ``none``; a Markdown report is written next to it.
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

from recai.data.atomic import write_text_atomic
from recai.evaluate.compare import compare_runs
from recai.evaluate.generative import ListSampling
from recai.evaluate.prepare import DataOptions
from recai.evaluate.runs import RunFolder
from recai.knowledge import KINDS
from recai.knowledge.evaluation import run_knowledge_eval
from recai.knowledge.ranker import in_shown_order, lenient_numbers, repair
from recai.knowledge.workflows import build_knowledge

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"
DATASETS = {
    "ml-latest-small": SHARED / "datasets" / "ml-latest-small",
    "ml-100k": SHARED / "datasets" / "ml-100k",
}
LLM_CONFIGS = ("none", *KINDS, "all")
#: DOKE's prompt variants, each on top of ``all`` (the same knowledge, another way of asking).
DOKE_CONFIGS: dict[str, dict[str, Any]] = {
    "doke-examples": {"n_examples": 3},
    "doke-chain": {"prompt_style": "chain"},
    "doke-rating": {"prompt_style": "rating"},
}
BASELINES = ("popularity", "itemcf", "sasrec")
METRICS = ("ndcg@1", "ndcg@5", "ndcg@10", "hit@1", "hit@5", "hit@10")
TARGET_GAIN = 0.30  # the bar: the best knowledge beats no knowledge by 30% relative NDCG@10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--data-dir", type=Path, default=None, help="Folder holding the dataset folders.")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--configs", nargs="*", default=[*LLM_CONFIGS, *BASELINES])
    parser.add_argument(
        "--doke-users", type=int, default=100, help="Users for the DOKE variants (a prefix of --users)."
    )
    parser.add_argument("--llm", default="local:qwen2.5-1.5b-instruct")
    parser.add_argument("--budget", type=int, default=400, help="Knowledge tokens per prompt.")
    parser.add_argument("--sasrec-budget-s", type=float, default=240.0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "knowledge")
    parser.add_argument("--summary", type=Path, default=HERE / "results" / "knowledge.json")
    args = parser.parse_args()
    known = (*LLM_CONFIGS, *DOKE_CONFIGS, *BASELINES)
    unknown = [c for c in args.configs if c not in known]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {list(known)}")

    summary = _read(args.summary)
    summary.update(
        {
            "benchmark": "knowledge",
            "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
            "llm": args.llm,
            "protocol": {
                "data": "implicit, 5-core, leave-one-out by time, seed 0",
                "users": "per dataset: a seeded prefix of its test users (the users column)",
                "candidates": 20,
                "negatives": "popularity",
                "history_len": 20,
                "knowledge_budget_tokens": args.budget,
                "sasrec_budget_s": args.sasrec_budget_s,
                "excluded_attributes": ["tags"],
            },
        }
    )
    summary.setdefault("datasets", {})
    for name in args.datasets:
        folder = (args.data_dir / name) if args.data_dir else DATASETS[name]
        data = DataOptions(str(folder), k_core=5, seed=0)
        base = _base(args.out / name / "base", data, args.sasrec_budget_s)
        entry = summary["datasets"].setdefault(name, {"configs": {}})
        entry["users_requested"] = args.users
        for config in args.configs:
            started = time.perf_counter()
            out = args.out / name / config
            answered_before = _records(out)
            sampling = ListSampling(
                n_users=args.users, n_candidates=20, negatives="popularity", history_len=20
            )
            common = {
                "base": base,
                "data": data,
                "sampling": sampling,
                "sasrec_budget_s": args.sasrec_budget_s,
            }
            if config in BASELINES:
                run_knowledge_eval(config, out, knowledge="none", **common)
            elif config in DOKE_CONFIGS:
                ranker = {"budget_tokens": args.budget, **DOKE_CONFIGS[config]}
                common["sampling"] = replace(sampling, n_users=min(args.users, args.doke_users))
                run_knowledge_eval(f"llm:{args.llm}", out, knowledge="all", ranker=ranker, **common)
            else:
                run_knowledge_eval(
                    f"llm:{args.llm}", out, knowledge=config, ranker={"budget_tokens": args.budget}, **common
                )
            seconds = time.perf_counter() - started
            previous = entry["configs"].get(config, {})
            entry["configs"][config] = _result(out, seconds)
            if answered_before == _records(out) and "wall_s_this_invocation" in previous:
                # a finished run reopened to re-summarise: keep the time of the invocation that ran it
                entry["configs"][config]["wall_s_this_invocation"] = previous["wall_s_this_invocation"]
            _paired(entry, args.out / name)
            _against(entry, args.out / name, "all", DOKE_CONFIGS, "doke_vs_all")
            _save(summary, args.summary)  # after every configuration: an interrupted run keeps its results
            means = {m: round(entry["configs"][config][m]["mean"], 4) for m in METRICS}
            print(name, config, json.dumps(means), flush=True)
    print(f"wrote {args.summary} and {args.summary.with_suffix('.md')}")


def _base(folder: Path, data: DataOptions, sasrec_budget_s: float) -> Path:
    """The dataset's knowledge base, built once (every extractor, SASRec behind the model-based ones)."""
    if (folder / "knowledge.json").exists():
        return folder
    dataset, _ = data.load()
    columns = {c.name for c in dataset.catalog.schema.columns}
    exclude = [c for c in ("tags",) if c in columns]
    params: dict[str, dict[str, Any]] = {
        "embedding": {"model": "sasrec"},
        "recommender": {"model": "sasrec"},
        "attributes": {"exclude": exclude},
        "graph": {"exclude": exclude},
    }
    started = time.perf_counter()
    build_knowledge(data, folder, kinds="all", params=params, sasrec_budget_s=sasrec_budget_s)
    print(f"built the knowledge base {folder} in {time.perf_counter() - started:.0f} s", flush=True)
    return folder


def _records(run_folder: Path) -> int:
    """How many samples the run folder has answered (0 before it exists)."""
    return len(RunFolder.load(run_folder).records()) if (run_folder / "config.json").exists() else 0


def _result(run_folder: Path, seconds: float) -> dict[str, Any]:
    run = RunFolder.load(run_folder)
    metrics = run.read_metrics()
    extra = metrics.get("extra") or {}
    usage = run.read_usage() or {}
    counts = metrics.get("counts") or {}
    out: dict[str, Any] = {m: metrics["metrics"][m] for m in METRICS if m in metrics["metrics"]}
    out.update(
        {
            "users": metrics["n"],
            "prompt_tokens_mean": extra.get("prompt_tokens_mean"),
            "knowledge_tokens_mean": extra.get("knowledge_tokens_mean"),
            "knowledge_facts_mean": extra.get("knowledge_facts_mean"),
            "facts_by_kind": extra.get("facts_by_kind"),
            "token_counter": extra.get("token_counter"),
            "repairs": {
                **{k: v for k, v in counts.items() if k.startswith(("index_", "answer_")) and v},
                **_shown_order(run),
            },
            "llm_calls": (usage.get("total") or {}).get("calls", 0),
            "llm_prompt_tokens": (usage.get("total") or {}).get("prompt_tokens", 0),
            "wall_s_this_invocation": round(seconds, 1),
            "run_folder": str(run_folder.relative_to(HERE.parent))
            if run_folder.is_relative_to(HERE.parent)
            else str(run_folder),
        }
    )
    return out


def _shown_order(run: RunFolder) -> dict[str, int]:
    """``answer_in_shown_order`` recounted from every record's raw answers: records written before the
    ranker counted that diagnosis lack it, so the run's own count would cover only the newer ones."""
    n = 0
    for record in run.records():
        for order in record.get("orders") or []:
            raw, shown = order.get("raw"), order.get("candidates") or []
            if raw is None:
                continue
            try:
                values = json.loads(raw)
            except json.JSONDecodeError:
                values = lenient_numbers(raw)
            if isinstance(values, list):
                kept, _ = repair(values, len(shown), append_missing=False)
                if in_shown_order(kept):
                    n += 1
                    break
    return {"answer_in_shown_order": n} if n else {}


def _paired(entry: dict[str, Any], folder: Path) -> None:
    """Each knowledge configuration against ``none`` on the same users (paired bootstrap, sign-flip p),
    and the best of them against the issue's target."""
    _against(entry, folder, "none", (*KINDS, "all"), "vs_none")
    base = entry["configs"].get("none", {}).get("ndcg@10", {}).get("mean")
    best: tuple[float, str] | None = None
    for config in entry.get("vs_none", {}):
        result = entry["configs"].get(config, {})
        mean = result.get("ndcg@10", {}).get("mean")
        same_users = result.get("users") == entry["configs"].get("none", {}).get("users")
        if mean is not None and same_users and (best is None or mean > best[0]):
            best = (mean, config)  # only runs on the same users as `none` compete
    if best is not None and base:
        gain = best[0] / base - 1.0
        entry["best_knowledge"] = {
            "config": best[1],
            "ndcg@10": best[0],
            "relative_gain_vs_none": round(gain, 4),
            "target": TARGET_GAIN,
            "target_met": gain >= TARGET_GAIN,
        }


def _against(entry: dict[str, Any], folder: Path, reference: str, configs: Any, key: str) -> None:
    """Each of ``configs`` against ``reference`` on the users both ran (paired bootstrap, sign-flip p)."""
    if not (folder / reference / "metrics.json").exists():
        return
    entry[key] = {}
    for config in configs:
        if not (folder / config / "metrics.json").exists():
            continue
        stats = compare_runs(folder / reference, folder / config, n_resamples=10000)["metrics"].get("ndcg@10")
        if stats is not None:
            entry[key][config] = {
                "users": stats["n"],
                "ndcg@10_difference": stats["diff"],
                "ci": [stats["diff_low"], stats["diff_high"]],
                "p_permutation": stats["p_permutation"],
            }


def _comparison_table(rows: dict[str, Any] | None, title: str) -> list[str]:
    """Markdown lines for paired differences in NDCG@10 (none when there are no rows)."""
    if not rows:
        return []
    lines = ["", f"{title} (paired on the same users, NDCG@10):", ""]
    lines += ["| config | users | difference | 95% CI | sign-flip p |", "|---|---:|---:|---|---:|"]
    for config, s in rows.items():
        lines.append(
            f"| {config} | {s['users']} | {s['ndcg@10_difference']:+.3f} | "
            f"[{s['ci'][0]:+.3f}, {s['ci'][1]:+.3f}] | {s['p_permutation']:.3g} |"
        )
    return lines


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _save(summary: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, json.dumps(summary, indent=2) + "\n")
    write_text_atomic(path.with_suffix(".md"), _report(summary))


def _report(summary: dict[str, Any]) -> str:
    lines = [
        "# Knowledge plugin benchmark",
        "",
        f"Written by `benchmarks/knowledge.py`. LLM: `{summary.get('llm')}`; "
        f"machine: {summary.get('machine')}.",
        f"Protocol: {json.dumps(summary.get('protocol'))}.",
        "",
    ]
    for name, entry in summary.get("datasets", {}).items():
        lines += [
            f"## {name}",
            "",
            f"Users requested in the latest invocation: {entry.get('users_requested', 'n/a')}.",
            "",
            "| config | NDCG@1 | NDCG@5 | NDCG@10 (95% CI) | Hit@1 | Hit@5 | Hit@10 "
            "| prompt tokens | knowledge tokens | users |",
            "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for config in (*LLM_CONFIGS, *DOKE_CONFIGS, *BASELINES):
            r = entry["configs"].get(config)
            if r is None:
                continue
            ndcg10 = r["ndcg@10"]
            ci = (
                "n/a"
                if ndcg10["low"] is None
                else f"{ndcg10['mean']:.3f} [{ndcg10['low']:.3f}, {ndcg10['high']:.3f}]"
            )
            cells = [f"{r[m]['mean']:.3f}" for m in ("ndcg@1", "ndcg@5")]
            cells += [ci] + [f"{r[m]['mean']:.3f}" for m in ("hit@1", "hit@5", "hit@10")]
            prompt = "" if r.get("prompt_tokens_mean") is None else f"{r['prompt_tokens_mean']:.0f}"
            knowledge = "" if r.get("knowledge_tokens_mean") is None else f"{r['knowledge_tokens_mean']:.0f}"
            lines.append(f"| {config} | " + " | ".join(cells) + f" | {prompt} | {knowledge} | {r['users']} |")
        lines += _comparison_table(entry.get("vs_none"), "Against `none`")
        lines += _comparison_table(entry.get("doke_vs_all"), "DOKE's prompt variants against `all`")
        best = entry.get("best_knowledge")
        if best:
            lines += [
                "",
                f"Best knowledge configuration: `{best['config']}` (NDCG@10 {best['ndcg@10']:.3f}), "
                f"{best['relative_gain_vs_none']:+.1%} relative to no knowledge; "
                f"target +{best['target']:.0%}: {'met' if best['target_met'] else 'not met'}.",
            ]
        repairs = {c: r["repairs"] for c, r in entry["configs"].items() if r.get("repairs")}
        if repairs:
            lines += ["", "Answer repairs and diagnoses (counted, never silent): " + json.dumps(repairs)]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
