"""Command-line options every batch LLM command shares (``--concurrency``, ``--budget-tokens``,
``--budget-cost``), so they read and behave the same in ``recai eval``, ``recai knowledge eval``,
``recai embed data``, ``recai agent record`` and ``recai explain eval``."""

from __future__ import annotations

from typing import Annotated

import typer

from recai.llm.batch import BatchSettings, Budget

ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        min=1,
        help="LLM requests kept in flight (default: 8 for openai: servers, 1 for in-process models). "
        "Records are written in input order at any setting.",
    ),
]
BudgetTokensOpt = Annotated[
    int | None,
    typer.Option(
        "--budget-tokens",
        min=1,
        help="Stop once the models have processed this many tokens (cache hits are free); a rerun resumes.",
    ),
]
BudgetCostOpt = Annotated[
    float | None,
    typer.Option(
        "--budget-cost",
        min=0.0,
        help="Stop once the estimated cost reaches this (prices from --prices or the built-in table).",
    ),
]


def batch_settings(
    concurrency: int | None,
    budget_tokens: int | None = None,
    budget_cost: float | None = None,
    prices: str | None = None,
) -> BatchSettings:
    """The :class:`BatchSettings` for the shared options (prices are loaded only for a cost budget)."""
    cost_of = None
    if budget_cost is not None:
        from recai.evaluate.prices import PriceTable

        cost_of = PriceTable.load(prices).cost
    budget = None
    if budget_tokens is not None or budget_cost is not None:
        budget = Budget(max_tokens=budget_tokens, max_cost=budget_cost, cost_of=cost_of)
    return BatchSettings(concurrency=concurrency, budget=budget)
