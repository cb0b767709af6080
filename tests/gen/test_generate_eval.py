"""Generation with a GenRecommender, parsing replies into item ids, the list metrics and the eval run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from recai.data import Catalog, Dataset  # noqa: E402
from recai.gen.evaluation import DecodeConfig, evaluate_generation, run_evaluation  # noqa: E402
from recai.gen.examples import Control, GenExample  # noqa: E402
from recai.gen.generate import GenRecommender, Parsed  # noqa: E402
from recai.gen.items import ItemNames, add_item_tokens  # noqa: E402
from recai.gen.metrics import GenScorer, compliance  # noqa: E402
from tests.gen.tiny import biased_head, tiny_model, tiny_tokenizer  # noqa: E402


@pytest.fixture
def gen(catalog: Catalog) -> GenRecommender:
    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer, seed=2)
    start, end = add_item_tokens(tokenizer, model)
    biased_head(model, [start, end])
    return GenRecommender(model, tokenizer, catalog, name="tiny")


def example(**kwargs: object) -> GenExample:
    base = {
        "id": "s-1",
        "task": "sequential",
        "messages": ({"role": "user", "content": "Recommend 3 films"}, {"role": "assistant", "content": "x"}),
        "items": (),
        "target": 12,
        "history": (10,),
        "seen": (10,),
        "k": 3,
    }
    base.update(kwargs)
    return GenExample(**base)  # type: ignore[arg-type]


# ------------------------------------------------------------------ parsing
def span_ids(gen: GenRecommender, names: list[str], *, glue: str = "\n") -> list[int]:
    text = glue.join(f"{i}. <|item_start|>{n}<|item_end|>" for i, n in enumerate(names, 1))
    return gen.tokenizer(text, add_special_tokens=False)["input_ids"]


def test_spans_are_read_exactly_then_fuzzily(gen: GenRecommender) -> None:
    parsed = gen.parse_ids(
        span_ids(gen, ["Heat (1995)", "Pulp Fction (1994)", "Made Up Film", "Heat (1995)"])
    )
    assert parsed.spans and not parsed.partial
    assert parsed.positions == [2, 0, None, 2]  # exact, fuzzy (misspelt), invalid, repeated
    grounded = parsed.grounded(gen.catalog, seen=[2])
    assert grounded.counts() == {
        "named": 4,
        "valid": 1,
        "invalid": 1,
        "duplicate": 1,
        "out_of_candidates": 0,
        "already_seen": 1,
    }
    assert grounded.items == [10]


def test_a_span_cut_off_by_the_token_limit_is_an_invalid_name(gen: GenRecommender) -> None:
    ids = (
        span_ids(gen, ["Heat (1995)"])
        + gen.tokenizer(" <|item_start|>Pulp Fic", add_special_tokens=False)["input_ids"]
    )
    parsed = gen.parse_ids(ids)
    assert parsed.partial and parsed.positions == [2, None] and parsed.names[1] == "Pulp Fic"


def test_free_text_without_spans_falls_back_to_list_parsing(gen: GenRecommender) -> None:
    ids = gen.tokenizer("1. Heat\n2. Amelie\n3. Nothing Like It", add_special_tokens=False)["input_ids"]
    parsed = gen.parse_ids(ids)
    assert not parsed.spans
    assert parsed.positions == [2, 3, None]
    assert gen.parse_text("I liked <|item_start|>Amélie (2001)<|item_end|> a lot").positions == [3]


# ------------------------------------------------------------------ metrics
def test_scores_of_a_known_reply(catalog: Catalog) -> None:
    scorer = GenScorer(catalog)
    # target 12 (Heat) named second after an already-seen item and before a repeat and an invented title
    parsed = Parsed(["Pulp Fiction", "Heat", "Heat", "Nope"], [0, 2, 2, None], spans=True)
    scores, grounded = scorer.score(example(seen=(10,), k=3), parsed)
    assert grounded.items == [12]  # the seen item and the repeat are not ranked
    assert scores["recall@1"] == 1.0 and scores["ndcg@1"] == 1.0 and scores["mrr@10"] == 1.0
    assert scores["validity"] == 0.75 and scores["repeats"] == 0.25 and scores["in_history"] == 0.25
    assert scores["count_correct"] == 0.0 and scores["count_error"] == 1.0  # two distinct items for three
    assert scores["empty"] == 0.0
    assert scores["exact_validity"] == 0.0  # "Heat" grounds to Heat (1995) fuzzily: not an exact name


def test_exact_validity_tells_catalog_names_from_fuzzy_matches(catalog: Catalog) -> None:
    names = ItemNames(catalog)
    exact, fuzzy = names[2], names[0].rsplit(" (", 1)[0] + "!"
    parsed = Parsed([exact, fuzzy, "Nope"], [2, 0, None], spans=True)
    scores, _ = GenScorer(catalog).score(example(seen=(), k=3), parsed)
    assert scores["validity"] == pytest.approx(2 / 3) and scores["exact_validity"] == pytest.approx(1 / 3)


def test_an_empty_reply_scores_zero_everywhere_it_counts(catalog: Catalog) -> None:
    control = Control("genres", "Crime", "in")
    scores, _ = GenScorer(catalog).score(example(control=control), Parsed([], [], spans=False))
    assert scores["empty"] == 1.0
    for name in (
        "validity",
        "exact_validity",
        "count_correct",
        "compliance",
        "ndcg@10",
        "recall@10",
        "mrr@10",
    ):
        assert scores[name] == 0.0, name
    for name in ("repeats", "in_history"):  # lower is better: saying nothing is the worst, not the best
        assert scores[name] == 1.0, name


def test_ranking_against_the_held_out_item(catalog: Catalog) -> None:
    parsed = Parsed(["a", "b", "c"], [3, 4, 2], spans=True)
    scores, _ = GenScorer(catalog).score(example(seen=()), parsed)
    assert scores["recall@1"] == 0.0 and scores["recall@5"] == 1.0
    assert scores["ndcg@10"] == pytest.approx(0.5) and scores["mrr@10"] == pytest.approx(1 / 3)


def test_compliance_for_every_control_mode() -> None:
    crime, romance = frozenset({"Crime"}), frozenset({"Romance"})
    assert compliance([crime, crime, romance], Control("genres", "Crime", "in")) == pytest.approx(2 / 3)
    assert compliance([crime, crime, romance], Control("genres", "Crime", "not_in")) == pytest.approx(1 / 3)
    assert compliance([crime, romance], Control("genres", "Crime", "at_least", 0.5)) == 1.0
    assert compliance([crime, romance, romance], Control("genres", "Crime", "at_least", 0.5)) == 0.0
    assert compliance([crime, crime], Control("genres", "Crime", "at_most", 0.5)) == 0.0
    assert compliance([], Control("genres", "Crime", "at_most", 0.5)) == 0.0


# ------------------------------------------------------------------ generation
@pytest.mark.parametrize(
    "decode",
    [{}, {"num_beams": 3}, {"do_sample": True, "temperature": 1.2, "seed": 1}],
    ids=["greedy", "beam", "sample"],
)
def test_constrained_generation_names_only_valid_unseen_items(gen: GenRecommender, decode: dict) -> None:
    prompts = [[{"role": "user", "content": "Recommend films"}], [{"role": "user", "content": "Anything"}]]
    outputs = gen.generate(prompts, exclude=[[0, 1], [2]], max_new_tokens=60, batch_size=2, **decode)
    named = 0
    for output, excluded in zip(outputs, ([0, 1], [2]), strict=True):
        assert output.parsed.spans
        complete = output.parsed.positions[:-1] if output.parsed.partial else output.parsed.positions
        assert None not in complete  # a span still open at the token limit is the only invalid name
        assert len(set(complete)) == len(complete)
        assert not set(complete) & set(excluded)
        named += len(complete)
    assert named >= 3


def test_unconstrained_generation_of_a_random_model_is_invalid(catalog: Catalog) -> None:
    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer, seed=2)
    start, _ = add_item_tokens(tokenizer, model)
    gen = GenRecommender(biased_head(model, [start]), tokenizer, catalog)  # opens spans, writes noise
    for constrained in (False, True):
        parsed = gen.generate(
            [[{"role": "user", "content": "Films"}]], constrained=constrained, max_new_tokens=60
        )[0].parsed
        assert parsed.spans and parsed.names
        complete = parsed.positions[:-1] if parsed.partial else parsed.positions
        if constrained:
            assert None not in complete
        else:
            assert parsed.positions.count(None) >= 1  # what the constraint protects against


def test_evaluation_run_folder_is_resumable(gen: GenRecommender, dataset: Dataset, tmp_path: Path) -> None:
    examples = [
        example(id="a", target=12, seen=(10,), k=2),
        example(
            id="b",
            task="category_cold",
            target=None,
            seen=(),
            history=(),
            k=2,
            control=Control("genres", "Crime", "in"),
        ),
        example(id="c", target=13, seen=(16, 17), k=1),
    ]
    config = DecodeConfig(batch_size=2, max_new_tokens=50)
    records = evaluate_generation(gen, examples, config, progress=False)
    assert [r["id"] for r in records] == ["a", "b", "c"]
    for r in records:
        # constrained: nothing invalid, repeated or seen, except a span still open at the token limit
        assert r["counts"]["invalid"] == int(r["partial_span"])
        assert r["counts"]["duplicate"] == 0 and r["counts"]["already_seen"] == 0
    assert "compliance" in records[1]["scores"] and "ndcg@10" not in records[1]["scores"]
    folder = tmp_path / "run"
    metrics = run_evaluation(gen, examples[:2], folder, config, progress=False)
    assert metrics["n"] == 2
    metrics = run_evaluation(gen, examples, folder, config, progress=False)  # resumes: only "c" is new
    assert metrics["n"] == 3 and set(metrics["extra"]["tasks"]) == {"sequential", "category_cold"}
    lines = (folder / "records.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b", "c"]
    assert metrics["metrics"]["validity"]["mean"] == pytest.approx(
        sum(r["scores"]["validity"] for r in records) / 3
    )
    assert (folder / "report.md").exists()

    # records of an older scorer (stale scores, no stored rows) are rescored from their names on reopen
    stored = [json.loads(line) for line in lines]
    for record in stored:
        record.pop("positions")
        record["scores"] = {key: 0.5 for key in record["scores"]}
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stored))
    rescored = run_evaluation(gen, examples, folder, config, progress=False)
    assert rescored["metrics"] == metrics["metrics"]
    again = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    assert [r["scores"] for r in again] == [r["scores"] for r in records]
    assert [r["positions"] for r in again] == [r["positions"] for r in records]
    from recai.evaluate.compare import compare_runs

    free = run_evaluation(
        gen,
        examples,
        tmp_path / "free",
        DecodeConfig(constrained=False, batch_size=2, max_new_tokens=50),
        progress=False,
    )
    assert free["n"] == 3
    comparison = compare_runs(folder, tmp_path / "free", n_resamples=200)  # decoding is part of the system
    assert comparison["paired"] == 3 and "validity" in comparison["metrics"]


def test_as_chat_model_speaks_plain_titles_of_catalog_items(gen: GenRecommender) -> None:
    """The chat reply hides the markers, so check what was generated under them: the same greedy
    decoding with the catalog processor names only catalog items, and reads as the chat reply."""
    import torch
    from transformers import LogitsProcessorList

    messages = [{"role": "user", "content": "Recommend films"}]
    reply = gen.as_chat_model().complete(messages, max_tokens=40, temperature=0.0).text
    free = gen.as_chat_model(constrained=False).complete(messages, max_tokens=40, temperature=0.0).text
    assert "<|item_start|>" not in reply and reply != free
    inputs = gen.tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = gen.model.generate(
            **inputs,
            max_new_tokens=40,
            do_sample=False,
            logits_processor=LogitsProcessorList([gen.processor(max_new_tokens=40)]),
            pad_token_id=gen.tokenizer.pad_token_id,
        )
    new = out[0, inputs["input_ids"].shape[1] :].tolist()
    assert gen.tokenizer.decode(new, skip_special_tokens=True) == reply
    parsed = gen.parse_ids(new, free_text=False)
    complete = parsed.positions[:-1] if parsed.partial else parsed.positions
    assert complete and None not in complete  # the biased model names items, all from the catalog


def test_constrained_replies_name_items_only_in_spans(gen: GenRecommender) -> None:
    ids = gen.tokenizer("1. Heat\n2. Amelie", add_special_tokens=False)["input_ids"]
    assert gen.parse_ids(ids, free_text=False).names == []
    assert gen.parse_ids(ids).positions == [2, 3]


def test_repetition_penalty_is_applied_and_overrides_the_model_folder(catalog: Catalog) -> None:
    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer, seed=2)
    add_item_tokens(tokenizer, model)
    loop = tokenizer("a", add_special_tokens=False)["input_ids"][0]
    gen = GenRecommender(biased_head(model, [loop], bias=8.0), tokenizer, catalog)  # greedy: "aaaa..."
    prompt = [[{"role": "user", "content": "Films"}]]
    model.generation_config.repetition_penalty = 50.0  # a folder's own setting must not leak in
    plain = gen.generate(prompt, constrained=False, max_new_tokens=12)[0].token_ids
    assert plain.count(loop) == len(plain) == 12
    penalised = gen.generate(prompt, constrained=False, max_new_tokens=12, repetition_penalty=50.0)[0]
    assert penalised.token_ids.count(loop) <= 1


def test_decode_config_passes_the_repetition_penalty(gen: GenRecommender) -> None:
    with pytest.raises(ValueError, match="repetition_penalty"):
        DecodeConfig(repetition_penalty=0)
    seen: list[float] = []
    original = gen.generate

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(kwargs["repetition_penalty"])  # type: ignore[arg-type]
        return original(*args, **kwargs)  # type: ignore[arg-type]

    gen.generate = spy  # type: ignore[method-assign]
    evaluate_generation(gen, [example()], DecodeConfig(repetition_penalty=1.3), progress=False)
    assert seen == [1.3]


def test_a_run_folder_from_before_the_penalty_setting_resumes_when_it_decoded_alike(
    gen: GenRecommender, tmp_path: Path
) -> None:
    from recai.evaluate.runs import ConfigMismatchError

    examples = [example(id="a", k=1), example(id="b", k=1, target=13)]
    config = DecodeConfig(batch_size=1, max_new_tokens=20)
    run_evaluation(gen, examples[:1], tmp_path / "run", config, progress=False)
    path = tmp_path / "run" / "config.json"
    stored = json.loads(path.read_text())
    del stored["system"]["decode"]["repetition_penalty"]  # as written before the setting existed
    path.write_text(json.dumps(stored))
    with pytest.raises(ConfigMismatchError, match="repetition_penalty"):  # 1.3 was never used there
        run_evaluation(gen, examples, tmp_path / "run", DecodeConfig(batch_size=1, repetition_penalty=1.3))
    gen.model.generation_config.repetition_penalty = 1.1  # the folder's own setting decided back then
    with pytest.raises(ConfigMismatchError, match="repetition_penalty"):
        run_evaluation(gen, examples, tmp_path / "run", config, progress=False)
    resumed = run_evaluation(
        gen, examples, tmp_path / "run", DecodeConfig(batch_size=1, max_new_tokens=20, repetition_penalty=1.1)
    )
    assert resumed["n"] == 2
    assert json.loads(path.read_text())["system"]["decode"]["repetition_penalty"] == 1.1
    assert [
        json.loads(line)["id"] for line in (tmp_path / "run" / "records.jsonl").read_text().splitlines()
    ] == [
        "a",
        "b",
    ]
    assert DecodeConfig(repetition_penalty=2).repetition_penalty == 2.0
    assert isinstance(DecodeConfig(repetition_penalty=2).repetition_penalty, float)


def _chat_ids(gen: GenRecommender, messages: list[dict], max_tokens: int = 40, **options: Any) -> list[int]:
    """The tokens ``as_chat_model`` generates for ``messages`` (the reply text hides the markers)."""
    chat = gen.as_chat_model(**options)
    captured: list[Any] = []
    original = chat.model.generate

    def spy(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        captured.append(out[0, kwargs["input_ids"].shape[1] :].tolist())
        return out

    chat.model.generate = spy  # type: ignore[method-assign]
    try:
        chat.complete(messages, max_tokens=max_tokens, temperature=0.0)
    finally:
        del chat.model.generate
    return captured[0]


def test_as_chat_model_keeps_history_exclusion_and_the_token_budget(gen: GenRecommender) -> None:
    messages = [{"role": "user", "content": "Recommend films"}]
    named = [p for p in gen.parse_ids(_chat_ids(gen, messages), free_text=False).positions if p is not None]
    assert named  # the biased model names items
    first = named[0]
    told = [{"role": "user", "content": f"I watched {gen.names.span(first)}. Recommend films"}]
    again = gen.parse_ids(_chat_ids(gen, told), free_text=False)
    assert first not in again.positions  # named in a span of the prompt: never recommended back
    kept = gen.parse_ids(_chat_ids(gen, told, exclude_mentioned=False), free_text=False)
    assert first in kept.positions
    fixed = gen.parse_ids(_chat_ids(gen, messages, exclude=[first]), free_text=False)
    assert first not in fixed.positions
    assert gen.mentioned(told) == {first}
    for budget in (6, 9, 13):  # whatever the budget, no span is left open at its end
        assert not gen.parse_ids(_chat_ids(gen, messages, max_tokens=budget), free_text=False).partial
