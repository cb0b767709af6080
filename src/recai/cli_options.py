"""The small kit every ``commands.py`` shares: the consoles, :func:`fail` (an error message and exit 1),
dataset loading with a status line, comma lists, the option types several commands repeat, and the
options every batch LLM command shares (``--concurrency``, ``--budget-tokens``, ``--budget-cost``), so
they read and behave the same in ``recai eval``, ``recai knowledge eval``, ``recai embed data``,
``recai agent record`` and ``recai explain eval``.

Heavy imports stay inside functions: ``recai --help`` imports every command module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from recai.llm.batch import BatchSettings, Budget

#: The exit status of a run stopped by its budget: not a failure, since running again resumes it.
BUDGET_STOP_STATUS = 3
console = Console()
err = Console(stderr=True)


def fail(exc: BaseException) -> typer.Exit:
    """Print ``error: <exc>`` on stderr; return the exit (status 1): ``raise fail(exc) from None``."""
    err.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(code=1)


def load_dataset(spec: str, *, min_rating: float | None = None, k_core: int = 0) -> Any:
    """The dataset named or saved at ``spec`` (optionally filtered), or a clear error and exit 1."""
    from recai.data import DataError, UnknownDatasetError, load

    try:
        with console.status(f"loading {spec} ..."):
            ds = load(spec)
    except (DataError, UnknownDatasetError, FileNotFoundError) as exc:
        raise fail(exc) from None
    if min_rating is not None:
        ds = ds.implicit(min_rating)
    if k_core:
        ds = ds.k_core(k_core)
    return ds


def csv(value: str | None) -> list[str] | None:
    """A comma-separated option as a list (None when not given or empty)."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


# The option types several commands share (same flag, same help).
DataOpt = Annotated[str, typer.Option("--data", help="Dataset name or path.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Run folder (resumed when it exists).")]
SeedOpt = Annotated[int, typer.Option(help="Seed for sampling users, negatives and orders.")]
KCoreOpt = Annotated[int, typer.Option("--k-core", help="Iterative k-core before splitting (0: none).")]
PricesOpt = Annotated[Path | None, typer.Option(help="Your price table (YAML) for the cost estimate.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not use the LLM response cache.")]
EncoderOpt = Annotated[
    str | None,
    typer.Option(help="Embedder for soft-condition retrieval, e.g. st:FOLDER from `recai embed train`."),
]
PlannerOpt = Annotated[
    str | None,
    typer.Option(help="A separate planner model, e.g. hf:FOLDER from `recai agent distill`."),
]
DemonstrationsOpt = Annotated[
    Path | None,
    typer.Option(help="Your own planner examples (JSON list of request/plan), added to the derived ones."),
]

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
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(code=1) from None


def budget_stop(exc: BaseException, note: str = "") -> typer.Exit:
    """Report a run stopped by its budget (with what happens to the work done) and the exit to raise."""
    err.print(f"[yellow]{escape(str(exc))}{' ' + escape(note) if note else ''}[/]")
    return typer.Exit(code=BUDGET_STOP_STATUS)


def agent_settings(
    encoder: str | None, planner: str | None = None, demonstrations: Path | None = None
) -> dict[str, Any]:
    """Agent keyword arguments for the command-line options that change its models and examples."""
    out: dict[str, Any] = {}
    if encoder is not None or demonstrations is not None:
        from recai.agent.context import AgentSettings

        out["settings"] = AgentSettings(
            encoder=encoder, demonstrations_file=str(demonstrations) if demonstrations else None
        )
    if planner is not None:
        out["planner_llm"] = planner
    return out


def report_done(report: Path) -> None:
    """Show a finished evaluation run's metrics and where its report is."""
    from rich.table import Table

    from recai.evaluate.runs import RunFolder

    metrics = RunFolder.load(report.parent).read_metrics()
    table = Table(title=f"{metrics['task']} ({metrics['n']} samples)")
    for column in ("metric", "mean", "95% CI"):
        table.add_column(column)
    for name, m in metrics["metrics"].items():
        ci = f"[{m['low']:.4f}, {m['high']:.4f}]" if m["low"] is not None else "-"
        table.add_row(name, f"{m['mean']:.4f}", ci)
    console.print(table)
    console.print(f"report: {report}")


def run_eval(run: Any, *args: Any, **kwargs: Any) -> None:
    """Run one evaluation task, turn its expected failures into clear errors, and show its metrics.

    A run stopped by its budget exits with status 3 (not a failure of the run: it resumes)."""
    from recai.data import DataError
    from recai.evaluate.runs import ConfigMismatchError
    from recai.llm.batch import BudgetExhaustedError

    try:
        report = run(*args, **kwargs)
    except BudgetExhaustedError as exc:
        raise budget_stop(exc) from None
    except (ConfigMismatchError, FileExistsError, ValueError, DataError) as exc:
        raise fail(exc) from None
    report_done(report)
