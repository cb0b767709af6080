"""Prompt templates live as files next to the code that uses them, never as scattered strings."""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template


@cache
def _read(package: str, name: str) -> str:
    return resources.files(package).joinpath("prompts", f"{name}.txt").read_text(encoding="utf-8")


def render_prompt(name: str, package: str = "recai.llm", **values: object) -> str:
    """Fill ``prompts/<name>.txt`` of ``package`` with ``values`` (``$name`` placeholders).

    A placeholder without a value is an error: a prompt with a hole in it must not reach a model.
    """
    return Template(_read(package, name)).substitute({k: str(v) for k, v in values.items()}).strip()
