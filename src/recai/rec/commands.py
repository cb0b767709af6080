"""`recai rec ...`: train, evaluate and query the classic recommenders. Registered in :mod:`recai.cli`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from recai.cli_options import (
    CommandError,
    KCoreOpt,
    MinRatingOpt,
    console,
    key_values,
    load_dataset,
    user_input,
)
from recai.rec import MODELS

if TYPE_CHECKING:
    from recai.data import Dataset, Split
    from recai.rec.base import Recommender

rec_app = typer.Typer(help="Classic recommenders.", no_args_is_help=True)
RecDataOpt = Annotated[str, typer.Option(help="Dataset name or folder.")]


def _prepare(data: str, min_rating: float | None, k_core: int) -> tuple[Dataset, Split]:
    ds = load_dataset(data)
    if min_rating is not None:
        ds = ds.implicit(min_rating)
    if k_core:
        ds = ds.k_core(k_core)
    return ds, ds.split("leave_one_out")


def _test_metrics(recommender: Recommender, ds: Dataset, split: Split) -> dict[str, Any]:
    """Test metrics with the history excluded, over the items that survived the filters (RecBole's
    item set), as `rec train` reports them and `rec eval` recomputes them."""
    import numpy as np

    from recai.evaluate.recommender import evaluate_recommender

    return evaluate_recommender(
        recommender,
        split.train_and_valid(),
        split.test,
        candidates=np.flatnonzero(ds.interactions.item_counts() > 0),
        item_counts=split.train.item_counts(),
    )


def _print_metrics(title: str, result: dict[str, Any]) -> None:
    table = Table("metric", "mean", "95% interval", title=title)
    for name, value in result.items():
        if isinstance(value, dict) and "mean" in value:
            table.add_row(name, f"{value['mean']:.4f}", f"{value['ci_low']:.4f} - {value['ci_high']:.4f}")
    console.print(table)
    console.print(f"users: {result['users']}, catalog coverage: {result['coverage']:.3f}")


@rec_app.command("train")
def rec_train(
    model: Annotated[str, typer.Argument(help=f"{', '.join(MODELS)}.")],
    data: RecDataOpt = "demo",
    out: Annotated[
        Path | None, typer.Option(help="Model folder (default $RECAI_HOME/recommenders/DATA-MODEL).")
    ] = None,
    param: Annotated[list[str] | None, typer.Option(help="Hyperparameter key=value (repeatable).")] = None,
    min_rating: MinRatingOpt = None,
    k_core: KCoreOpt = 5,
) -> None:
    """Train on a leave-one-out split (early stopping on validation), report test metrics, save the model."""
    from recai.data.atomic import write_text_atomic
    from recai.data.home import data_home

    params = key_values(param, "--param")
    recommender = MODELS.build(model, params, progress=True)
    ds, split = _prepare(data, min_rating, k_core)
    console.print(json.dumps(split.describe()))
    recommender.fit(split.train, valid=split.valid)
    result = _test_metrics(recommender, ds, split)
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
    try:
        record = json.loads((model_dir / "training.json").read_text())
        return MODELS.saved_class(model_dir).load(model_dir), record
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{model_dir} is not a trained recai model ({exc.filename} missing)"
        ) from None


@rec_app.command("eval")
def rec_eval(
    model_dir: Annotated[Path, typer.Argument(help="A folder written by `recai rec train`.")],
    data: Annotated[
        str | None, typer.Option(help="Evaluate on this dataset (default: the training one).")
    ] = None,
) -> None:
    """Evaluate a trained model on the test split of its dataset (same filters as in training)."""
    recommender, record = _load_trained(model_dir)
    ds, split = _prepare(data or record["data"], record["min_rating"], record["k_core"])
    if recommender.n_items_ != len(ds.catalog):
        raise CommandError(f"the model knows {recommender.n_items_} items, {ds.name} has {len(ds.catalog)}")
    result = _test_metrics(recommender, ds, split)
    _print_metrics(f"{record['model']} on {ds.name} (test, history excluded)", result)


@rec_app.command("recommend")
def rec_recommend(
    history: Annotated[str, typer.Option(help="Titles or ids separated by ';', oldest first.")] = "",
    user: Annotated[
        str | None, typer.Option(help="A known user id (their logged history comes first).")
    ] = None,
    data: RecDataOpt = "demo",
    model: Annotated[
        str, typer.Option(help=f"A model name to fit now ({', '.join(MODELS)}).")
    ] = "popularity",
    model_dir: Annotated[
        Path | None, typer.Option(help="A model saved by `recai rec train` instead.")
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="How many items.")] = 10,
) -> None:
    """Recommend items for a history of titles (grounded to the catalog), a known user, or both."""
    from recai.rec.history import resolve_history

    trained: tuple[Recommender, dict[str, Any]] | None = (
        _load_trained(model_dir) if model_dir is not None else None
    )
    ds = load_dataset(data or (trained[1]["data"] if trained else "demo"))
    if trained is not None and trained[0].n_items_ != len(ds.catalog):
        raise CommandError(f"the model knows {trained[0].n_items_} items, {ds.name} has {len(ds.catalog)}")
    user_key: Any = user
    if user is not None and _has_int_ids(ds.interactions.user_ids):
        user_key = int(user)
    with user_input(KeyError):  # an unknown user
        positions, notes = resolve_history(
            ds.catalog, history, user=user_key, interactions=ds.interactions if user is not None else None
        )
    for note in notes:
        console.print(f"[dim]{escape(note)}[/]")
    if trained is not None:
        fitted, label = trained[0], trained[1]["model"]
    else:
        recommender = MODELS.build(model)
        with console.status(f"fitting {model} on {ds.name} ..."):
            fitted = recommender.fit(ds.interactions)
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
