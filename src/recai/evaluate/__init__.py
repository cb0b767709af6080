"""Measurement for every pillar, in resumable run folders with reports.

- :mod:`recai.evaluate.metrics`: top-k metrics (Hit, Precision, Recall, NDCG, MRR), coverage,
  popularity bias and bootstrap confidence intervals;
- :mod:`recai.evaluate.recommender`: the full-ranking protocol for classic recommenders;
- :mod:`recai.evaluate.generative` and :mod:`recai.evaluate.parsing`: ranking and retrieval with LLMs
  (samples, systems, list parsing and title grounding, position bias);
- :mod:`recai.evaluate.conversation`: simulated users, leak checks and conversational systems;
- :mod:`recai.evaluate.judge`: a pairwise LLM judge asked in both orders;
- :mod:`recai.evaluate.runs`, :mod:`recai.evaluate.report`, :mod:`recai.evaluate.compare` and
  :mod:`recai.evaluate.prices`: run folders, ``metrics.json`` and ``report.md``, paired comparisons of
  runs, and cost estimates;
- :mod:`recai.evaluate.runners`: what ``recai eval`` runs (``run_list_eval``, ``run_recommender_eval``,
  ``run_conversation_eval``, ``run_judge_eval``), told how to run by a ``RunSettings`` (cache, prices,
  resume, progress, batch) and, for candidate lists, which samples to draw by a ``ListSampling``.

The names below are imported on first access: ``recai.rec`` uses the metrics for early stopping, and
importing them must not import the runners (which import ``recai.rec``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recai._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".metrics": [
            "MetricSummary",
            "bootstrap_ci",
            "coverage",
            "popularity_bias",
            "ranking_metrics",
            "summarize",
            "top_k",
        ],
        ".recommender": ["evaluate_recommender", "rank_users"],
        ".generative": [
            "ListEvaluator",
            "ListSample",
            "ListSystem",
            "LLMListSystem",
            "ListSampling",
            "RecommenderListSystem",
            "build_samples",
        ],
        ".parsing": ["ListGrounder", "parse_item_list"],
        ".conversation": ["ConversationEvaluator", "ConversationalSystem", "UserSimulator"],
        ".judge": ["JudgeItem", "PairwiseJudge", "evaluate_pairwise"],
        ".runs": ["RunFolder"],
        ".report": ["write_report"],
        ".compare": ["compare_runs"],
        ".prices": ["PriceTable"],
        ".prepare": ["DataOptions"],
        ".sampled": ["RunSettings"],
        ".runners": [
            "judge_pairs_from_runs",
            "run_conversation_eval",
            "run_judge_eval",
            "run_list_eval",
            "run_recommender_eval",
        ],
    },
)

__all__ = [
    "ConversationEvaluator",
    "ConversationalSystem",
    "DataOptions",
    "JudgeItem",
    "LLMListSystem",
    "ListEvaluator",
    "ListGrounder",
    "ListSample",
    "ListSampling",
    "ListSystem",
    "MetricSummary",
    "PairwiseJudge",
    "PriceTable",
    "RecommenderListSystem",
    "RunFolder",
    "RunSettings",
    "UserSimulator",
    "bootstrap_ci",
    "build_samples",
    "compare_runs",
    "coverage",
    "evaluate_pairwise",
    "evaluate_recommender",
    "judge_pairs_from_runs",
    "parse_item_list",
    "popularity_bias",
    "rank_users",
    "ranking_metrics",
    "run_conversation_eval",
    "run_judge_eval",
    "run_list_eval",
    "run_recommender_eval",
    "summarize",
    "top_k",
    "write_report",
]

if TYPE_CHECKING:
    from recai.evaluate.compare import compare_runs
    from recai.evaluate.conversation import ConversationalSystem, ConversationEvaluator, UserSimulator
    from recai.evaluate.generative import (
        ListEvaluator,
        ListSample,
        ListSampling,
        ListSystem,
        LLMListSystem,
        RecommenderListSystem,
        build_samples,
    )
    from recai.evaluate.judge import JudgeItem, PairwiseJudge, evaluate_pairwise
    from recai.evaluate.metrics import (
        MetricSummary,
        bootstrap_ci,
        coverage,
        popularity_bias,
        ranking_metrics,
        summarize,
        top_k,
    )
    from recai.evaluate.parsing import ListGrounder, parse_item_list
    from recai.evaluate.prepare import DataOptions
    from recai.evaluate.prices import PriceTable
    from recai.evaluate.recommender import evaluate_recommender, rank_users
    from recai.evaluate.report import write_report
    from recai.evaluate.runners import (
        judge_pairs_from_runs,
        run_conversation_eval,
        run_judge_eval,
        run_list_eval,
        run_recommender_eval,
    )
    from recai.evaluate.runs import RunFolder
    from recai.evaluate.sampled import RunSettings
