"""Item-level advantages for GRPO: each item a reply names is credited on the tokens that wrote it.

GRPO gives every token of a reply one advantage: the reply's list reward minus its group's mean, over
the group's standard deviation. A list of ten good items and one invented title then pushes all eleven
names down together. RecAI's RL also rewards each item of the list (a catalog item, in the asked
category, not in the history, not repeated: :meth:`recai.gen.rl.ListReward.items`). Here each item's
reward is normalised against every item of its group's replies (the ``num_generations`` replies to one
prompt), and the advantage of a reply token is

    list advantage + item_weight * item advantage   for the tokens of item i's span (markers included)
    list advantage                                  for every other token

With ``item_weight`` 0 this is GRPO's advantage exactly, and :func:`recai.gen.rl.train_grpo` then uses
TRL's trainer unchanged. Items read from free text (a reply without span markers) have no tokens to
credit and take no part.

The trainer relies on internals of TRL 1.16's ``GRPOTrainer``: ``_generate_and_score_completions``
returns the batch with one advantage per reply (``advantages``, shape (B,)) next to ``completion_mask``
(B, T), and ``_compute_loss`` also takes advantages of shape (B, T) (its "subclasses that provide
advantages with shape (B, T)" branch) and multiplies them per token in every loss type.
:func:`check_trl_internals` fails clearly when either changes.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recai.gen.generate import Parsed

#: The TRL release whose ``GRPOTrainer`` internals the item-level trainer was written against.
TRL_VERSION = "1.16"
#: Added to a group's standard deviation before dividing, as TRL does for the list rewards.
STD_EPSILON = 1e-4


@dataclass(frozen=True)
class ItemRewards:
    """The reward of each item one reply names, and the reply tokens that wrote it.

    Attributes:
        rewards: One reward per named item, in the reply's order.
        spans: The ``[start, end)`` range of each item's tokens in the reply, one per reward, in order
            and disjoint.
    """

    rewards: tuple[float, ...]
    spans: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        if len(self.rewards) != len(self.spans):
            raise ValueError(
                f"item span mismatch: {len(self.rewards)} item rewards for {len(self.spans)} token spans"
            )
        previous_end = 0
        for start, end in self.spans:
            if start < previous_end or end <= start:
                raise ValueError(
                    "item span mismatch: token spans must be non-empty, ordered and disjoint, "
                    f"got {self.spans}"
                )
            previous_end = end

    @classmethod
    def of(cls, rewards: Sequence[float], parsed: Parsed) -> ItemRewards:
        """The item rewards of a parsed reply with its items' token spans; none for a reply read from
        free text (no tokens to credit)."""
        if parsed.token_spans is None:
            return cls((), ())
        return cls(tuple(float(r) for r in rewards), tuple(parsed.token_spans))


#: TRL's ``scale_rewards`` values, which the item advantages follow as the list advantages do.
SCALES = ("group", "batch", "none")


def _std(values: np.ndarray) -> float:
    """The standard deviation with Bessel's correction (TRL's ``nanstd``), 0 under two values."""
    return float(values.std(ddof=1)) if values.size > 1 else 0.0


def group_item_advantages(
    items: Sequence[ItemRewards], num_generations: int, scale: str = "group"
) -> list[list[float]]:
    """Each item's reward minus the mean of every item in its group's replies, over a standard deviation
    plus :data:`STD_EPSILON`, as TRL scales the list rewards (``scale``): the group's items' (``group``),
    every item's in the batch (``batch``), or none (``none``: the difference only). 0 where a group names
    fewer than two items. ``items`` holds the replies in TRL's order: each group's replies together."""
    if num_generations < 1 or len(items) % num_generations:
        raise ValueError(f"{len(items)} replies do not split into groups of {num_generations}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    batch_std = _std(np.array([r for item in items for r in item.rewards], dtype=np.float64))
    out: list[list[float]] = []
    for lo in range(0, len(items), num_generations):
        group = items[lo : lo + num_generations]
        values = np.array([r for item in group for r in item.rewards], dtype=np.float64)
        if values.size < 2:
            out.extend([[0.0] * len(item.rewards) for item in group])
            continue
        mean = float(values.mean())
        divisor = {"group": _std(values) + STD_EPSILON, "batch": batch_std + STD_EPSILON, "none": 1.0}[scale]
        out.extend([[(r - mean) / divisor for r in item.rewards] for item in group])
    return out


def token_advantages(
    sequence: Any,
    items: Sequence[ItemRewards],
    item_advantages: Sequence[Sequence[float]],
    width: int,
    weight: float,
) -> Any:
    """The (B, ``width``) advantages of the reply tokens: each reply's list advantage (``sequence``,
    shape (B,)) everywhere, plus ``weight`` times an item's advantage on its span's tokens."""
    if sequence.dim() != 1 or sequence.shape[0] != len(items):
        raise RuntimeError(
            f"expected one list advantage per reply, shape ({len(items)},), got {tuple(sequence.shape)}: "
            f"the item-level advantages rely on TRL {TRL_VERSION}'s GRPOTrainer internals, which changed"
        )
    out = sequence.unsqueeze(1).expand(len(items), width).clone()
    for row, (item, advantages) in enumerate(zip(items, item_advantages, strict=True)):
        if len(advantages) != len(item.spans):
            raise ValueError(
                f"item span mismatch in reply {row}: {len(advantages)} advantages for {len(item.spans)} spans"
            )
        for (start, end), advantage in zip(item.spans, advantages, strict=True):
            if end > width:
                raise ValueError(
                    f"item span mismatch in reply {row}: tokens [{start}, {end}) lie past its {width} tokens"
                )
            out[row, start:end] += weight * advantage
    return out


def check_trl_internals(trainer_class: type) -> None:
    """Fail clearly unless ``trainer_class`` (TRL's ``GRPOTrainer``) has the internals the item-level
    trainer overrides and relies on (see the module docstring)."""
    problems = [
        f"no method {name}"
        for name in ("_generate_and_score_completions", "_compute_loss")
        if not callable(getattr(trainer_class, name, None))
    ]
    if not problems:
        try:
            loss_source = inspect.getsource(trainer_class._compute_loss)  # type: ignore[attr-defined]
        except (OSError, TypeError):
            loss_source = ""
        if "advantages.dim() == 1" not in loss_source:
            problems.append("_compute_loss no longer takes per-token advantages of shape (B, T)")
    if problems:
        raise RuntimeError(
            f"item-level GRPO advantages were written against TRL {TRL_VERSION}'s GRPOTrainer, and "
            f"{trainer_class.__name__} differs: {'; '.join(problems)}. Train with item_weight 0 (GRPO's "
            f"list advantage only) or install trl {TRL_VERSION}.x."
        )


def refuse_sequence_level_settings(trainer: Any) -> None:
    """Refuse the GRPO settings that read the advantage as one number per reply (a per-token advantage
    would silently change their meaning) or that normalise the rewards other than per group."""
    problems = []
    if getattr(trainer, "off_policy_mask_threshold", None) is not None:
        problems.append("off_policy_mask_threshold (it masks whole replies by the sign of their advantage)")
    if getattr(trainer, "loss_type", None) == "vespo":
        problems.append("loss_type 'vespo' (it weighs whole replies by the sign of their advantage)")
    if getattr(trainer, "multi_objective_aggregation", "sum_then_normalize") != "sum_then_normalize":
        problems.append("multi_objective_aggregation other than 'sum_then_normalize'")
    if getattr(trainer, "scale_rewards", "group") not in SCALES:
        problems.append(f"scale_rewards {trainer.scale_rewards!r}")
    if problems:
        raise ValueError(
            "item-level advantages (item_weight > 0) cannot be used with "
            + "; ".join(problems)
            + ": set item_weight 0 or leave these at their defaults"
        )


def item_advantage_trainer(trainer_class: type) -> type:
    """A subclass of ``trainer_class`` (TRL's ``GRPOTrainer``) whose advantages are per token: the list
    advantage TRL computes, plus ``item_weight`` times each item's advantage on its span's tokens.

    Its extra keyword arguments are ``item_rewards``, the list the reward function fills with one
    :class:`ItemRewards` per reply of the batch it scores (see :func:`recai.gen.rl.reward_function`),
    and ``item_weight``.
    """
    check_trl_internals(trainer_class)

    class ItemAdvantageTrainer(trainer_class):  # type: ignore[misc,valid-type]
        def __init__(
            self, *args: Any, item_rewards: list[ItemRewards], item_weight: float, **kwargs: Any
        ) -> None:
            super().__init__(*args, **kwargs)
            refuse_sequence_level_settings(self)
            self.item_rewards = item_rewards
            self.item_weight = float(item_weight)

        def _generate_and_score_completions(self, inputs: Any) -> dict[str, Any]:
            from accelerate.utils import gather_object

            self.item_rewards.clear()
            output = super()._generate_and_score_completions(inputs)
            mask = output.get("completion_mask")
            if "advantages" not in output or mask is None:
                raise RuntimeError(
                    f"TRL's batch has no advantages or completion_mask: the item-level advantages rely "
                    f"on TRL {TRL_VERSION}'s GRPOTrainer internals, which changed"
                )
            local = list(self.item_rewards)
            if len(local) != mask.shape[0]:
                raise ValueError(
                    f"item span mismatch: the reward function recorded item rewards for {len(local)} "
                    f"replies, the batch has {mask.shape[0]}"
                )
            mode = "train" if self.model.training else "eval"
            generations = self.num_generations if mode == "train" else self.num_generations_eval
            every = gather_object(local)  # the group of a reply may lie on another process
            advantages = group_item_advantages(every, generations, self.scale_rewards)
            first = self.accelerator.process_index * len(local)
            mine = advantages[first : first + len(local)]
            output["advantages"] = token_advantages(
                output["advantages"], local, mine, mask.shape[1], self.item_weight
            )
            rewards = [r for item in every for r in item.rewards]
            if rewards:
                self._metrics[mode]["item_reward"].append(float(np.mean(rewards)))
            return output

    return ItemAdvantageTrainer
