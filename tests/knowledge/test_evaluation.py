"""Knowledge runs end to end on `demo` with a scripted LLM: run folders, resume, comparison, the CLI."""

from __future__ import annotations

import json
import re
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recai.cli import app
from recai.evaluate.compare import compare_runs
from recai.evaluate.generative import ListSampling
from recai.evaluate.prepare import DataOptions
from recai.evaluate.runners import run_list_eval
from recai.evaluate.runs import ConfigMismatchError, RunFolder
from recai.evaluate.sampled import RunSettings
from recai.knowledge import KnowledgeBase, run_knowledge_eval
from recai.knowledge.workflows import build_knowledge, parse_params
from recai.llm.base import Message
from recai.llm.batch import BatchSettings, Budget, BudgetExhaustedError
from recai.llm.scripted import ScriptedChatModel
from tests.knowledge.data import leaky_dataset

runner = CliRunner()


def flat(text: str) -> str:
    """CLI output without rich's line wrapping."""
    return " ".join(text.split())


def _reverse(messages: list[Message]) -> str:
    """Rank the candidates last-listed first, repeating the first and forgetting the last: a model with
    habits to repair."""
    n = len(re.findall(r"^\[\d+\] ", messages[-1]["content"], re.M))
    return json.dumps([n, n, *range(n - 1, 1, -1)])


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    made: list[str] = []

    def fake(spec: str) -> ScriptedChatModel:
        def reply(messages: list[Message]) -> str:
            made.append(messages[-1]["content"])
            return _reverse(messages)

        return ScriptedChatModel(reply, name="fake-llm")

    monkeypatch.setattr("recai.llm.factory.load_chat_model", fake)
    return made


def test_a_knowledge_run_is_a_ranking_run_that_resumes(tmp_path: Path, calls: list[str]) -> None:
    out = tmp_path / "kn"
    options = {
        "sampling": ListSampling(n_users=6, negatives="popularity"),
        "settings": RunSettings(progress=False),
    }
    report = run_knowledge_eval("llm:fake", out, knowledge="attributes,cooccurrence,graph", **options)
    assert report.exists() and len(calls) == 6
    assert (out / "knowledge" / "knowledge.json").exists()  # the run's own base, for resuming
    metrics = RunFolder.load(out).read_metrics()
    assert metrics["n"] == 6 and metrics["counts"]["index_duplicate"] == 6
    assert metrics["counts"]["index_missing_appended"] == 6 and metrics["counts"]["valid"] == 6 * 20
    extra = metrics["extra"]
    assert extra["prompt_tokens_mean"] > extra["knowledge_tokens_mean"] > 0
    assert set(extra["facts_by_kind"]) <= {"attributes", "cooccurrence", "graph"}
    assert extra["system"]["kinds"] == ["attributes", "cooccurrence", "graph"]
    assert "What is known about these films" in calls[0]
    # interrupted: two records lost and a half-written line; the resumed run redoes only those
    lines = (out / "records.jsonl").read_text().splitlines(keepends=True)
    (out / "records.jsonl").write_text("".join(lines[:4]) + lines[4][:30])
    run_knowledge_eval("llm:fake", out, knowledge="attributes,cooccurrence,graph", **options)
    assert len(calls) == 6  # the two redone samples get the same prompts, answered from the cache
    assert sorted(lines) == sorted((out / "records.jsonl").read_text().splitlines(keepends=True))
    with pytest.raises(ConfigMismatchError, match="system"):
        run_knowledge_eval("llm:fake", out, knowledge="attributes", **options)
    # the same samples as `recai eval ranking`, so the two runs pair up sample by sample
    run_list_eval(
        "ranking",
        "popularity",
        tmp_path / "pop",
        sampling=ListSampling(n_users=6, negatives="popularity"),
        settings=RunSettings(progress=False),
    )
    comparison = compare_runs(out, tmp_path / "pop", n_resamples=200)
    assert comparison["metrics"]["ndcg@10"]["n"] == 6


def test_no_knowledge_and_baselines_through_one_task(tmp_path: Path, calls: list[str]) -> None:
    options = {"sampling": ListSampling(n_users=4), "settings": RunSettings(progress=False)}
    run_knowledge_eval("llm:fake", tmp_path / "none", knowledge="none", **options)
    assert not (tmp_path / "none" / "knowledge").exists()
    assert all("What is known" not in prompt for prompt in calls)
    run_knowledge_eval("popularity", tmp_path / "pop", knowledge="none", **options)
    metrics = RunFolder.load(tmp_path / "pop").read_metrics()
    assert metrics["n"] == 4 and metrics["counts"]["invalid"] == 0
    with pytest.raises(ValueError, match="unknown system"):
        run_knowledge_eval("gpt", tmp_path / "bad", **options)
    with pytest.raises(ValueError, match="unknown knowledge kind"):
        run_knowledge_eval("llm:fake", tmp_path / "bad", knowledge="vibes", **options)


def test_baselines_reuse_the_bases_own_model(
    tmp_path: Path, calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = DataOptions("demo")
    build_knowledge(
        data,
        tmp_path / "kb",
        kinds="recommender",
        params={"recommender": {"model": "popularity"}},
        progress=False,
    )

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the baseline must come from the knowledge base, not a new fit")

    monkeypatch.setattr("recai.knowledge.evaluation.fit_classic", refuse)
    run_knowledge_eval(
        "popularity",
        tmp_path / "pop",
        base=tmp_path / "kb",
        sampling=ListSampling(n_users=3),
        settings=RunSettings(progress=False),
    )
    run_knowledge_eval(
        "llm:fake",
        tmp_path / "llm",
        knowledge="recommender",
        base=tmp_path / "kb",
        sampling=ListSampling(n_users=3),
        settings=RunSettings(progress=False),
    )
    config = RunFolder.load(tmp_path / "llm").config
    assert config["system"]["base"]["path"] == str(tmp_path / "kb")
    assert "#1 of 20 candidates" in calls[0]
    with pytest.raises(ValueError, match="no \\['graph'\\] extractor"):
        run_knowledge_eval(
            "llm:fake",
            tmp_path / "g",
            knowledge="graph",
            base=tmp_path / "kb",
            sampling=ListSampling(n_users=3),
        )
    with pytest.raises(ValueError, match="was built on"):
        run_knowledge_eval(
            "llm:fake",
            tmp_path / "k",
            knowledge="recommender",
            base=tmp_path / "kb",
            data=DataOptions("demo", k_core=5),
        )


def test_params_parse_kind_dot_key() -> None:
    assert parse_params(["graph.hops=3", "cooccurrence.window=none", "patterns.popularity=false"]) == {
        "graph": {"hops": 3},
        "cooccurrence": {"window": None},
        "patterns": {"popularity": False},
    }


def test_params_are_typed_by_the_extractor_signature() -> None:
    parsed = parse_params(
        ["attributes.exclude=genres, year", "graph.columns=genres", "embedding.min-percentile=0.8"]
    )
    assert parsed == {
        "attributes": {"exclude": ["genres", "year"]},
        "graph": {"columns": ["genres"]},
        "embedding": {"min_percentile": 0.8},
    }
    assert parse_params(["cooccurrence.window=5"]) == {"cooccurrence": {"window": 5}}
    with pytest.raises(ValueError, match="expected an integer, got 'x'"):
        parse_params(["graph.hops=x"])
    with pytest.raises(ValueError, match="expected true or false"):
        parse_params(["graph.cooccurrence=maybe"])
    with pytest.raises(ValueError, match=r"'graph' has no parameter 'hop'.*hops"):
        parse_params(["graph.hop=2"])
    with pytest.raises(ValueError, match="without empty entries"):
        parse_params(["attributes.columns="])  # not a silent "every column"
    with pytest.raises(ValueError, match="measure must be one of"):
        KnowledgeBase.build(
            leaky_dataset().catalog,
            leaky_dataset().split(),
            kinds="cooccurrence",
            params=parse_params(["cooccurrence.measure=dice"]),
        )
    # Typed values reach the extractors, which then fit without a type error.
    dataset = leaky_dataset()
    split = dataset.split()
    kb = KnowledgeBase.build(
        dataset.catalog,
        split,
        kinds="attributes,cooccurrence",
        params=parse_params(["attributes.exclude=genres", "cooccurrence.window=none"]),
    )
    assert "genres" not in kb.extractors["attributes"].columns_
    assert kb.extractors["cooccurrence"].get_params()["window"] is None
    with pytest.raises(ValueError, match=r"kind\.key=value"):
        parse_params(["hops=3"])
    with pytest.raises(ValueError, match="unknown knowledge kind 'graf'"):
        parse_params(["graf.hops=3"])


def test_cli_build_rank_eval(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    built = runner.invoke(
        app,
        [
            "knowledge",
            "build",
            "--out",
            str(kb),
            "--knowledge",
            "attributes,cooccurrence,graph",
            "--param",
            "graph.hops=3",
        ],
    )
    assert built.exit_code == 0, built.output
    assert json.loads((kb / "knowledge.json").read_text())["extractors"]["graph"]["hops"] == 3
    again = runner.invoke(app, ["knowledge", "build", "--out", str(kb), "--knowledge", "graph"])
    assert again.exit_code == 1 and "already exists" in flat(again.output)
    ranked = runner.invoke(app, ["knowledge", "rank", str(kb), "--user", "5", "--llm", "scripted:echo"])
    assert ranked.exit_code == 0, ranked.output
    assert (
        "knowledge" in ranked.output and "held-out item" in flat(ranked.output) and "prompt:" in ranked.output
    )
    chosen = runner.invoke(
        app, ["knowledge", "rank", str(kb), "--user", "5", "--llm", "scripted:echo", "--candidates", "1,2,3"]
    )
    assert chosen.exit_code == 0, chosen.output
    unknown = runner.invoke(app, ["knowledge", "rank", str(kb), "--user", "nobody", "--llm", "scripted:echo"])
    assert unknown.exit_code == 1 and "nobody" in flat(unknown.output)
    out = tmp_path / "run"
    evaluated = runner.invoke(
        app,
        [
            "knowledge",
            "eval",
            "--out",
            str(out),
            "--system",
            "llm:scripted:echo",
            "--base",
            str(kb),
            "--users",
            "3",
            "--knowledge",
            "graph",
        ],
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "ndcg@10" in evaluated.output and (out / "report.md").exists()
    bad = runner.invoke(app, ["knowledge", "eval", "--out", str(tmp_path / "x"), "--param", "hops=2"])
    assert bad.exit_code == 1 and "kind.key=value" in flat(bad.output)


def test_cli_eval_refuses_parameters_for_a_built_base(tmp_path: Path) -> None:
    """A fitted base cannot take extractor parameters: saying so beats silently ignoring them."""
    folders = ["--out", str(tmp_path / "run"), "--base", str(tmp_path / "kb")]
    result = runner.invoke(
        app, ["knowledge", "eval", *folders, "--system", "llm:scripted:echo", "--param", "graph.hops=3"]
    )
    assert result.exit_code == 1
    assert "already fitted" in flat(result.output) and "graph.hops=3" in flat(result.output)
    assert not (tmp_path / "run").exists()
    model = runner.invoke(app, ["knowledge", "eval", *folders, "--recommender-model", "als"])
    assert model.exit_code == 1 and "--recommender-model als" in flat(model.output)


def test_cli_eval_refuses_data_options_unlike_the_bases(tmp_path: Path) -> None:
    """With --base the run uses the base's data, split and seed: another one typed is refused, not ignored."""
    kb = tmp_path / "kb"
    built = runner.invoke(
        app, ["knowledge", "build", "--out", str(kb), "--knowledge", "attributes", "--seed", "1"]
    )
    assert built.exit_code == 0, built.output
    folders = ["--out", str(tmp_path / "run"), "--base", str(kb), "--system", "popularity", "--users", "3"]
    for option, value in (("--data", "ml-100k"), ("--k-core", "5"), ("--seed", "0")):
        result = runner.invoke(app, ["knowledge", "eval", *folders, option, value])
        assert result.exit_code == 1, (option, result.output)
        assert f"{option} {value}" in flat(result.output) and "--seed 1" in flat(result.output)
        assert not (tmp_path / "run").exists()
    same = runner.invoke(app, ["knowledge", "eval", *folders, "--data", "demo", "--seed", "1"])
    assert same.exit_code == 0, same.output


def test_a_base_built_on_a_relative_path_is_evaluated_from_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The base records its data as an absolute path, and --data naming the same folder another way is
    the same data, not a clash."""
    from recai.data import load

    load("demo").save(tmp_path / "project" / "films")
    monkeypatch.chdir(tmp_path / "project")
    kb = tmp_path / "kb"
    built = runner.invoke(
        app, ["knowledge", "build", "--out", str(kb), "--knowledge", "attributes", "--data", "films"]
    )
    assert built.exit_code == 0, built.output
    recorded = json.loads((kb / "knowledge.json").read_text())["meta"]["data"]["data"]
    assert recorded == str((tmp_path / "project" / "films").resolve())
    monkeypatch.chdir(tmp_path)
    folders = ["--out", str(tmp_path / "run"), "--base", str(kb), "--system", "popularity", "--users", "3"]
    same = runner.invoke(app, ["knowledge", "eval", *folders, "--data", "project/films"])
    assert same.exit_code == 0, same.output
    other = runner.invoke(
        app, ["knowledge", "eval", *folders[:1], str(tmp_path / "run2"), *folders[2:], "--data", "demo"]
    )
    assert other.exit_code == 1 and "--data demo" in flat(other.output)


def test_a_run_measures_the_budget_with_the_target_models_tokenizer(tmp_path: Path, calls: list[str]) -> None:
    """The spec in `llm:SPEC` names the tokenizer too: for the packaged SmolLM2, its GGUF vocabulary
    (the scripted model stands in for the weights, the counter still comes from the spec)."""
    pytest.importorskip("llama_cpp")
    from recai.llm.resolve import KNOWN_MODELS, packaged_parts

    if packaged_parts(KNOWN_MODELS["smollm2-135m-instruct"])[1]:
        pytest.skip("the smollm2 weight package is not installed")
    out = tmp_path / "kn"
    options = {
        "sampling": ListSampling(n_users=2),
        "settings": RunSettings(progress=False),
        "ranker": {"budget_tokens": 60},
    }
    run_knowledge_eval("llm:local:smollm2-135m-instruct", out, knowledge="attributes,cooccurrence", **options)
    metrics = RunFolder.load(out).read_metrics()
    assert [name.split(":")[0] for name in metrics["extra"]["token_counter"]] == ["gguf"]
    assert 0 < metrics["extra"]["knowledge_tokens_mean"] <= 60


class _InFlight:
    """Wraps a reply function: sleeps a little (a different time per prompt, so calls finish out of
    order) and records the most calls that were running at once."""

    def __init__(self, reply: Callable[[list[Message]], str]) -> None:
        self.reply = reply
        self.running = self.most = 0
        self.lock = threading.Lock()

    def __call__(self, messages: list[Message]) -> str:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.01 + 0.005 * (zlib.crc32(messages[-1]["content"].encode()) % 4))
            return self.reply(messages)
        finally:
            with self.lock:
                self.running -= 1


def test_records_are_byte_identical_at_any_concurrency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replies = _InFlight(_reverse)
    monkeypatch.setattr(
        "recai.llm.factory.load_chat_model", lambda spec: ScriptedChatModel(replies, name="fake-llm")
    )
    options = {"sampling": ListSampling(n_users=8), "knowledge": "attributes,cooccurrence"}
    run_knowledge_eval(
        "llm:fake",
        tmp_path / "one",
        settings=RunSettings(cache=False, progress=False, batch=BatchSettings(concurrency=1)),
        **options,
    )
    assert replies.most == 1
    run_knowledge_eval(
        "llm:fake",
        tmp_path / "four",
        settings=RunSettings(cache=False, progress=False, batch=BatchSettings(concurrency=4)),
        **options,
    )
    assert replies.most > 1
    one, four = ((tmp_path / name / "records.jsonl").read_bytes() for name in ("one", "four"))
    assert one == four and one.count(b"\n") == 8
    # a token budget stops new work; the records written are the first ones, and a rerun finishes
    with pytest.raises(BudgetExhaustedError):
        run_knowledge_eval(
            "llm:fake",
            tmp_path / "budget",
            settings=RunSettings(
                cache=False, progress=False, batch=BatchSettings(concurrency=4, budget=Budget(max_tokens=1))
            ),
            **options,
        )
    partial = (tmp_path / "budget" / "records.jsonl").read_bytes()
    assert partial and one.startswith(partial) and partial.count(b"\n") < 8
    run_knowledge_eval(
        "llm:fake",
        tmp_path / "budget",
        settings=RunSettings(cache=False, progress=False, batch=BatchSettings(concurrency=4)),
        **options,
    )
    assert (tmp_path / "budget" / "records.jsonl").read_bytes() == one


def test_cli_knowledge_eval_takes_concurrency(tmp_path: Path, calls: list[str]) -> None:
    args = ["knowledge", "eval", "--system", "llm:fake", "--knowledge", "none", "--users", "3", "--no-cache"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "run"), "--concurrency", "2"])
    assert result.exit_code == 0, result.output
    assert len(RunFolder.load(tmp_path / "run").records()) == 3 and len(calls) == 3
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--budget-tokens", "1"])
    assert result.exit_code == 3 and "budget" in flat(result.output)  # stopped, resumable: not a failure


def test_doke_variants_run_through_knowledge_eval(tmp_path: Path, calls: list[str]) -> None:
    options = {"sampling": ListSampling(n_users=3), "settings": RunSettings(progress=False)}
    ranker = {"n_examples": 2, "prompt_style": "rating"}
    run_knowledge_eval("llm:fake", tmp_path / "doke", knowledge="none", ranker=ranker, **options)
    first = calls[0]  # later calls include the schema's corrections: the fake answers with numbers 1-20
    assert "Users with similar taste" in first and "Rate each of the" in first
    metrics = RunFolder.load(tmp_path / "doke").read_metrics()
    assert metrics["extra"]["system"]["prompt_style"] == "rating"
    assert metrics["extra"]["system"]["n_examples"] == 2
    with pytest.raises(ConfigMismatchError, match="system"):
        run_knowledge_eval("llm:fake", tmp_path / "doke", knowledge="none", **options)


def test_cli_knowledge_eval_takes_the_doke_options(tmp_path: Path, calls: list[str]) -> None:
    args = ["knowledge", "eval", "--system", "llm:fake", "--knowledge", "none", "--users", "2", "--no-cache"]
    result = runner.invoke(
        app, [*args, "--out", str(tmp_path / "c"), "--prompt-style", "chain", "--examples", "1"]
    )
    assert result.exit_code == 0, result.output
    ranker = RunFolder.load(tmp_path / "c").config["system"]["ranker"]
    assert ranker["prompt_style"] == "chain" and ranker["n_examples"] == 1
    plain = runner.invoke(app, [*args, "--out", str(tmp_path / "p")])
    assert (
        plain.exit_code == 0
        and "prompt_style" not in RunFolder.load(tmp_path / "p").config["system"]["ranker"]
    )
