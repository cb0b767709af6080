"""The data layer every recai pillar shares: Catalog, Interactions, Dataset, splits and loaders.

The names are imported on first access: every command module reaches this package, and
``recai --help`` must not import pandas, DuckDB or SciPy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recai._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".catalog": ["Catalog", "SqlError", "SqlResult"],
        ".dataset": ["Dataset"],
        ".errors": ["DataError", "UnknownDatasetError"],
        ".grounding": ["Grounding", "Match", "TitleMatcher"],
        ".home": ["check_dataset_name", "data_home", "saved_dataset_dir"],
        ".interactions": ["Interactions"],
        ".library": ["BUILTIN", "list_datasets", "load", "portable_spec"],
        ".schema": ["CatalogSchema", "ColumnRole", "ColumnSpec"],
        ".splits": ["Split", "leave_one_out", "temporal_split"],
    },
)

__all__ = [
    "BUILTIN",
    "Catalog",
    "CatalogSchema",
    "ColumnRole",
    "ColumnSpec",
    "DataError",
    "Dataset",
    "Grounding",
    "Interactions",
    "Match",
    "Split",
    "SqlError",
    "SqlResult",
    "TitleMatcher",
    "UnknownDatasetError",
    "check_dataset_name",
    "data_home",
    "leave_one_out",
    "list_datasets",
    "load",
    "portable_spec",
    "saved_dataset_dir",
    "temporal_split",
]

if TYPE_CHECKING:
    from recai.data.catalog import Catalog, SqlError, SqlResult
    from recai.data.dataset import Dataset
    from recai.data.errors import DataError, UnknownDatasetError
    from recai.data.grounding import Grounding, Match, TitleMatcher
    from recai.data.home import check_dataset_name, data_home, saved_dataset_dir
    from recai.data.interactions import Interactions
    from recai.data.library import BUILTIN, list_datasets, load, portable_spec
    from recai.data.schema import CatalogSchema, ColumnRole, ColumnSpec
    from recai.data.splits import Split, leave_one_out, temporal_split
