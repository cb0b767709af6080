"""Command-line options every batch LLM command shares (``--concurrency``, ``--budget-tokens``,
``--budget-cost``), so they read and behave the same in ``recai eval``, ``recai knowledge eval``,
``recai embed data``, ``recai agent record`` and ``recai explain eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from recai.llm.batch import BatchSettings, Budget

#: The exit status of a run stopped by its budget: not a failure, since running again resumes it.
BUDGET_STOP_STATUS = 3
_err = Console(stderr=True)

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
    prices: str | Path | None = None,
) -> BatchSettings:
    """The :class:`BatchSettings` for the shared options, checked before any model loads (prices are
    read only for a cost budget); bad values end the command with a clear error."""
    from recai.data import DataError

    try:
        cost_of = None
        if budget_cost is not None:
            from recai.evaluate.prices import PriceTable

            cost_of = PriceTable.load(str(prices) if prices else None).cost
        budget = None
        if budget_tokens is not None or budget_cost is not None:
            budget = Budget(max_tokens=budget_tokens, max_cost=budget_cost, cost_of=cost_of)
        return BatchSettings(concurrency=concurrency, budget=budget)
    except (ValueError, DataError, OSError) as exc:
        _err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(code=1) from None


def budget_stop(exc: BaseException, note: str = "") -> typer.Exit:
    """Report a run stopped by its budget (with what happens to the work done) and the exit to raise."""
    _err.print(f"[yellow]{escape(str(exc))}{' ' + escape(note) if note else ''}[/]")
    return typer.Exit(code=BUDGET_STOP_STATUS)
