"""Read an ordered list of item names out of whatever an LLM wrote, then ground each name to the catalog.

Published evaluators often parse with one regex and pad the list with random leftovers when the model
strays; both hide how the model really behaved. Here parsing accepts the shapes models actually produce
(a JSON list of strings or objects, a JSON object holding such a list, a numbered or bulleted list,
bold or quoted titles in prose, or comma/semicolon separated names), and grounding sorts every name into
exactly one bucket, counted in the report:

- ``valid``: grounded to a catalog item that is allowed (in the candidates, when there are candidates,
  and not in the user's history);
- ``invalid``: grounded to nothing (an invented or garbled title);
- ``duplicate``: grounded to an item already named earlier in the same answer;
- ``out_of_candidates``: a real catalog item that is not among the offered candidates (this bucket
  comes first: a history item named in a ranking answer counts here);
- ``already_seen``: an item from the user's own history.

Nothing is padded: a list with two valid items is scored as a list of two.
Names are grounded with :class:`recai.data.grounding.TitleMatcher` (threshold 85 by default, documented
there). With candidates, a name is first matched against the candidates alone, so a loosely written
candidate title is not lost to a better-scoring item outside the list. A name that does not ground
whole is tried again cut before a ':' or ' - ' ("Amélie: whimsical and warm"); a full title with a
subtitle is tried first, so "Star Wars: Episode IV" is not cut.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from recai.data.catalog import Catalog
from recai.data.errors import plain_value
from recai.data.grounding import TitleMatcher

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_ITEM_LINE = re.compile(r"^\s*(?:\d{1,3}\s*[.)\]:]|[-*•·]|\(\d{1,3}\)|#\d{1,3}[.:]?)\s+(?P<body>.+?)\s*$")
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_QUOTED = re.compile(r"[\"“”]([^\"“”]{2,120})[\"“”]")
_YEAR_TAIL = re.compile(r"^(?P<title>.+?\(\d{4}\))")
_EXPLANATION = re.compile(r"\s+(?:—|because\b|since\b)\s+.*$", re.I)  # ' - ' and ':' are left to grounding
_TITLE_KEYS = ("title", "name", "item", "movie", "film", "book", "game", "product")
_LIST_KEYS = ("recommendations", "ranking", "ranked", "items", "titles", "results", "movies", "films", "list")
_PREFIX = re.compile(
    r"^(?:here (?:are|is)|i (?:would )?recommend|my recommendations?|recommendations?|ranking|"
    r"the ranked list|ranked list)[^:\n]*:\s*",
    re.I,
)


def parse_item_list(text: str, *, max_items: int | None = None) -> list[str]:
    """The item names in ``text``, in the order given (not yet grounded, duplicates kept)."""
    names = _from_json(text)
    if names is None:
        names = _from_lines(text)
    if names is None:
        names = _from_prose(text)
    cleaned = [n for n in (_clean(name) for name in names) if n]
    return cleaned[:max_items] if max_items is not None else cleaned


def _from_json(text: str) -> list[str] | None:
    """A JSON list (possibly inside a code fence or an object), or None when there is none."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for chunk in candidates:
        for opener, closer in (("[", "]"), ("{", "}")):
            start = chunk.find(opener)
            end = chunk.rfind(closer)
            if start < 0 or end <= start:
                continue
            try:
                value = json.loads(chunk[start : end + 1], strict=False)
            except json.JSONDecodeError:
                continue
            names = _names_in(value)
            if names is not None:
                return names
    return None


def _names_in(value: Any) -> list[str] | None:
    """Names in a parsed JSON value; an element that holds no recognisable name is kept as its text, so
    it is counted as invalid rather than silently dropped."""
    if isinstance(value, list):
        return [_element_name(element) for element in value]
    if isinstance(value, dict):  # {"recommendations": [...]} and similar wrappers
        lists = {str(k).lower(): v for k, v in value.items() if isinstance(v, list)}
        for key in _LIST_KEYS:
            if key in lists:
                return _names_in(lists[key])
        if lists:
            best = max(lists.values(), key=lambda v: sum(isinstance(e, (str, dict)) for e in v))
            return _names_in(best)
    return None


def _element_name(element: Any) -> str:
    if isinstance(element, dict):
        lowered = {str(k).lower(): v for k, v in element.items()}
        title = next((lowered[k] for k in _TITLE_KEYS if isinstance(lowered.get(k), str)), None)
        return title if title is not None else json.dumps(element, ensure_ascii=False)
    if isinstance(element, (list, tuple)) and element and isinstance(element[0], str):
        year = next((e for e in element[1:] if isinstance(e, int) and 1800 < e < 2200), None)
        return f"{element[0]} ({year})" if year else element[0]
    return str(element)


def _from_lines(text: str) -> list[str] | None:
    """Numbered or bulleted lines; None unless at least one line is a list entry."""
    names = [m.group("body") for line in text.splitlines() if (m := _ITEM_LINE.match(line))]
    return names or None


def _from_prose(text: str) -> list[str]:
    bold = [a or b for a, b in _BOLD.findall(text)]
    if bold:
        return bold
    quoted = _QUOTED.findall(text)
    if quoted:
        return quoted
    body = _PREFIX.sub("", text.strip())
    parts = re.split(r"\s*(?:\n|;|,(?!\s*(?:the|a|an)\b\s*\())\s*", body)
    return [p for p in parts if p]


def _clean(name: str) -> str:
    """One entry's title: bold marker content, then text up to a trailing '(year)', minus explanations."""
    name = name.strip()
    bold = _BOLD.search(name)
    if bold:
        name = bold.group(1) or bold.group(2)
    name = name.strip().strip("\"“”'`").strip()
    year = _YEAR_TAIL.match(name)
    if year:
        return year.group("title").strip()
    name = _EXPLANATION.sub("", name)
    return name.strip().strip("\"“”'`.,;").strip()


@dataclass
class GroundedList:
    """What one answer named, sorted into the buckets described in the module docstring.

    Attributes:
        names: Every name the answer gave, in order.
        items: The valid item ids, in the answer's order.
        invalid: Names that match no item.
        duplicate: Names of an item named earlier in the answer.
        out_of_candidates: Names of an item outside the candidate list.
        already_seen: Names of an item the user already had.
    """

    names: list[str]
    items: list[Any] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    duplicate: list[str] = field(default_factory=list)
    out_of_candidates: list[str] = field(default_factory=list)
    already_seen: list[str] = field(default_factory=list)

    @classmethod
    def sort(
        cls,
        names: Sequence[str],
        items: Sequence[Any],
        *,
        candidates: set[Any] | None,
        seen: set[Any],
    ) -> GroundedList:
        """Each name in its bucket, given the item it grounds to (``None``: none), so every system,
        whether it answers in titles or in positions, is bucketed by the same rules."""
        out = cls(names=list(names))
        named: set[Any] = set()
        for name, item in zip(names, items, strict=True):
            if item is None:
                out.invalid.append(name)
            elif item in named:
                out.duplicate.append(name)
            elif candidates is not None and item not in candidates:
                out.out_of_candidates.append(name)
            elif item in seen:
                out.already_seen.append(name)
            else:
                out.items.append(item)
            if item is not None:
                named.add(item)
        return out

    def counts(self) -> dict[str, int]:
        return {
            "named": len(self.names),
            "valid": len(self.items),
            "invalid": len(self.invalid),
            "duplicate": len(self.duplicate),
            "out_of_candidates": len(self.out_of_candidates),
            "already_seen": len(self.already_seen),
        }

    def as_record(self) -> dict[str, Any]:
        return {
            "names": self.names,
            "items": [plain_value(i) for i in self.items],
            "invalid": self.invalid,
            "duplicate": self.duplicate,
            "out_of_candidates": self.out_of_candidates,
            "already_seen": self.already_seen,
        }


def _variants(name: str) -> list[str]:
    """The name, then the name cut before a ':' or ' - ' (an explanation or a subtitle the model added)."""
    out = [name]
    for separator in (":", " - ", " – "):
        head = name.split(separator, 1)[0].strip()
        if head and head not in out:
            out.append(head)
    return out


class ListGrounder:
    """Grounds parsed names against one catalog, optionally within a candidate list.

    Args:
        catalog: The catalog names are grounded to.
        threshold: Title-matching threshold; ``None`` uses the catalog's own.
    """

    def __init__(self, catalog: Catalog, *, threshold: float | None = None) -> None:
        self.catalog = catalog
        self.threshold = catalog.grounding_threshold if threshold is None else float(threshold)

    def ground(
        self,
        names: Sequence[str],
        *,
        candidates: Sequence[Any] | None = None,
        seen: Iterable[Any] = (),
    ) -> GroundedList:
        """Each name grounded (within ``candidates`` first, when given) and sorted into its bucket."""
        catalog = self.catalog
        candidate_matcher = None
        candidate_set: set[Any] | None = None
        if candidates is not None:
            candidate_set = {plain_value(i) for i in candidates}
            positions = catalog.index_of(list(candidates))
            candidate_matcher = TitleMatcher(
                [catalog.display_title(int(p)) for p in positions],
                [plain_value(i) for i in candidates],
                threshold=self.threshold,
            )
        items: list[Any] = []
        for name in names:
            item = None
            for variant in _variants(name):
                if candidate_matcher is not None:
                    item = candidate_matcher.ground(variant).item_id
                if item is None:
                    item = catalog.ground(variant, threshold=self.threshold).item_id
                if item is not None:
                    break
            items.append(None if item is None else plain_value(item))
        return GroundedList.sort(names, items, candidates=candidate_set, seen={plain_value(i) for i in seen})
