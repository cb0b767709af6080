"""Prompt templates live as files next to the code that uses them, never as scattered strings.

A file holds one wording, or several separated by a line ``---``. Training data draws one wording per
example with its own seeded generator (:func:`render_variant`), so a fine-tuned model does not learn a
single phrasing and a rebuild with the same seed draws the same. Placeholders are ``$name``
(``string.Template``); a missing value is an error, never a hole in a prompt.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template

import numpy as np

SEPARATOR = "\n---\n"


@cache
def _read(package: str, name: str) -> str:
    return resources.files(package).joinpath("prompts", f"{name}.txt").read_text(encoding="utf-8")


@cache
def prompt_variants(name: str, package: str = "recai.llm") -> tuple[str, ...]:
    """The wordings of ``prompts/<name>.txt`` of ``package``, in file order."""
    text = _read(package, name).replace("\r\n", "\n")
    parts = tuple(p.strip() for p in text.split(SEPARATOR) if p.strip())
    if not parts:
        raise ValueError(f"prompt template {package}/prompts/{name}.txt is empty")
    return parts


def _fill(template: str, values: dict[str, object]) -> str:
    return Template(template).substitute({k: str(v) for k, v in values.items()}).strip()


def render_prompt(name: str, package: str = "recai.llm", **values: object) -> str:
    """Fill ``prompts/<name>.txt`` of ``package`` with ``values`` (``$name`` placeholders).

    A placeholder without a value is an error: a prompt with a hole in it must not reach a model. A file
    with several wordings is refused here, because which one to use must be a seeded choice.
    """
    options = prompt_variants(name, package)
    if len(options) > 1:
        raise ValueError(
            f"prompt template {package}/prompts/{name}.txt has {len(options)} wordings; "
            "use render_variant with a seeded generator"
        )
    return _fill(options[0], values)


def render_variant(name: str, rng: np.random.Generator, package: str = "recai.llm", **values: object) -> str:
    """One wording of ``prompts/<name>.txt``, drawn by ``rng``, filled with ``values``.

    A file with a single wording draws nothing, so adding wordings to one template leaves every other
    template's draws (and the data built from them) unchanged.
    """
    options = prompt_variants(name, package)
    chosen = options[int(rng.integers(len(options)))] if len(options) > 1 else options[0]
    return _fill(chosen, values)
