"""Hostile and broken input to `recai data import`: names that are paths, overwrites of folders that are
not datasets, leftovers of crashed saves, and files built to mislead the reader.

Each test here failed on 5308919 (before the hardening), where a spec's ``name`` was joined to the
datasets folder unchecked and ``--overwrite`` replaced whatever was there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recai.cli import app
from recai.data import DataError, Dataset, load
from recai.data.atomic import remove_stale_temporaries
from recai.data.home import check_dataset_name
from recai.data.loaders.tabular import import_tabular

runner = CliRunner()


def _files(folder: Path) -> tuple[Path, Path]:
    (folder / "items.csv").write_text("item_id,title\n1,Alpha\n2,Beta\n")
    (folder / "log.csv").write_text("user_id,item_id\nu1,1\nu1,2\nu2,2\n")
    return folder / "items.csv", folder / "log.csv"


def _import(spec: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["data", "import", "--schema", str(spec), *extra], terminal_width=200)
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "name", ["/abs/path/victim", ".", "..", "../../x", "a/b", ".hidden", "", "x" * 101, "a\0b"]
)
def test_dataset_names_that_are_paths_are_refused(name: str) -> None:
    with pytest.raises(DataError, match="invalid dataset name"):
        check_dataset_name(name)


def test_import_never_writes_or_deletes_outside_the_datasets_folder(
    tmp_path: Path, _private_home: Path
) -> None:
    _files(tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    saved = _private_home / "datasets"
    for existing in ("one", "two"):
        Dataset.load(_dataset_from(tmp_path)).save(saved / existing)
    spec = tmp_path / "spec.yaml"
    for name in (str(victim), ".", "../../escaped", "../victim"):
        spec.write_text(f"name: {name!r}\nitems: {{path: items.csv}}\ninteractions: {{path: log.csv}}\n")
        code, out = _import(spec, "--overwrite")
        assert code == 1 and "invalid dataset name" in out, (name, out)
    assert (victim / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in saved.iterdir()) == ["one", "two"]
    assert not (tmp_path.parent / "escaped").exists() and not (_private_home / "escaped").exists()


def _dataset_from(folder: Path) -> Path:
    items, log = _files(folder)
    target = folder / "_ds"
    if not target.exists():
        import_tabular(items_path=items, interactions_path=log).dataset.save(target)
    return target


def test_overwrite_replaces_only_a_dataset_folder(tmp_path: Path) -> None:
    items, log = _files(tmp_path)
    ds = import_tabular(items_path=items, interactions_path=log).dataset
    folder = tmp_path / "not-a-dataset"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a recai dataset folder"):
        ds.save(folder, overwrite=True)
    assert (folder / "notes.txt").read_text() == "mine"
    code, out = 0, ""
    result = runner.invoke(
        app,
        [
            "data",
            "import",
            "--items",
            str(items),
            "--interactions",
            str(log),
            "--out",
            str(folder),
            "--overwrite",
        ],
        terminal_width=200,
    )
    code, out = result.exit_code, result.output
    assert code == 1 and "not a recai dataset folder" in out
    assert (folder / "notes.txt").read_text() == "mine"
    target = tmp_path / "real"
    ds.save(target)
    ds.save(target, overwrite=True)  # a dataset folder may be replaced
    assert load(str(target)).name == ds.name


def test_stale_temporaries_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    (tmp_path / f".shop.tmp-{dead_pid}-abc123xy").mkdir()
    (tmp_path / f".shop.old-{dead_pid}").mkdir()
    (tmp_path / f".user.json.tmp-{dead_pid}-k2j3h4g5").write_text("")
    live = tmp_path / f".shop.tmp-{os.getpid()}-zzzzzzzz"
    live.mkdir()
    legacy_old = tmp_path / ".books.tmp-q1w2e3r4"
    legacy_old.mkdir()
    os.utime(legacy_old, (time.time() - 7200, time.time() - 7200))
    legacy_new = tmp_path / ".films.tmp-a1s2d3f4"
    legacy_new.mkdir()
    # our own pid, but written before this process started: a previous process with the same pid (PID 1
    # in a container that restarted) left it
    reused = tmp_path / f".films.tmp-{os.getpid()}-reused01"
    reused.mkdir()
    os.utime(reused, (time.time() - 10 * 365 * 86400, time.time() - 10 * 365 * 86400))
    others = [tmp_path / ".hidden-but-mine", tmp_path / "shop", tmp_path / ".shop.tmp-notes"]
    others[0].mkdir()
    others[1].mkdir()
    others[2].write_text("x")
    removed = {p.name for p in remove_stale_temporaries(tmp_path)}
    assert removed == {
        f".shop.tmp-{dead_pid}-abc123xy",
        f".shop.old-{dead_pid}",
        f".user.json.tmp-{dead_pid}-k2j3h4g5",
        ".books.tmp-q1w2e3r4",
        f".films.tmp-{os.getpid()}-reused01",
    }
    assert live.exists() and legacy_new.exists() and all(p.exists() for p in others)


def test_a_save_cleans_what_a_crashed_save_left(tmp_path: Path, _private_home: Path) -> None:
    items, log = _files(tmp_path)
    datasets = _private_home / "datasets"
    datasets.mkdir(parents=True)
    code = "import os, tempfile, sys; d = tempfile.mkdtemp(prefix='.shop.tmp-%d-' % os.getpid(), dir=sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(datasets)], check=True)
    assert len(list(datasets.iterdir())) == 1
    result = runner.invoke(
        app, ["data", "import", "--items", str(items), "--interactions", str(log), "--name", "shop"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in datasets.iterdir()) == ["shop"]


# ------------------------------------------------------------------ files that mislead the reader (item 11)


def test_line_numbers_survive_multi_line_quoted_fields(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text('item_id,title,blurb\n1,A,"line one\nline two\nline three"\n2,B,ok\n')
    (tmp_path / "log.csv").write_text('user,item_id,note\nu1,1,"x\ny"\nu2,3,z\n')
    with pytest.raises(DataError) as err:
        import_tabular(items_path=tmp_path / "items.csv", interactions_path=tmp_path / "log.csv")
    assert (
        err.value.line == 4
        and err.value.field == "item_id"
        and "item 3 is not in the item table" in str(err.value)
    )


def test_empty_user_names_the_files_column_and_line(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text("item_id,title\n1,A\n")
    (tmp_path / "log.csv").write_text("visitor,item_id\nv1,1\n,1\n")
    with pytest.raises(DataError) as err:
        import_tabular(items_path=tmp_path / "items.csv", interactions_path=tmp_path / "log.csv")
    assert (err.value.line, err.value.field) == (3, "visitor")


def test_a_missing_id_column_and_a_folder_are_data_errors(tmp_path: Path) -> None:
    _files(tmp_path)
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "items: {path: items.csv, columns: [{name: sku, role: id}, {name: title, role: title}]}\n"
        "interactions: {path: log.csv}\n"
    )
    with pytest.raises(DataError, match="sku"):
        import_tabular(spec)
    spec.write_text("items: {path: .}\ninteractions: {path: log.csv}\n")
    with pytest.raises(DataError, match="is a folder, not a file"):
        import_tabular(spec)


def test_short_rows_and_glued_quotes_are_refused(tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text("user_id,item_id\nu1,1\nu1,2\n")
    (tmp_path / "items.csv").write_text("item_id,title,year\n1,A,1990\n2,B\n")
    with pytest.raises(DataError, match=r"line 3: expected 3 fields, found 2"):
        import_tabular(items_path=tmp_path / "items.csv", interactions_path=tmp_path / "log.csv")
    (tmp_path / "items.csv").write_text('item_id,title\n1,"Alpha"Beta\n2,B\n')
    with pytest.raises(DataError, match=r"line 2: malformed quoted field"):
        import_tabular(items_path=tmp_path / "items.csv", interactions_path=tmp_path / "log.csv")


def test_zero_interactions_and_utf16(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text("item_id,title\n1,A\n")
    (tmp_path / "log.csv").write_text("user_id,item_id\n")
    with pytest.raises(DataError, match="no data rows"):
        import_tabular(items_path=tmp_path / "items.csv", interactions_path=tmp_path / "log.csv")
    (tmp_path / "log.csv").write_bytes("user_id,item_id\nu1,1\n".encode("utf-16-le"))
    with pytest.raises(DataError) as err:
        import_tabular(items_path=tmp_path / "items.csv", interactions_path=tmp_path / "log.csv")
    assert "utf-16" in str(err.value) and "latin-1" not in str(err.value)
    (tmp_path / "log.csv").write_bytes("user_id,item_id\nu1,1\n".encode("utf-16"))  # with a BOM: just works
    ds = import_tabular(items_path=tmp_path / "items.csv", interactions_path=tmp_path / "log.csv").dataset
    assert len(ds.interactions) == 1
