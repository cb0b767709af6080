"""The Markdown report of a run, with plots, and the metrics.json structure it reads.

``metrics.json`` (written by :meth:`RunFolder.write_metrics`) is one JSON object::

    {
      "task": "conversation",                 # the run's task (must match config.json)
      "n": 500,                               # samples the metrics were computed on
      "metrics": {                            # mean and 95% bootstrap interval per metric
        "hit@10": {"mean": 0.42, "low": 0.38, "high": 0.46, "n": 500},
        ...
      },
      "curves":   {"hit": {"1": 0.1, "5": 0.3, "10": 0.42}},    # optional: metric@k, k as keys
      "per_turn": {"hit@10": [0.20, 0.35, 0.41]},              # optional: value after turn 1, 2, ...
      "judge":    {"win": 120, "tie": 30, "loss": 90, "conflict": 12, "invalid": 3},  # optional counts
      "counts":   {"invalid": 4, "duplicate": 9, "out_of_candidates": 2, "already_seen": 1},  # optional
      "extra":    {...}                                        # optional, any JSON, shown verbatim
    }

``low``/``high`` may be ``null`` (too few samples) and ``per_turn`` values may be ``null`` (no sample
reached that turn). Without ``curves``, the metric@k plot is drawn from the ``metrics`` entries named
``name@k`` (with their intervals) whenever a name has two or more k.

:func:`summarize_records` computes the ``metrics`` section from the records' per-sample ``scores``, and
:func:`metrics_document` assembles a whole document. :func:`write_report` writes ``report.md`` with
PNG plots next to it; matplotlib draws off-screen (no display, no global backend change).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recai.data.atomic import atomic_file, write_text_atomic
from recai.evaluate.metrics import bootstrap_ci

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from recai.evaluate.runs import RunFolder

_SECTIONS = {"task", "n", "metrics", "curves", "per_turn", "judge", "counts", "extra"}
JUDGE_ORDER = ("win", "tie", "loss", "conflict", "invalid")
PLOTS = {"curves": "metric_at_k.png", "per_turn": "per_turn.png", "judge": "judge.png"}


# ---------------------------------------------------------------- metrics.json
def summarize_records(
    records: Iterable[Mapping[str, Any]],
    *,
    seed: int = 0,
    confidence: float = 0.95,
    n_resamples: int = 1000,
) -> dict[str, dict[str, Any]]:
    """Mean and percentile-bootstrap interval of every key in the records' ``scores``.

    A sample without a score for a metric (missing or None) does not count for that metric, so each
    metric has its own ``n``.
    """
    values: dict[str, list[float]] = {}
    for i, record in enumerate(records):
        scores = record.get("scores") or {}
        if not isinstance(scores, Mapping):
            raise ValueError(f"record {record.get('id', i)!r}: 'scores' must be a dict")
        for name, value in scores.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise ValueError(
                    f"record {record.get('id', i)!r}: scores[{name!r}] is not a number: {value!r}"
                )
            values.setdefault(str(name), []).append(float(value))
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(values, key=natural_key):
        arr = np.asarray(values[name], dtype=np.float64)
        low, high = bootstrap_ci(arr, confidence=confidence, n_resamples=n_resamples, seed=seed)
        out[name] = {"mean": float(arr.mean()), "low": _finite(low), "high": _finite(high), "n": len(arr)}
    return out


def metrics_document(
    task: str,
    records: Sequence[Mapping[str, Any]],
    *,
    seed: int = 0,
    curves: Mapping[str, Mapping[Any, float]] | None = None,
    per_turn: Mapping[str, Sequence[float | None]] | None = None,
    judge: Mapping[str, int] | None = None,
    counts: Mapping[str, int] | None = None,
    extra: Any = None,
) -> dict[str, Any]:
    """A metrics.json document: ``metrics`` from the records' scores plus the optional sections."""
    doc: dict[str, Any] = {"task": task, "n": len(records), "metrics": summarize_records(records, seed=seed)}
    for key, value in (
        ("curves", curves),
        ("per_turn", per_turn),
        ("judge", judge),
        ("counts", counts),
        ("extra", extra),
    ):
        if value is not None:
            doc[key] = value
    return doc


def check_metrics(data: Any, where: str) -> None:
    """Refuse a metrics document that does not follow the structure above, naming the field."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: metrics must be a JSON object")
    unknown = set(data) - _SECTIONS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; put free-form results under 'extra'")
    for key in ("task", "n", "metrics"):
        if key not in data:
            raise ValueError(f"{where}: '{key}' is missing")
    if not isinstance(data["task"], str):
        raise ValueError(f"{where}: 'task' must be a string")
    if not _int(data["n"]) or data["n"] < 0:
        raise ValueError(f"{where}: 'n' must be a non-negative integer, got {data['n']!r}")
    if not isinstance(data["metrics"], Mapping):
        raise ValueError(f"{where}: 'metrics' must map names to {{mean, low, high, n}}")
    for name, entry in data["metrics"].items():
        field = f"{where}: metrics[{name!r}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{field} must be {{mean, low, high, n}}, got {entry!r}")
        for key in ("mean", "low", "high", "n"):
            if key not in entry:
                raise ValueError(f"{field} lacks '{key}'")
        for key in ("mean", "low", "high"):
            if entry[key] is not None and not _num(entry[key]):
                raise ValueError(f"{field}.{key} must be a number or null, got {entry[key]!r}")
        if not _int(entry["n"]):
            raise ValueError(f"{field}.n must be an integer, got {entry['n']!r}")
    for section in ("curves", "per_turn"):
        for name, values in (data.get(section) or {}).items():
            if section == "curves":
                if not isinstance(values, Mapping):
                    raise ValueError(f"{where}: curves[{name!r}] must map k to a value")
                for k, v in values.items():
                    if not re.fullmatch(r"\d+", str(k)) or (v is not None and not _num(v)):
                        raise ValueError(f"{where}: curves[{name!r}][{k!r}] must be an integer k -> number")
            elif not isinstance(values, list) or not all(v is None or _num(v) for v in values):
                raise ValueError(f"{where}: per_turn[{name!r}] must be a list of numbers (null allowed)")
    for section in ("judge", "counts"):
        value = data.get(section)
        if value is None:
            continue
        if not isinstance(value, Mapping) or not all(_int(v) and v >= 0 for v in value.values()):
            raise ValueError(f"{where}: '{section}' must map names to non-negative integers")


# ---------------------------------------------------------------- report
def write_report(run: RunFolder) -> Path:
    """Write ``report.md`` (and its PNG plots) in the run folder from config, metrics and usage."""
    from recai.evaluate.runs import CONFIG, METRICS, REPORT

    metrics = run.read_metrics()
    usage = run.read_usage()
    n_records = len(run.records())
    lines = [f"# Evaluation report: {metrics['task']}", ""]
    lines += [
        f"- run folder: `{run.path.name}`",
        f"- samples in metrics: {metrics['n']}; records in `records.jsonl`: {n_records}",
    ]
    if metrics["n"] != n_records:
        lines.append("- **the metrics were computed on a different number of samples than were recorded**")
    lines += ["", "## Metrics (mean and 95% bootstrap interval)", ""]
    lines += _metrics_table(metrics["metrics"])

    written: set[str] = set()
    curves = _curves(metrics)
    if curves:
        _save(_plot_curves(curves), run.path / PLOTS["curves"])
        written.add(PLOTS["curves"])
        lines += ["", "## Metric@k", "", f"![metric@k]({PLOTS['curves']})", ""]
        lines += _curves_table(curves)
    if metrics.get("per_turn"):
        _save(_plot_per_turn(metrics["per_turn"]), run.path / PLOTS["per_turn"])
        written.add(PLOTS["per_turn"])
        lines += ["", "## Success per turn", "", f"![success per turn]({PLOTS['per_turn']})", ""]
        lines += _per_turn_table(metrics["per_turn"])
    if metrics.get("judge"):
        _save(_plot_judge(metrics["judge"]), run.path / PLOTS["judge"])
        written.add(PLOTS["judge"])
        lines += ["", "## Judge outcomes", "", f"![judge outcomes]({PLOTS['judge']})", ""]
        lines += _count_table(_judge_order(metrics["judge"]), "outcome")
    if metrics.get("counts"):
        lines += ["", "## Counts", ""]
        lines += _count_table(metrics["counts"], "kind")
    lines += ["", "## LLM usage and cost", ""]
    lines += _usage_section(usage)
    if metrics.get("extra") is not None:
        lines += ["", "## Extra", "", "```json", json.dumps(metrics["extra"], indent=2), "```"]
    lines += ["", "## Configuration", "", f"From `{CONFIG}`:", "", "```json"]
    lines += [json.dumps(run.config, indent=2, sort_keys=True, ensure_ascii=False), "```", ""]
    lines += [f"Metrics from `{METRICS}`; per-sample records in `records.jsonl`.", ""]
    for name in PLOTS.values():  # a plot left from an earlier report that no longer applies
        if name not in written:
            (run.path / name).unlink(missing_ok=True)
    target = run.path / REPORT
    write_text_atomic(target, "\n".join(lines))
    return target


def _metrics_table(entries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    if not entries:
        return ["No metrics."]
    out = ["| metric | mean | 95% CI | n |", "|---|---:|---:|---:|"]
    for name in sorted(entries, key=natural_key):
        e = entries[name]
        ci = "n/a" if e["low"] is None or e["high"] is None else f"[{_fmt(e['low'])}, {_fmt(e['high'])}]"
        out.append(f"| {_cell(name)} | {_fmt(e['mean'])} | {ci} | {e['n']} |")
    return out


def _curves(
    metrics: Mapping[str, Any],
) -> dict[str, dict[int, tuple[float | None, float | None, float | None]]]:
    """{name: {k: (value, low, high)}} from 'curves', else from the name@k metrics."""
    out: dict[str, dict[int, tuple[float | None, float | None, float | None]]] = {}
    if metrics.get("curves"):
        for name, values in metrics["curves"].items():
            out[name] = {int(k): (v, None, None) for k, v in values.items()}
        return out
    for name, entry in metrics["metrics"].items():
        match = re.fullmatch(r"(.+)@(\d+)", name)
        if match:
            out.setdefault(match.group(1), {})[int(match.group(2))] = (
                entry["mean"],
                entry["low"],
                entry["high"],
            )
    return {name: ks for name, ks in out.items() if len(ks) >= 2}


def _curves_table(curves: Mapping[str, Mapping[int, tuple[Any, Any, Any]]]) -> list[str]:
    ks = sorted({k for values in curves.values() for k in values})
    out = ["| metric | " + " | ".join(f"@{k}" for k in ks) + " |", "|---|" + "---:|" * len(ks)]
    for name in sorted(curves, key=natural_key):
        out.append(
            f"| {_cell(name)} | " + " | ".join(_fmt(curves[name].get(k, (None,))[0]) for k in ks) + " |"
        )
    return out


def _per_turn_table(per_turn: Mapping[str, Sequence[float | None]]) -> list[str]:
    turns = max(len(v) for v in per_turn.values())
    out = ["| turn | " + " | ".join(_cell(n) for n in per_turn) + " |", "|---:|" + "---:|" * len(per_turn)]
    for t in range(turns):
        cells = [_fmt(v[t]) if t < len(v) else "" for v in per_turn.values()]
        out.append(f"| {t + 1} | " + " | ".join(cells) + " |")
    return out


def _count_table(counts: Mapping[str, int], label: str) -> list[str]:
    total = sum(counts.values())
    out = [f"| {label} | count | share |", "|---|---:|---:|"]
    for name, count in counts.items():
        share = f"{count / total:.1%}" if total else "n/a"
        out.append(f"| {_cell(name)} | {count} | {share} |")
    out.append(f"| total | {total} | |")
    return out


def _usage_section(usage: Mapping[str, Any] | None) -> list[str]:
    if not usage:
        return ["No LLM usage was recorded (`usage.json` is missing)."]
    cur = usage.get("currency", "USD")
    out = [
        f"| model | calls | prompt tokens | completion tokens | failures | cost ({cur}) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for model, s in usage.get("by_model", {}).items():
        out.append(
            f"| {_cell(model)} | {s['calls']} | {s['prompt_tokens']} | {s['completion_tokens']} | "
            f"{s['failures']} | {_money(s['cost'])} |"
        )
    t = usage["total"]
    out.append(
        f"| **total** | {t['calls']} | {t['prompt_tokens']} | {t['completion_tokens']} | {t['failures']} | "
        f"{_money(t['cost'])} |"
    )
    notes = []
    if t.get("unknown_price_models"):
        notes.append(
            f"No price is known for {', '.join(f'`{m}`' for m in t['unknown_price_models'])}: the cost is "
            f"unknown, not zero (known part: {_money(t['cost_known'])} {cur}). Add them to a price table."
        )
    cache = usage.get("cache")
    if cache:
        notes.append(
            f"Response cache: {cache.get('hits', 0)} hits, {cache.get('misses', 0)} misses; hits saved "
            f"{cache.get('saved_prompt_tokens', 0)} prompt and {cache.get('saved_completion_tokens', 0)} "
            f"completion tokens ({_money(cache.get('saved_cost'))} {cur}). Cached calls report their "
            "stored tokens, so the totals above are the cost without the cache; this run spent the "
            "totals minus the savings."
        )
    sessions = usage.get("sessions", [])
    if len(sessions) > 1:
        notes.append(f"Usage summed over {len(sessions)} sessions (the run was resumed).")
    sources = usage.get("price_sources") or []
    notes.append(f"Prices from {', '.join(f'`{s}`' for s in sources)}; prices change, check them.")
    for note in notes:
        out += ["", note]
    return out


# ---------------------------------------------------------------- plots
def _figure(width: float = 6.0, height: float = 3.6) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _plot_curves(curves: Mapping[str, Mapping[int, tuple[Any, Any, Any]]]) -> Figure:
    fig = _figure()
    ax = fig.add_subplot()
    for name in sorted(curves, key=natural_key):
        ks = sorted(k for k, v in curves[name].items() if v[0] is not None)
        means = [curves[name][k][0] for k in ks]
        (line,) = ax.plot(ks, means, marker="o", label=name)
        lows = [curves[name][k][1] for k in ks]
        highs = [curves[name][k][2] for k in ks]
        if all(v is not None for v in lows + highs):
            ax.fill_between(ks, lows, highs, color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_xticks(sorted({k for values in curves.values() for k in values}))
    ax.set_xlabel("k")
    ax.set_ylabel("value")
    ax.set_title("metric@k (shaded: 95% CI)" if _has_ci(curves) else "metric@k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _plot_per_turn(per_turn: Mapping[str, Sequence[float | None]]) -> Figure:
    fig = _figure()
    ax = fig.add_subplot()
    for name, values in per_turn.items():
        turns = [t + 1 for t, v in enumerate(values) if v is not None]
        ax.plot(turns, [v for v in values if v is not None], marker="o", label=name)
    ax.set_xlabel("turn")
    ax.set_ylabel("success")
    ax.set_title("success after each turn")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _plot_judge(judge: Mapping[str, int]) -> Figure:
    ordered = _judge_order(judge)
    fig = _figure(5.0, 3.2)
    ax = fig.add_subplot()
    bars = ax.bar(list(ordered), list(ordered.values()), color="#4c72b0")
    ax.bar_label(bars)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("count")
    ax.set_title("judge outcomes")
    return fig


def _save(fig: Figure, target: Path) -> None:
    with atomic_file(target) as tmp:
        fig.savefig(tmp, format="png")


# ---------------------------------------------------------------- small helpers
def natural_key(name: str) -> list[Any]:
    """Sort 'hit@5' before 'hit@10'."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _judge_order(judge: Mapping[str, int]) -> dict[str, int]:
    known = {k: judge[k] for k in JUDGE_ORDER if k in judge}
    return {**known, **{k: v for k, v in judge.items() if k not in known}}


def _has_ci(curves: Mapping[str, Mapping[int, tuple[Any, Any, Any]]]) -> bool:
    return any(v[1] is not None for values in curves.values() for v in values.values())


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"


def _money(value: Any) -> str:
    if value is None:
        return "unknown"
    return f"{value:.4f}" if value >= 0.01 or value == 0 else f"{value:.6f}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
