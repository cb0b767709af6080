"""The list reward, its TRL adapter, and a GRPO run on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recai.data import Catalog, load
from recai.gen.examples import Control, GenExample
from recai.gen.generate import Parsed
from recai.gen.rl import ListReward, reward_function, rl_examples
from recai.gen.rl_config import RewardConfig, RLConfig

pytest.importorskip("trl")


class FakeParser:
    """ListReward needs only the parser's catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog


def example(**kwargs: object) -> GenExample:
    base = {
        "id": "s-1",
        "task": "sequential",
        "messages": ({"role": "user", "content": "3 films"}, {"role": "assistant", "content": "x"}),
        "items": (12, 10, 16),  # the label: next item, then the teacher's order
        "target": 12,
        "history": (11,),
        "seen": (11,),
        "k": 3,
    }
    base.update(kwargs)
    return GenExample(**base)  # type: ignore[arg-type]


def test_reward_terms_of_a_mixed_reply(catalog: Catalog) -> None:
    reward = ListReward(FakeParser(catalog))  # type: ignore[arg-type]
    # rows: 2 Heat (the target), 0 Pulp Fiction, an invented title, Pulp Fiction again, 1 Reservoir Dogs (seen)
    parsed = Parsed(
        ["Heat", "Pulp Fiction", "Nope", "Pulp Fiction", "Reservoir Dogs"], [2, 0, None, 0, 1], spans=True
    )
    terms = reward.terms(example(), parsed)
    assert terms["hit"] == 1.0  # the target is the first valid item
    assert terms["teacher"] == pytest.approx(np.mean([1.0, 1 / np.log2(3)]))  # ranks 0 and 1 in the label
    assert terms["invalid"] == terms["repeat"] == terms["seen"] == pytest.approx(0.2)
    assert terms["count"] == 0.0  # three distinct catalog items for three asked
    assert terms["empty"] == terms["control"] == 0.0
    expected = 1.0 + 0.5 * terms["teacher"] - 0.2 - 0.5 * 0.2 - 0.5 * 0.2
    assert reward(example(), parsed) == pytest.approx(expected)
    per_item = reward.items(example(), parsed)
    assert per_item[0] == pytest.approx(0.5 * 1.0 + 1.0)  # teacher credit at rank 0 plus the hit
    assert per_item[1] == pytest.approx(0.5 / np.log2(3))
    assert per_item[2:] == [-1.0, -0.5, -0.5]


def test_the_hit_is_discounted_by_rank_and_cut_at_k(catalog: Catalog) -> None:
    reward = ListReward(FakeParser(catalog), RewardConfig(teacher=0.0))  # type: ignore[arg-type]
    second = reward.terms(example(), Parsed(["a", "b"], [0, 2], spans=True))
    assert second["hit"] == pytest.approx(1 / np.log2(3))
    too_late = reward.terms(example(k=1), Parsed(["a", "b"], [0, 2], spans=True))
    assert too_late["hit"] == 0.0 and too_late["count"] == 1.0


def test_an_item_past_the_k_asked_for_pays_its_share_of_the_count_penalty(catalog: Catalog) -> None:
    reward = ListReward(FakeParser(catalog))  # type: ignore[arg-type]
    # k 2: Heat (target) and Pulp Fiction are the list; Amélie is a third valid item, one too many
    per_item = reward.items(example(k=2), Parsed(["Heat", "Pulp Fiction", "Amélie"], [2, 0, 3], spans=True))
    assert per_item[2] == pytest.approx(-1.0 / 2)  # count weight 1 over k 2: what it adds to the list's term
    assert per_item[0] > 0 and per_item[1] > 0


def test_control_count_and_empty_penalties(catalog: Catalog) -> None:
    reward = ListReward(FakeParser(catalog))  # type: ignore[arg-type]
    crime = example(control=Control("genres", "Crime", "in"), k=2, target=None)
    terms = reward.terms(crime, Parsed(["Pulp Fiction", "Amélie"], [0, 3], spans=True))
    assert terms["control"] == 0.5 and terms["count"] == 0.0
    assert reward.items(crime, Parsed(["Amélie"], [3], spans=True)) == [pytest.approx(-1.0)]
    empty = reward.terms(crime, Parsed([], [], spans=False))
    assert empty["empty"] == 1.0 and empty["count"] == 1.0 and empty["control"] == 1.0
    assert reward(crime, Parsed([], [], spans=False)) == pytest.approx(-3.0)
    with pytest.raises(ValueError, match="no list"):
        reward.terms(example(k=None), Parsed([], [], spans=False))
    with pytest.raises(ValueError, match="negative"):
        RewardConfig(invalid=-1)


def test_the_trl_reward_reads_token_ids_and_logs_its_terms(catalog: Catalog) -> None:
    pytest.importorskip("transformers")
    from recai.gen.generate import ReplyParser
    from recai.gen.items import add_item_tokens
    from tests.gen.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    add_item_tokens(tok)
    parser = ReplyParser(tok, catalog)
    good = tok("1. <|item_start|>Heat (1995)<|item_end|>", add_special_tokens=False)["input_ids"] + [
        tok.eos_token_id
    ]
    bad = tok("1. <|item_start|>Made Up<|item_end|>", add_special_tokens=False)["input_ids"]
    logged: dict[str, float] = {}
    fn = reward_function(parser)
    raw = json.dumps(example().to_dict())
    values = fn(
        prompts=[None, None],
        completions=[None, None],
        completion_ids=[good, bad],
        example=[raw, raw],
        log_metric=lambda name, value: logged.__setitem__(name, value),
    )
    reward = ListReward(parser)
    assert values[0] == pytest.approx(reward(example(), parser.parse_ids(good[:-1])))
    assert values[0] > values[1]
    assert logged["reward_terms/invalid"] == pytest.approx(0.5) and "reward_terms/hit" in logged
    assert logged["reward_terms/replies_with_spans"] == 1.0 and "reward_terms/item_mean" in logged


def test_a_name_cut_off_by_the_length_limit_gets_no_item_reward(catalog: Catalog) -> None:
    pytest.importorskip("transformers")
    from recai.gen.generate import ReplyParser
    from recai.gen.item_advantages import ItemRewards
    from recai.gen.items import add_item_tokens
    from tests.gen.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    add_item_tokens(tok)
    parser = ReplyParser(tok, catalog)
    text = "1. <|item_start|>Heat (1995)<|item_end|> 2. <|item_start|>Pulp"
    cut = tok(text, add_special_tokens=False)["input_ids"]  # no end token: the length limit stopped it
    ended = [*cut, tok.eos_token_id]  # the model itself stopped inside a name: an invalid item
    items: list[ItemRewards] = []
    raw = json.dumps(example().to_dict())
    reward_function(parser, items=items)(
        prompts=[None] * 2, completions=[None] * 2, completion_ids=[cut, ended], example=[raw] * 2
    )
    assert len(items[0].rewards) == 1 and items[0].rewards[0] > 0  # only Heat is judged
    assert len(items[1].rewards) == 2 and items[1].rewards[1] == pytest.approx(-1.0)


def test_rl_uses_list_tasks_only_and_checks_its_config() -> None:
    from recai.gen.tasks import build_gen_data

    data = build_gen_data(load("demo"), ["count", "item_title"], per_task=3, test_per_task=0, progress=False)
    assert {e.task for e in rl_examples(data)} == {"count"}
    with pytest.raises(ValueError, match="no list reward"):
        rl_examples(data, ["item_title"])
    with pytest.raises(ValueError, match="multiple of num_generations"):
        RLConfig(sft_model="x", batch_size=6, num_generations=4)
    with pytest.raises(ValueError, match="required"):
        RLConfig()


def test_grpo_runs_on_the_sft_model_and_writes_a_plain_model(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    from recai.gen.generate import GenRecommender
    from recai.gen.rl import train_grpo
    from recai.gen.training import train_sft
    from tests.gen.fixtures import base_folder, config, data

    train_sft(data(), tmp_path / "sft", config(base_folder(tmp_path), max_steps=1), progress=False)
    catalog = load("demo").catalog
    rl = RLConfig(
        sft_model=str(tmp_path / "sft"),
        max_steps=1,
        batch_size=2,
        num_generations=2,
        max_completion_length=16,
        device="cpu",
        logging_steps=1,
        save_steps=100,
        lora_r=4,
    )
    result = train_grpo(data(), catalog, tmp_path / "rl", rl, progress=False)
    assert result.steps == 1 and result.prompts == len(rl_examples(data()))
    info = json.loads((tmp_path / "rl" / "recai_gen.json").read_text())
    assert info["method"] == "grpo" and len(info["training"]["reward_curve"]) == 1
    assert not (tmp_path / "rl.work").exists() and not (tmp_path / "rl" / "adapter_config.json").exists()
    gen = GenRecommender.load(tmp_path / "rl", catalog)
    assert gen.start_id == gen.tokenizer.convert_tokens_to_ids("<|item_start|>")
    with pytest.raises(FileExistsError):
        train_grpo(data(), catalog, tmp_path / "rl", rl, progress=False)
