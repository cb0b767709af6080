"""Where recai keeps downloads and saved datasets: ``$RECAI_HOME`` or ``~/.cache/recai``."""

from __future__ import annotations

import os
import re
from pathlib import Path

from recai.data.errors import DataError

#: A saved dataset's name is one plain path component: letters, digits, '.', '_' and '-', starting
#: with a letter or digit (so never '.', '..', a hidden name, an absolute path or a nested path).
_DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: The files every dataset folder holds (:mod:`recai.data.dataset` writes and reads them).
DATASET_FILES = ("items.parquet", "interactions.parquet", "schema.yaml", "meta.json")


def data_home() -> Path:
    """The root folder for recai's caches (created on demand by the writers, not here)."""
    env = os.environ.get("RECAI_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "recai"


def datasets_dir() -> Path:
    return data_home() / "datasets"


def downloads_dir() -> Path:
    return data_home() / "downloads"


def check_dataset_name(name: str, *, field: str = "name") -> str:
    """``name`` if it is a valid saved-dataset name; else a DataError saying what is allowed.

    Names are joined to the datasets folder, so anything path-like would read, write or (with
    ``--overwrite``) delete outside it.
    """
    if not isinstance(name, str) or not _DATASET_NAME.match(name) or ".." in name:
        raise DataError(
            f"invalid dataset name {name!r}: use 1-100 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit (a name, not a path; give --out for another folder)",
            field=field,
        )
    return name


def is_dataset_name(text: str) -> bool:
    """Whether ``text`` could name a saved dataset (it is a plain name, not a path)."""
    return bool(_DATASET_NAME.match(text)) and ".." not in text


def is_dataset_folder(path: Path) -> bool:
    """Whether ``path`` is a dataset folder (told by its files, so without reading them)."""
    return path.is_dir() and all((path / f).exists() for f in DATASET_FILES)


def saved_dataset_dir(name: str) -> Path:
    """The folder of saved dataset ``name``, refusing names that would point anywhere else."""
    return datasets_dir() / check_dataset_name(name)
