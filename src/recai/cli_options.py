"""The small kit every ``commands.py`` shares: the consoles, :class:`CommandGroup` (every command's
errors reported as one clear message and exit status), dataset loading with a status line, comma lists,
``key=value`` options, the option types several commands repeat, and the option groups several commands
share, each declared once and spliced into a command by :func:`spliced_options`: the batch LLM options
(``--concurrency``, ``--budget-tokens``, ``--budget-cost``; :func:`batch_options`), the training options
(:func:`training_options`, defaults from each pillar's config) and dataclass groups such as
:class:`UserSample` (:func:`option_group`), so they read and behave the same wherever they appear.

Heavy imports stay inside functions: ``recai --help`` imports every command module."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from recai.errors import RecaiError
from recai.llm.batch import BatchSettings, Budget, BudgetExhaustedError

#: The exit status of a run stopped by its budget: not a failure, since running again resumes it.
BUDGET_STOP_STATUS = 3
console = Console()
err = Console(stderr=True)


class CommandError(RecaiError):
    """A command's own arguments do not fit together (``--judge`` without ``--against``, an unknown model
    name); raised by a command and reported like any other :class:`RecaiError`."""


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the user's to fix (bad input, a missing file or package) rather than a bug.

    User errors are every :class:`RecaiError`; ``ValueError`` (a bad value: every recai input error, a
    pydantic ``ValidationError`` and a ``JSONDecodeError`` are ones); ``OSError`` (a missing or existing
    file, a refused connection); a YAML syntax error; and an ``ImportError`` for a package that is not
    installed (raised as, or from, ``ModuleNotFoundError``: an optional extra). Anything else (a
    ``TypeError``, ``KeyError``, ``AttributeError`` ...) is a bug and keeps its traceback.
    """
    if isinstance(exc, RecaiError | ValueError | OSError | ModuleNotFoundError):
        return True
    if isinstance(exc, ImportError):
        return isinstance(exc.__cause__, ModuleNotFoundError)
    yaml = sys.modules.get("yaml")  # a YAML error exists only once yaml was imported
    return yaml is not None and isinstance(exc, yaml.YAMLError)


def fail(exc: BaseException) -> typer.Exit:
    """Print ``error: <exc>`` on stderr; return the exit (status 1) to raise."""
    err.print(f"[bold red]error:[/] {escape(str(exc))}")
    return typer.Exit(code=1)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn a user error (:func:`is_user_error`) raised inside into ``error: <message>`` and exit 1, and a
    run stopped by its budget into exit 3 (:data:`BUDGET_STOP_STATUS`); bugs pass through untouched."""
    try:
        yield
    except BudgetExhaustedError as exc:
        raise budget_stop(exc) from None
    except Exception as exc:
        if not is_user_error(exc):
            raise
        raise fail(exc) from None


@contextmanager
def user_input(*kinds: type[Exception]) -> Iterator[None]:
    """Report ``kinds`` raised inside as user errors: a ``KeyError`` or ``TypeError`` is a bug in general
    but the user's unknown id or parameter name where the command passes one straight through."""
    try:
        yield
    except kinds as exc:
        raise CommandError(str(exc)) from exc


class CommandGroup(TyperGroup):
    """The root command group: every command runs inside :func:`reported_errors`, so no command catches
    the errors it expects one by one.

    Args:
        **kwargs: as for :class:`typer.core.TyperGroup`.
    """

    def invoke(self, ctx: click.Context) -> Any:
        with reported_errors():
            return super().invoke(ctx)


def load_dataset(spec: str, *, min_rating: float | None = None, k_core: int = 0) -> Any:
    """The dataset named or saved at ``spec`` (optionally filtered), loaded under a status line."""
    from recai.data import load

    with console.status(f"loading {spec} ..."):
        ds = load(spec)
    if min_rating is not None:
        ds = ds.implicit(min_rating)
    if k_core:
        ds = ds.k_core(k_core)
    return ds


def source_dataset(meta: dict[str, Any], override: str | None, owner: str) -> Any:
    """The dataset a saved example set or model came from, filtered as it was (what its ``meta``
    records, see :func:`save_examples`), or the ``--data`` given instead; ``owner`` names the folder
    in the error when it records none."""
    spec = override or meta.get("dataset_spec") or meta.get("dataset")
    if not spec:
        raise CommandError(f"{owner} does not say which dataset it came from: pass --data")
    return load_dataset(str(spec), min_rating=meta.get("min_rating"), k_core=int(meta.get("k_core") or 0))


def save_examples(examples: Any, out: Path, *, source: str, title: str, overwrite: bool) -> None:
    """Save the example set `recai gen data`, `embed data` or `explain data` built from the dataset
    ``source`` (recorded for :func:`source_dataset`) and show its examples per task."""
    from rich.table import Table

    from recai.data import portable_spec

    examples.meta["dataset_spec"] = portable_spec(source)
    examples.save(out, overwrite=overwrite)
    table = Table("task", "train", "test", title=title)
    for task, counts in examples.counts().items():
        table.add_row(task, str(counts.get("train", 0)), str(counts.get("test", 0)))
    console.print(table)
    console.print(f"written to {out}")


def csv(value: str | None) -> list[str] | None:
    """A comma-separated option as a list (None when not given or empty)."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def csv_tuple(value: str | None) -> tuple[str, ...] | None:
    """A comma-separated option as the tuple a frozen config takes (None when not given or empty)."""
    items = csv(value)
    return tuple(items) if items else None


def key_values(pairs: list[str] | None, option: str) -> dict[str, Any]:
    """The ``key=value`` pairs of a repeatable ``option`` (``--param``, ``--teacher-param``) as keyword
    arguments: dashes in keys become underscores, values are parsed as numbers, booleans or text."""
    from recai.llm.factory import parse_value

    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CommandError(f"{option} takes key=value, got '{pair}'")
        params[key.replace("-", "_")] = parse_value(value)
    return params


# The option types several commands share (same flag, same help).
DataOpt = Annotated[str, typer.Option("--data", help="Dataset name or path.")]
# A command that once took its dataset as an argument takes --data too; the argument still works.
DataOrArgOpt = Annotated[
    str | None, typer.Option("--data", help="Dataset name or path (default: demo).", show_default=False)
]
DataArg = Annotated[
    str | None,
    typer.Argument(
        metavar="DATA", help="The dataset as an argument: the same as --data.", show_default=False
    ),
]


def dataset_spec(option: str | None, argument: str | None, default: str | None = "demo") -> str:
    """The dataset of a command that takes it as ``--data`` or as its argument (one of them, or the same
    in both)."""
    if option is not None and argument is not None and option != argument:
        raise CommandError(f"two datasets given ({argument} and --data {option}): give one")
    spec = option or argument or default
    if spec is None:
        raise CommandError("give a dataset: --data NAME_OR_FOLDER")
    return spec


SourceDataOpt = Annotated[
    str | None, typer.Option(help="Dataset (default: the one the data was built from).")
]
MinRatingOpt = Annotated[float | None, typer.Option(help="Keep events rated at least this.")]
OverwriteOpt = Annotated[bool, typer.Option(help="Replace an existing folder.")]
DeviceOpt = Annotated[str, typer.Option(help="cpu or cuda.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
NounOpt = Annotated[str | None, typer.Option(help="What an item is called (film, product).")]
# what the example builders of `recai gen data` and `recai explain data` take, and the trainers select
PerTaskOpt = Annotated[int, typer.Option(help="Training examples per task.")]
TrainTasksOpt = Annotated[str | None, typer.Option(help="Comma-separated tasks to train on (default all).")]
SasrecBudgetOpt = Annotated[float, typer.Option(help="SASRec training time budget.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Run folder (resumed when it exists).")]
ExamplesOutOpt = Annotated[Path, typer.Option("--out", help="Folder for train.jsonl, test.jsonl, meta.json.")]
SeedOpt = Annotated[int, typer.Option(help="Seed for sampling users, negatives and orders.")]
KCoreOpt = Annotated[int, typer.Option("--k-core", help="Iterative k-core before splitting (0: none).")]
PricesOpt = Annotated[
    Path | None, typer.Option(help="Your price table (YAML) for the cost estimate and --budget-cost.")
]
# what candidate ranking runs (`recai eval ranking`, `recai knowledge eval`) sample per user
UsersOpt = Annotated[int, typer.Option(help="Test users to sample.")]
CandidatesOpt = Annotated[int, typer.Option(help="Candidates per user (the target included).")]
NegativesOpt = Annotated[str, typer.Option(help="uniform or popularity")]
OrdersOpt = Annotated[int, typer.Option(help="Candidate orders per user (position bias).")]
HistoryOpt = Annotated[int, typer.Option(help="Most recent history items shown.")]


@dataclass(frozen=True)
class UserSample:
    """The data and the test users a candidate-list run samples: the options `recai eval ranking`,
    `recai eval retrieval` and `recai knowledge eval` share.

    Attributes:
        data: the dataset name or path.
        users: how many test users to sample.
        k: the list length scored.
        history: the most recent history items shown.
        k_core: the iterative k-core before splitting (0: none).
        seed: the seed for sampling users, negatives and orders.
    """

    data: DataOpt = "demo"
    users: UsersOpt = 200
    k: int = 10
    history: HistoryOpt = 20
    k_core: KCoreOpt = 0
    seed: SeedOpt = 0

    def data_options(self) -> Any:
        """The :class:`~recai.evaluate.prepare.DataOptions` of the run."""
        from recai.evaluate.prepare import DataOptions

        return DataOptions(self.data, k_core=self.k_core, seed=self.seed)

    def sizes(self) -> dict[str, int]:
        """The runner's keyword arguments for the users, the list length and the history shown."""
        return {"n_users": self.users, "k": self.k, "history_len": self.history}


@dataclass(frozen=True)
class CandidateSample:
    """The candidates a ranking run shows each user: the options `recai eval ranking` and
    `recai knowledge eval` share.

    Attributes:
        candidates: candidates per user, the target included.
        negatives: how the other candidates are drawn (uniform or popularity).
        orders: candidate orders per user (position bias).
    """

    candidates: CandidatesOpt = 20
    negatives: NegativesOpt = "uniform"
    orders: OrdersOpt = 1

    def sizes(self) -> dict[str, Any]:
        """The runner's keyword arguments for the candidates."""
        return {"n_candidates": self.candidates, "negatives": self.negatives, "orders": self.orders}


NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not use the LLM response cache.")]
EncoderOpt = Annotated[
    str | None,
    typer.Option(help="Embedder for soft-condition retrieval, e.g. st:FOLDER from `recai embed train`."),
]
AgentLlmOpt = Annotated[
    str | None,
    typer.Option(
        "--llm",
        help="Model spec (default $RECAI_LLM or local:qwen2.5-1.5b-instruct); 'scripted:stand-in' "
        "runs the pipeline with a rule-based stand-in and no model.",
    ),
]
SimulatorOpt = Annotated[str, typer.Option(help="The user simulator's chat model.")]
SimulatedTurnsOpt = Annotated[int, typer.Option(help="Turns per simulated session.")]
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
    read only for a cost budget)."""
    cost_of = None
    if budget_cost is not None:
        from recai.evaluate.prices import PriceTable

        cost_of = PriceTable.load(str(prices) if prices else None).cost
    budget = None
    if budget_tokens is not None or budget_cost is not None:
        budget = Budget(max_tokens=budget_tokens, max_cost=budget_cost, cost_of=cost_of)
    return BatchSettings(concurrency=concurrency, budget=budget)


@dataclass(frozen=True)
class BatchRun:
    """What the shared batch options of a command ask for, passed to it as one ``run`` argument.

    Attributes:
        prices: the ``--prices`` table, or None for the built-in one.
        cache: False with ``--no-cache`` (always True where the command has no such option).
        batch: the concurrency and budget from ``--concurrency``, ``--budget-tokens``, ``--budget-cost``.
    """

    prices: str | None
    cache: bool
    batch: BatchSettings

    def settings(self) -> dict[str, Any]:
        """The ``prices``, ``cache`` and ``batch`` keyword arguments every evaluation runner takes."""
        return {"prices": self.prices, "cache": self.cache, "batch": self.batch}


def spliced_options(
    command: Callable[..., None],
    name: str,
    added: list[inspect.Parameter],
    build: Callable[[dict[str, Any]], Any],
) -> Callable[..., None]:
    """``command`` with its parameter ``name`` replaced, in the command line, by the options ``added``;
    a call passes their values through ``build`` to ``command`` as ``name``. Every shared option group
    (batch, training, sampling) is declared once and handed to its commands this way."""
    own = list(inspect.signature(command, eval_str=True).parameters.values())
    at = [p.name for p in own].index(name)
    kept = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own if p.name != name]
    added = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in added]

    @functools.wraps(command)
    def with_options(**kwargs: Any) -> None:
        shared = build({p.name: kwargs.pop(p.name) for p in added})
        command(**kwargs, **{name: shared})

    parameters = kept[:at] + added + kept[at:]
    with_options.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    with_options.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_options


def option_group(group: type[Any], name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the fields of the dataclass ``group`` (each annotated with its option type, with
    its default) as options where its parameter ``name`` stands, and pass them to it as one ``group``."""
    hints = typing.get_type_hints(group, include_extras=True)
    added = [_option(field.name, hints[field.name], field.default) for field in dataclasses.fields(group)]
    return lambda command: spliced_options(command, name, added, lambda values: group(**values))


def _option(name: str, kind: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default)


def batch_options(*, cache: bool = True) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command ``--prices``, ``--concurrency``, ``--budget-tokens``, ``--budget-cost`` (and, with
    ``cache``, ``--no-cache``), declared once here, and pass them to it as ``run: BatchRun``."""
    added = [
        _option("prices", PricesOpt, None),
        _option("no_cache", NoCacheOpt, False),
        _option("concurrency", ConcurrencyOpt, None),
        _option("budget_tokens", BudgetTokensOpt, None),
        _option("budget_cost", BudgetCostOpt, None),
    ]
    if not cache:
        del added[1]

    def build(values: dict[str, Any]) -> BatchRun:
        prices = values["prices"]
        return BatchRun(
            prices=str(prices) if prices else None,
            cache=not values.get("no_cache", False),
            batch=batch_settings(
                values["concurrency"], values["budget_tokens"], values["budget_cost"], prices
            ),
        )

    return lambda command: spliced_options(command, "run", added, build)


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


# The training options of `recai gen train`, `recai embed train`, `recai explain train` and
# `recai agent distill`, keyed by the config field each sets: (parameter name, option type).
_TRAINING_OPTIONS: dict[str, tuple[str, Any]] = {
    "method": ("method", Annotated[str, typer.Option(help="lora or full.")]),
    "epochs": ("epochs", Annotated[float, typer.Option(help="Passes over the training examples.")]),
    "max_steps": (
        "max_steps",
        Annotated[int, typer.Option(help="Stop after this many steps (overrides epochs).")],
    ),
    "batch_size": ("batch_size", Annotated[int, typer.Option(help="Examples per device and step.")]),
    "grad_accum": ("grad_accum", Annotated[int, typer.Option(help="Gradient accumulation steps.")]),
    "learning_rate": ("lr", Annotated[float, typer.Option("--lr", help="Peak learning rate.")]),
    "lora_r": ("lora_r", Annotated[int, typer.Option(help="LoRA rank.")]),
    "max_length": (
        "max_length",
        Annotated[int, typer.Option(help="Longest example in tokens (longer ones are dropped).")],
    ),
    "seed": ("seed", Annotated[int, typer.Option(help="Training seed.")]),
    "save_steps": ("save_steps", Annotated[int, typer.Option(help="Checkpoint every this many steps.")]),
    "precision": (
        "precision",
        Annotated[str, typer.Option(help="auto (bf16 on a GPU, else fp32), fp32, bf16 or fp16.")],
    ),
    "device": (
        "device",
        Annotated[str | None, typer.Option(help="cpu or cuda (default: CUDA when present).")],
    ),
    "gradient_checkpointing": (
        "gradient_checkpointing",
        Annotated[bool, typer.Option(help="Recompute activations to save memory.")],
    ),
    "group_by_length": (
        "group_by_length",
        Annotated[bool, typer.Option(help="Batch examples of similar length together (less padding).")],
    ),
    "token_lr_scale": (
        "token_lr_scale",
        Annotated[
            float, typer.Option(help="Added tokens' embedding rows learn at the learning rate times this.")
        ],
    ),
}


def config_defaults(config: type[Any]) -> SimpleNamespace:
    """The field defaults of a config dataclass, read without building one (``RLConfig`` needs its SFT
    model), as attributes like a config's: a command's options default to these, so each default is
    written once, in the config."""
    fields = dataclasses.fields(config)
    return SimpleNamespace(**{f.name: f.default for f in fields if f.default is not dataclasses.MISSING})


def training_options(defaults: Any, *fields: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the training options for ``fields`` of its config (declared once here, each
    defaulting to that field of ``defaults``, the pillar's config) where its ``training`` parameter
    stands, and pass them to it as ``training``: a dict keyed by config field, ready for the config."""
    added = [
        _option(_TRAINING_OPTIONS[field][0], _TRAINING_OPTIONS[field][1], getattr(defaults, field))
        for field in fields
    ]
    field_of = {_TRAINING_OPTIONS[field][0]: field for field in fields}

    def build(values: dict[str, Any]) -> dict[str, Any]:
        return {field_of[name]: value for name, value in values.items()}

    return lambda command: spliced_options(command, "training", added, build)
