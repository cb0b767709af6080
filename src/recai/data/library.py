"""The datasets recai knows by name: :func:`load` one by name or path, :func:`list_datasets` shows them,
:func:`portable_spec` records one so that it is found again from any working directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from recai.data.errors import UnknownDatasetError
from recai.data.home import datasets_dir, is_dataset_folder, is_dataset_name

if TYPE_CHECKING:
    from recai.data.dataset import Dataset

BUILTIN = ("demo",)


def load(name_or_path: str | Path) -> Dataset:
    """Load a dataset by name or path.

    Resolution order: the built-in ``demo``; a dataset saved or downloaded under ``$RECAI_HOME/datasets``;
    an existing path (a recai dataset folder, or a publisher's raw layout such as a MovieLens folder).
    """
    from recai.data.dataset import Dataset  # here: naming and listing datasets must not import pandas
    from recai.data.loaders.registry import KNOWN, load_path

    text = str(name_or_path)
    if text == "demo":
        from recai.data.demo.loader import load_demo

        return load_demo()
    if _saved_name(text):
        return Dataset.load(datasets_dir() / text)
    path = Path(text).expanduser()
    if path.exists():
        return load_path(path)
    hint = ""
    if text in KNOWN:
        hint = f" It is a known public dataset: fetch it once with `recai data download {text}`."
    raise UnknownDatasetError(
        f"no dataset named or at '{text}'.{hint} Built in: {', '.join(BUILTIN)}; saved: "
        f"{', '.join(sorted(d['name'] for d in list_datasets() if d['status'] == 'saved')) or 'none'}."
    )


def _saved_name(text: str) -> bool:
    """Whether ``text`` names a dataset saved under ``$RECAI_HOME/datasets`` (a name, never a path)."""
    return is_dataset_name(text) and is_dataset_folder(datasets_dir() / text)


def portable_spec(name_or_path: str | Path) -> str:
    """``name_or_path`` as it should be recorded so that :func:`load` finds the same dataset again from
    any working directory: a built-in or saved name unchanged, an existing path made absolute (a relative
    path recorded in a data folder or knowledge base breaks as soon as it is read from elsewhere), anything
    else unchanged (so loading it still fails with the usual message)."""
    text = str(name_or_path)
    if text in BUILTIN or _saved_name(text):
        return text
    path = Path(text).expanduser()
    return str(path.resolve()) if path.exists() else text


def list_datasets() -> list[dict[str, Any]]:
    """Every dataset recai can load by name: built in, saved/downloaded, and downloadable."""
    from recai.data.loaders.registry import KNOWN

    rows: list[dict[str, Any]] = [
        {"name": "demo", "status": "built in", "description": "300 films and a simulated viewing log"}
    ]
    saved = set()
    root = datasets_dir()
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            if is_dataset_folder(folder):
                saved.add(folder.name)
                desc = KNOWN[folder.name].description if folder.name in KNOWN else "saved dataset"
                rows.append(
                    {"name": folder.name, "status": "saved", "description": desc, "path": str(folder)}
                )
    for name, spec in KNOWN.items():
        if name not in saved:
            rows.append({"name": name, "status": "downloadable", "description": spec.description})
    return rows
