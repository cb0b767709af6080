"""Prompt and answer templates of the SFT tasks: files in ``recai/gen/prompts``, several wordings each.

The file format and the seeded choice of a wording are :mod:`recai.llm.prompting`'s; this module
binds them to the gen package and adds the noun plural the templates need.
"""

from __future__ import annotations

import numpy as np

from recai.llm.prompting import render_variant

PACKAGE = "recai.gen"


def render(name: str, rng: np.random.Generator, **values: object) -> str:
    """One wording of ``prompts/<name>.txt``, chosen by ``rng``, filled with ``values``."""
    return render_variant(name, rng, PACKAGE, **values)


def plural(noun: str) -> str:
    """English plural of a simple noun (film -> films, series -> series, story -> stories)."""
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun if noun.endswith("s") else noun + "es"
    if noun.endswith("y") and len(noun) > 1 and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"
