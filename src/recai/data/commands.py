"""`recai data ...`: list, describe, import, download and split datasets. Registered in :mod:`recai.cli`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from recai.cli_options import (
    CommandError,
    DataArg,
    JsonOpt,
    KCoreOpt,
    MinRatingOpt,
    console,
    dataset_spec,
    load_dataset,
)

data_app = typer.Typer(help="Datasets: list, describe, import, download, split.", no_args_is_help=True)
# `describe` and `split` take the dataset as an argument or as --data, with no default
DataOptionOpt = Annotated[str | None, typer.Option("--data", help="Dataset name or path.")]


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
    name_or_path: DataArg = None,
    data_option: DataOptionOpt = None,
    path: Annotated[
        Path | None, typer.Option("--path", help="A folder (raw MovieLens layout or a saved dataset).")
    ] = None,
    as_json: JsonOpt = False,
    samples: Annotated[int, typer.Option(help="How many example items to print.")] = 3,
) -> None:
    """Summarise a dataset: catalog columns and roles, interaction statistics, examples."""
    if path is None and name_or_path is None and data_option is None:
        raise CommandError("give a dataset name or --path")
    target = str(path) if path is not None else dataset_spec(data_option, name_or_path)
    ds = load_dataset(target)
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
        raise CommandError(f"unknown dataset '{name}'; known: {', '.join(KNOWN)}")
    spec = KNOWN[name]
    console.print(f"{spec.description}\nlicense: {spec.license}")
    target = download(spec, url=url, checksum=checksum, force=force)
    console.print(f"ready: {target}")


@data_app.command("split")
def data_split(
    out: Annotated[
        Path,
        typer.Option(
            help="Output file: .tsv or .parquet (columns user_id, item_id, rating, timestamp, split)."
        ),
    ],
    name_or_path: DataArg = None,
    data_option: DataOptionOpt = None,
    protocol: Annotated[str, typer.Option(help="leave_one_out or temporal.")] = "leave_one_out",
    min_rating: MinRatingOpt = None,
    k_core: KCoreOpt = 0,
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
    name_or_path = dataset_spec(data_option, name_or_path, None)
    import pandas as pd

    from recai.data.atomic import atomic_file

    ds = load_dataset(name_or_path, min_rating=min_rating, k_core=k_core)
    kwargs: dict[str, Any] = {}
    if order is not None:
        if protocol not in ("leave_one_out", "loo"):
            raise CommandError("--order applies to leave_one_out only")
        kwargs.update(order=order, seed=seed)
    if protocol == "temporal":
        for key, value in (("test_start", test_start), ("valid_start", valid_start)):
            if value is not None:
                kwargs[key] = int(value) if value.isdigit() else value
    split = ds.split(protocol, **kwargs)
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
