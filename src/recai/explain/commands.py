"""`recai explain ...`: alignment data from a target model, training in a mode, evaluation, explanations.

Thin: parse arguments, call :mod:`recai.explain`, print with rich. Registered in :mod:`recai.cli`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from recai.cli_options import (
    BudgetCostOpt,
    BudgetTokensOpt,
    CommandError,
    ConcurrencyOpt,
    DataArg,
    DataOrArgOpt,
    DeviceOpt,
    OverwriteOpt,
    PerTaskOpt,
    batch_settings,
    budget_stop,
    console,
    csv,
    csv_tuple,
    dataset_spec,
    key_values,
    load_dataset,
    save_examples,
    source_dataset,
    training_options,
    user_input,
)
from recai.explain.config import ExplainConfig
from recai.train.sft import SFTConfig

explain_app = typer.Typer(
    help="RecExplainer: align an LLM to a recommender (behaviour, intention, hybrid) and explain it.",
    no_args_is_help=True,
)
_EXPLAIN = ExplainConfig()  # the defaults of `explain train`
_SFT = _EXPLAIN.sft


def _data(folder: Path) -> Any:
    from recai.explain.examples import ExplainData

    return ExplainData.load(folder)


def _system(spec: str, data: Any, *, device: str) -> Any:
    """An explainer folder, or ``base:MODEL`` for the un-aligned base LLM (text only)."""
    from recai.explain.model import Explainer

    if spec.startswith("base:"):
        return Explainer.base(spec[len("base:") :], data.target, data.catalog, device=device)
    return Explainer.load(spec, device=device)


@explain_app.command("data")
def explain_data(
    name_or_path: DataArg = None,
    data_option: DataOrArgOpt = None,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the examples, the target and the catalog.")
    ] = Path("explain-data"),
    target: Annotated[str, typer.Option(help="Target recommender: sasrec, als or bpr.")] = "sasrec",
    target_param: Annotated[list[str] | None, typer.Option(help="Target hyperparameter key=value.")] = None,
    per_task: PerTaskOpt = 500,
    test_per_task: Annotated[int, typer.Option(help="Test examples per scored task.")] = 100,
    task_size: Annotated[
        list[str] | None,
        typer.Option(help="TASK=N: training examples of one task instead of --per-task (repeatable)."),
    ] = None,
    test_task_size: Annotated[
        list[str] | None,
        typer.Option(help="TASK=N: test examples of one task instead of --test-per-task (repeatable)."),
    ] = None,
    tasks: Annotated[str | None, typer.Option(help="Comma-separated task names (default: all).")] = None,
    general_share: Annotated[float, typer.Option(help="Share of general catalog questions.")] = 0.1,
    k: Annotated[int, typer.Option("--k", help="Items in a retrieval or similarity answer.")] = 5,
    n_candidates: Annotated[int, typer.Option(help="Items shown in a ranking question.")] = 5,
    top_share: Annotated[float, typer.Option(help="Classification: the target's top share is 'yes'.")] = 0.1,
    bottom_share: Annotated[float, typer.Option(help="Classification: its bottom share is 'no'.")] = 0.5,
    negatives: Annotated[
        str,
        typer.Option(
            help="Classification 'no' items: bottom (any bottom-share item) or matched (bottom-share items "
            "about as popular with the target as this user's yes items, so popularity answers fewer)."
        ),
    ] = "bottom",
    history_len: Annotated[int, typer.Option(help="Most recent items of a user's history.")] = 10,
    test_share: Annotated[float, typer.Option(help="Share of users kept for testing.")] = 0.2,
    noun: Annotated[str, typer.Option(help="What an item is called (film, product).")] = "item",
    seed: Annotated[int, typer.Option(help="Seed for users, cuts and items.")] = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Fit the target on a leave-one-out split and label the alignment tasks by running it."""
    name_or_path = dataset_spec(data_option, name_or_path)
    from recai.explain.target import SUPPORTED, fit_target
    from recai.explain.tasks import NEGATIVES, build_explain_data, parse_task_sizes

    if target not in SUPPORTED:
        raise CommandError(f"target must be one of {SUPPORTED}, got {target!r}")

    if negatives not in NEGATIVES:  # before the target is fitted
        raise CommandError(f"--negatives must be one of {NEGATIVES}, got {negatives!r}")
    sizes = parse_task_sizes(task_size, "--task-size")
    test_sizes = parse_task_sizes(test_task_size, "--test-task-size")
    dataset = load_dataset(name_or_path)
    split = dataset.split("leave_one_out")
    # a TypeError: an unknown --target-param; a KeyError: an unknown column
    with user_input(TypeError, KeyError):
        with console.status(f"fitting target {target} on the training log ..."):
            fitted = fit_target(split, target, **key_values(target_param, "--target-param"))
        data = build_explain_data(
            dataset, fitted, split=split, tasks=csv(tasks), per_task=per_task, test_per_task=test_per_task,
            task_sizes=sizes, test_task_sizes=test_sizes, general_share=general_share, seed=seed, k=k,
            n_candidates=n_candidates, top_share=top_share,
            bottom_share=bottom_share, negatives=negatives, history_len=history_len, test_share=test_share,
            noun=noun,
        )  # fmt: skip
    title = f"alignment data ({fitted.name} target)"
    save_examples(data, out, source=name_or_path, title=title, overwrite=overwrite)


@explain_app.command("train")
@training_options(
    _SFT, "epochs", "max_steps", "batch_size", "learning_rate", "lora_r", "max_length", "save_steps",
    "device", "group_by_length",
)  # fmt: skip
def explain_train(
    data: Annotated[Path, typer.Argument(help="A folder written by `recai explain data`.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the explainer.")] = Path("explainer"),
    mode: Annotated[str, typer.Option(help="behaviour, intention or hybrid.")] = _EXPLAIN.mode,
    base: Annotated[
        str, typer.Option(help="Base model: a folder or a known offline model.")
    ] = _SFT.base_model,
    *,
    training: dict[str, Any],
    projector_hidden: Annotated[
        int | None, typer.Option(help="Projector hidden size (default: LLM's).")
    ] = _EXPLAIN.projector_hidden,
    tasks: Annotated[str | None, typer.Option(help="Train on these tasks only (comma-separated).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for LoRA, projectors and batches.")] = _SFT.seed,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
) -> None:
    """LoRA on the LLM plus, in intention and hybrid modes, the user and item projectors."""
    from recai.explain.training import train_explainer

    split = _data(data)
    sft = SFTConfig(
        base_model=base,
        lora_alpha=2 * training["lora_r"],
        tasks=csv_tuple(tasks),
        seed=seed,
        **training,
    )
    result = train_explainer(
        split,
        out,
        ExplainConfig(mode=mode, sft=sft, projector_hidden=projector_hidden),
        overwrite=overwrite,
    )
    training = result.summary["training"]
    console.print(
        f"{mode}: {result.steps} steps on {result.examples} examples in {result.seconds:.1f} s "
        f"(loss {training['train_loss']:.3f}, {training['trainable_parameters']:,} trainable); "
        f"written to {out}"
    )


def _metrics_table(metrics: dict[str, Any], title: str) -> None:
    table = Table("metric", "mean", "n", title=title)
    for name, m in metrics["metrics"].items():
        table.add_row(name, f"{m['mean']:.3f}", str(m["n"]))
    console.print(table)


@explain_app.command("eval")
def explain_eval(
    model: Annotated[
        str,
        typer.Argument(
            help="An explainer folder, base:MODEL for the un-aligned LLM, or reference for the model-free "
            "answer-popularity reference."
        ),
    ],
    data: Annotated[Path, typer.Argument(help="The data folder (its test examples and target).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder (resumable).")] = Path("runs/explain"),
    limit: Annotated[int | None, typer.Option(help="At most this many test examples per task.")] = None,
    judge: Annotated[
        str | None, typer.Option(help="LLM spec of a judge for explanations (e.g. openai:gpt-4o).")
    ] = None,
    against: Annotated[
        str | None, typer.Option(help="The system the judge compares with (folder or base:MODEL).")
    ] = None,
    why: Annotated[int, typer.Option(help="Explanations to judge.")] = 20,
    discriminator: Annotated[
        int,
        typer.Option(
            help="Explanations for the discriminator (0: none): how well a classifier predicts the "
            "target's decision from them alone (RecExplainer's faithfulness)."
        ),
    ] = 0,
    encoder: Annotated[
        str | None, typer.Option(help="The discriminator's text encoder (default: the default embedder).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Prompts per generation batch.")] = 8,
    device: DeviceOpt = "cpu",
    overwrite: Annotated[bool, typer.Option(help="Start the run again.")] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Do not use the LLM response cache for the judge.")
    ] = False,
    concurrency: ConcurrencyOpt = None,
    budget_tokens: BudgetTokensOpt = None,
    budget_cost: BudgetCostOpt = None,
    prices: Annotated[Path | None, typer.Option(help="Your price table (YAML) for --budget-cost.")] = None,
) -> None:
    """Alignment metrics per task; with --judge and --against, judged explanations of the two systems."""
    from recai.explain.evaluation import (
        decision_judge,
        explain_cases,
        judge_explanations,
        run_alignment,
        why_cases,
    )

    split = _data(data)
    examples = _per_task(split.test, limit)
    if model == "reference":
        if judge:
            raise CommandError("the reference writes no explanations to judge; drop --judge")
        from recai.explain.reference import reference_alignment

        document = reference_alignment(
            split.train, examples, split.catalog, k=int(split.meta.get("k", 5)), folder=out,
            run_config={"data": str(data), "limit": limit},
        )  # fmt: skip
        _metrics_table(document, "alignment of the answer-popularity reference (no LLM)")
        return
    batch = batch_settings(concurrency, budget_tokens, budget_cost, prices) if judge else None
    system = _system(model, split, device=device)
    metrics = run_alignment(
        system, examples, out, batch_size=batch_size, resume=not overwrite, overwrite=overwrite,
        run_config={"data": str(data), "limit": limit},
    )  # fmt: skip
    _metrics_table(metrics, f"alignment of {system.name} ({system.mode})")
    if discriminator:
        _discriminate(system, split, out, n=discriminator, encoder=encoder)
    if judge:
        if not against:
            raise CommandError("--judge needs --against (the other system)")
        from recai.evaluate.prepare import cached_llm
        from recai.llm.batch import BudgetExhaustedError

        other = _system(against, split, device=device)
        noun = str(split.meta.get("noun") or "item")
        top_share = float(split.meta.get("top_share", 0.1))
        cases = why_cases(split.test, split.target, split.catalog, n=why, top_share=top_share)
        answers_a = explain_cases(system, cases, noun=noun)
        answers_b = explain_cases(other, cases, noun=noun)
        # behind the response cache: a run stopped by its budget gets the verdicts it paid for back free
        judge_llm = cached_llm(judge, cache=not no_cache)
        try:
            result = judge_explanations(
                cases,
                answers_a,
                answers_b,
                decision_judge(judge_llm),
                split.target,
                split.catalog,
                noun=noun,
                top_share=top_share,
                batch=batch,
            )
        except BudgetExhaustedError as exc:
            raise budget_stop(
                exc,
                "Nothing is written, but the verdicts are in the response cache: running again with a larger "
                "budget reads them back for free.",
            ) from None
        finally:
            judge_llm.close()
        result["systems"] = {"A": system.name, "B": other.name}
        result["explanations"] = [
            {"id": c.id, "user": c.user, "item": c.item, "A": a, "B": b}
            for c, a, b in zip(cases, answers_a, answers_b, strict=True)
        ]
        target = _write_json(out / "judge.json", result)
        s = result["summary"]
        console.print(
            f"judge: {system.name} vs {other.name}: win {s['win']}, tie {s['tie']}, loss {s['loss']}, "
            f"invalid {s['invalid']}; written to {target}"
        )
    console.print(f"run folder: {out}")


def _write_json(target: Path, result: dict[str, Any]) -> Path:
    """Write an evaluation's result beside its run folder's records, atomically; return where."""
    from recai.data.atomic import write_text_atomic

    write_text_atomic(target, json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    return target


def _discriminate(system: Any, split: Any, out: Path, *, n: int, encoder: str | None) -> None:
    """RecExplainer's discriminator on ``system``'s explanations, written to ``discriminator.json``."""
    from recai.embed.encoder import load_encoder
    from recai.explain.discriminator import explanation_faithfulness

    result = explanation_faithfulness(
        system,
        split.test,
        split.target,
        split.catalog,
        load_encoder(encoder),
        n=n,
        top_share=float(split.meta.get("top_share", 0.1)),
        noun=str(split.meta.get("noun") or "item"),
    )
    target = _write_json(out / "discriminator.json", result)
    accuracy = result["accuracy"]
    console.print(
        f"discriminator: accuracy {accuracy['mean']:.3f} [{accuracy['low']:.3f}, {accuracy['high']:.3f}] "
        f"on {result['n']} explanations (majority class {result['majority']:.3f}); written to {target}"
    )


def _per_task(examples: list[Any], limit: int | None) -> list[Any]:
    """The first ``limit`` examples of each task (all without a limit)."""
    if limit is None:
        return examples
    kept: list[Any] = []
    counts: dict[str, int] = {}
    for e in examples:
        if counts.get(e.task, 0) < limit:
            counts[e.task] = counts.get(e.task, 0) + 1
            kept.append(e)
    return kept


@explain_app.command("why")
def explain_why(
    user: Annotated[str, typer.Argument(help="A user id of the dataset.")],
    item: Annotated[str, typer.Argument(help="An item id or title.")],
    model: Annotated[Path, typer.Option("--model", help="An explainer folder.")] = Path("explainer"),
    dataset: Annotated[
        str | None,
        typer.Option(
            "--data", "--dataset", help="Dataset for the user's history (default: the training one)."
        ),
    ] = None,
    history_len: Annotated[
        int | None,
        typer.Option(help="Most recent items of the user's history (default: as in the training data)."),
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Length of the explanation in tokens.")] = 160,
    device: DeviceOpt = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Why the target model would or would not recommend ITEM to USER, in the explainer's words."""
    from recai.data.errors import plain_value
    from recai.explain.evaluation import WhyCase, decision_facts, explain_cases
    from recai.explain.model import Explainer

    explainer = Explainer.load(model, device=device)
    meta = explainer.info.get("data", {}).get("meta", {})
    ds = source_dataset(meta, dataset, "the explainer")
    catalog = explainer.catalog
    with user_input(KeyError):  # an unknown user
        codes = ds.interactions.sequence(user)
        user_id = plain_value(ds.interactions.user_ids[ds.interactions.user_index(user)])
    length = history_len if history_len is not None else int(meta.get("history_len") or 10)
    history = tuple(plain_value(catalog.ids[int(c)]) for c in codes[-length:])
    item_id = _item(catalog, item)
    case = WhyCase("why", user_id, history, item_id)
    noun = str(meta.get("noun") or "item")
    text = explain_cases(explainer, [case], noun=noun, max_new_tokens=max_new_tokens)[0]
    facts = decision_facts(
        explainer.target, catalog, history, item_id, top_share=float(meta.get("top_share") or 0.1)
    )
    if as_json:
        print(
            json.dumps({"user": user_id, "item": item_id, "explanation": text, "target": facts}, default=str)
        )
        return
    console.print(f"[bold]{explainer.name}[/]: {text}")
    console.print(f"[dim]{facts}[/]")


def _item(catalog: Any, text: str) -> Any:
    """An item id from an id or a title (grounded in the catalog)."""
    from recai.data.errors import plain_value

    for candidate in (text, int(text) if text.isdigit() else None):
        if candidate is not None and candidate in set(catalog.ids):
            return plain_value(candidate)
    grounded = catalog.ground(text)
    if grounded.item_id is None:
        raise CommandError(f"no item '{text}' in the catalog")
    return plain_value(grounded.item_id)
