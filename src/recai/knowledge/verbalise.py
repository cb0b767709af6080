"""Facts as prompt text: natural-language statements, reasoning paths or attribute lists.

The style is a configuration value (``Verbaliser(style=...)``), and the wording of every style lives in
one template file, ``prompts/facts.yaml``, next to this module:

- ``statements``: sentences ("People who watched Collateral (2004) often also watched Heat (1995) [4]");
- ``paths``: arrows from the history to the candidate ("Collateral (2004) -> directed by -> Michael Mann
  -> directed -> Heat (1995) [4]");
- ``lists``: compact attribute lists ("Heat (1995) [4] | genres: Crime, Action; director: Michael Mann");
- ``natural`` (default): attribute lists for item attributes, paths for graph paths, statements for the
  rest.

Item names come from a function the caller passes, so a candidate can carry the number the prompt lists
it under ("[4]") and the LLM can answer with that number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from string import Template
from typing import Any

import yaml

from recai.knowledge.facts import Fact

STYLES = ("natural", "statements", "paths", "lists")
_PAST = {
    "films": "watched",
    "movies": "watched",
    "shows": "watched",
    "videos": "watched",
    "books": "read",
    "songs": "listened to",
    "tracks": "listened to",
    "albums": "listened to",
    "artists": "listened to",
    "podcasts": "listened to",
    "games": "played",
}


@cache
def _templates() -> dict[str, Any]:
    text = resources.files("recai.knowledge").joinpath("prompts", "facts.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


class Verbaliser:
    """Renders :class:`Fact` objects in one ``style`` (see the module docstring).

    Args:
        style: One of ``STYLES``: how facts are worded.
        item_noun: What the catalog's items are called, plural ("films"); it picks the verb ("watched",
            "read", "chose").
        templates: Replaces the packaged template file (same structure), for experiments with wording.
    """

    def __init__(
        self,
        style: str = "natural",
        *,
        item_noun: str = "items",
        templates: Mapping[str, Any] | None = None,
    ) -> None:
        self.templates = dict(templates) if templates is not None else _templates()
        styles = [s for s in self.templates if s != "relations"]
        if style not in styles:
            raise ValueError(f"unknown verbaliser style '{style}' (use one of {', '.join(styles)})")
        self.style = style
        self.item_noun = item_noun
        self.past = _PAST.get(item_noun.lower(), "chose")

    # ---------------------------------------------------------------- API
    def render(self, fact: Fact, name: Callable[[int], str]) -> str:
        """One line of text for ``fact``; ``name(position)`` names an item."""
        fields, relation = self._fields(fact, name)
        return Template(self._template(relation)).substitute(fields).strip()

    def label(self, relation: str, towards_value: bool) -> str:
        """The edge label of ``relation`` (a column name or 'cooccurrence') in a reasoning path."""
        labels = self.templates.get("relations", {}).get(relation)
        if labels is None:
            words = relation.replace("_", " ")
            labels = [f"has {words}", f"is the {words} of"]
        return Template(labels[0 if towards_value else 1]).substitute(past=self.past)

    def path(self, steps: list[Mapping[str, Any]], name: Callable[[int], str]) -> str:
        """'A -> label -> value -> label -> B' for a path's steps (see :meth:`GraphExtractor.describe`)."""
        parts = []
        for step in steps:
            if "item" in step:
                parts.append(name(int(step["item"])))
            elif "value" in step:
                parts.append(str(step["value"]))
            else:
                parts.append(self.label(str(step["relation"]), bool(step["towards_value"])))
        return " -> ".join(parts)

    # ------------------------------------------------------------ internals
    def _template(self, relation: str) -> str:
        style = self.style
        for _ in range(len(STYLES) + 1):  # a style may point to another style for a relation
            entry = self.templates[style].get(relation)
            if entry is None:
                raise KeyError(f"the '{style}' verbaliser style has no template for '{relation}'")
            if entry not in self.templates or entry == "relations":
                return str(entry)
            style = entry
        raise ValueError(f"the verbaliser styles refer to each other in a loop for '{relation}'")

    def _fields(self, fact: Fact, name: Callable[[int], str]) -> tuple[dict[str, str], str]:
        v = fact.values
        fields: dict[str, str] = {"noun": self.item_noun, "past": self.past}
        if fact.candidate is not None:
            fields["candidate"] = name(fact.candidate)
        if fact.anchor is not None:
            fields["anchor"] = name(fact.anchor)
        relation = fact.relation
        if relation == "profile":
            fields["n"] = str(v["of"])
            fields["summary"] = _summary(v["values"])
        elif relation == "item_attributes":
            fields["attributes"] = "; ".join(
                f"{column}: {', '.join(values)}" for column, values in v["attributes"].items()
            )
            if v["shared"]:
                relation = "item_attributes_shared"
                fields["shared"] = "; ".join(
                    f"{_singular(s['column'])} {s['value']} with {_anchors(s, name)}" for s in v["shared"]
                )
                fields["shared_values"] = ", ".join(f"{s['value']} ({s['count']})" for s in v["shared"])
                fields["shared_paths"] = "; ".join(
                    self.path(
                        [
                            {"item": s["anchors"][0]},
                            {"relation": s["column"], "towards_value": True},
                            {"value": s["value"]},
                            {"relation": s["column"], "towards_value": False},
                            {"item": fact.candidate},
                        ],
                        name,
                    )
                    for s in v["shared"]
                )
        elif relation == "co_occurs":
            fields.update(count=str(v["count"]), score=f"{v['score']:.2f}", measure=str(v["measure"]))
        elif relation == "similar":
            fields.update(model=str(v["model"]), similarity=f"{v['similarity']:.2f}")
        elif relation == "recommender_score":
            fields.update(model=str(v["model"]), rank=str(v["rank"]), of=str(v["of"]))
            if "catalog_rank" in v:
                relation = "recommender_score_catalog"
                fields.update(catalog_rank=str(v["catalog_rank"]), catalog_size=str(v["catalog_size"]))
        elif relation == "popularity":
            fields.update(users=str(v["users"]), percent=str(v["percent_beaten"]))
        elif relation == "associated_pair":
            fields.update(
                partner=name(int(v["partner"])),
                pair_rank=str(v["pair_rank"]),
                count=str(v["count"]),
            )
        elif relation == "path":
            fields["path"] = self.path(v["steps"], name)
        else:
            raise ValueError(f"no verbaliser for facts of relation '{relation}' (kind '{fact.kind}')")
        return fields, relation


def _summary(values: list[Mapping[str, Any]]) -> str:
    """'genres: Crime (12), Drama (9); director: Michael Mann (3)' from the profile's values."""
    by_column: dict[str, list[str]] = {}
    for entry in values:
        by_column.setdefault(str(entry["column"]), []).append(f"{entry['value']} ({entry['count']})")
    return "; ".join(f"{column}: {', '.join(items)}" for column, items in by_column.items())


def _anchors(shared: Mapping[str, Any], name: Callable[[int], str]) -> str:
    """The most recent history item with the value, and how many more have it."""
    more = int(shared["count"]) - 1
    return name(int(shared["anchors"][0])) + (f" and {more} more" if more > 0 else "")


def _singular(column: str) -> str:
    """'genre' for 'genres', 'actor' for 'actors': reads better in 'shares genre Crime'."""
    return column[:-1] if column.endswith("s") and not column.endswith("ss") else column
