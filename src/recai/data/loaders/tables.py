"""Reading a user's table exactly as it was published, with errors that say where and what to change.

Users bring files in every shape: tab-separated ``.dat`` files whose names contain commas, ``::``
separators, no header line, a BOM, UTF-16, gzip or zip, comment lines, preambles. The generic importer
reads them all through :func:`read_user_table`:

- **Options** (:class:`ReadOptions`, one set per table in the import spec): ``delimiter`` (any string;
  sniffed from the first lines when not given), ``header`` (detected when not given) and ``names``,
  ``quote``, ``comment`` (lines starting with it are skipped), ``skip_rows``, ``encoding`` (a BOM is
  honoured when not given) and ``na_values``. Parquet and JSON lines are read as they are.
- **Speed**: the parse itself is pyarrow's multi-threaded CSV reader, with every column read as text
  and then typed in Arrow (wholly integral columns become integers, except codes with leading zeros
  such as "007", which are identities and stay text). Ten million rows take seconds.
- **Strictness**: a row with too few or too many fields is an error, not a row of nulls, and so is a
  quoted field with text after its closing quote (``"abc"def``), which a lenient parser would silently
  glue together.
- **Errors** name the file and the physical line (a quoted field spanning lines is counted correctly)
  and end with the likely fix. :meth:`TableRead.line_of` maps a record back to its line for errors
  found later (an empty user id, a bad timestamp).
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import lzma
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from recai.data.errors import DataError
from recai.data.jsonl import json_objects

#: Delimiters tried when none is given, in order of preference when several fit.
SNIFFED_DELIMITERS = ("\t", "::", ",", ";", "|")
_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe", "::": "'::'"}
_SAMPLE_BYTES = 256 * 1024
_SAMPLE_LINES = 200
#: Stand-in for a multi-character delimiter, which the fast parser cannot take.
_UNIT_SEPARATOR = "\x1f"
#: Name of the empty field after a trailing delimiter, dropped after parsing.
_TRAILING = "__recai_trailing_delimiter__"
_INTEGER = r"^[+-]?\d+$"
_LEADING_ZERO = r"^[+-]?0\d"
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan)$"
_COMPRESSED = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}


class ReadOptions(BaseModel):
    """How to read one delimited text table. Every field is optional: what is left out is sniffed.

    The fields are documented by their descriptions (they are also the import spec's YAML keys).
    """

    model_config = ConfigDict(extra="forbid")

    delimiter: str | None = Field(
        default=None,
        description='Field separator: any string ("\\t", ",", ";", "|", "::"); sniffed if unset.',
    )
    header: bool | None = Field(default=None, description="Whether the first line names the columns.")
    names: list[str] | None = Field(default=None, description="Column names (for files without a header).")
    quote: str | None = Field(
        default="auto",
        description='Quote character; null for none; "auto": \'"\' for comma/semicolon files, else none.',
    )
    comment: str | None = Field(default=None, description="Lines starting with this are skipped.")
    skip_rows: int = Field(default=0, ge=0, description="Lines to skip before the header or the data.")
    encoding: str | None = Field(default=None, description="Text encoding; unset: utf-8, or the file's BOM.")
    na_values: list[str] = Field(default_factory=list, description="Cell values that mean 'empty'.")

    @field_validator("delimiter")
    @classmethod
    def _unescape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # YAML single quotes and the command line keep "\t" as two characters; people mean a tab.
        value = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(value, value)
        if value == "" or "\n" in value or "\r" in value:
            raise ValueError("delimiter must be a non-empty string without line breaks")
        return value

    @field_validator("quote", "comment")
    @classmethod
    def _one_character(cls, value: str | None, info: Any) -> str | None:
        if value in (None, "auto") and info.field_name == "quote":
            return value
        if value is not None and len(value) != 1:
            raise ValueError(f"{info.field_name} must be a single character")
        return value

    @field_validator("names")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            dupes = sorted({n for n in value if value.count(n) > 1})
            if dupes or not value:
                raise ValueError(f"names must be distinct and non-empty (duplicates: {dupes})")
        return value


@dataclass
class TableRead:
    """A table as read, with what it takes to point an error at the file's line.

    Attributes:
        frame: The table.
        path: The file.
        options: The options actually used (sniffed values filled in).
        notes: What was sniffed, for the user.
        delimited: False for Parquet and JSON lines.
        trailing_delimiter: True when every line ended with the delimiter (an empty last field dropped).
    """

    frame: pd.DataFrame
    path: Path
    options: ReadOptions
    notes: list[str] = field(default_factory=list)
    delimited: bool = True
    trailing_delimiter: bool = False

    def line_of(self, record: int) -> int | None:
        """The physical line (1-based) where data record ``record`` (0-based) starts, counting header,
        skipped and comment lines and quoted fields that span lines."""
        if not self.delimited:
            return None if self.path.suffix.lower() == ".parquet" else _json_line_of(self.path, record)
        for number, start, _ in _records(self.path, self.options):
            if number == record:
                return start
        return None

    def error_at(self, record: int, message: str, field: str | None = None) -> DataError:
        """The error for data record ``record`` (0-based), naming its file, line and column."""
        return DataError(message, path=self.path, line=self.line_of(record), field=field)


def read_user_table(path: str | Path, options: ReadOptions | None = None) -> TableRead:
    """Read a CSV/TSV/any-delimiter text file (optionally gzip/bz2/xz/zip), Parquet or JSON lines."""
    path = Path(path)
    options = options or ReadOptions()
    _check_file(path)
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return TableRead(pd.read_parquet(path), path, options, delimited=False)
    if {".jsonl", ".ndjson", ".json"} & set(suffixes):
        encoding = _resolve_encoding(path, options.encoding)[0]
        return TableRead(_read_json_lines(path, encoding), path, options, delimited=False)
    return _read_delimited(path, options)


# ----------------------------------------------------------------------------- opening
def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError("file not found", path=path)
    if path.is_dir():
        raise DataError("is a folder, not a file: give the path of the table inside it", path=path)


def _compression(path: Path) -> str | None:
    return _COMPRESSED.get(path.suffix.lower())


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed (gzip, bz2, xz, or a zip holding one file)."""
    kind = _compression(path)
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "bz2":
        return bz2.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    if kind == "zip":
        archive = zipfile.ZipFile(path)
        members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX")]
        if len(members) != 1:
            names = [m.filename for m in members][:10]
            archive.close()
            raise DataError(
                f"a zip must hold exactly one table to be read directly; it holds {names}: extract it "
                "and give the file's path",
                path=path,
            )
        return archive.open(members[0])
    return path.open("rb")


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _resolve_encoding(path: Path, given: str | None) -> tuple[str, str | None]:
    """The encoding to decode with, and a note when it came from a byte-order mark."""
    if given is not None:
        try:
            codecs.lookup(given)
        except LookupError:
            raise DataError(f"unknown encoding '{given}'", path=path, field="encoding") from None
        return given, None
    with open_binary(path) as fh:
        head = fh.read(4096)
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name, f"encoding {name} (from the byte-order mark)"
    if head and head.count(b"\x00") > len(head) // 8:
        # NUL bytes decode as UTF-8 without complaint; text full of them is UTF-16/32 without a BOM
        order = "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"
        raise DataError(
            "the file looks like UTF-16 without a byte-order mark (many zero bytes): "
            f"add `encoding: {order}`",
            path=path,
            field="encoding",
        )
    return "utf-8", None


def _sample_lines(path: Path, encoding: str) -> list[str]:
    with open_binary(path) as fh:
        raw = fh.read(_SAMPLE_BYTES)
        complete = len(raw) < _SAMPLE_BYTES
    text = _decode_sample(raw, encoding, path)
    lines = text.splitlines()
    if not complete and lines:
        lines = lines[:-1]  # the last line of a cut sample may be partial
    return lines[: _SAMPLE_LINES * 5]


def _decode_sample(raw: bytes, encoding: str, path: Path) -> str:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        return decoder.decode(raw, final=False)
    except UnicodeDecodeError:
        _raise_decode_error(path, encoding)
        raise


def _raise_decode_error(path: Path, encoding: str) -> None:
    """Find the first line that does not decode and raise a DataError with advice that fits it."""
    with open_binary(path) as fh:
        head = fh.read(4096)
    if head.count(b"\x00") > len(head) // 8:
        advice = (
            "the file looks like UTF-16 (many zero bytes): add `encoding: utf-16` (or utf-16-le / utf-16-be)"
        )
    else:
        advice = "add the file's encoding, e.g. `encoding: latin-1` or `encoding: cp1252`"
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    with open_binary(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"cannot decode byte {raw[exc.start : exc.start + 1]!r} at column {exc.start + 1} as "
                    f"{encoding}; {advice}",
                    path=path,
                    line=lineno,
                ) from None
    raise DataError(f"cannot decode the file as {encoding}; {advice}", path=path)


# ----------------------------------------------------------------------------- sniffing
def _default_quote(delimiter: str) -> str | None:
    """Comma and semicolon files quote fields that contain the delimiter; tab, pipe and '::' files
    (MovieLens, HetRec, most database dumps) do not, and a leading quote in them is part of a name."""
    return '"' if delimiter in (",", ";") else None


def _data_lines(lines: list[str], options: ReadOptions) -> list[str]:
    body = lines[options.skip_rows :]
    return [ln for ln in body if ln.strip() and not (options.comment and ln.startswith(options.comment))]


def _sample_records(lines: list[str], delimiter: str, quote: str | None) -> list[list[str]]:
    """The sample's records under one delimiter; with quoting, a quoted field may span lines."""
    if len(delimiter) == 1 and quote:
        return [r for r in csv.reader(lines, delimiter=delimiter, quotechar=quote) if r]
    return [ln.split(delimiter) for ln in lines]


def sniff_delimiter(lines: list[str]) -> tuple[str | None, str, float]:
    """The delimiter under which the sample's records have one consistent field count (>1), why, and
    the share of sampled records that agree (1.0 when all do)."""
    if not lines:
        return None, "empty sample", 0.0
    scored = []
    for delimiter in SNIFFED_DELIMITERS:
        try:
            records = _sample_records(lines, delimiter, _default_quote(delimiter))[:_SAMPLE_LINES]
        except csv.Error:
            continue
        if not records:
            continue
        counts = [len(r) for r in records]
        modal = max(sorted(set(counts)), key=counts.count)
        share = counts.count(modal) / len(counts)
        if modal > 1:
            scored.append((share, delimiter, modal))
    if not scored:
        return None, "no candidate delimiter splits the lines: one column", 1.0
    consistent = [s for s in scored if s[0] == 1.0]
    if consistent:
        share, delimiter, modal = consistent[0]
        return delimiter, f"every sampled line has {modal} fields", 1.0
    share, delimiter, modal = max(scored, key=lambda s: s[0])
    return delimiter, f"{share:.0%} of sampled lines have {modal} fields", share


def _looks_numeric(value: str) -> bool:
    return bool(re.match(_NUMBER, value.strip(), re.I)) if value.strip() else False


def sniff_header(rows: list[list[str]]) -> tuple[bool, str]:
    """Whether the first row names the columns: yes when some column is numeric below a non-numeric
    first cell; no when the first row is as numeric as the rest; otherwise assume a header."""
    if len(rows) < 2:
        return True, "too few lines to tell: assumed"
    first, rest = rows[0], rows[1:]
    numeric_first = 0
    for col, value in enumerate(first):
        below = [r[col] for r in rest if col < len(r) and r[col].strip()]
        if not below:
            continue
        share = sum(_looks_numeric(v) for v in below) / len(below)
        if share >= 0.9 and not _looks_numeric(value):
            return True, f"'{value}' heads a numeric column"
        if share >= 0.9 and _looks_numeric(value):
            numeric_first += 1
    if numeric_first:
        return False, "the first line holds data like the rest (numbers where numbers are)"
    return True, "assumed (text columns; set `header: false` if the first line is data)"


# ----------------------------------------------------------------------------- records
def _text_lines(path: Path, encoding: str) -> Iterator[str]:
    with open_binary(path) as fh, io.TextIOWrapper(fh, encoding=encoding, newline="") as text:
        yield from text


def _records(path: Path, options: ReadOptions) -> Iterator[tuple[int, int, list[str]]]:
    """(record number, first physical line, fields) for every data record, exactly as the fast
    parser sees them: after skipped rows and the header, without comment and blank lines."""
    assert options.delimiter is not None
    delimiter, quote = options.delimiter, options.quote
    consumed = 0
    pulled: list[int] = []  # physical numbers of the lines the current record was read from

    def numbered() -> Iterator[str]:
        nonlocal consumed
        for line in _text_lines(path, options.encoding or "utf-8"):
            consumed += 1
            if consumed <= options.skip_rows:
                continue
            if options.comment and line.startswith(options.comment):
                continue
            pulled.append(consumed)
            yield line

    lines = numbered()
    record = -1 if options.header else 0
    if len(delimiter) == 1 and quote:
        reader = csv.reader(lines, delimiter=delimiter, quotechar=quote, strict=True)
        while True:
            pulled.clear()
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataError(
                    f"malformed quoted field ({exc}); quote a field whole and double the quotes inside "
                    'it (""), or set `quote: null` if quotes are part of the values',
                    path=path,
                    line=consumed,
                ) from None
            if not fields or fields == [""]:
                continue
            if record >= 0:
                yield record, pulled[0], fields
            record += 1
    else:
        for line in lines:
            stripped = line.rstrip("\r\n")
            if not stripped.strip():
                continue
            if record >= 0:
                yield record, consumed, stripped.split(delimiter)
            record += 1


# ----------------------------------------------------------------------------- reading
def _read_delimited(path: Path, options: ReadOptions) -> TableRead:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    notes: list[str] = []
    encoding, bom_note = _resolve_encoding(path, options.encoding)
    if bom_note:
        notes.append(bom_note)
    sample = _sample_lines(path, encoding)
    data = _data_lines(sample, options)
    if not data:
        raise DataError("the file holds no lines to read", path=path)
    delimiter = options.delimiter
    doubtful = False
    if delimiter is None:
        delimiter, why, agreement = sniff_delimiter(data)
        doubtful = agreement < 1.0
        if delimiter is None:
            delimiter = "\t" if "\t" not in "".join(data) else ","
            notes.append(f"one column ({why})")
        else:
            notes.append(f"delimiter {_NAMES.get(delimiter, repr(delimiter))} (sniffed: {why})")
    quote = _default_quote(delimiter) if options.quote == "auto" else options.quote
    if len(delimiter) > 1:
        quote = None
    try:
        rows = _sample_records(data, delimiter, quote)[:_SAMPLE_LINES]
    except csv.Error as exc:
        raise DataError(f"could not read the first lines: {exc}", path=path) from None
    header = options.header
    if header is None:
        header, why = sniff_header(rows)
        if not header or "assumed" not in why:
            notes.append(f"{'a header line' if header else 'no header line'} ({why})")
    # Some exporters end every line with the delimiter: an empty last field that is not a column.
    body = rows[1:] if header else rows
    trailing = bool(body) and all(len(r) > 1 and r[-1] == "" for r in body)
    if trailing and header and rows[0][-1] != "" and len(rows[0]) != len(body[0]) - 1:
        trailing = False
    if trailing:
        rows = [r[:-1] if r and r[-1] == "" else r for r in rows]
        notes.append("every line ends with the delimiter: the empty last field is dropped")
    if header:
        columns = [c.strip() for c in rows[0]]
        if options.names is not None:
            if len(options.names) != len(columns):
                raise DataError(
                    f"names gives {len(options.names)} columns but the header has {len(columns)}: {columns}",
                    path=path,
                    line=options.skip_rows + 1,
                    field="names",
                )
            columns = list(options.names)
    elif options.names is not None:
        columns = list(options.names)
    else:
        columns = [f"column{i + 1}" for i in range(len(rows[0]))]
        notes.append(f"columns named {columns[0]}..{columns[-1]}: add `names: [...]` to name them")
    if any(not c for c in columns) or len(set(columns)) != len(columns):
        raise DataError(
            f"column names must be distinct and non-empty, got {columns}; give `names: [...]`",
            path=path,
            line=options.skip_rows + 1,
        )
    resolved = options.model_copy(
        update={"delimiter": delimiter, "quote": quote, "header": header, "encoding": encoding}
    )
    arrow_columns = [*columns, _TRAILING] if trailing else columns
    if quote is not None:
        _check_quoting(path, resolved)
    source: Any
    arrow_delimiter = delimiter
    if len(delimiter) > 1 or options.comment:
        source, arrow_delimiter = _preprocessed(path, resolved)
        arrow_encoding = "utf8"
    else:
        source = _arrow_source(path)
        arrow_encoding = "utf8" if encoding in ("utf-8", "utf-8-sig", "utf8") else encoding
    try:
        table = pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(
                column_names=arrow_columns,
                skip_rows=0 if source_is_preprocessed(source) else options.skip_rows + (1 if header else 0),
                encoding=arrow_encoding,
                block_size=1 << 22,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=arrow_delimiter,
                quote_char=quote if quote else False,
                double_quote=True,
                escape_char=False,
                newlines_in_values=quote is not None,
                ignore_empty_lines=True,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(arrow_columns, pa.string()),
                null_values=["", *options.na_values],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        _explain_parse_failure(path, resolved, str(exc), sniffed=doubtful, ncols=len(arrow_columns))
        raise DataError(f"could not parse: {str(exc).splitlines()[0]}", path=path) from None
    except UnicodeDecodeError:
        _raise_decode_error(path, encoding)
        raise
    if table.num_rows == 0:
        raise DataError("the file holds a header but no data rows", path=path)
    if trailing:
        extra = table.column(_TRAILING)
        if extra.null_count != len(extra):
            row = next(i for i, v in enumerate(extra.to_pylist()) if v is not None)
            raise TableRead(pd.DataFrame(), path, resolved, notes).error_at(
                row,
                f"expected {len(columns)} fields (and an empty one after the last delimiter), found a value "
                f"there: {extra[row].as_py()!r}",
            )
        table = table.drop_columns([_TRAILING])
    return TableRead(_typed_frame(table), path, resolved, notes, trailing_delimiter=trailing)


def source_is_preprocessed(source: Any) -> bool:
    return isinstance(source, io.BytesIO)


def _arrow_source(path: Path) -> Any:
    import pyarrow as pa

    kind = _compression(path)
    if kind in (None, "gzip", "bz2"):
        return pa.input_stream(str(path), compression="detect" if kind else None)
    return open_binary(path)


def _preprocessed(path: Path, options: ReadOptions) -> tuple[io.BytesIO, str]:
    """The data lines re-encoded as UTF-8 with comment lines, skipped rows and the header removed and a
    multi-character delimiter replaced by a unit separator (the fast parser takes one character)."""
    assert options.delimiter is not None
    out = io.BytesIO()
    delimiter = options.delimiter
    replace = len(delimiter) > 1
    header = bool(options.header)
    for number, line in enumerate(_text_lines(path, options.encoding or "utf-8"), start=1):
        if number <= options.skip_rows or (options.comment and line.startswith(options.comment)):
            continue
        if header and line.strip():
            header = False
            continue
        if replace:
            if _UNIT_SEPARATOR in line:
                raise DataError("the file contains the control character U+001F", path=path, line=number)
            line = line.replace(delimiter, _UNIT_SEPARATOR)
        out.write(line.encode("utf-8"))
    out.seek(0)
    return out, _UNIT_SEPARATOR if replace else delimiter


def _check_quoting(path: Path, options: ReadOptions) -> None:
    """With quoting on, run the strict scanner when the file contains quotes at all: it is the only
    way to catch a quoted field with text after its closing quote, which parsers silently join."""
    assert options.quote is not None
    needle = options.quote.encode(options.encoding or "utf-8", errors="ignore") or b'"'
    if options.encoding and options.encoding.startswith(("utf-16", "utf-32")):
        needle = options.quote.encode("utf-16-le")
    with open_binary(path) as fh:
        while chunk := fh.read(1 << 22):
            if needle in chunk:
                break
        else:
            return
    for _ in _records(path, options):
        pass


def _explain_parse_failure(
    path: Path, options: ReadOptions, message: str, *, sniffed: bool, ncols: int
) -> None:
    """Turn the fast parser's terse error into a DataError naming the physical line and the fix."""
    for _, start, fields in _records(path, options):
        if len(fields) != ncols:
            hint = ""
            if sniffed:
                shown = _NAMES.get(options.delimiter or "", repr(options.delimiter))
                hint = f"; the delimiter was sniffed as {shown}: if that is wrong, set `delimiter:`"
            elif len(fields) > ncols and options.quote is None:
                hint = "; if fields contain the delimiter inside quotes, set `quote: '\"'`"
            raise DataError(
                f"expected {ncols} fields, found {len(fields)}{hint}",
                path=path,
                line=start,
            )
    if "utf8" in message.lower() or "utf-8" in message.lower():
        _raise_decode_error(path, options.encoding or "utf-8")


def _typed_frame(table: Any) -> pd.DataFrame:
    """Columns that are wholly integers (no leading-zero codes) become int64 (Int64 with gaps), wholly
    numeric ones float64; the rest stay text (Python strings, None for empty)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out: dict[str, Any] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        values = column.drop_null()
        stripped = pc.utf8_trim_whitespace(values)
        converted: pd.Series | None = None
        if len(values) and pc.all(pc.match_substring_regex(stripped, _INTEGER)).as_py():
            if not pc.any(pc.match_substring_regex(stripped, _LEADING_ZERO)).as_py():
                try:
                    ints = pc.cast(pc.utf8_trim_whitespace(column), pa.int64())
                    converted = ints.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
                    if not converted.isna().any():
                        converted = converted.astype(np.int64)
                except pa.ArrowInvalid:  # out of int64 range: keep the digits as text
                    converted = None
        elif len(values) and pc.all(pc.match_substring_regex(stripped, _NUMBER, ignore_case=True)).as_py():
            converted = pc.cast(pc.utf8_trim_whitespace(column), pa.float64()).to_pandas()
        if converted is None:
            # surrounding spaces are export artefacts ("Heat (1995) "), never part of a name or code
            converted = pc.utf8_trim_whitespace(column).to_pandas().astype(object)
            converted = converted.where(converted.notna(), None)
        out[name] = converted
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------- JSON lines
def _read_json_lines(path: Path, encoding: str) -> pd.DataFrame:
    """One JSON object per line. Values keep their JSON types: no date guessing, "007" stays text."""
    records = []
    with open_binary(path) as fh, io.TextIOWrapper(fh, encoding=encoding) as text:
        try:
            records = [record for _, record in json_objects(text, path)]
        except UnicodeDecodeError:
            _raise_decode_error(path, encoding)
    if not records:
        raise DataError("the file holds no JSON objects", path=path)
    return pd.DataFrame.from_records(records)


def _json_line_of(path: Path, record: int) -> int | None:
    count = -1
    with open_binary(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            if raw.strip():
                count += 1
                if count == record:
                    return lineno
    return None
