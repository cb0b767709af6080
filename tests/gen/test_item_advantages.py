"""Item-level GRPO advantages: token spans per item, the advantages by hand, TRL's trainer carrying them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recai.data import Catalog
from recai.gen.item_advantages import (
    STD_EPSILON,
    ItemRewards,
    check_trl_internals,
    group_item_advantages,
    item_advantage_trainer,
    token_advantages,
)
from recai.gen.rl_config import RLConfig

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")


def test_parse_ids_gives_each_item_its_token_span(catalog: Catalog) -> None:
    from recai.gen.generate import ReplyParser
    from recai.gen.items import add_item_tokens
    from tests.gen.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    add_item_tokens(tok)
    parser = ReplyParser(tok, catalog)
    text = "1. <|item_start|>Heat (1995)<|item_end|>\n2. <|item_start|>Made Up<|item_start|>Heat<|item_end|> <|item_start|>Pu"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    parsed = parser.parse_ids(ids)
    assert parsed.names == ["Heat (1995)", "Made Up", "Heat", "Pu"] and parsed.partial
    spans = parsed.token_spans
    assert spans is not None and len(spans) == 4
    starts = [i for i, t in enumerate(ids) if t == parser.start_id]
    ends = [i for i, t in enumerate(ids) if t == parser.end_id]
    assert [s for s, _ in spans] == starts  # each span begins at its start marker
    assert spans[0][1] == ends[0] + 1 and spans[2][1] == ends[1] + 1  # and ends after its end marker
    assert spans[1][1] == starts[2]  # a span left open ends where the next one starts
    assert spans[3][1] == len(ids)  # one cut off ends with the reply
    assert tok.decode(ids[spans[0][0] + 1 : spans[0][1] - 1]) == "Heat (1995)"
    assert parser.parse_text("1. Heat (1995)").token_spans is None  # text has no tokens to point at


def test_token_advantages_equal_the_hand_computed_values() -> None:
    # a group of two replies: three items (rewards 1, -1 | 0.5), then a group naming one item only
    items = [
        ItemRewards((1.0, -1.0), ((0, 2), (3, 5))),
        ItemRewards((0.5,), ((1, 4),)),
        ItemRewards((2.0,), ((0, 1),)),
        ItemRewards((), ()),
    ]
    mean = (1.0 - 1.0 + 0.5) / 3
    std = math.sqrt(((1 - mean) ** 2 + (-1 - mean) ** 2 + (0.5 - mean) ** 2) / 2)
    advantages = group_item_advantages(items, num_generations=2)
    expected = [[(1 - mean) / (std + STD_EPSILON), (-1 - mean) / (std + STD_EPSILON)]]
    expected += [[(0.5 - mean) / (std + STD_EPSILON)], [0.0], []]  # one item: nothing to compare it with
    for got, want in zip(advantages, expected, strict=True):
        assert got == pytest.approx(want)

    sequence = torch.tensor([0.5, -0.5, 0.0, 0.0])
    tokens = token_advantages(sequence, items, advantages, width=6, weight=0.5)
    a, b, c = (0.5 * x for x in advantages[0] + advantages[1])
    want = torch.tensor(
        [
            [0.5 + a, 0.5 + a, 0.5, 0.5 + b, 0.5 + b, 0.5],
            [-0.5, -0.5 + c, -0.5 + c, -0.5 + c, -0.5, -0.5],
            [0.0] * 6,
            [0.0] * 6,
        ]
    )
    torch.testing.assert_close(tokens, want)


def test_item_advantages_follow_trls_reward_scaling() -> None:
    items = [
        ItemRewards((1.0, -1.0), ((0, 1), (1, 2))),
        ItemRewards((0.0,), ((0, 1),)),
        ItemRewards((4.0,), ((0, 1),)),
        ItemRewards((0.0,), ((0, 1),)),
    ]
    unscaled = group_item_advantages(items, 2, "none")
    assert unscaled[:2] == [[1.0, -1.0], [0.0]] and unscaled[2:] == [[2.0], [-2.0]]  # minus the group mean
    batch_std = float(np.std([1.0, -1.0, 0.0, 4.0, 0.0], ddof=1))
    batch = group_item_advantages(items, 2, "batch")
    assert batch[2] == [pytest.approx(2.0 / (batch_std + STD_EPSILON))]
    group = group_item_advantages(items, 2, "group")
    assert group[2] == [pytest.approx(2.0 / (math.sqrt(8.0) + STD_EPSILON))]
    with pytest.raises(ValueError, match="scale must be one of"):
        group_item_advantages(items, 2, "sometimes")


def test_settings_that_read_one_advantage_per_reply_are_refused() -> None:
    from types import SimpleNamespace

    from recai.gen.item_advantages import refuse_sequence_level_settings

    refuse_sequence_level_settings(SimpleNamespace(off_policy_mask_threshold=None, loss_type="dapo"))
    with pytest.raises(ValueError, match=r"off_policy_mask_threshold.*set item_weight 0"):
        refuse_sequence_level_settings(SimpleNamespace(off_policy_mask_threshold=0.5))
    with pytest.raises(ValueError, match="vespo"):
        refuse_sequence_level_settings(SimpleNamespace(loss_type="vespo"))


def test_item_weight_zero_gives_exactly_trls_sequence_advantages() -> None:
    items = [ItemRewards((1.0, -2.0), ((0, 2), (2, 4))), ItemRewards((3.0,), ((1, 3),))]
    sequence = torch.tensor([0.7071, -0.7071])
    tokens = token_advantages(sequence, items, group_item_advantages(items, 2), width=5, weight=0.0)
    assert torch.equal(tokens, sequence.unsqueeze(1).expand(2, 5))  # what TRL's loss broadcasts
    assert RLConfig(sft_model="x").item_weight == 0.0  # configs written before the field load as before
    with pytest.raises(ValueError, match=r"RLConfig\.item_weight"):
        RLConfig(sft_model="x", item_weight=-1)


def test_a_span_mismatch_raises_a_clear_error() -> None:
    with pytest.raises(ValueError, match="item span mismatch: 2 item rewards for 1 token spans"):
        ItemRewards((1.0, 2.0), ((0, 2),))
    with pytest.raises(ValueError, match="ordered and disjoint"):
        ItemRewards((1.0, 2.0), ((0, 3), (2, 4)))
    items = [ItemRewards((1.0,), ((3, 9),)), ItemRewards((0.0,), ((0, 1),))]
    with pytest.raises(ValueError, match=r"tokens \[3, 9\) lie past its 6 tokens"):
        token_advantages(torch.zeros(2), items, [[1.0], [-1.0]], width=6, weight=1.0)
    with pytest.raises(ValueError, match="1 advantages for 2 spans"):
        token_advantages(torch.zeros(1), [ItemRewards((1.0, 1.0), ((0, 1), (1, 2)))], [[1.0]], 4, 1.0)
    with pytest.raises(RuntimeError, match=r"TRL 1\.16"):  # TRL handed over something else than (B,)
        token_advantages(torch.zeros(2, 6), items, [[1.0], [-1.0]], width=6, weight=1.0)
    with pytest.raises(ValueError, match="groups of 2"):
        group_item_advantages(items[:1], 2)


def test_a_change_in_trls_internals_fails_clearly() -> None:
    from trl import GRPOTrainer

    check_trl_internals(GRPOTrainer)  # the installed TRL has what the trainer relies on

    class SequenceAdvantagesOnly(GRPOTrainer):  # type: ignore[misc]
        def _compute_loss(self, model: Any, inputs: Any) -> Any:
            return inputs["advantages"].unsqueeze(1)

    with pytest.raises(RuntimeError, match=r"TRL 1\.16's GRPOTrainer.*per-token advantages"):
        item_advantage_trainer(SequenceAdvantagesOnly)

    class NotGRPO:
        pass

    with pytest.raises(RuntimeError, match="no method _generate_and_score_completions"):
        check_trl_internals(NotGRPO)


def _train(tmp_path: Path, item_weight: float | None) -> tuple[Any, Any]:
    """Two GRPO steps of a tiny model on a reward that is the same for every reply (no list-level signal)
    and item rewards that differ: TRL's trainer when ``item_weight`` is None, else the item-level one."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from tests.gen.tiny import tiny_model, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recorded: list[ItemRewards] = []

    def constant_list_reward(
        prompts: Any, completions: Any, completion_ids: list[list[int]], **_: Any
    ) -> list[float]:
        recorded.clear()
        for ids in completion_ids:  # one "item": the first token, rewarded by its id
            recorded.append(ItemRewards((ids[0] / len(tokenizer),), ((0, 1),)))
        return [1.0] * len(completion_ids)

    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        learning_rate=1e-2,
        beta=0.0,
        seed=0,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
    )
    prompts = [{"prompt": [{"role": "user", "content": f"Recommend {n} films"}]} for n in range(4)]
    common = {
        "model": model,
        "reward_funcs": [constant_list_reward],
        "args": args,
        "train_dataset": Dataset.from_list(prompts),
        "processing_class": tokenizer,
    }
    if item_weight is None:
        trainer = GRPOTrainer(**common)
    else:
        trainer = item_advantage_trainer(GRPOTrainer)(
            item_rewards=recorded, item_weight=item_weight, **common
        )
    trainer.train()
    return before, trainer.model.state_dict()


def test_item_rewards_train_through_trls_loss_where_list_rewards_cannot(tmp_path: Path) -> None:
    before, after = _train(tmp_path, item_weight=None)
    assert all(torch.equal(before[k], after[k]) for k in before)  # equal list rewards: nothing to learn
    before, after = _train(tmp_path, item_weight=1.0)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed  # the item advantages alone moved the weights
