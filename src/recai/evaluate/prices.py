"""What an evaluation's LLM calls cost: a price table users can edit, and nothing guessed.

The shipped table (``prices.yaml`` next to this module) lists USD per million input and output tokens
for some API models and zero for models running locally. A user YAML with the same layout overrides and
extends it. A model the table does not know costs ``None`` and is reported as unknown: a wrong number
in a report is worse than a missing one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CURRENCY = "USD"
_TOP_KEYS = {"currency", "per_tokens", "models", "prefixes"}


@dataclass(frozen=True)
class Price:
    """Price of one model per million tokens, and where it came from (for the report).

    Attributes:
        input: Price per million prompt tokens.
        output: Price per million completion tokens.
        source: The table file (or rule) the price came from.
    """

    input: float
    output: float
    source: str

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


class PriceTable:
    """Exact model names first, then the longest matching prefix; otherwise unknown.

    It turns a run's token counts into a cost without hard-coding prices in the evaluators.

    Args:
        models: Prices by exact model name.
        prefixes: Prices by model-name prefix.
        currency: The currency of every price.
        sources: The files the table was read from, for the report.
    """

    def __init__(
        self,
        models: dict[str, Price],
        prefixes: dict[str, Price],
        *,
        currency: str = DEFAULT_CURRENCY,
        sources: tuple[str, ...] = (),
    ) -> None:
        self.models = dict(models)
        self.prefixes = dict(prefixes)
        self.currency = currency
        self.sources = sources

    @classmethod
    def load(cls, path: str | Path | None = None, *, include_defaults: bool = True) -> PriceTable:
        """The shipped table, overridden and extended by the YAML at ``path`` when given.

        ``include_defaults=False`` uses the user file alone (for a table in another currency).
        """
        models: dict[str, Price] = {}
        prefixes: dict[str, Price] = {}
        currency = DEFAULT_CURRENCY
        sources: list[str] = []
        if include_defaults or path is None:
            _add_local_models(models)
            ref = resources.files("recai.evaluate").joinpath("prices.yaml")
            currency = _merge(ref.read_text(encoding="utf-8"), "recai/evaluate/prices.yaml", models, prefixes)
            sources.append("recai/evaluate/prices.yaml")
        if path is not None:
            path = Path(path)
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise FileNotFoundError(f"price table {path} does not exist") from None
            user_currency = _merge(text, str(path), models, prefixes)
            if include_defaults and user_currency != currency:
                raise ValueError(
                    f"{path}: currency {user_currency!r} differs from the shipped table's {currency!r}; "
                    "convert the prices, or load it with include_defaults=False"
                )
            currency = user_currency
            sources.append(str(path))
        return cls(models, prefixes, currency=currency, sources=tuple(sources))

    def price(self, model: str) -> Price | None:
        """The price for ``model`` (a backend's name or a spec such as ``openai:gpt-4o``), or None."""
        for name in _candidates(model):
            if name in self.models:
                return self.models[name]
        for name in _candidates(model):
            matches = [p for p in self.prefixes if name.startswith(p)]
            if matches:
                return self.prefixes[max(matches, key=len)]
        return None

    def cost(self, model_name: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Estimated cost in :attr:`currency`, or None when the model's price is unknown."""
        price = self.price(model_name)
        return None if price is None else price.cost(prompt_tokens, completion_tokens)


def _candidates(model: str) -> list[str]:
    """The name as given, then without an ``openai:`` spec prefix (``openai:URL#name`` gives ``name``)."""
    out = [model]
    if model.startswith("openai:"):
        rest = model[len("openai:") :].split("?", 1)[0]
        out.append(rest.rsplit("#", 1)[1] if "#" in rest else rest)
    return out


def _add_local_models(models: dict[str, Price]) -> None:
    """recai's packaged offline weights run on the user's hardware: no per-token price."""
    from recai.llm.resolve import KNOWN_MODELS

    for name in KNOWN_MODELS:
        models[name] = Price(0.0, 0.0, "recai offline model")


def _merge(text: str, where: str, models: dict[str, Price], prefixes: dict[str, Price]) -> str:
    """Parse one YAML table into ``models``/``prefixes`` (later files win); returns its currency."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{where} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping with keys {sorted(_TOP_KEYS)}")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    currency = data.get("currency", DEFAULT_CURRENCY)
    if not isinstance(currency, str) or not currency:
        raise ValueError(f"{where}: currency must be a name such as 'USD', got {currency!r}")
    per = data.get("per_tokens", 1_000_000)
    if not _number(per) or per <= 0:
        raise ValueError(f"{where}: per_tokens must be a positive number, got {per!r}")
    scale = 1_000_000 / float(per)
    for section, target in (("models", models), ("prefixes", prefixes)):
        entries = data.get(section) or {}
        if not isinstance(entries, dict):
            raise ValueError(f"{where}: {section} must map names to {{input: ..., output: ...}}")
        for name, entry in entries.items():
            target[str(name)] = _price(entry, f"{where}: {section}.{name}", scale, where)
    return currency


def _price(entry: Any, field: str, scale: float, source: str) -> Price:
    if not isinstance(entry, dict) or set(entry) != {"input", "output"}:
        raise ValueError(f"{field} must be {{input: <price>, output: <price>}}, got {entry!r}")
    for side in ("input", "output"):
        value = entry[side]
        if not _number(value) or value < 0:
            raise ValueError(f"{field}.{side} must be a non-negative number, got {value!r}")
    return Price(float(entry["input"]) * scale, float(entry["output"]) * scale, source)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
