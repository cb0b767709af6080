"""Readers for publishers' raw formats and for users' own tables.

- :mod:`recai.data.loaders.tabular`: ``import_tabular`` (what ``recai data import`` runs) and its
  ``ImportSpec``; :mod:`recai.data.loaders.tables` reads a table as published (delimiter and header
  sniffed, compression, Parquet, JSON lines);
- :mod:`recai.data.loaders.movielens` and :mod:`recai.data.loaders.amazon`: MovieLens folders, Amazon
  metadata and sequence files;
- :mod:`recai.data.loaders.registry` (``KNOWN`` public datasets, ``load_path``) and
  :mod:`recai.data.loaders.download` (checksum-verified downloads).

The names below are imported on first access, so that loading one format does not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recai._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".tabular": ["ImportResult", "ImportSpec", "import_tabular", "read_spec"],
        ".tables": ["ReadOptions", "read_user_table"],
        ".movielens": ["load_ml100k", "load_ml1m", "load_movielens_csv"],
        ".amazon": ["load_amazon", "load_sequence_file"],
        ".registry": ["KNOWN", "load_path"],
        ".download": ["DownloadSpec", "download"],
    },
)

__all__ = [
    "KNOWN",
    "DownloadSpec",
    "ImportResult",
    "ImportSpec",
    "ReadOptions",
    "download",
    "import_tabular",
    "load_amazon",
    "load_ml1m",
    "load_ml100k",
    "load_movielens_csv",
    "load_path",
    "load_sequence_file",
    "read_spec",
    "read_user_table",
]

if TYPE_CHECKING:
    from recai.data.loaders.amazon import load_amazon, load_sequence_file
    from recai.data.loaders.download import DownloadSpec, download
    from recai.data.loaders.movielens import load_ml1m, load_ml100k, load_movielens_csv
    from recai.data.loaders.registry import KNOWN, load_path
    from recai.data.loaders.tables import ReadOptions, read_user_table
    from recai.data.loaders.tabular import ImportResult, ImportSpec, import_tabular, read_spec
