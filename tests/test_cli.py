from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from recai import __version__
from recai.cli import app
from tests.data.raw_fixtures import write_ml100k, write_shop

runner = CliRunner()


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False, terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_version_and_list() -> None:
    assert __version__ in _run("--version")
    out = _run("data", "list")
    assert "demo" in out and "built in" in out and "ml-100k" in out and "downloadable" in out


def test_describe_demo_and_a_raw_folder(tmp_path: Path) -> None:
    out = _run("data", "describe", "demo")
    assert "300 items" in out and "list_contains(genres" in out and "most interacted" in out
    raw = write_ml100k(tmp_path / "ml-100k")
    assert "4 items, 4 interactions" in _run("data", "describe", "--path", str(raw))
    assert '"interactions": 4' in _run("data", "describe", str(raw), "--json")


def test_describe_unknown_fails_cleanly() -> None:
    result = runner.invoke(app, ["data", "describe", "nope"])
    assert result.exit_code == 1 and "no dataset named or at 'nope'" in result.output


def test_import_then_describe_by_name(tmp_path: Path, _private_home: Path) -> None:
    spec = write_shop(tmp_path)
    out = _run("data", "import", "--schema", str(spec))
    assert "saved shop (3 items, 3 interactions)" in out
    assert (_private_home / "datasets" / "shop" / "schema.yaml").exists()
    assert "3 items" in _run("data", "describe", "shop")
    again = runner.invoke(app, ["data", "import", "--schema", str(spec)])
    # rich wraps at 80 columns, so a long temporary path can put a line break inside the message
    assert again.exit_code == 1 and "already exists" in " ".join(again.output.split())
    _run("data", "import", "--schema", str(spec), "--overwrite")


def test_import_without_spec_prints_inferred_roles(tmp_path: Path) -> None:
    write_shop(tmp_path)
    (tmp_path / "events.csv").write_text("user_id,item_id,timestamp\nu1,A-1,1\n")
    out = _run(
        "data",
        "import",
        "--items",
        str(tmp_path / "items.csv"),
        "--interactions",
        str(tmp_path / "events.csv"),
        "--out",
        str(tmp_path / "ds"),
    )
    assert "inferred column roles" in out and "multi_categorical" in out


def test_split_writes_a_labelled_file(tmp_path: Path) -> None:
    out_file = tmp_path / "split.tsv"
    _run("data", "split", "demo", "--out", str(out_file), "--min-rating", "4", "--k-core", "5")
    table = pd.read_csv(out_file, sep="\t")
    assert list(table.columns) == ["user_id", "item_id", "rating", "timestamp", "split"]
    assert (table["rating"] >= 4).all()
    counts = table["split"].value_counts()
    assert counts["test"] == counts["valid"] == table.loc[table.split == "test", "user_id"].nunique()
    _run(
        "data",
        "split",
        "demo",
        "--out",
        str(tmp_path / "t.parquet"),
        "--protocol",
        "temporal",
        "--test-start",
        "2024-01-01",
    )
    temporal = pd.read_parquet(tmp_path / "t.parquet")
    cut = pd.Timestamp("2024-01-01").timestamp()
    assert (temporal.loc[temporal.split == "train", "timestamp"] < cut).all()
    assert (temporal.loc[temporal.split == "test", "timestamp"] >= cut).all()


def test_recommend_grounds_titles_and_excludes_history() -> None:
    out = _run("rec", "recommend", "--history", "pulp fictoin; Heat", "-k", "5")
    assert "'pulp fictoin' -> Pulp Fiction (1994)" in out
    table = out.split("popularity recommendations")[1]
    assert "Pulp Fiction" not in table and "Heat (1995)" not in table
    assert "│ 5 │" in table and "│ 6 │" not in table
    bad = runner.invoke(app, ["rec", "recommend", "--history", "Pulp Fishin' Trip"])
    assert bad.exit_code == 1 and "did you mean" in bad.output


def test_rec_train_eval_and_recommend_from_a_saved_model(tmp_path: Path) -> None:
    out = _run(
        "rec", "train", "itemcf", "--data", "demo", "--out", str(tmp_path / "m"), "--param", "neighbours=50"
    )
    assert "itemcf on demo (test, history excluded)" in out and "ndcg@10" in out
    record = __import__("json").loads((tmp_path / "m" / "training.json").read_text())
    assert record["params"] == {"neighbours": 50} and 0 < record["test"]["ndcg@10"]["mean"] < 1
    evaluated = _run("rec", "eval", str(tmp_path / "m"))
    assert f"{record['test']['ndcg@10']['mean']:.4f}" in evaluated  # same split, same model, same number
    rec = _run("rec", "recommend", "--model-dir", str(tmp_path / "m"), "--history", "Heat; Fargo", "-k", "3")
    assert "itemcf recommendations on demo" in rec and "│ 3 │" in rec
    by_user = _run("rec", "recommend", "--user", "7", "--model", "popularity", "-k", "2")
    assert "│ 2 │" in by_user
    bad = runner.invoke(app, ["rec", "train", "sasrec", "--param", "hiddenn=3"])
    assert bad.exit_code == 1 and "bad hyperparameter" in bad.output


def test_chat_runs_scripted_messages_and_shows_the_trace() -> None:
    # The echo model returns the planner's own prompt, whose demonstrations hold valid plans: whatever it
    # picks, the turn must run end to end and show its trace.
    out = _run("chat", "--llm", "scripted:echo", "--message", "hello there", "--trace")
    assert "you> hello there" in out and "recai>" in out
    assert "intent " in out and "LLM call(s)" in out and "s in all" in out


def test_chat_takes_a_separate_planner_model() -> None:
    out = _run(
        "chat", "--llm", "scripted:echo", "--planner", "scripted:echo", "--message", "hello there", "--trace"
    )
    assert "recai>" in out
    bad = runner.invoke(app, ["chat", "--planner", "nope:model", "--message", "hi"])
    assert bad.exit_code == 1 and "nope" in bad.output


def test_quick_import_of_a_headerless_untimed_log_writes_its_spec(
    tmp_path: Path, _private_home: Path
) -> None:
    folder = tmp_path / "lastfm-like"
    folder.mkdir()
    (folder / "artists.dat").write_text("id\tname\n1\tRadiohead\n2\tBjörk\n3\tAir, French band\n")
    (folder / "user_artists.dat").write_text("7\t1\t500\n7\t2\t20\n8\t2\t3\n8\t3\t90\n9\t1\t8\n9\t3\t1\n")
    args = [
        "data",
        "import",
        "--items",
        str(folder / "artists.dat"),
        "--interactions",
        str(folder / "user_artists.dat"),
    ]
    dry = _run(*args, "--dry-run")
    assert "nothing saved" in dry and not (_private_home / "datasets" / "lastfm-like").exists()
    out = _run(*args)
    assert "weight: column3" in out and "timestamp: null" in out and "noun: artists" in out
    spec = _private_home / "datasets" / "lastfm-like" / "import.yaml"
    assert spec.exists()
    described = _run("data", "describe", "lastfm-like")
    assert "no timestamps" in described and '"max": 500.0' in described
    again = _run("data", "import", "--schema", str(spec), "--overwrite")
    assert "saved lastfm-like (3 items, 6 interactions)" in again
    split_file = tmp_path / "split.tsv"
    _run("data", "split", "lastfm-like", "--out", str(split_file), "--order", "random", "--seed", "1")
    table = pd.read_csv(split_file, sep="\t")
    assert list(table.columns) == ["user_id", "item_id", "weight", "split"]
    result = runner.invoke(
        app, ["data", "split", "lastfm-like", "--out", str(split_file), "--protocol", "temporal"]
    )
    assert result.exit_code == 1 and "needs timestamps" in result.output


def test_the_error_handler_reports_user_errors_and_keeps_bugs() -> None:
    import typer
    import yaml

    from recai.cli_options import CommandGroup, is_user_error
    from recai.data import DataError
    from recai.llm.batch import BudgetExhaustedError

    def missing_extra() -> ImportError:
        try:
            raise ModuleNotFoundError("No module named 'faiss'")
        except ModuleNotFoundError as exc:
            try:
                raise ImportError("vector search needs faiss") from exc
            except ImportError as wrapped:
                return wrapped

    for user in (
        DataError("bad row"),
        ValueError("x"),
        FileNotFoundError("f"),
        missing_extra(),
        yaml.YAMLError(),
    ):
        assert is_user_error(user), user
    for bug in (TypeError("x"), KeyError("x"), AttributeError("x"), ImportError("cannot import name 'x'")):
        assert not is_user_error(bug), bug

    raised: list[BaseException] = []
    tiny = typer.Typer(cls=CommandGroup)

    @tiny.command()
    def go() -> None:
        raise raised[0]

    @tiny.command()
    def other() -> None:  # a group, as in recai: the handler wraps its subcommands
        pass

    raised.append(DataError("no column 'x'", path="items.csv"))
    result = runner.invoke(tiny, ["go"])
    assert result.exit_code == 1 and "error: items.csv: no column 'x'" in result.output
    raised[0] = BudgetExhaustedError("token budget of 10 spent", done=2, remaining=3)
    result = runner.invoke(tiny, ["go"])
    assert result.exit_code == 3 and "token budget of 10 spent" in result.output
    raised[0] = TypeError("a bug")
    result = runner.invoke(tiny, ["go"])
    assert result.exit_code == 1 and isinstance(result.exception, TypeError)


def test_the_dataset_is_an_option_or_the_old_argument(tmp_path: Path) -> None:
    assert "300 items" in _run("data", "describe", "--data", "demo")
    clash = runner.invoke(app, ["data", "describe", "demo", "--data", "other"])
    assert clash.exit_code == 1 and "two datasets given" in clash.output
    for command in (
        ["gen", "data"],
        ["embed", "data"],
        ["explain", "data"],
        ["agent", "record"],
        ["index", "build"],
    ):
        assert "--data" in _run(*command, "--help") and "DATA" in _run(*command, "--help")
