from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recai.data import DataError, Dataset, UnknownDatasetError, list_datasets, load, portable_spec


def test_save_and_load_round_trip(dataset: Dataset, tmp_path: Path) -> None:
    path = dataset.save(tmp_path / "tiny")
    assert sorted(p.name for p in path.iterdir()) == [
        "interactions.parquet",
        "items.parquet",
        "meta.json",
        "schema.yaml",
    ]
    again = Dataset.load(path)
    assert again.name == "tiny"
    assert again.catalog.items.equals(dataset.catalog.items)
    pd.testing.assert_frame_equal(
        again.interactions.frame.drop(columns="_row"),
        dataset.interactions.frame.drop(columns="_row"),
        check_dtype=False,
    )
    assert again.catalog.schema == dataset.catalog.schema
    assert json.loads((path / "meta.json").read_text())["counts"] == {
        "items": 8,
        "interactions": 8,
        "users": 3,
    }
    # The reloaded log keeps the tie order of the original.
    assert list(again.interactions.sequence("a")) == list(dataset.interactions.sequence("a"))


def test_save_never_leaves_half_written_folders(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "tiny"
    dataset.save(target)
    before = sorted(p.name for p in target.iterdir())

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    with pytest.raises(OSError, match="disk full"):
        dataset.save(target, overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == before  # the old dataset is intact
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]  # no temporary folder left behind
    with pytest.raises(FileExistsError):
        dataset.save(target)


def test_load_by_name_path_and_errors(dataset: Dataset, tmp_path: Path, _private_home: Path) -> None:
    dataset.save(_private_home / "datasets" / "tiny")
    assert load("tiny").name == "tiny"
    assert {"name": "tiny", "status": "saved"}.items() <= list_datasets()[1].items()
    assert load(str(_private_home / "datasets" / "tiny")).name == "tiny"
    with pytest.raises(UnknownDatasetError, match="fetch it once with `recai data download ml-100k`"):
        load("ml-100k")
    with pytest.raises(UnknownDatasetError, match="no dataset named or at 'nope'"):
        load("nope")
    with pytest.raises(DataError, match="no dataset recognised here"):
        load(str(tmp_path))


def test_portable_spec_finds_the_same_dataset_from_any_directory(
    dataset: Dataset, tmp_path: Path, _private_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a data folder or knowledge base records: names stay names, paths become absolute."""
    dataset.save(_private_home / "datasets" / "tiny")
    dataset.save(tmp_path / "work" / "mine")
    monkeypatch.chdir(tmp_path / "work")
    assert portable_spec("demo") == "demo"
    assert portable_spec("tiny") == "tiny"  # a saved name, not a path
    recorded = portable_spec("mine")
    assert recorded == str((tmp_path / "work" / "mine").resolve())
    assert portable_spec("./mine") == recorded
    assert portable_spec("nope") == "nope"  # unknown stays as typed, so load still explains it
    monkeypatch.chdir(tmp_path)
    assert load(recorded).name == dataset.name


def test_broken_folders_are_explained(dataset: Dataset, tmp_path: Path) -> None:
    path = dataset.save(tmp_path / "tiny")
    (path / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match=r"meta.json, line 1: invalid JSON"):
        Dataset.load(path)
    (path / "meta.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(DataError, match="newer than this recai understands"):
        Dataset.load(path)
    (path / "meta.json").write_text("{}")
    (path / "schema.yaml").write_text("columns:\n  - {name: item_id, role: identifier}\n")
    with pytest.raises(DataError, match=r"schema.yaml, field 'columns\[0\] \(item_id\).role'"):
        Dataset.load(path)
    (path / "items.parquet").unlink()
    with pytest.raises(DataError, match=r"missing \['items.parquet'\]"):
        Dataset.load(path)


def test_filters_and_splits_record_what_was_done(dataset: Dataset) -> None:
    liked = dataset.implicit(4.0).k_core(1)
    assert liked.meta["processing"] == ["rating>=4", "1-core"]
    assert len(dataset.split("loo").test) == 2
    with pytest.raises(ValueError, match="unknown split protocol"):
        dataset.split("random")
    assert dataset.popularity().tolist() == [2, 1, 1, 1, 0, 0, 2, 1]
