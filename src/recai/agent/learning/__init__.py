"""Tool learning: record a strong planner's trajectories, keep the good ones, distil them into a small
model, and measure how well it plans (see docs/agent.md, "Tool learning").

The names are imported on first access: ``recai agent --help`` reads the distillation defaults from
:mod:`recai.agent.learning.distill` without importing the planner, its tools and the catalog.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recai._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".dataset": [
            "PlanPair",
            "balance",
            "build_planner_data",
            "deduplicate",
            "plan_shape",
            "split_pairs",
            "training_pairs",
        ],
        ".distill": ["DEFAULT_CONFIG", "distill_planner", "student_config"],
        ".evaluation": [
            "compare_plans",
            "evaluate_plan",
            "evaluate_planner",
            "planner_system",
            "summarize_plans",
        ],
        ".requests": ["SHAPES", "TemplateRequest", "check_turn", "template_requests"],
        ".trajectories": ["TurnRecorder", "record_simulated", "record_templates"],
    },
)

__all__ = [
    "DEFAULT_CONFIG",
    "SHAPES",
    "PlanPair",
    "TemplateRequest",
    "TurnRecorder",
    "balance",
    "build_planner_data",
    "check_turn",
    "compare_plans",
    "deduplicate",
    "distill_planner",
    "evaluate_plan",
    "evaluate_planner",
    "plan_shape",
    "planner_system",
    "record_simulated",
    "record_templates",
    "split_pairs",
    "student_config",
    "summarize_plans",
    "template_requests",
    "training_pairs",
]

if TYPE_CHECKING:
    from recai.agent.learning.dataset import (
        PlanPair,
        balance,
        build_planner_data,
        deduplicate,
        plan_shape,
        split_pairs,
        training_pairs,
    )
    from recai.agent.learning.distill import DEFAULT_CONFIG, distill_planner, student_config
    from recai.agent.learning.evaluation import (
        compare_plans,
        evaluate_plan,
        evaluate_planner,
        planner_system,
        summarize_plans,
    )
    from recai.agent.learning.requests import SHAPES, TemplateRequest, check_turn, template_requests
    from recai.agent.learning.trajectories import TurnRecorder, record_simulated, record_templates
