"""Reinforcement learning for control: GRPO (TRL) on top of the SFT model, rewarding each list it writes.

The reward of one reply to one list task (:class:`ListReward`, weights in :class:`RewardConfig`):

    + hit      * 1 / log2(rank + 2)   when the held-out item is among the first k valid items
    + teacher  * mean over the valid items of 1 / log2(rank in the reference list + 2)  (0 when absent)
    - invalid  * share of the named items that are not catalog items
    - repeat   * share of the named items that repeat an earlier one
    - seen     * share of the named items the user already had
    - count    * |distinct catalog items - k| / k   (at most 1)
    - control  * (1 - compliance)   for category-controlled tasks
    - empty    * 1   for a reply that names nothing

The reference list is the example's label: the next item, then the teacher's top-k when the data was
built with a teacher (``recai gen data --teacher sasrec``), else the user's own later items; so the
"teacher-rank credit" is what the issue asks for when a teacher was used. :meth:`ListReward.items` gives
the same terms per item; with ``RLConfig.item_weight`` they also credit each item's own tokens
(:mod:`recai.gen.item_advantages`). Replies are parsed exactly as in evaluation (:class:`ReplyParser`),
from the generated token ids, so item spans are read as spans.

:func:`train_grpo` optimises the SFT model with TRL's ``GRPOTrainer``: a group of replies per prompt, the
group-relative advantage of their rewards, and a KL penalty (``beta``) to a frozen copy of the SFT model
(the SFT adapter is folded into its base, a new LoRA adapter is trained on top, and the model with that
adapter disabled is the reference). The result is written as one plain model folder (SFT and RL folded
in) that :class:`~recai.gen.generate.GenRecommender` and vLLM load. Rollouts are sampled without the
catalog constraint, so invalid names are seen and penalised; constrained decoding stays an
inference-time guarantee.
Checkpoints, resume and the output folder are every trainer's (:class:`recai.train.work.WorkFolder`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recai.gen.examples import GenData, GenExample
from recai.gen.generate import Parsed, ReplyParser
from recai.gen.item_advantages import ItemRewards, item_advantage_trainer
from recai.gen.metrics import compliance
from recai.gen.models import GEN_FILE, read_gen_info
from recai.gen.rl_config import RewardConfig, RLConfig
from recai.gen.tasks import LIST_TASKS, item_values
from recai.train.arguments import resolve_precision, trainer_arguments
from recai.train.models import save_model_folder
from recai.train.work import TrainingResult, WorkFolder, examples_fingerprint, logged_curve, refuse_existing


def _discount(rank: int) -> float:
    return float(1.0 / np.log2(rank + 2))


class ListReward:
    """The reward of one reply to one list example, from its parsed names."""

    def __init__(self, parser: ReplyParser, config: RewardConfig | None = None) -> None:
        self.parser = parser
        self.catalog = parser.catalog
        self.config = config or RewardConfig()
        self._values: dict[str, list[frozenset[str]]] = {}

    def _column(self, name: str) -> list[frozenset[str]]:
        if name not in self._values:
            self._values[name] = item_values(self.catalog, name)
        return self._values[name]

    def _rows(self, ids: Sequence[Any]) -> list[int]:
        return self.catalog.index_of(list(ids), missing="drop").tolist()

    def terms(self, example: GenExample, parsed: Parsed) -> dict[str, float]:
        """Each term before weighting (shares and discounts in 0..1)."""
        if example.k is None:
            raise ValueError(f"example {example.id} asks for no list (task {example.task})")
        named = len(parsed.names)
        seen = set(self._rows(example.seen))
        distinct = list(dict.fromkeys(p for p in parsed.positions if p is not None))
        repeats = len([p for p in parsed.positions if p is not None]) - len(distinct)
        valid = [p for p in distinct if p not in seen]
        reference = self._rows(example.items)
        out = {
            "hit": 0.0,
            "teacher": 0.0,
            "invalid": parsed.positions.count(None) / named if named else 0.0,
            "repeat": repeats / named if named else 0.0,
            "seen": sum(p in seen for p in distinct) / named if named else 0.0,
            "count": min(1.0, abs(len(distinct) - example.k) / example.k),
            "control": 0.0,
            "empty": float(named == 0),
        }
        if example.target is not None:
            target = self._rows([example.target])
            if target and target[0] in valid[: example.k]:
                out["hit"] = _discount(valid.index(target[0]))
        if valid and reference:
            rank = {p: i for i, p in enumerate(reference)}
            out["teacher"] = float(np.mean([_discount(rank[p]) if p in rank else 0.0 for p in valid]))
        if example.control is not None:
            column = self._column(example.control.column)
            out["control"] = 1.0 - compliance([column[p] for p in distinct], example.control)
        return out

    def __call__(self, example: GenExample, parsed: Parsed) -> float:
        terms = self.terms(example, parsed)
        c = self.config
        return (
            c.hit * terms["hit"]
            + c.teacher * terms["teacher"]
            - c.invalid * terms["invalid"]
            - c.repeat * terms["repeat"]
            - c.seen * terms["seen"]
            - c.count * terms["count"]
            - c.control * terms["control"]
            - c.empty * terms["empty"]
        )

    def items(self, example: GenExample, parsed: Parsed) -> list[float]:
        """A reward per named item, in order: the hit and teacher credit it earns, minus the penalty it
        incurs (invalid, repeated, seen, or breaking an in / not-in control). A valid item past the k
        asked for earns nothing and pays its share of the list's count penalty (``count / k``), so the
        item rewards never favour lists longer than asked."""
        c = self.config
        seen = set(self._rows(example.seen))
        target = self._rows([example.target]) if example.target is not None else []
        rank = {p: i for i, p in enumerate(self._rows(example.items))}
        column = self._column(example.control.column) if example.control is not None else None
        out: list[float] = []
        named: set[int] = set()
        valid_rank = 0
        for p in parsed.positions:
            if p is None:
                out.append(-c.invalid)
                continue
            if p in named:
                out.append(-c.repeat)
                continue
            named.add(p)
            if p in seen:
                out.append(-c.seen)
                continue
            if example.k and valid_rank >= example.k:
                out.append(-c.count / example.k)
                continue
            value = c.teacher * (_discount(rank[p]) if p in rank else 0.0)
            if target and p == target[0] and example.k is not None:  # within k: extras left above
                value += c.hit * _discount(valid_rank)
            if (
                column is not None
                and example.control is not None
                and example.control.mode in ("in", "not_in")
            ):
                value -= c.control * (1.0 - compliance([column[p]], example.control))
            valid_rank += 1
            out.append(value)
        return out


def reward_function(
    parser: ReplyParser, config: RewardConfig | None = None, items: list[ItemRewards] | None = None
) -> Any:
    """A TRL reward function: reads each completion's token ids, and the example from the ``example``
    column (its JSON), and returns one reward per completion; logs the mean of each term. Given
    ``items``, each call refills it with every completion's item rewards and their token spans."""
    reward = ListReward(parser, config)

    def recai_list_reward(
        prompts: list[Any],
        completions: list[Any],
        completion_ids: list[list[int]],
        example: list[str],
        **kwargs: Any,
    ) -> list[float]:
        values = []
        sums: dict[str, float] = {}
        if items is not None:
            items.clear()
        item_values: list[float] = []
        with_spans = 0
        for ids, raw in zip(completion_ids, example, strict=True):
            item = GenExample.from_dict(json.loads(raw))
            ids = list(ids)
            ended = bool(ids) and ids[-1] == parser.tokenizer.eos_token_id
            body = ids[:-1] if ended else ids  # a prefix of ids, so spans index ids too
            parsed = parser.parse_ids(body)
            for name, value in reward.terms(item, parsed).items():
                sums[name] = sums.get(name, 0.0) + value
            values.append(reward(item, parsed))
            rewarded = ItemRewards.of(reward.items(item, parsed), parsed)
            if parsed.partial and not ended and rewarded.spans:
                # cut off by the length limit, not an invented title: no item reward for the last name
                rewarded = ItemRewards(rewarded.rewards[:-1], rewarded.spans[:-1])
            item_values.extend(rewarded.rewards)
            with_spans += bool(rewarded.spans)
            if items is not None:
                items.append(rewarded)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and values:
            for name, total in sums.items():
                log_metric(f"reward_terms/{name}", total / len(values))
            # logged by both trainers, so a list-level run shows the item rewards it did not train on
            log_metric("reward_terms/item_mean", float(np.mean(item_values)) if item_values else 0.0)
            log_metric("reward_terms/replies_with_spans", with_spans / len(values))
        return values

    return recai_list_reward


@dataclass
class RLResult(TrainingResult):
    """What :func:`train_grpo` did (see :class:`~recai.train.work.TrainingResult`), and the
    prompts it drew from.

    Attributes:
        prompts: List-task examples the prompts were drawn from.
    """

    prompts: int


def rl_examples(data: GenData, tasks: Sequence[str] | None = None) -> list[GenExample]:
    """The training examples GRPO draws prompts from: list tasks only (they have a reward)."""
    wanted = set(tasks) if tasks is not None else set(LIST_TASKS)
    unknown = sorted(wanted - set(LIST_TASKS))
    if unknown:
        raise ValueError(f"RL needs list tasks; {unknown} have no list reward (list tasks: {LIST_TASKS})")
    return [e for e in data.train if e.task in wanted and e.k is not None]


def _load_policy(config: RLConfig) -> tuple[Any, Any, Any]:
    """(model, tokenizer, LoRA config): the SFT model with its adapter folded in, and a new adapter.

    TRL's GRPO computes log-probabilities through its own fused LM head, which cannot go through PEFT's
    trainable-token rows of an SFT adapter; folding the adapter in first avoids that, and makes the
    reference for the KL penalty exactly the SFT model (the policy with the new adapter disabled).
    """
    from peft import LoraConfig

    from recai.gen.models import load_gen_model

    model, tokenizer = load_gen_model(config.sft_model, dtype="float32", merge=True)
    model.train()
    lora = LoraConfig(
        task_type="CAUSAL_LM", r=config.lora_r, lora_alpha=config.lora_alpha, target_modules="all-linear"
    )
    return model, tokenizer, lora


def train_grpo(
    data: GenData | str | Path,
    catalog: Any,
    output: str | Path,
    config: RLConfig,
    *,
    overwrite: bool = False,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
) -> RLResult:
    """Optimise the SFT model with GRPO on the list tasks' prompts and write the result to ``output``."""
    split = data if isinstance(data, GenData) else GenData.load(data)
    output = refuse_existing(output, overwrite)
    examples = rl_examples(split, config.tasks)
    if not examples:
        raise ValueError("no list-task training examples to draw prompts from")

    identity = {"config": config.to_dict(), "data": examples_fingerprint(examples), "examples": len(examples)}
    work = WorkFolder.open(output, identity)
    from datasets import Dataset as HFDataset
    from transformers import set_seed
    from trl import GRPOConfig, GRPOTrainer

    set_seed(config.seed)
    model, tokenizer, peft_config = _load_policy(config)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    parser = ReplyParser(tokenizer, catalog)
    precision = resolve_precision(config.precision, config.device)
    rows = [{"prompt": e.prompt, "example": json.dumps(e.to_dict(), ensure_ascii=False)} for e in examples]
    args = trainer_arguments(
        GRPOConfig,
        config,
        output_dir=work.path,
        precision=precision,
        progress=progress,
    )
    items: list[ItemRewards] | None = [] if config.item_weight else None
    item_level = {"item_rewards": items, "item_weight": config.item_weight} if items is not None else {}
    trainer = (item_advantage_trainer(GRPOTrainer) if items is not None else GRPOTrainer)(
        model=model,
        reward_funcs=[reward_function(parser, config.reward, items)],
        args=args,
        train_dataset=HFDataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks) or None,
        **item_level,
    )
    record, seconds = work.run(trainer)
    sft_info = read_gen_info(config.sft_model)
    summary = {
        "base_model": sft_info.get("base_model"),
        "method": "grpo",
        "sft_model": str(Path(config.sft_model).resolve()),
        "sft": {k: sft_info.get(k) for k in ("method", "config", "span")},
        "span": sft_info.get("span"),
        "config": config.to_dict(),
        "data": {
            "fingerprint": identity["data"],
            "prompts": len(examples),
            "meta": split.meta.get("dataset"),
        },
        "training": {
            **record,
            "reward_curve": logged_curve(trainer.state.log_history, "reward"),
            "item_reward_curve": logged_curve(trainer.state.log_history, "item_reward"),
            "precision": precision,
            "device": str(next(trainer.model.parameters()).device),
        },
    }

    def save() -> None:
        merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        save_model_folder(merged, tokenizer, output, overwrite=overwrite, info={GEN_FILE: summary})

    work.finish(trainer, save)
    return RLResult(output, record["steps"], seconds, work.resume_from, summary, prompts=len(examples))
