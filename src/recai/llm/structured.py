"""Turning model text into a schema-valid object, and explaining precisely why when it is not.

LLM output is untrusted: it may come wrapped in code fences, carry prose around the JSON, use raw
newlines inside strings (llama.cpp's schema grammars allow them), or simply violate the schema. The
parser tolerates the harmless forms and reports the rest as one readable sentence that can be fed back
to the model for a retry.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as InvalidSchema

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)


class SchemaError(RuntimeError):
    """The model did not produce output that satisfies the requested JSON schema."""

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


def extract_json(text: str) -> Any:
    """Parse the JSON value in ``text``: bare, fenced, or the first complete object/array in prose."""
    candidates = [text.strip()]
    candidates += [m.strip() for m in _FENCE.findall(text)]
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start >= 0:
        candidates.append(text[start:].strip())
    decoder = json.JSONDecoder(strict=False)  # raw newlines inside strings are fine
    last_error = "the reply is empty"
    for candidate in candidates:
        if not candidate:
            continue
        try:
            value, _ = decoder.raw_decode(candidate)
        except json.JSONDecodeError as exc:
            last_error = f"it is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            continue
        return value
    raise ValueError(last_error)


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
    """(value, None) when ``text`` holds a schema-valid value, else (None, reason)."""
    try:
        value = extract_json(text)
    except ValueError as exc:
        return None, str(exc)
    problems = validation_errors(value, schema)
    if problems:
        return None, "it does not match the schema: " + "; ".join(problems)
    return value, None
