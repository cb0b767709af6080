"""LLM-written examples with several requests in flight: the same files at concurrency 1 and 4, a
budget that stops the build, and the flags of `recai embed data`."""

from __future__ import annotations

import threading
import time
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recai.cli import app
from recai.embed.tasks import ExampleSplit, build_examples
from recai.llm.base import Message
from recai.llm.batch import BatchSettings, Budget, BudgetExhaustedError
from recai.llm.scripted import ScriptedChatModel
from tests.catalog_fixtures import film_dataset
from tests.embed.fixtures import LLM_TASKS, good_reply


class Uneven:
    """A capable model that returns nothing for some prompts (so retries, template fallbacks and later
    rounds happen), takes a few milliseconds per call (a different time per prompt, so calls finish out
    of order) and notes the most calls running at once."""

    def __init__(self) -> None:
        self.running = self.most = 0
        self.lock = threading.Lock()

    def __call__(self, messages: list[Message]) -> str:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            digest = zlib.crc32(messages[-1]["content"].encode())
            time.sleep(0.002 * (digest % 4))
            return "" if digest % 4 == 0 else good_reply(messages)
        finally:
            with self.lock:
                self.running -= 1


def _build(reply: Uneven, cache: Path, batch: BatchSettings | None) -> ExampleSplit:
    return build_examples(
        film_dataset(),
        LLM_TASKS,
        per_task=6,
        seed=1,
        llm=ScriptedChatModel(reply),
        cache=cache,
        progress=False,
        batch=batch,
    )


def _files(split: ExampleSplit, folder: Path) -> dict[str, bytes]:
    split.save(folder)
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_examples_are_byte_identical_at_any_concurrency(tmp_path: Path) -> None:
    one, four = Uneven(), Uneven()
    sequential = _files(_build(one, tmp_path / "one.sqlite", BatchSettings(concurrency=1)), tmp_path / "a")
    concurrent = _files(_build(four, tmp_path / "four.sqlite", BatchSettings(concurrency=4)), tmp_path / "b")
    assert one.most == 1 and four.most > 1
    assert sequential == concurrent and set(sequential) >= {"train.jsonl", "meta.json"}
    assert b'"template"' in sequential["meta.json"]  # some replies were rejected: fallbacks are the same too


def test_a_budget_stops_the_build_and_a_rerun_reads_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    with pytest.raises(BudgetExhaustedError, match="response cache"):
        _build(Uneven(), cache, BatchSettings(concurrency=4, budget=Budget(max_tokens=300)))
    reply = Uneven()
    resumed = _files(_build(reply, cache, BatchSettings(concurrency=4)), tmp_path / "resumed")
    whole = _files(_build(Uneven(), tmp_path / "fresh.sqlite", None), tmp_path / "whole")
    assert resumed == whole


def test_cli_embed_data_takes_concurrency_and_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("recai.llm.load_chat_model", lambda spec: ScriptedChatModel(Uneven()))
    runner = CliRunner()
    data = str(film_dataset().save(tmp_path / "films"))
    args = ["embed", "data", data, "--tasks", "search_query", "--per-task", "4", "--llm", "scripted:x"]
    # first the budget (with the response cache still empty, the replies are paid for)
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--budget-tokens", "1"])
    assert result.exit_code == 3 and "budget" in " ".join(result.output.split())
    assert not (tmp_path / "b").exists()
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--concurrency", "3"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "train.jsonl").exists()
