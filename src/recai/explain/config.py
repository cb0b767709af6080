"""What an explainer run depends on (:class:`ExplainConfig`), apart from the training code so that
`recai explain train` takes its defaults from here without importing torch at CLI start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recai.explain.render import check_mode
from recai.train.sft import SFTConfig


@dataclass(frozen=True)
class ExplainConfig:
    """What an explainer run depends on: the mode, the LM recipe and the projectors' size; stored with
    the explainer (flattened, see :meth:`to_dict`) and checked when a run resumes.

    Attributes:
        mode: ``behaviour`` (text only), ``intention`` (recommender vectors only) or ``hybrid`` (both).
        sft: The LM side's recipe; the explainer trains LoRA only (the embedding matrix and head stay
            frozen).
        projector_hidden: The projectors' hidden size; None: the LLM's hidden size.
    """

    mode: str = "hybrid"
    sft: SFTConfig = field(default_factory=SFTConfig)
    projector_hidden: int | None = None

    def __post_init__(self) -> None:
        check_mode(self.mode)
        if self.sft.method != "lora":
            raise ValueError(
                "the explainer trains a LoRA adapter (the embedding matrix and head stay frozen)"
            )
        if self.projector_hidden is not None and self.projector_hidden < 1:
            raise ValueError("projector_hidden must be positive")

    def to_dict(self) -> dict[str, Any]:
        return {**self.sft.to_dict(), "mode": self.mode, "projector_hidden": self.projector_hidden}
