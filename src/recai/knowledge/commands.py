"""`recai knowledge ...`: build, rank, eval. Registered in :mod:`recai.cli`.

:mod:`recai.knowledge.workflows` holds the library functions these commands call; the extractors are
imported only when a command runs (``recai --help`` imports every command module)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from recai.cli_options import (
    BatchRun,
    CandidateSample,
    CommandError,
    DataOpt,
    KCoreOpt,
    NoCacheOpt,
    OutOpt,
    SasrecBudgetOpt,
    SeedOpt,
    UserSample,
    batch_options,
    console,
    option_group,
    report_done,
)
from recai.data import portable_spec

knowledge_app = typer.Typer(
    help="Knowledge plugin: domain knowledge in the prompt of an LLM that cannot be fine-tuned.",
    no_args_is_help=True,
)


KnowledgeOpt = Annotated[
    str,
    typer.Option(
        help="Knowledge in the prompt: none, all, or a comma-separated list of attributes, "
        "cooccurrence, embedding, recommender, patterns, graph."
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param", help="An extractor hyperparameter, kind.key=value (e.g. graph.hops=3); repeatable."
    ),
]
RecModelOpt = Annotated[
    str, typer.Option("--recommender-model", help="Recommender behind the recommender knowledge.")
]
EmbModelOpt = Annotated[
    str, typer.Option("--embedding-model", help="Recommender whose item embeddings give similarity.")
]
BudgetOpt = Annotated[int, typer.Option("--budget", help="Knowledge tokens per prompt (target tokenizer).")]
StyleOpt = Annotated[str, typer.Option(help="Verbaliser style: natural, statements, paths or lists.")]
RankerOrdersOpt = Annotated[
    int, typer.Option("--ranker-orders", help="Candidate orders the ranker asks in and merges (Borda).")
]
CandidateOrderOpt = Annotated[
    str, typer.Option("--candidate-order", help="Order shown to the LLM: given, random or popularity.")
]
PromptStyleOpt = Annotated[
    str,
    typer.Option(
        "--prompt-style",
        help="DOKE's variants: listwise (rank), chain (state the user's taste, then rank) or rating "
        "(rate each candidate 1-5).",
    ),
]
ExamplesOpt = Annotated[
    int, typer.Option("--examples", help="Similar users' choices shown as examples (from training only).")
]


@dataclass(frozen=True)
class RankerPrompt:
    """How the knowledge ranker prompts (the options `knowledge rank` and `knowledge eval` share).

    Attributes:
        budget: knowledge tokens per prompt (target tokenizer).
        style: the verbaliser style.
        ranker_orders: candidate orders the ranker asks in and merges.
        candidate_order: the order shown to the LLM.
        prompt_style: DOKE's variant (listwise, chain or rating).
        examples: similar users' choices shown as examples.
    """

    budget: BudgetOpt = 400
    style: StyleOpt = "natural"
    ranker_orders: RankerOrdersOpt = 1
    candidate_order: CandidateOrderOpt = "given"
    prompt_style: PromptStyleOpt = "listwise"
    examples: ExamplesOpt = 0

    def options(self) -> dict[str, Any]:
        """The ranker's options; DOKE's are written only when set, so runs made before they existed
        resume."""
        options: dict[str, Any] = {
            "budget_tokens": self.budget,
            "style": self.style,
            "orders": self.ranker_orders,
            "candidate_order": self.candidate_order,
        }
        if self.prompt_style != "listwise":
            options["prompt_style"] = self.prompt_style
        if self.examples:
            options["n_examples"] = self.examples
        return options


def _knowledge_params(pairs: list[str] | None, recommender: str, embedding: str) -> dict[str, Any]:
    from recai.knowledge.workflows import parse_params, with_models

    return with_models(parse_params(pairs or []), recommender=recommender, embedding=embedding)


@knowledge_app.command("build")
def knowledge_build(
    out: Annotated[Path, typer.Option("--out", help="Folder for the fitted knowledge base.")],
    data: DataOpt = "demo",
    k_core: KCoreOpt = 0,
    seed: SeedOpt = 0,
    knowledge: KnowledgeOpt = "all",
    recommender_model: RecModelOpt = "sasrec",
    embedding_model: EmbModelOpt = "sasrec",
    sasrec_budget_s: SasrecBudgetOpt = 300.0,
    param: ParamOpt = None,
    fresh: Annotated[bool, typer.Option(help="Replace an existing knowledge base in --out.")] = False,
) -> None:
    """Fit the knowledge extractors on the training part of a dataset's leave-one-out split and save them."""
    from recai.evaluate.prepare import DataOptions
    from recai.knowledge.workflows import build_knowledge

    params = _knowledge_params(param, recommender_model, embedding_model)
    kb = build_knowledge(
        DataOptions(data, k_core=k_core, seed=seed),
        out,
        kinds=knowledge,
        params=params,
        sasrec_budget_s=sasrec_budget_s,
        overwrite=fresh,
    )
    table = Table("knowledge", "hyperparameters", title=f"knowledge base for {data}")
    for kind, values in kb.config().items():
        table.add_row(kind, escape(json.dumps(values)))
    console.print(table)
    console.print(f"fitted in {kb.meta.get('fit_seconds')} s on the training part; saved to {out}")


@knowledge_app.command("rank")
@option_group(RankerPrompt, "prompt")
def knowledge_rank(
    base: Annotated[Path, typer.Argument(help="A knowledge base from `recai knowledge build`.")],
    user: Annotated[str, typer.Option(help="A user id of the base's dataset.")],
    llm: Annotated[str, typer.Option(help="Chat model spec.")] = "local:qwen2.5-1.5b-instruct",
    knowledge: KnowledgeOpt = "all",
    candidates: Annotated[
        str | None, typer.Option(help="Item ids separated by ',' (default: the evaluation's sample).")
    ] = None,
    n_candidates: Annotated[int, typer.Option("--n-candidates", help="Candidates when sampled.")] = 20,
    negatives: Annotated[str, typer.Option(help="uniform or popularity")] = "uniform",
    history: Annotated[int, typer.Option(help="Most recent history items shown.")] = 20,
    *,
    prompt: RankerPrompt,
    no_cache: NoCacheOpt = False,
) -> None:
    """Rank one user's candidates with the LLM and show the knowledge it was given."""
    from recai.evaluate.generative import ListSampling
    from recai.knowledge.workflows import rank_user

    ranking = rank_user(
        base,
        user,
        llm=llm,
        kinds=knowledge,
        candidates=[c.strip() for c in candidates.split(",") if c.strip()] if candidates else None,
        sampling=ListSampling(n_candidates=n_candidates, negatives=negatives, history_len=history),
        ranker=prompt.options(),
        cache=not no_cache,
    )
    catalog, result, counter = ranking.dataset.catalog, ranking.result, ranking.ranker.counter
    call = result.calls[0]
    console.print(
        f"[bold]knowledge[/] ({call.selection.tokens} of {call.selection.budget} tokens by "
        f"{counter.name}{'' if counter.exact else ', approximate'}; {len(call.selection.facts)} of "
        f"{call.selection.considered} facts):"
    )
    for line in call.selection.lines:
        console.print(f"  - {escape(line)}")
    if not call.selection.lines:
        console.print("  (none)")
    table = Table(
        "#", "title", "shown as", title=f"ranking for user {user} by {escape(ranking.ranker.llm.name)}"
    )
    shown = {p: i + 1 for i, p in enumerate(call.shown)}
    for rank, position in enumerate(result.positions, start=1):
        title = escape(catalog.display_title(position))
        if ranking.target_known and position == ranking.sample.target:
            title = f"[bold green]{title} (held-out item)[/]"
        table.add_row(str(rank), title, f"[{shown[position]}]")
    console.print(table)
    repairs = {name: n for name, n in result.counts.items() if n}
    if repairs:
        console.print(f"[yellow]the answer was repaired:[/] {repairs}")
    console.print(f"prompt: {call.prompt_tokens} tokens ({counter.name})")


def _given_unlike(context: typer.Context, values: dict[str, tuple[Any, Any]]) -> list[str]:
    """The options given on the command line or in the environment (not defaults) whose value differs
    from the one kept, as ``--name value``."""
    given_by_user = {"COMMANDLINE", "ENVIRONMENT"}
    return [
        f"--{name.replace('_', '-')} {given}"
        for name, (given, kept) in values.items()
        if getattr(context.get_parameter_source(name), "name", None) in given_by_user and given != kept
    ]


@knowledge_app.command("eval")
@batch_options()
@option_group(UserSample, "sample")
@option_group(CandidateSample, "shown")
@option_group(RankerPrompt, "prompt")
def knowledge_eval(
    context: typer.Context,
    out: OutOpt,
    system: Annotated[
        str,
        typer.Option(
            help="llm:SPEC (the knowledge ranker), or random, popularity, itemcf, bpr, als, sasrec."
        ),
    ] = "llm:local:qwen2.5-1.5b-instruct",
    knowledge: KnowledgeOpt = "all",
    base: Annotated[
        Path | None, typer.Option(help="A knowledge base from `recai knowledge build` (its data is used).")
    ] = None,
    *,
    sample: UserSample,
    shown: CandidateSample,
    prompt: RankerPrompt,
    recommender_model: Annotated[
        str | None,
        typer.Option("--recommender-model", help="Recommender behind the recommender knowledge (sasrec)."),
    ] = None,
    embedding_model: Annotated[
        str | None,
        typer.Option("--embedding-model", help="Recommender whose item embeddings give similarity (sasrec)."),
    ] = None,
    sasrec_budget_s: SasrecBudgetOpt = 300.0,
    param: ParamOpt = None,
    run: BatchRun,
) -> None:
    """Candidate ranking with knowledge in the prompt: a run folder like `recai eval ranking`'s."""
    from recai.evaluate.generative import ListSampling
    from recai.evaluate.sampled import RunSettings
    from recai.knowledge.evaluation import run_knowledge_eval
    from recai.knowledge.workflows import load_knowledge

    options = sample.data_options()
    if base is not None:
        fitted = [*(param or [])]
        fitted += [f"--recommender-model {recommender_model}"] if recommender_model else []
        fitted += [f"--embedding-model {embedding_model}"] if embedding_model else []
        if fitted:
            raise CommandError(
                f"{', '.join(fitted)}: a built knowledge base ({base}) is already fitted; "
                "pass these to `recai knowledge build` instead"
            )
        options = load_knowledge(base)[3]
        clashes = _given_unlike(
            context,
            {
                "data": (portable_spec(sample.data), portable_spec(options.data)),
                "k_core": (sample.k_core, options.k_core),
                "seed": (sample.seed, options.seed),
            },
        )
        if clashes:
            raise CommandError(
                f"{', '.join(clashes)}: the knowledge base {base} was built with --data {options.data} "
                f"--k-core {options.k_core} --seed {options.seed}, and its run uses those; "
                "leave these options out or build another base"
            )
    params = _knowledge_params(param, recommender_model or "sasrec", embedding_model or "sasrec")
    report_done(
        run_knowledge_eval(
            system,
            out,
            knowledge=knowledge,
            base=base,
            params=None if base is not None else params,
            data=options,
            sampling=ListSampling(**sample.sizes(), **shown.sizes()),
            ranker=prompt.options(),
            sasrec_budget_s=sasrec_budget_s,
            settings=RunSettings(**run.settings()),
        )
    )
