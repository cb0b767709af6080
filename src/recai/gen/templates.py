"""Prompt and answer templates of the SFT tasks: files in ``recai/gen/prompts``, several wordings each.

A file holds one or more variants separated by a line ``---``; a builder picks one with its seeded
generator, so the model does not learn a single phrasing, and a rebuild with the same seed picks the same.
Placeholders are ``$name`` (``string.Template``); a missing value is an error, never a hole in a prompt.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template

import numpy as np

PACKAGE = "recai.gen"


@cache
def variants(name: str) -> tuple[str, ...]:
    text = resources.files(PACKAGE).joinpath("prompts", f"{name}.txt").read_text(encoding="utf-8")
    parts = tuple(p.strip() for p in text.replace("\r\n", "\n").split("\n---\n") if p.strip())
    if not parts:
        raise ValueError(f"prompt template {name}.txt is empty")
    return parts


def render(name: str, rng: np.random.Generator, **values: object) -> str:
    """One variant of ``prompts/<name>.txt``, chosen by ``rng``, filled with ``values``."""
    options = variants(name)
    chosen = options[int(rng.integers(len(options)))] if len(options) > 1 else options[0]
    return Template(chosen).substitute({k: str(v) for k, v in values.items()}).strip()


def plural(noun: str) -> str:
    """English plural of a simple noun (film -> films, series -> series, story -> stories)."""
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun if noun.endswith("s") else noun + "es"
    if noun.endswith("y") and len(noun) > 1 and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"
