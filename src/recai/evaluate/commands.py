"""`recai eval ...`: evaluation runs, each a resumable folder. Registered in :mod:`recai.cli`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from recai.cli_options import (
    BatchRun,
    CandidateSample,
    CommandError,
    DataOpt,
    HistoryOpt,
    KCoreOpt,
    NegativesOpt,
    OrdersOpt,
    OutOpt,
    SasrecBudgetOpt,
    SeedOpt,
    SimulatorOpt,
    UserSample,
    UsersOpt,
    batch_options,
    console,
    option_group,
    report_done,
)

eval_app = typer.Typer(
    help="Evaluate recommenders, chat models and the agent; every run writes a resumable folder.",
    no_args_is_help=True,
)


def _list_task(task: str, system: str, out: Path, run: BatchRun, sample: UserSample, **kwargs: Any) -> None:
    from recai.evaluate.generative import ListSampling
    from recai.evaluate.runners import run_list_eval
    from recai.evaluate.sampled import RunSettings

    sampling = ListSampling(**sample.sizes(), **kwargs)
    settings = RunSettings(**run.settings())
    report_done(
        run_list_eval(task, system, out, data=sample.data_options(), sampling=sampling, settings=settings)
    )


# the options ranking and retrieval share
ListSystemOpt = Annotated[
    str,
    typer.Option(
        help="random, popularity, itemcf, bpr, als, sasrec, llm:SPEC, chatrec:SPEC, "
        "encoder[:st:FOLDER] (the user's history text as query), summary:SPEC (the chat model's "
        "summary of the user's taste as the encoder's query)"
    ),
]


@eval_app.command("ranking")
@batch_options()
@option_group(UserSample, "sample")
@option_group(CandidateSample, "shown")
def eval_ranking(
    system: ListSystemOpt,
    out: OutOpt,
    sample: UserSample,
    shown: CandidateSample,
    *,
    run: BatchRun,
) -> None:
    """Rank a candidate list per user; LLM answers are parsed and grounded, never padded."""
    _list_task("ranking", system, out, run, sample, **shown.sizes())


@eval_app.command("retrieval")
@batch_options()
@option_group(UserSample, "sample")
def eval_retrieval(system: ListSystemOpt, out: OutOpt, sample: UserSample, *, run: BatchRun) -> None:
    """Name k items from the whole catalog per user; seen and invented items are counted, not scored."""
    _list_task("retrieval", system, out, run, sample)


@eval_app.command("recommender")
def eval_recommender(
    system: Annotated[str, typer.Option(help="random, popularity, itemcf, bpr, als or sasrec")],
    out: OutOpt,
    data: DataOpt = "demo",
    k_core: KCoreOpt = 0,
    seed: SeedOpt = 0,
    sasrec_budget_s: SasrecBudgetOpt = 300.0,
    fresh: Annotated[bool, typer.Option(help="Replace an existing run of the same task in --out.")] = False,
) -> None:
    """Full-catalog ranking of every test user (history excluded) by a classic recommender."""
    from recai.evaluate.prepare import DataOptions
    from recai.evaluate.runners import run_recommender_eval
    from recai.evaluate.sampled import RunSettings

    report_done(
        run_recommender_eval(
            system,
            out,
            data=DataOptions(data, k_core=k_core, seed=seed),
            sasrec_budget_s=sasrec_budget_s,
            settings=RunSettings(resume=not fresh),
        )
    )


@eval_app.command("conversation")
@batch_options()
def eval_conversation(
    system: Annotated[str, typer.Option(help="agent:SPEC, plain:SPEC or chatrec:SPEC")],
    out: OutOpt,
    data: DataOpt = "demo",
    simulator: SimulatorOpt = "local:qwen2.5-1.5b-instruct",
    sessions: Annotated[int, typer.Option(help="Simulated users.")] = 100,
    turns: Annotated[int, typer.Option(help="Most turns per session.")] = 5,
    k: Annotated[int, typer.Option(help="Success when the target is in a turn's first k items.")] = 5,
    seed: SeedOpt = 0,
    *,
    run: BatchRun,
) -> None:
    """Simulated users who know the target only by its attributes talk to the system."""
    from recai.evaluate.prepare import DataOptions
    from recai.evaluate.runners import run_conversation_eval
    from recai.evaluate.sampled import RunSettings

    report_done(
        run_conversation_eval(
            system,
            out,
            simulator=simulator,
            data=DataOptions(data, seed=seed),
            n=sessions,
            max_turns=turns,
            k=k,
            settings=RunSettings(**run.settings()),
        )
    )


@eval_app.command("judge")
@batch_options()
def eval_judge(
    items: Annotated[Path, typer.Argument(help="JSONL: id, prompt, answer_a, answer_b, optional facts.")],
    out: OutOpt,
    judge: Annotated[str, typer.Option(help="The judge's chat model.")] = "local:qwen2.5-1.5b-instruct",
    kind: Annotated[str, typer.Option(help="explanation or chitchat")] = "explanation",
    seed: SeedOpt = 0,
    *,
    run: BatchRun,
) -> None:
    """Pairwise LLM-as-judge in both orders; a win counts only when both orders agree."""
    from recai.evaluate.runners import run_judge_eval
    from recai.evaluate.sampled import RunSettings

    settings = RunSettings(**run.settings())
    report_done(run_judge_eval(items, out, judge=judge, kind=kind, seed=seed, settings=settings))


@eval_app.command("mc")
@batch_options()
def eval_mc(
    system: Annotated[
        str,
        typer.Option(
            help="llm:SPEC (answers a letter), or random, popularity, itemcf, bpr, als, sasrec, "
            "encoder[:SPEC], summary:SPEC (choose their top candidate)"
        ),
    ],
    out: OutOpt,
    kind: Annotated[
        str, typer.Option(help="cf (the history as an unordered set) or seq (oldest first: what next?)")
    ] = "seq",
    data: DataOpt = "demo",
    users: UsersOpt = 200,
    candidates: Annotated[int, typer.Option(help="Lettered options per user (2 to 26).")] = 10,
    negatives: NegativesOpt = "uniform",
    orders: OrdersOpt = 1,
    history: HistoryOpt = 20,
    k_core: KCoreOpt = 0,
    seed: SeedOpt = 0,
    *,
    run: BatchRun,
) -> None:
    """Multiple choice: a history and lettered candidates; accuracy@1 with invalid and several-letter
    answers counted, and letter and position bias reported."""
    from recai.evaluate.generative import ListSampling
    from recai.evaluate.prepare import DataOptions
    from recai.evaluate.runners import run_choice_eval
    from recai.evaluate.sampled import RunSettings

    sampling = ListSampling(
        n_users=users, n_candidates=candidates, negatives=negatives, history_len=history, orders=orders
    )
    report_done(
        run_choice_eval(
            kind,
            system,
            out,
            data=DataOptions(data, k_core=k_core, seed=seed),
            sampling=sampling,
            settings=RunSettings(**run.settings()),
        )
    )


GenerationSystemOpt = Annotated[
    list[str],
    typer.Option(
        "--system",
        help="Give two: llm:SPEC (answers directly), agent:SPEC, plain:SPEC or chatrec:SPEC (answers "
        "as the first message of a conversation). The first is A, the second B.",
    ),
]
PromptsOpt = Annotated[
    Path | None,
    typer.Option(help="A prompt-set folder or prompts.jsonl; default: build one into the run folder."),
]
JudgeOpt = Annotated[str, typer.Option(help="The judge's chat model.")]


@dataclass(frozen=True)
class JudgedSet:
    """What a judged generation run (explanation, chitchat) asks of its prompts and judge, shared by its
    commands.

    Attributes:
        data: the dataset name or path.
        prompts: a prompt-set folder or prompts.jsonl; None builds one into the run folder.
        judge: the judge's chat model.
        seed: the seed for sampling users, negatives and orders.
    """

    data: DataOpt = "demo"
    prompts: PromptsOpt = None
    judge: JudgeOpt = "local:qwen2.5-1.5b-instruct"
    seed: SeedOpt = 0


def _generation(
    kind: str, systems: list[str], out: Path, judged: JudgedSet, run: BatchRun, **kwargs: Any
) -> None:
    from recai.evaluate.prepare import DataOptions
    from recai.evaluate.runners import run_generation_eval
    from recai.evaluate.sampled import RunSettings

    if len(systems) != 2:
        raise CommandError(f"give exactly two --system options (got {len(systems)})")
    data = DataOptions(judged.data, seed=judged.seed)
    a, b = systems
    settings = RunSettings(**run.settings())
    report_done(
        run_generation_eval(
            kind,
            a,
            b,
            out,
            data=data,
            prompts=judged.prompts,
            judge=judged.judge,
            settings=settings,
            **kwargs,
        )
    )


@eval_app.command("explanation")
@batch_options()
@option_group(JudgedSet, "judged")
def eval_explanation(
    system: GenerationSystemOpt,
    out: OutOpt,
    judged: JudgedSet,
    recommender: Annotated[
        str, typer.Option(help="Whose top item the built set asks about (a classic model name).")
    ] = "itemcf",
    users: Annotated[int, typer.Option(help="Test users in the built set.")] = 100,
    history: Annotated[int, typer.Option(help="Recent history items each built prompt shows.")] = 10,
    *,
    run: BatchRun,
) -> None:
    """ "Why would I like X?" for real users (X: a recommender's top item); both systems answer, the judge
    compares them in both orders."""
    _generation(
        "explanation", system, out, judged, run, recommender=recommender, n=users, history_len=history
    )


@eval_app.command("chitchat")
@batch_options()
@option_group(JudgedSet, "judged")
def eval_chitchat(
    system: GenerationSystemOpt,
    out: OutOpt,
    judged: JudgedSet,
    n: Annotated[int, typer.Option(help="Prompts in the built set.")] = 100,
    *,
    run: BatchRun,
) -> None:
    """Chit-chat about the catalog's items and categories; both systems answer, the judge compares them
    in both orders."""
    _generation("chitchat", system, out, judged, run, n=n)


@eval_app.command("pairs")
def eval_pairs(
    run_a: Annotated[Path, typer.Argument(help="A conversation run folder (answers A).")],
    run_b: Annotated[Path, typer.Argument(help="Another conversation run on the same data (answers B).")],
    out: Annotated[Path, typer.Option("--out", help="The JSONL file of pairs for `recai eval judge`.")],
    turn: Annotated[int, typer.Option(help="Which turn's replies to pair.")] = 1,
) -> None:
    """Pairs for the judge from two conversation runs: the same user message, each system's reply."""
    from recai.evaluate.runners import judge_pairs_from_runs

    n = judge_pairs_from_runs(run_a, run_b, out, turn=turn)
    console.print(f"{n} pairs written to {out}")


@eval_app.command("compare")
def eval_compare(
    run_a: Annotated[Path, typer.Argument(help="A run folder.")],
    run_b: Annotated[Path, typer.Argument(help="Another run folder of the same task and data.")],
    force: Annotated[bool, typer.Option(help="Compare runs of different tasks or data anyway.")] = False,
) -> None:
    """Two runs side by side, paired by sample, with a paired significance test per metric."""
    from recai.evaluate.compare import compare_runs, format_comparison

    result = compare_runs(run_a, run_b, force=force)
    console.print(format_comparison(result))
