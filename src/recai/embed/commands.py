"""`recai index ...` (vector indexes) and `recai embed ...` (RecLM-emb data, training, evaluation).

Registered in :mod:`recai.cli`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from recai.cli_options import (
    BatchRun,
    CommandError,
    DataArg,
    DataOrArgOpt,
    ExamplesOutOpt,
    NounOpt,
    OverwriteOpt,
    SourceDataOpt,
    TrainTasksOpt,
    batch_options,
    budget_stop,
    console,
    csv,
    csv_tuple,
    dataset_spec,
    load_dataset,
    save_examples,
    source_dataset,
    training_options,
)
from recai.embed.train_config import TrainConfig

index_app = typer.Typer(help="Vector indexes of catalog items.", no_args_is_help=True)
embed_app = typer.Typer(
    help="Fine-tuned item retrievers (RecLM-emb): build training data, train, evaluate.", no_args_is_help=True
)
_TRAIN = TrainConfig()  # the defaults of `embed train`
EmbedDataArg = Annotated[Path, typer.Argument(help="A folder written by `recai embed data`.")]


@index_app.command("build")
def index_build(
    name_or_path: DataArg = None,
    data_option: DataOrArgOpt = None,
    encoder: Annotated[
        str | None, typer.Option(help="st:NAME_OR_PATH or openai:MODEL (default all-MiniLM-L6-v2).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to save the index (default: the recai cache).")
    ] = None,
) -> None:
    """Encode a catalog's items (reusing cached embeddings) and build its vector index."""
    name_or_path = dataset_spec(data_option, name_or_path)
    from recai.embed import load_encoder
    from recai.embed.catalog_index import build_item_index

    ds = load_dataset(name_or_path)
    with console.status("loading encoder ..."):
        enc = load_encoder(encoder)
    index = build_item_index(ds.catalog, enc, save_to=out)
    console.print(
        f"{len(index)} items, dim {index.dim}, {index.kind} search, "
        f"{index.metadata.get('newly_encoded', 0)} newly encoded"
    )


# ----------------------------------------------------------------------------- embedder fine-tuning
def _embed_split(folder: Path) -> Any:
    from recai.embed.tasks import ExampleSplit

    return ExampleSplit.load(folder)


@embed_app.command("data")
@batch_options(cache=False)
def embed_data(
    name_or_path: DataArg = None,
    data_option: DataOrArgOpt = None,
    out: ExamplesOutOpt = Path("embed-data"),
    per_task: Annotated[int, typer.Option(help="Examples per task (before the split).")] = 1000,
    tasks: Annotated[str | None, typer.Option(help="Comma-separated task names (default: the ten).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for anchors, wordings, negatives and the split.")] = 0,
    llm: Annotated[
        str | None, typer.Option(help="A chat model to write summaries, searches and dialogues (cached).")
    ] = None,
    split_by: Annotated[str, typer.Option(help="item or user.")] = "item",
    test_fraction: Annotated[float, typer.Option(help="Share of items (or users) held out.")] = 0.1,
    negatives: Annotated[int, typer.Option(help="Hard negatives per example.")] = 5,
    history_len: Annotated[int, typer.Option(help="Most recent history items in a query.")] = 10,
    noun: NounOpt = None,
    overwrite: OverwriteOpt = False,
    *,
    run: BatchRun,
) -> None:
    """Build the matching tasks' training and test examples from a dataset."""
    name_or_path = dataset_spec(data_option, name_or_path)
    from recai.embed.tasks import build_examples
    from recai.llm.batch import BudgetExhaustedError

    batch = run.batch
    dataset = load_dataset(name_or_path)
    chat = None
    if llm:
        from recai.llm import load_chat_model

        chat = load_chat_model(llm)
    try:
        split = build_examples(
            dataset,
            csv(tasks),
            per_task=per_task,
            seed=seed,
            llm=chat,
            split_by=split_by,  # type: ignore[arg-type]
            test_fraction=test_fraction,
            n_negatives=negatives,
            history_len=history_len,
            noun=noun,
            batch=batch,
        )
    except BudgetExhaustedError as exc:
        raise budget_stop(exc, "Nothing was written; the replies so far are cached for the rerun.") from None
    title = f"{dataset.name}: examples per task"
    save_examples(split, out, source=name_or_path, title=title, overwrite=overwrite)


@embed_app.command("train")
@training_options(_TRAIN, "epochs", "max_steps", "learning_rate", "seed", "save_steps", "lora_r")
def embed_train(
    data_dir: EmbedDataArg,
    out: Annotated[Path, typer.Option("--out", help="The fine-tuned model folder.")],
    data: SourceDataOpt = None,
    base: Annotated[
        str,
        typer.Option(
            help="An encoder spec: st:NAME_OR_PATH (a bare name means st:), decoder:NAME_OR_PATH for a "
            "causal LM (?pooling=lasttoken|mean), with ?prefixes=e5|bge or ?query=...&item=... prefixes."
        ),
    ] = _TRAIN.base_model,
    *,
    training: dict[str, Any],
    batch_size: Annotated[int, typer.Option(help="Rows per batch (in-batch negatives).")] = _TRAIN.batch_size,
    scale: Annotated[float, typer.Option(help="1 / temperature of the contrastive softmax.")] = _TRAIN.scale,
    hard_negatives: Annotated[int, typer.Option(help="Hard negatives per row.")] = _TRAIN.hard_negatives,
    loss: Annotated[str, typer.Option(help="mnrl (masks false negatives) or cached-mnrl.")] = _TRAIN.loss,
    mask: Annotated[
        bool, typer.Option(help="Do not treat in-batch items that answer a query as negatives.")
    ] = _TRAIN.mask_false_negatives,
    tasks: TrainTasksOpt = None,
    lora_alpha: Annotated[int, typer.Option(help="LoRA scaling numerator.")] = _TRAIN.lora_alpha,
    max_seq_length: Annotated[
        int | None, typer.Option(help="Longest input in tokens (default: the base model's own).")
    ] = None,
    evaluate: Annotated[
        bool, typer.Option(help="Evaluate on the test examples and put it in the card.")
    ] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder.")] = False,
) -> None:
    """Fine-tune an embedder contrastively; an interrupted run resumes from OUT.work/."""
    from recai.embed.training import is_main_process, train_embedder, write_model_card

    split = _embed_split(data_dir)
    dataset = source_dataset(split.meta, data, "the training data")
    config = TrainConfig(
        base_model=base,
        batch_size=batch_size,
        scale=scale,
        hard_negatives=hard_negatives,
        loss=loss,  # type: ignore[arg-type]
        mask_false_negatives=mask and loss == "mnrl",
        tasks=csv_tuple(tasks),
        **training,
        lora_alpha=lora_alpha,
        max_seq_length=max_seq_length,
    )
    result = train_embedder(split, dataset.catalog, out, config, overwrite=overwrite)
    console.print(f"{result.steps} steps on {result.rows} rows in {result.seconds:.0f} s -> {out}")
    if evaluate and split.test and is_main_process():  # under accelerate launch, evaluate once
        from recai.embed import load_encoder
        from recai.embed.evaluation import evaluate_retrieval

        evaluation = evaluate_retrieval(load_encoder(f"st:{out}"), dataset.catalog, split.test)
        write_model_card(out, evaluation.to_dict())
        _print_retrieval([evaluation])


def _print_retrieval(evaluations: list[Any], k: int = 10) -> None:
    table = Table(title=f"Recall@{k} / NDCG@{k} on held-out queries")
    table.add_column("task")
    table.add_column("n")
    for e in evaluations:
        table.add_column(escape(e.encoder), overflow="fold")
    for task in evaluations[0].tasks:
        cells = [task, str(evaluations[0].tasks[task]["n"])]
        for e in evaluations:
            m = e.tasks[task]
            cells.append(f"{m[f'recall@{k}']['mean']:.3f} / {m[f'ndcg@{k}']['mean']:.3f}")
        table.add_row(*cells)
    table.add_row(
        "macro", "", *[f"{e.macro[f'recall@{k}']:.3f} / {e.macro[f'ndcg@{k}']:.3f}" for e in evaluations]
    )
    console.print(table)


@embed_app.command("eval")
def embed_eval(
    data_dir: EmbedDataArg,
    encoder: Annotated[
        list[str] | None,
        typer.Option(
            help="st:NAME_OR_PATH, decoder:NAME_OR_PATH or openai:MODEL, with ?prefixes=e5|bge or "
            "?query=...&item=... (repeatable; the first is the baseline)."
        ),
    ] = None,
    data: SourceDataOpt = None,
    split_name: Annotated[str, typer.Option("--split", help="test or train.")] = "test",
    k: Annotated[str, typer.Option("--k", help="Comma-separated cut-offs.")] = "1,5,10,20",
    tasks: Annotated[str | None, typer.Option(help="Comma-separated tasks (default all).")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the metrics (and comparison) as JSON.")
    ] = None,
) -> None:
    """Per-task Recall@k, NDCG@k and coverage@k over the full catalog, with a paired comparison."""
    from recai.embed import load_encoder
    from recai.embed.evaluation import compare_retrieval, evaluate_retrieval

    split = _embed_split(data_dir)
    dataset = source_dataset(split.meta, data, "the training data")
    if split_name not in ("test", "train"):
        raise CommandError(f"--split must be test or train, got {split_name!r}")
    wanted = csv(tasks)
    examples = [e for e in getattr(split, split_name) if wanted is None or e.task in wanted]
    ks = [int(v) for v in csv(k) or []]
    evaluations = [
        evaluate_retrieval(load_encoder(spec), dataset.catalog, examples, ks=ks)
        for spec in (encoder or [None])  # type: ignore[list-item]
    ]
    _print_retrieval(evaluations)
    result: dict[str, Any] = {"evaluations": [e.to_dict() for e in evaluations]}
    if len(evaluations) > 1:
        result["comparisons"] = [compare_retrieval(evaluations[0], e) for e in evaluations[1:]]
        for comparison in result["comparisons"]:
            s = comparison["summary"].get("recall@10")
            if s:
                console.print(
                    f"{escape(comparison['tuned'])}: Recall@10 better on "
                    f"{s['tasks_improved']}/{s['tasks']} tasks "
                    f"({s['tasks_improved_significantly']} significant), macro {s['base_macro']:.3f} -> "
                    f"{s['tuned_macro']:.3f}"
                )
    if out is not None:
        from recai.data.atomic import write_text_atomic

        write_text_atomic(out, json.dumps(result, indent=2) + "\n")
        console.print(f"written to {out}")
