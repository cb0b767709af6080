"""Server-sent events: the wire format of the streaming endpoints.

Each event is ``event: NAME`` (omitted for OpenAI-style streams) and one ``data:`` line of JSON, ended by
a blank line; a line starting with ``:`` is a comment that keeps idle connections open.
"""

from __future__ import annotations

import json
from typing import Any

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEPALIVE = b": keep-alive\n\n"


def event(name: str | None, data: Any) -> bytes:
    """One event; ``data`` is JSON-encoded unless it is already a string (OpenAI's ``[DONE]``)."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, default=_default)
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {payload}\n\n".encode()


def plain_json(value: Any) -> Any:
    """``value`` with numpy scalars and other strays turned into plain JSON types (traces carry some)."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=_default))


def _default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):  # numpy arrays
        return value.tolist()
    return str(value)
