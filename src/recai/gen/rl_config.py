"""What a GRPO run depends on (:class:`RLConfig`, with the reward weights of :class:`RewardConfig`; the
terms are described in :mod:`recai.gen.rl`), apart from the training code so that `recai gen rl` takes
its defaults from here without importing transformers at CLI start."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from recai.train.arguments import TrainingConfig


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the reward terms (see the module docstring); none may be negative.

    Attributes:
        hit: Credit for the held-out item among the first k valid items (discounted by its rank).
        teacher: Credit for valid items the reference list ranks (discounted by that rank).
        invalid: Penalty per share of named items that are not catalog items.
        repeat: Penalty per share of named items that repeat an earlier one.
        seen: Penalty per share of named items the user has already seen.
        count: Penalty for missing the asked number of items (relative error, at most 1).
        control: Penalty for breaking the example's category control.
        empty: Penalty for a reply that names no item.
    """

    hit: float = 1.0
    teacher: float = 0.5
    invalid: float = 1.0
    repeat: float = 0.5
    seen: float = 0.5
    count: float = 1.0
    control: float = 1.0
    empty: float = 1.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value < 0:
                raise ValueError(f"RewardConfig.{name} must not be negative, got {value}")


@dataclass(frozen=True, kw_only=True)
class RLConfig(TrainingConfig):
    """What a GRPO run depends on: the schedule every trainer has
    (:class:`~recai.train.arguments.TrainingConfig`: steps, batch size, learning rate, seed,
    checkpoints, precision, device) and the GRPO recipe below.

    Attributes:
        sft_model: A folder written by ``recai gen train`` (adapter or full); required.
        tasks: The list tasks prompts are drawn from; None: every list task in the data.
        max_steps: GRPO steps.
        batch_size: Completions per device and step (a multiple of ``num_generations``).
        num_generations: Replies per prompt, the group GRPO compares.
        max_completion_length: Reply length limit in tokens.
        temperature: Sampling temperature of the rollouts.
        beta: KL penalty to the frozen SFT model.
        item_weight: Weight of the item-level advantage on each named item's tokens
            (:mod:`recai.gen.item_advantages`); 0: GRPO's list-level advantage only.
        lora_r: Rank of the RL adapter (on the SFT model with its own adapter folded in).
        lora_alpha: LoRA scaling numerator of the RL adapter.
        seed: Seeds the adapter's initialisation, the prompts' order and the sampling.
        logging_steps: A reward and loss record every this many steps.
        reward: The weights of the reward terms.
    """

    sft_model: str = ""
    max_steps: int = 200
    batch_size: int = 8
    num_generations: int = 4
    max_completion_length: int = 256
    temperature: float = 1.0
    learning_rate: float = 1e-5
    beta: float = 0.04
    item_weight: float = 0.0
    lora_r: int = 16
    lora_alpha: int = 32
    save_steps: int = 50
    logging_steps: int = 5
    reward: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self) -> None:
        if not self.sft_model:
            raise ValueError("RLConfig.sft_model: the SFT model folder is required")
        if self.num_generations < 2:
            raise ValueError("RLConfig.num_generations: GRPO needs at least 2 replies per prompt")
        if self.batch_size % self.num_generations:
            raise ValueError(
                f"RLConfig.batch_size ({self.batch_size}) must be a multiple of num_generations "
                f"({self.num_generations})"
            )
        super().__post_init__()
        self.refuse_invalid(
            {
                "max_steps": self.max_steps >= 1,
                "max_completion_length": self.max_completion_length >= 8,
                "beta": self.beta >= 0,
                "item_weight": self.item_weight >= 0,
            }
        )
