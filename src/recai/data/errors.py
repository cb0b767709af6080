"""Errors raised on bad input, always naming where the problem is (file, line, field)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recai.errors import RecaiError


class DataError(ValueError, RecaiError):
    """Bad input data: a missing column, an unparsable row, a duplicate id, an unknown encoding.

    The message always says where: the file, and when known the (1-based) line and the field, so that a
    user can open the file at the right place instead of guessing.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.reason = message
        where = []
        if self.path is not None:
            where.append(self.path)
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{': '.join([', '.join(where)] if where else [])}{': ' if where else ''}{message}")


class UnknownDatasetError(KeyError, RecaiError):
    """A dataset name that is neither built in, downloaded, saved, nor an existing path."""

    def __str__(self) -> str:  # KeyError quotes its argument; a sentence reads better.
        return str(self.args[0]) if self.args else "unknown dataset"


def plain_value(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds, so messages read '10', not 'np.int64(10)'."""
    import numpy as np  # here, not at the top: every module imports DataError, ``recai --help`` too

    return value.item() if isinstance(value, np.generic) else value


def first_flagged(mask: Any) -> int | None:
    """The position of the first true value in a boolean mask (the row an error names), or None."""
    import numpy as np

    hits = np.flatnonzero(np.asarray(mask, dtype=bool))
    return int(hits[0]) if len(hits) else None
