"""Turning model text into a schema-valid object, and explaining precisely why when it is not.

LLM output is untrusted: it may come wrapped in code fences, carry prose around the JSON, use raw
newlines inside strings (llama.cpp's schema grammars allow them), or simply violate the schema. The
parser tolerates the harmless forms and reports the rest as one readable sentence that can be fed back
to the model for a retry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as InvalidSchema

from recai.errors import RecaiError

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)


class SchemaError(RuntimeError, RecaiError):
    """The model did not produce output that satisfies the requested JSON schema, after every retry.

    Args:
        message: What went wrong last.
        raw: Every raw reply, in order.
        errors: Why each reply was refused, in order.
    """

    def __init__(self, message: str, *, raw: list[str], errors: list[str]) -> None:
        super().__init__(message)
        self.raw = raw
        self.errors = errors


def normalise_response_format(response_format: Any) -> dict[str, Any] | None:
    """Accept a JSON schema, a pydantic model class, or an OpenAI-style ``response_format`` dict."""
    if response_format is None:
        return None
    if isinstance(response_format, type) and hasattr(response_format, "model_json_schema"):
        return response_format.model_json_schema()
    if not isinstance(response_format, dict):
        raise TypeError(
            f"response_format must be a JSON schema dict or a pydantic model, got {type(response_format)}"
        )
    if response_format.get("type") == "json_schema" and "json_schema" in response_format:
        schema = response_format["json_schema"].get("schema")
    elif response_format.get("type") == "json_object" and "schema" in response_format:
        schema = response_format["schema"]
    else:
        schema = response_format
    try:
        Draft202012Validator.check_schema(schema)
    except InvalidSchema as exc:
        raise ValueError(f"response_format is not a valid JSON schema: {exc.message}") from None
    return schema


def json_candidates(text: str, *, limit: int = 32) -> Iterator[Any]:
    """Every JSON value ``text`` may hold: the whole text, fenced blocks, then a value starting at each
    ``{`` or ``[`` (prose around JSON is common; the first value found is not always the wanted one)."""
    decoder = json.JSONDecoder(strict=False)  # raw newlines inside strings are fine
    starts = [text.strip(), *(m.strip() for m in _FENCE.findall(text))]
    starts += [text[i:] for i, ch in enumerate(text) if ch in "{["][:limit]
    seen: set[str] = set()
    for candidate in starts:
        if not candidate or candidate in seen:
            continue
        seen.add(candidate)
        try:
            value, _ = decoder.raw_decode(candidate)
        except json.JSONDecodeError:
            continue
        yield value


def extract_json(text: str) -> Any:
    """The first JSON value in ``text`` (see :func:`json_candidates`), or ValueError saying why not."""
    for value in json_candidates(text):
        return value
    raise ValueError(_not_json_reason(text))


def _not_json_reason(text: str) -> str:
    if not text.strip():
        return "the reply is empty"
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=0)
    try:
        json.JSONDecoder(strict=False).raw_decode(text[start:].strip())
    except json.JSONDecodeError as exc:
        return f"it is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    return "it is not valid JSON"


def validation_errors(value: Any, schema: dict[str, Any], *, limit: int = 3) -> list[str]:
    """Human-readable schema violations, each naming the JSON path."""
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: (len(e.path), str(e.path)))
    out = []
    for err in errors[:limit]:
        path = "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in err.path) or "the top level"
        out.append(f"at {path}: {err.message}")
    return out


def parse_structured(text: str, schema: dict[str, Any]) -> tuple[Any | None, str | None]:
    """(value, None) for the first JSON value in ``text`` that satisfies ``schema``, else (None, reason)."""
    problems_of: dict[bool, str] = {}  # keyed by "is an object or array": those explain the failure best
    for value in json_candidates(text):
        problems = validation_errors(value, schema)
        if not problems:
            return value, None
        reason = "it does not match the schema: " + "; ".join(problems)
        problems_of.setdefault(isinstance(value, (dict, list)), reason)
    return None, problems_of.get(True) or problems_of.get(False) or _not_json_reason(text)
