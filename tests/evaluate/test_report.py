"""The Markdown report: tables that hold the numbers written, plots that exist and are real PNGs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from recai.evaluate.prices import PriceTable
from recai.evaluate.report import check_metrics, metrics_document, summarize_records, write_report
from recai.evaluate.runs import RunFolder

PNG = b"\x89PNG\r\n\x1a\n"


def make_run(path: Path, n: int = 40) -> tuple[RunFolder, list[dict[str, object]]]:
    rng = np.random.default_rng(0)
    run = RunFolder.open(path, task="conversation", config={"data": "demo", "seed": 0})
    records = []
    for i in range(n):
        h1 = float(rng.random() < 0.2)
        h5 = max(h1, float(rng.random() < 0.4))
        h10 = max(h5, float(rng.random() < 0.3))
        record = {"id": f"s{i}", "scores": {"hit@1": h1, "hit@5": h5, "hit@10": h10, "ndcg@10": h10 * 0.6}}
        run.append(record)
        records.append(record)
    return run, records


def write_everything(run: RunFolder, records: list[dict[str, object]]) -> None:
    doc = metrics_document(
        "conversation",
        records,
        per_turn={"hit@10": [0.1, 0.25, None, 0.4]},
        judge={"loss": 9, "win": 20, "tie": 5, "invalid": 1, "conflict": 2},
        counts={"invalid": 3, "duplicate": 7, "out_of_candidates": 1, "already_seen": 0},
        extra={"note": "tiny run"},
    )
    run.write_metrics(doc)
    usage = {
        "judge": {
            "gpt-4o": {
                "calls": 3,
                "prompt_tokens": 3000,
                "completion_tokens": 300,
                "latency_s": 1.0,
                "failures": 0,
            }
        },
        "agent": {
            "homebrew-7b": {
                "calls": 2,
                "prompt_tokens": 500,
                "completion_tokens": 50,
                "latency_s": 2.0,
                "failures": 0,
            }
        },
    }
    run.write_usage(usage, PriceTable.load(), cache={"model": "gpt-4o", "hits": 7, "misses": 3})


def test_the_report_has_every_table_and_its_plots(tmp_path: Path) -> None:
    run, records = make_run(tmp_path / "run")
    write_everything(run, records)
    target = run.write_report()
    assert target == tmp_path / "run" / "report.md"
    text = target.read_text()
    metrics = run.read_metrics()["metrics"]

    # Metrics table: every metric with its mean and interval, in natural order (hit@5 before hit@10).
    for name, e in metrics.items():
        row = f"| {name} | {e['mean']:.4f} | [{e['low']:.4f}, {e['high']:.4f}] | {e['n']} |"
        assert row in text
    assert text.index("| hit@5 |") < text.index("| hit@10 |")
    hit10 = np.mean([r["scores"]["hit@10"] for r in records])  # type: ignore[index]
    assert f"| hit@10 | {hit10:.4f} |" in text

    # Derived metric@k curve (hit at 1, 5, 10), per-turn, judge and counts sections.
    assert "![metric@k](metric_at_k.png)" in text
    assert re.search(r"\| hit \| [\d.]+ \| [\d.]+ \| [\d.]+ \|", text)
    assert "![success per turn](per_turn.png)" in text
    assert "| 3 | n/a |" in text and "| 4 | 0.4000 |" in text
    assert "![judge outcomes](judge.png)" in text
    assert text.index("| win | 20 |") < text.index("| tie | 5 |") < text.index("| loss | 9 |")
    assert "| duplicate | 7 | 63.6% |" in text

    # Usage: a known price is costed, an unknown one is said to be unknown.
    assert "| gpt-4o | 3 | 3000 | 300 | 0 | 0.0105 |" in text
    assert "| homebrew-7b | 2 | 500 | 50 | 0 | unknown |" in text
    assert "No price is known for `homebrew-7b`" in text
    assert "Response cache: 7 hits, 3 misses" in text
    assert '"note": "tiny run"' in text and '"data": "demo"' in text

    for name in ("metric_at_k.png", "per_turn.png", "judge.png"):
        data = (tmp_path / "run" / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
    run.close()


def test_explicit_curves_win_and_stale_plots_go(tmp_path: Path) -> None:
    run, records = make_run(tmp_path / "run")
    write_everything(run, records)
    run.write_report()
    doc = {
        "task": "conversation",
        "n": len(records),
        "metrics": summarize_records(records),
        "curves": {"recall": {"1": 0.1, "10": 0.5, "5": 0.3}},
    }
    run.write_metrics(doc)
    text = run.write_report().read_text()
    assert "| recall | 0.1000 | 0.3000 | 0.5000 |" in text  # k sorted numerically
    assert "| hit |" not in text
    assert not (tmp_path / "run" / "per_turn.png").exists()
    assert not (tmp_path / "run" / "judge.png").exists()
    assert "No LLM usage" not in text  # usage.json from before is still there
    run.close()


def test_a_run_without_usage_or_optional_sections(tmp_path: Path) -> None:
    run, records = make_run(tmp_path / "run", n=5)
    run.write_metrics({"task": "conversation", "n": 4, "metrics": summarize_records(records[:4])})
    text = run.write_report().read_text()
    assert "No LLM usage was recorded" in text
    assert "computed on a different number of samples" in text
    assert not (tmp_path / "run" / "metric_at_k.png").exists() or "metric@k" in text
    run.close()


def test_a_report_needs_metrics(tmp_path: Path) -> None:
    run, _ = make_run(tmp_path / "run", n=2)
    with pytest.raises(FileNotFoundError, match=r"metrics\.json does not exist"):
        write_report(run)
    run.close()


def test_the_report_does_not_change_the_matplotlib_backend(tmp_path: Path) -> None:
    import matplotlib

    before = matplotlib.get_backend()
    run, records = make_run(tmp_path / "run", n=10)
    write_everything(run, records)
    run.write_report()
    assert matplotlib.get_backend() == before
    run.close()


# ---------------------------------------------------------------- summarize_records
def test_summaries_match_the_scores_and_skip_missing_ones() -> None:
    records = [
        {"id": "a", "scores": {"hit@1": 1.0, "judge": None}},
        {"id": "b", "scores": {"hit@1": 0.0, "judge": 1}},
        {"id": "c", "scores": {"hit@1": 1.0}},
        {"id": "d"},
    ]
    out = summarize_records(records)
    assert out["hit@1"]["mean"] == pytest.approx(2 / 3) and out["hit@1"]["n"] == 3
    assert out["hit@1"]["low"] <= out["hit@1"]["mean"] <= out["hit@1"]["high"]
    assert out["judge"] == {"mean": 1.0, "low": 1.0, "high": 1.0, "n": 1}


def test_summaries_are_seeded() -> None:
    rng = np.random.default_rng(1)
    records = [{"id": str(i), "scores": {"x": float(v)}} for i, v in enumerate(rng.random(50))]
    assert summarize_records(records, seed=3) == summarize_records(records, seed=3)
    assert summarize_records(records, seed=3) != summarize_records(records, seed=4)
    true_mean = np.mean([r["scores"]["x"] for r in records])
    s = summarize_records(records)["x"]
    assert s["low"] < true_mean < s["high"] and s["high"] - s["low"] < 0.4


def test_summaries_refuse_non_numbers() -> None:
    with pytest.raises(ValueError, match=r"record 'b': scores\['hit@1'\] is not a number"):
        summarize_records([{"id": "b", "scores": {"hit@1": "yes"}}])


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"task": "t", "n": 1, "metrics": {}, "plots": {}}, r"unknown key\(s\) \['plots'\]"),
        ({"task": "t", "metrics": {}}, "'n' is missing"),
        (
            {"task": "t", "n": 1, "metrics": {"m": {"mean": "x", "low": 0, "high": 1, "n": 1}}},
            r"metrics\['m'\]\.mean",
        ),
        ({"task": "t", "n": 1, "metrics": {}, "curves": {"hit": {"k5": 0.1}}}, r"curves\['hit'\]\['k5'\]"),
        ({"task": "t", "n": 1, "metrics": {}, "per_turn": {"hit": 0.3}}, r"per_turn\['hit'\]"),
        ({"task": "t", "n": 1, "metrics": {}, "judge": {"win": -1}}, "'judge' must map"),
    ],
)
def test_bad_metrics_documents_name_the_field(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_metrics(doc, "metrics.json")
