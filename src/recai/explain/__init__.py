"""RecExplainer: an LLM aligned to a recommender model (behaviour, intention, hybrid) so it can explain it.

- :mod:`recai.explain.target`: the frozen target recommender (SASRec, ALS, BPR) and its vectors;
- :mod:`recai.explain.tasks`: alignment data labelled by running the target;
- :mod:`recai.explain.render`: users and items as text, as embedding placeholders, or both;
- :mod:`recai.explain.model` and :mod:`recai.explain.training`: LoRA + projectors, trained and loaded
  (:mod:`recai.explain.config`: what a run depends on);
- :mod:`recai.explain.evaluation`: alignment metrics per task and judged explanations;
- :mod:`recai.explain.reference`: a model-free reference (the target's popular training answers) that
  shows how much of an alignment score popularity alone explains.

Modules import torch and transformers only when they need them (``model`` and ``training`` do).

Each name is imported when first used, so ``recai explain --help`` renders nothing and fits no target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recai._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".examples": ["ExplainData", "ExplainExample"],
        ".render": ["ITEM_TOKEN", "MODES", "USER_TOKEN", "Renderer"],
        ".target": ["TargetModel", "fit_target"],
        ".tasks": [
            "EXPLAIN_TASKS",
            "TASKS",
            "ExplainContext",
            "ExplainTask",
            "ExplainTaskBuilder",
            "build_explain_data",
        ],
    },
)

__all__ = [
    "EXPLAIN_TASKS",
    "ITEM_TOKEN",
    "MODES",
    "TASKS",
    "USER_TOKEN",
    "ExplainContext",
    "ExplainData",
    "ExplainExample",
    "ExplainTask",
    "ExplainTaskBuilder",
    "Renderer",
    "TargetModel",
    "build_explain_data",
    "fit_target",
]

if TYPE_CHECKING:
    from recai.explain.examples import ExplainData, ExplainExample
    from recai.explain.render import ITEM_TOKEN, MODES, USER_TOKEN, Renderer
    from recai.explain.target import TargetModel, fit_target
    from recai.explain.tasks import (
        EXPLAIN_TASKS,
        TASKS,
        ExplainContext,
        ExplainTask,
        ExplainTaskBuilder,
        build_explain_data,
    )
