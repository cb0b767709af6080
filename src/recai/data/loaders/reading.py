"""Reading delimited text exactly, with errors that point at the offending line and field.

pandas is fast but its errors are vague ("Error tokenizing data"), so on any failure the file is scanned
line by line to name the first bad line, the expected and found field counts, or the undecodable bytes.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from recai.data.errors import DataError

_VALUE_CHECKS: dict[object, tuple[type, str]] = {
    "int64": (int, "an integer"),
    "Int64": (int, "an integer"),
    int: (int, "an integer"),
    "float64": (float, "a number"),
    "float32": (float, "a number"),
    float: (float, "a number"),
}


def check_encoding(path: Path, encoding: str) -> None:
    """Raise a DataError naming the line when ``path`` does not decode with ``encoding``."""
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"unknown encoding '{encoding}'", path=path) from None
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                raw.decode(codec.name)
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"cannot decode byte {raw[exc.start : exc.start + 1]!r} at column {exc.start + 1} "
                    f"as {encoding}; pass the file's encoding (for example latin-1)",
                    path=path,
                    line=lineno,
                ) from None


def read_delimited(
    path: str | Path,
    *,
    sep: str,
    names: Sequence[str] | None = None,
    header: bool = False,
    encoding: str = "utf-8",
    dtype: dict[str, object] | type | None = None,
    required: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a delimited file; every row must have exactly the expected number of fields."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", path=path)
    regex_sep = len(sep) > 1
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            header=0 if header else None,
            names=list(names) if names is not None and not header else None,
            encoding=encoding,
            dtype=dtype,
            engine="python" if regex_sep else "c",
            keep_default_na=False,
            na_values=[""],
            index_col=False,  # a trailing delimiter must not turn the first column into an index
            quoting=csv.QUOTE_NONE if sep in ("\t", "::", "|") else csv.QUOTE_MINIMAL,
        )
    except UnicodeDecodeError:
        check_encoding(path, encoding)
        raise
    except LookupError:
        raise DataError(f"unknown encoding '{encoding}'", path=path) from None
    except (pd.errors.ParserError, ValueError) as exc:
        _locate_bad_line(path, sep=sep, names=names, header=header, encoding=encoding, dtype=dtype)
        raise DataError(f"could not parse: {exc}", path=path) from None
    if header and names is not None:
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise DataError(
                f"missing column(s) {missing}; the header has {list(frame.columns)}", path=path, line=1
            )
    missing = [n for n in required if n not in frame.columns]
    if missing:
        raise DataError(
            f"missing column(s) {missing}; the header has {list(frame.columns)}", path=path, line=1
        )
    if names is not None and not header and len(frame.columns) != len(names):
        raise DataError(
            f"expected {len(names)} fields per line, found {len(frame.columns)}", path=path, line=1
        )
    for col in required or (names or []):
        if col in frame and frame[col].isna().any():
            row = int(frame.index[frame[col].isna()][0])
            raise DataError("empty value", path=path, line=row + (2 if header else 1), field=col)
    return frame


def _locate_bad_line(
    path: Path,
    *,
    sep: str,
    names: Sequence[str] | None,
    header: bool,
    encoding: str,
    dtype: dict[str, object] | type | None,
) -> None:
    """Scan the file to raise a precise DataError for the first malformed line (if one is found)."""
    check_encoding(path, encoding)
    text = path.read_text(encoding=encoding)
    lines = text.splitlines()
    if header:
        if not lines:
            raise DataError("empty file: a header line is expected", path=path, line=1)
        columns = (
            next(csv.reader(io.StringIO(lines[0]), delimiter=sep)) if len(sep) == 1 else lines[0].split(sep)
        )
        start = 2
        body = lines[1:]
    else:
        columns = list(names or [])
        start = 1
        body = lines
    expected = len(columns)
    for offset, line in enumerate(body):
        if not line.strip():
            continue
        fields = (
            next(csv.reader(io.StringIO(line), delimiter=sep))
            if len(sep) == 1 and sep not in "\t|"
            else line.split(sep)
        )
        if expected and len(fields) != expected:
            raise DataError(
                f"expected {expected} fields, found {len(fields)}", path=path, line=start + offset
            )
        for name, value in zip(columns, fields, strict=False):
            kind = dtype.get(name) if isinstance(dtype, dict) else None
            check = _VALUE_CHECKS.get(kind)  # type: ignore[arg-type]
            if check is not None and value.strip():
                parse, what = check
                try:
                    parse(value)
                except ValueError:
                    raise DataError(
                        f"not {what}: {value!r}", path=path, line=start + offset, field=name
                    ) from None
