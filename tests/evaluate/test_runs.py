"""Run folders: config checks, durable records that survive interruption, atomic results, usage and cost."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recai.data.errors import DataError
from recai.evaluate.prices import PriceTable
from recai.evaluate.runs import ConfigMismatchError, RunFolder, RunLockedError, config_differences

CONFIG = {"data": "demo", "model": {"name": "scripted", "temperature": 0.0}, "seed": 0, "workers": 4}


def open_run(path: Path, **kwargs: object) -> RunFolder:
    options: dict[str, object] = {"task": "ranking", "config": CONFIG, **kwargs}
    return RunFolder.open(path, **options)  # type: ignore[arg-type]


def record(i: int, hit: float = 1.0) -> dict[str, object]:
    return {
        "id": f"u{i}",
        "input": f"history {i}",
        "raw": "[1, 2]",
        "parsed": [1, 2],
        "scores": {"hit@1": hit},
    }


# ---------------------------------------------------------------- config
def test_a_new_run_writes_its_config(tmp_path: Path) -> None:
    with open_run(tmp_path / "run") as run:
        assert run.task == "ranking"
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved == {**CONFIG, "task": "ranking"}


def test_resuming_with_another_config_names_the_differing_keys(tmp_path: Path) -> None:
    open_run(tmp_path / "run").close()
    changed = {**CONFIG, "model": {"name": "scripted", "temperature": 0.7}, "seed": 1}
    with pytest.raises(ConfigMismatchError) as info:
        open_run(tmp_path / "run", config=changed)
    assert info.value.keys == ["model.temperature", "seed"]
    assert "config.json" in str(info.value) and "model.temperature, seed" in str(info.value)
    with pytest.raises(ConfigMismatchError, match="task"):
        open_run(tmp_path / "run", task="conversation")


def test_volatile_keys_do_not_block_a_resume(tmp_path: Path) -> None:
    open_run(tmp_path / "run", config={**CONFIG, "_volatile": ["workers"]}).close()
    run = open_run(tmp_path / "run", config={**CONFIG, "workers": 16, "_volatile": ["workers"]})
    assert run.config["workers"] == 4  # the folder keeps the config its records were made with
    run.close()
    assert config_differences({"a": 1, "b": {"c": 1}}, {"a": 1, "b": {"c": 2}, "_volatile": ["b.c"]}) == []
    assert config_differences({"a": 1}, {"a": 1, "extra": 2}) == ["extra"]


def test_starting_over_needs_overwrite(tmp_path: Path) -> None:
    with open_run(tmp_path / "run") as run:
        run.append(record(1))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        open_run(tmp_path / "run", resume=False)
    with open_run(tmp_path / "run", resume=False, overwrite=True, config={"data": "other"}) as run:
        assert run.done_ids() == set()
        assert not (tmp_path / "run" / "records.jsonl").exists()
        assert run.config == {"data": "other", "task": "ranking"}


def test_a_folder_that_is_not_a_run_is_never_touched(tmp_path: Path) -> None:
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="not a run folder"):
        open_run(folder, resume=False, overwrite=True)
    assert (folder / "chapter1.tex").read_text() == "precious"


def test_a_run_killed_while_writing_its_first_config_can_start_again(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".config.json.tmp-abc123").write_text('{"da')
    with open_run(folder) as run:
        assert run.config["task"] == "ranking"
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "config.json"]


def test_config_must_be_plain_json_and_agree_with_the_task(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"config\.model: object"):
        open_run(tmp_path / "a", config={"model": object()})
    with pytest.raises(ValueError, match="config\\['task'\\]"):
        open_run(tmp_path / "b", config={"task": "conversation"})
    with open_run(tmp_path / "c", config={"path": Path("/x"), "ks": (1, 5), "n": np.int64(3)}) as run:
        assert run.config["path"] == "/x" and run.config["ks"] == [1, 5] and run.config["n"] == 3


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    run = open_run(tmp_path / "run")
    with pytest.raises(RunLockedError, match="being written"):
        open_run(tmp_path / "run")
    run.close()
    open_run(tmp_path / "run").close()


# ---------------------------------------------------------------- records
def test_records_are_appended_durably_and_resumed(tmp_path: Path) -> None:
    with open_run(tmp_path / "run") as run:
        for i in range(3):
            run.append(record(i))
        # Readable by another reader before the writer closes: each append is flushed and fsync'd.
        assert [r["id"] for r in RunFolder.load(tmp_path / "run").records()] == ["u0", "u1", "u2"]
    with open_run(tmp_path / "run") as run:
        assert run.done_ids() == {"u0", "u1", "u2"}
        run.append(record(3))
        assert [r["parsed"] for r in run.records()] == [[1, 2]] * 4


def test_records_are_replaced_atomically_with_the_same_ids_only(tmp_path: Path) -> None:
    with open_run(tmp_path / "run") as run:
        for i in range(3):
            run.append(record(i))
        rescored = [{**r, "scores": {"hit": 0.5}} for r in run.records()]
        with pytest.raises(ValueError, match="exactly the recorded ids"):
            run.replace_records(rescored[:2])
        with pytest.raises(ValueError, match="exactly the recorded ids"):
            run.replace_records([*rescored[:2], {**rescored[2], "id": "other"}])
        with pytest.raises(ValueError, match="exactly the recorded ids"):
            run.replace_records([*rescored, rescored[0]])
        assert [r["scores"] for r in run.records()] == [record(i)["scores"] for i in range(3)]
        run.replace_records(rescored)
        assert [r["scores"] for r in run.records()] == [{"hit": 0.5}] * 3
        run.append(record(3))
        assert run.done_ids() == {"u0", "u1", "u2", "u3"}
    with pytest.raises(RuntimeError, match="open the run"):
        RunFolder.load(tmp_path / "run").replace_records(rescored)


def test_a_truncated_last_line_is_dropped_and_the_file_repaired(tmp_path: Path) -> None:
    with open_run(tmp_path / "run") as run:
        run.append(record(0))
        run.append(record(1))
    path = tmp_path / "run" / "records.jsonl"
    whole = path.read_bytes()
    with path.open("ab") as f:  # the process died in the middle of writing u2
        f.write(json.dumps(record(2)).encode()[:25])
    with open_run(tmp_path / "run") as run:
        assert run.done_ids() == {"u0", "u1"}
        assert run.repaired
        assert path.read_bytes() == whole
        run.append(record(2))
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["u0", "u1", "u2"]
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".records")]


def test_a_whole_last_record_without_its_newline_is_kept(tmp_path: Path) -> None:
    with open_run(tmp_path / "run") as run:
        run.append(record(0))
    path = tmp_path / "run" / "records.jsonl"
    with path.open("a") as f:
        f.write(json.dumps(record(1)))
    with open_run(tmp_path / "run") as run:
        assert run.done_ids() == {"u0", "u1"}
        run.append(record(2))
    assert len(path.read_text().splitlines()) == 3


def test_a_damaged_line_in_the_middle_is_an_error_with_its_line_number(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    open_run(run_dir).close()
    (run_dir / "records.jsonl").write_text('{"id": "u0"}\n{"id": "u1", oops\n{"id": "u2"}\n')
    with pytest.raises(DataError, match=r"records\.jsonl, line 2: not a JSON record"):
        open_run(run_dir)
    (run_dir / "records.jsonl").write_text('{"id": "u0"}\n{"id": "u0"}\n')
    with pytest.raises(DataError, match="line 2, field 'id': duplicate record id 'u0'"):
        RunFolder.load(run_dir).records()


def test_bad_records_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    with open_run(tmp_path / "run") as run:
        with pytest.raises(ValueError, match="non-empty string 'id'"):
            run.append({"scores": {"hit@1": 1.0}})
        with pytest.raises(ValueError, match="'id'"):
            run.append({"id": 3})
        with pytest.raises(ValueError, match=r"record 'u1'\.scores\.hit@1 is nan"):
            run.append({"id": "u1", "scores": {"hit@1": float("nan")}})
        with pytest.raises(ValueError, match=r"scores\['hit@1'\] must be a number"):
            run.append({"id": "u1", "scores": {"hit@1": "yes"}})
        with pytest.raises(TypeError, match=r"record 'u1'\.raw: object"):
            run.append({"id": "u1", "raw": object()})
        run.append({"id": "u1", "scores": {"hit@1": np.float32(1.0), "ndcg@5": None}, "rank": np.int64(2)})
        with pytest.raises(ValueError, match="'u1' is already there"):
            run.append({"id": "u1"})
    assert RunFolder.load(tmp_path / "run").records() == [
        {"id": "u1", "scores": {"hit@1": 1.0, "ndcg@5": None}, "rank": 2}
    ]


def test_a_loaded_run_is_read_only(tmp_path: Path) -> None:
    open_run(tmp_path / "run").close()
    with pytest.raises(RuntimeError, match=r"RunFolder\.open"):
        RunFolder.load(tmp_path / "run").append(record(0))
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        RunFolder.load(tmp_path)


# ---------------------------------------------------------------- metrics (atomic)
METRICS = {"task": "ranking", "n": 2, "metrics": {"hit@1": {"mean": 0.5, "low": 0.0, "high": 1.0, "n": 2}}}


def test_metrics_are_checked_and_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_run(tmp_path / "run") as run:
        run.write_metrics(METRICS)
        before = (tmp_path / "run" / "metrics.json").read_bytes()
        with pytest.raises(ValueError, match=r"metrics\['hit@1'\] lacks 'high'"):
            run.write_metrics({**METRICS, "metrics": {"hit@1": {"mean": 0.5, "low": 0.0, "n": 2}}})
        with pytest.raises(ValueError, match="not this run's task"):
            run.write_metrics({**METRICS, "task": "conversation"})

        def crash(self: Path, target: Path) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(Path, "replace", crash)
        with pytest.raises(OSError, match="disk full"):
            run.write_metrics({**METRICS, "n": 3})
        monkeypatch.undo()
        assert (tmp_path / "run" / "metrics.json").read_bytes() == before
        assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
            ".lock",
            "config.json",
            "metrics.json",
        ]
        run.write_metrics(
            {**METRICS, "metrics": {"x": {"mean": float("nan"), "low": None, "high": None, "n": 0}}}
        )
        assert run.read_metrics()["metrics"]["x"]["mean"] is None  # strict JSON: NaN is written as null


# ---------------------------------------------------------------- usage and prices
def usage_report(prompt: int = 1_000_000, completion: int = 100_000) -> dict[str, object]:
    return {
        "judge": {
            "gpt-4o-mini": {
                "calls": 10,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "latency_s": 1.5,
                "failures": 0,
            }
        },
        "agent": {
            "qwen2.5-1.5b-instruct": {
                "calls": 5,
                "prompt_tokens": 900,
                "completion_tokens": 80,
                "latency_s": 3.0,
                "failures": 1,
            }
        },
    }


def test_usage_has_totals_and_a_cost_estimate(tmp_path: Path) -> None:
    prices = PriceTable.load()
    with open_run(tmp_path / "run") as run:
        cache = {"model": "gpt-4o-mini", "hits": 4, "misses": 10, "saved_prompt_tokens": 2_000_000}
        run.write_usage(usage_report(), prices, cache=cache)
        usage = run.read_usage()
    assert usage is not None
    mini = usage["by_model"]["gpt-4o-mini"]
    assert mini["cost"] == pytest.approx(0.15 + 0.1 * 0.60)
    assert usage["by_model"]["qwen2.5-1.5b-instruct"]["cost"] == 0.0
    assert usage["total"]["calls"] == 15 and usage["total"]["failures"] == 1
    assert usage["total"]["cost"] == pytest.approx(0.21)
    assert usage["by_component"]["judge"]["cost"] == pytest.approx(0.21)
    assert usage["cache"]["hits"] == 4 and usage["cache"]["saved_cost"] == pytest.approx(0.30)


def test_an_unknown_price_is_reported_as_unknown_not_zero(tmp_path: Path) -> None:
    report = usage_report()
    report["judge"]["mystery-model"] = dict(report["judge"]["gpt-4o-mini"])  # type: ignore[index]
    with open_run(tmp_path / "run") as run:
        run.write_usage(report, PriceTable.load())  # type: ignore[arg-type]
        usage = run.read_usage()
    assert usage is not None
    assert usage["by_model"]["mystery-model"]["cost"] is None
    assert usage["by_model"]["mystery-model"]["price"] is None
    assert usage["total"]["cost"] is None and usage["total"]["cost_known"] == pytest.approx(0.21)
    assert usage["total"]["unknown_price_models"] == ["mystery-model"]
    assert usage["by_component"]["judge"]["cost"] is None


def test_usage_adds_up_over_resumed_sessions(tmp_path: Path) -> None:
    prices = PriceTable.load()
    with open_run(tmp_path / "run") as run:
        run.write_usage(usage_report(prompt=10), prices)
        run.write_usage(usage_report(prompt=20), prices)  # the same session's meter, later: replaces
    with open_run(tmp_path / "run") as run:
        run.write_usage(usage_report(prompt=5), prices)
        usage = run.read_usage()
    assert usage is not None and len(usage["sessions"]) == 2
    assert usage["by_model"]["gpt-4o-mini"]["prompt_tokens"] == 25
    assert usage["by_model"]["gpt-4o-mini"]["calls"] == 20


def test_a_resumed_session_that_called_nothing_adds_no_session(tmp_path: Path) -> None:
    prices = PriceTable.load()
    with open_run(tmp_path / "run") as run:
        run.write_usage(usage_report(prompt=10), prices)
    before = (tmp_path / "run" / "usage.json").read_text()
    with open_run(tmp_path / "run") as run:  # reopened to re-summarise: nothing left to call
        run.write_usage({}, prices, cache={"model": "gpt-4o-mini", "hits": 0, "misses": 0})
    assert (tmp_path / "run" / "usage.json").read_text() == before
    with open_run(tmp_path / "fresh") as run:  # a first session writes its (empty) file all the same
        run.write_usage({}, prices)
        usage = run.read_usage()
    assert usage is not None and len(usage["sessions"]) == 1


def test_usage_accepts_a_meter_and_refuses_other_shapes(tmp_path: Path) -> None:
    from recai.llm.usage import UsageMeter

    meter = UsageMeter()
    meter.record("gpt-4.1", prompt_tokens=1_000_000, completion_tokens=0, latency_s=0.1)
    with open_run(tmp_path / "run") as run:
        run.write_usage(meter, PriceTable.load())  # type: ignore[arg-type]
        usage = run.read_usage()
        assert usage is not None and usage["total"]["cost"] == pytest.approx(2.0)
        with pytest.raises(ValueError, match=r"usage\['judge'\]\['m'\] must hold numbers"):
            run.write_usage({"judge": {"m": {"calls": "many"}}}, PriceTable.load())


def test_the_shipped_price_table() -> None:
    prices = PriceTable.load()
    assert prices.currency == "USD"
    assert prices.cost("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(12.5)
    assert prices.cost("openai:gpt-4.1-mini", 1_000_000, 0) == pytest.approx(0.40)
    assert prices.cost("openai:https://example.com/v1#gpt-4o-mini?timeout=3", 0, 1_000_000) == pytest.approx(
        0.6
    )
    for local in (
        "local:qwen2.5-0.5b-instruct",
        "llamacpp:/m.gguf",
        "hf:/models/x",
        "scripted:echo",
        "scripted",
    ):
        assert prices.cost(local, 1000, 1000) == 0.0
    assert prices.cost("qwen2.5-1.5b-instruct", 10, 10) == 0.0  # recai's own offline weights
    assert prices.cost("gpt-4o-2024-05-13", 10, 10) is None  # a dated snapshot is not guessed
    assert prices.cost("claude-something", 10, 10) is None
    assert prices.cost("openai:http://localhost:8000/v1#my-served-model", 10, 10) is None


def test_a_user_price_table_overrides_and_extends(tmp_path: Path) -> None:
    user = tmp_path / "prices.yaml"
    user.write_text(
        "per_tokens: 1000\n"
        "models:\n  gpt-4o: {input: 0.001, output: 0.002}\n  my-model: {input: 1, output: 0}\n"
        "prefixes:\n  'vllm:': {input: 0, output: 0}\n"
    )
    prices = PriceTable.load(user)
    assert prices.cost("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert prices.cost("my-model", 1000, 5) == pytest.approx(1.0)
    assert prices.cost("vllm:llama", 5, 5) == 0.0
    assert prices.cost("gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)  # untouched defaults remain
    assert prices.sources == ("recai/evaluate/prices.yaml", str(user))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models:\n  m: {input: -1, output: 0}\n", r"models\.m\.input must be a non-negative number"),
        ("models:\n  m: {input: 1}\n", r"models\.m must be \{input"),
        ("model:\n  m: {input: 1, output: 1}\n", r"unknown key\(s\) \['model'\]"),
        ("currency: EUR\n", "currency 'EUR' differs"),
        ("per_tokens: 0\n", "per_tokens must be a positive number"),
        ("models: [1, 2\n", "is not valid YAML"),
    ],
)
def test_bad_price_tables_name_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    user = tmp_path / "mine.yaml"
    user.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        PriceTable.load(user)
    assert "mine.yaml" in str(info.value)


def test_a_price_table_in_another_currency_stands_alone(tmp_path: Path) -> None:
    user = tmp_path / "eur.yaml"
    user.write_text("currency: EUR\nmodels:\n  gpt-4o: {input: 2, output: 9}\n")
    prices = PriceTable.load(user, include_defaults=False)
    assert prices.currency == "EUR" and prices.cost("gpt-4o", 1_000_000, 0) == 2.0
    assert prices.cost("gpt-4o-mini", 1, 1) is None
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml does not exist"):
        PriceTable.load(tmp_path / "missing.yaml")


def test_a_model_that_spent_no_tokens_costs_nothing_even_without_a_price(tmp_path: Path) -> None:
    # Every call answered by the response cache: zero tokens, so zero cost, whatever the price.
    idle = {"judge": {"mystery-model": {"calls": 8, "prompt_tokens": 0, "completion_tokens": 0}}}
    with open_run(tmp_path / "run") as run:
        run.write_usage(idle, PriceTable.load())  # type: ignore[arg-type]
        usage = run.read_usage()
    assert (
        usage is not None and usage["total"]["cost"] == 0.0 and usage["total"]["unknown_price_models"] == []
    )


def test_every_append_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import recai.evaluate.runs as runs

    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(runs.os, "fsync", lambda fd: synced.append(fd) or real(fd))
    with open_run(tmp_path / "run") as run:
        run.append(record(0))
        first = len(synced)
        run.append(record(1))
    assert first >= 1 and len(synced) == first + 1  # the first also syncs the new file's directory entry


def test_threads_can_append_to_one_run(tmp_path: Path) -> None:
    import threading

    with open_run(tmp_path / "run") as run:
        threads = [
            threading.Thread(target=lambda k=k: [run.append(record(k * 100 + i)) for i in range(25)])
            for k in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(run.done_ids()) == 200
    assert len(RunFolder.load(tmp_path / "run").records()) == 200


KILLED_RUN = """
import sys, time
from recai.evaluate.runs import RunFolder
from recai.llm import ScriptedChatModel
from recai.llm.cache import CachedChatModel

folder, cache = sys.argv[1], sys.argv[2]
model = CachedChatModel(ScriptedChatModel(lambda m: "reply " + m[-1]["content"]), cache)
run = RunFolder.open(folder, task="ranking", config={"data": "demo"})
for i in range(100):
    if f"s{i}" in run.done_ids():
        continue
    reply = model.complete([{"role": "user", "content": f"s{i}"}]).text
    run.append({"id": f"s{i}", "raw": reply, "scores": {"hit@1": float(i % 2)}})
    if len(sys.argv) > 3 and i == int(sys.argv[3]):
        print(model.stats()["misses"], flush=True)
        time.sleep(60)  # killed here
print(model.stats()["hits"], model.stats()["misses"], flush=True)
"""


def test_a_killed_run_resumes_and_a_rerun_costs_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder, cache = str(tmp_path / "run"), str(tmp_path / "cache.sqlite")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, folder, cache, "39"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "40"
    proc.kill()  # SIGKILL: no cleanup, the lock is released by the kernel
    proc.wait(timeout=30)
    proc.stdout.close()
    done = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, folder, cache], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["0", "60"]  # only the 60 missing samples were evaluated
    records = RunFolder.load(folder).records()
    assert [r["id"] for r in records] == [f"s{i}" for i in range(100)]
    # Starting the whole run again from scratch: every reply comes from the cache.
    with RunFolder.open(folder, task="ranking", config={"data": "demo"}, resume=False, overwrite=True):
        pass
    again = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, folder, cache], capture_output=True, text=True, check=True
    )
    assert again.stdout.split() == ["100", "0"]
