"""Turn what a caller has (a known user id, item ids, or free-text titles) into item positions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recai.data.catalog import Catalog
from recai.data.interactions import Interactions
from recai.errors import RecaiError


class UnresolvedTitleError(ValueError, RecaiError):
    """A title in the history did not ground to a catalog item; the message lists suggestions."""


def resolve_history(
    catalog: Catalog,
    history: Sequence[Any] | str | None = None,
    *,
    user: Any | None = None,
    interactions: Interactions | None = None,
    threshold: float | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Item positions (oldest first) and human-readable notes on how titles were grounded.

    ``history`` may be item ids, titles, or one string of titles separated by ';'. A known ``user``
    contributes their logged sequence first. Titles that do not ground raise UnresolvedTitleError with
    "did you mean" suggestions; ambiguous titles resolve to the best match and say so in the notes.
    """
    positions: list[int] = []
    notes: list[str] = []
    if user is not None:
        if interactions is None:
            raise ValueError("a user id needs the interactions to look the user up in")
        positions.extend(int(p) for p in interactions.sequence(user))
    if isinstance(history, str):
        history = [h.strip() for h in history.split(";") if h.strip()]
    for entry in history or []:
        pos = int(catalog.index_of([entry], missing="mark")[0])
        if pos < 0 and isinstance(entry, str):
            g = catalog.ground(entry, threshold=threshold)
            if not g.resolved:
                suggestions = "; ".join(g.did_you_mean())
                raise UnresolvedTitleError(f"'{entry}' is not in the catalog; did you mean: {suggestions}?")
            pos = int(catalog.index_of([g.item_id])[0])
            note = f"'{entry}' -> {catalog.display_title(pos)} (score {g.score:.0f})"
            if g.ambiguous:
                note += " (ambiguous: " + "; ".join(g.did_you_mean()) + ")"
            notes.append(note)
        elif pos < 0:
            raise UnresolvedTitleError(f"item id {entry!r} is not in the catalog")
        positions.append(pos)
    return np.asarray(positions, dtype=np.int64), notes
