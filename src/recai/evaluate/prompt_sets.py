"""Prompt sets for judged generation: explanation requests and chit-chat, built from a catalog.

A judged comparison is only as good as its prompts, and a file of answer pairs says nothing about where
its prompts came from. A prompt set is a folder that says both:

- ``prompts.jsonl``: one prompt per line (``id``, ``kind``, ``prompt``, ``facts`` for the judge, and
  the ``user`` / ``items`` it was built from);
- ``provenance.json``: how it was built (kind, source, dataset, recommender, seeds, sizes, recai's
  version, the time) and the sha256 of ``prompts.jsonl``, so a run records exactly which prompts it
  answered and a hand-edited set is visible as such.

Explanation sets ask "why would this user like X?" for real test users, where X is what a classic
recommender (fitted on the training part of the split) ranks first for them, so the prompts are about
recommendations a system actually makes; the judge sees the item's catalog facts. Chit-chat sets are
written from templates filled with the catalog's most-interacted items and its most frequent category
values (genres, tags), so they are about the catalog's own domain; a catalog without category columns
gets the item-based templates only. Users with their own prompts write ``prompts.jsonl`` by hand and
load it with :meth:`PromptSet.load`, which records ``source: written``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from recai.data.atomic import atomic_directory
from recai.data.dataset import Dataset
from recai.data.errors import DataError, plain_value
from recai.data.grounding import spoken_title
from recai.data.jsonl import FieldError, read_json_object, read_jsonl
from recai.data.schema import ColumnRole
from recai.data.splits import Split
from recai.llm.prompting import render_variant

KINDS = ("explanation", "chitchat")
PROMPTS_FILE = "prompts.jsonl"
PROVENANCE_FILE = "provenance.json"
_JUNK_VALUE = re.compile(r"^\W*$|^\(.*\)$")  # empty or placeholder values such as "(no genres listed)"


@dataclass
class PromptItem:
    """One prompt of a set.

    Attributes:
        id: unique within the set; answers and verdicts are keyed by it.
        kind: ``explanation`` or ``chitchat`` (selects the judge's criteria).
        prompt: what both systems are asked.
        facts: ground truth shown to the judge (item facts for explanations).
        user: the user the prompt was built for, if any.
        items: the catalog item ids the prompt is about.
    """

    id: str
    kind: str
    prompt: str
    facts: str = ""
    user: Any = None
    items: list[Any] = field(default_factory=list)


@dataclass
class PromptSet:
    """Prompts plus how they were made, saved as a folder (see the module docstring).

    Attributes:
        kind: ``explanation`` or ``chitchat``; every item has this kind.
        items: the prompts, in a stable order.
        provenance: how the set was built; ``sha256`` is added on save and checked on load.
    """

    kind: str
    items: list[PromptItem]
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not '{self.kind}'")
        ids = [item.id for item in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError("prompt ids must be unique")

    def lines(self) -> str:
        """``prompts.jsonl`` as text."""
        return "".join(json.dumps(asdict(item), ensure_ascii=False) + "\n" for item in self.items)

    def sha256(self) -> str:
        return hashlib.sha256(self.lines().encode("utf-8")).hexdigest()

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write the folder atomically: a crash leaves the old folder or none, never half a set."""
        folder = Path(folder)
        provenance = {**self.provenance, "kind": self.kind, "n": len(self.items), "sha256": self.sha256()}
        with atomic_directory(folder, overwrite=overwrite) as tmp:
            (tmp / PROMPTS_FILE).write_text(self.lines(), encoding="utf-8")
            (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
        self.provenance = provenance
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, kind: str | None = None) -> PromptSet:
        """Read a set folder (or a bare ``prompts.jsonl``), naming the file, line and field of bad input.

        ``kind`` refuses a set of the other kind. A set without ``provenance.json`` is a hand-written
        one; a set whose prompts no longer match the recorded sha256 is marked ``edited``.
        """
        path = Path(folder)
        prompts_path = path if path.is_file() else path / PROMPTS_FILE
        if not prompts_path.is_file():
            raise DataError(f"no {PROMPTS_FILE} here", path=path)
        provenance_path = prompts_path.parent / PROVENANCE_FILE
        provenance: dict[str, Any] = {"source": "written"}
        if path.is_dir() and provenance_path.is_file():
            provenance = read_json_object(provenance_path)
        items = read_jsonl(prompts_path, _item)
        if not items:
            raise DataError("holds no prompts", path=prompts_path)
        kinds = {item.kind for item in items}
        found = provenance.get("kind") or (kinds.pop() if len(kinds) == 1 else None)
        if found not in KINDS or any(item.kind != found for item in items):
            raise DataError(
                f"every prompt must have the same kind, one of {', '.join(KINDS)}", path=prompts_path
            )
        if kind is not None and found != kind:
            raise DataError(f"is a {found} set, not {kind}", path=path)
        out = cls(found, items, provenance)
        recorded = provenance.get("sha256")
        if recorded is not None and recorded != out.sha256():
            out.provenance = {**provenance, "edited": True}
        return out


def _item(raw: Any) -> PromptItem:
    if not isinstance(raw, dict):
        raise FieldError(None, "must be a JSON object")
    for name in ("id", "kind", "prompt"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise FieldError(name, "missing or not a non-empty string")
    if not isinstance(raw.get("facts", ""), str):
        raise FieldError("facts", "must be a string")
    items = raw.get("items", [])
    if not isinstance(items, list):
        raise FieldError("items", "must be a list of item ids")
    return PromptItem(raw["id"], raw["kind"], raw["prompt"], raw.get("facts", ""), raw.get("user"), items)


def _base_provenance(dataset: Dataset, source: str, seed: int) -> dict[str, Any]:
    from recai import __version__

    return {
        "source": source,
        "dataset": dataset.name,
        "seed": seed,
        "recai_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def build_explanation_set(
    dataset: Dataset,
    split: Split,
    model: Any,
    *,
    recommender: str,
    n_users: int = 100,
    history_len: int = 10,
    seed: int = 0,
) -> PromptSet:
    """ "Why would I like X?" for ``n_users`` seeded test users, X being ``model``'s top item for them.

    ``model`` is a Recommender fitted on the split's training part (``recommender`` names it in the
    provenance). The user's train + validation log is excluded from X, and the prompt shows their
    ``history_len`` most recent items. The facts carry X's catalog entry and its rank.
    """
    catalog = dataset.catalog
    noun = dataset.item_noun()
    history_log = split.train_and_valid()
    users = sorted(split.test.user_ids, key=str)
    order = np.random.default_rng(seed).permutation(len(users))
    chosen = [users[i] for i in order[:n_users]]
    rng = np.random.default_rng(seed)
    items = []
    for user in chosen:
        try:
            full = history_log.sequence(user)
        except KeyError:
            continue
        positions, _ = model.recommend(full, 1, exclude=full, user=user)
        if len(positions) == 0:
            continue
        item = int(positions[0])
        shown = full[-history_len:]
        history = "\n".join(f"- {spoken_title(catalog.display_title(int(p)))}" for p in shown)
        title = spoken_title(catalog.display_title(item))
        prompt = render_variant(
            "explanation_request", rng, package="recai.evaluate", item_noun=noun, history=history, title=title
        )
        facts = (
            f"The recommender ({recommender}) ranks this first for the user:\n"
            f"{catalog.render(item, by_position=True, max_chars=400)}"
        )
        items.append(
            PromptItem(
                id=f"explain-{user}",
                kind="explanation",
                prompt=prompt,
                facts=facts,
                user=plain_value(user),
                items=[plain_value(catalog.ids[item])],
            )
        )
    if not items:
        raise ValueError("no test user has a history to explain a recommendation for")
    provenance = {
        **_base_provenance(dataset, "recommender", seed),
        "recommender": recommender,
        "n_users": n_users,
        "history_len": history_len,
    }
    return PromptSet("explanation", items, provenance)


def category_values(dataset: Dataset, *, min_items: int = 3, top: int = 20) -> dict[str, set[int]]:
    """The most frequent values of the catalog's own category columns (not ones derived from activity),
    skipping placeholders, each held by at least ``min_items`` items, with the positions holding it."""
    catalog = dataset.catalog
    holders: dict[str, set[int]] = {}
    for spec in catalog.schema.columns:
        if spec.role not in (ColumnRole.CATEGORICAL, ColumnRole.MULTI_CATEGORICAL) or spec.from_interactions:
            continue
        if spec.name not in catalog.items:
            continue
        cells = catalog.items[spec.name].tolist()
        for position, cell in enumerate(cells):
            for value in cell if isinstance(cell, list | tuple | np.ndarray) else [cell]:
                if isinstance(value, str) and not _JUNK_VALUE.match(value):
                    holders.setdefault(value, set()).add(position)
    frequent = [v for v in holders if len(holders[v]) >= min_items]
    return {v: holders[v] for v in sorted(frequent, key=lambda v: (-len(holders[v]), v))[:top]}


def build_chitchat_set(dataset: Dataset, *, n: int = 100, top_items: int = 200, seed: int = 0) -> PromptSet:
    """``n`` chit-chat prompts from templates, filled with the ``top_items`` most-interacted items and
    the catalog's frequent category values (half the prompts when the catalog has any)."""
    catalog = dataset.catalog
    counts = dataset.interactions.item_counts()
    popular = [int(p) for p in np.argsort(-counts, kind="stable")[:top_items] if counts[p] > 0]
    if len(popular) < 2:
        raise ValueError("chit-chat prompts need at least two items with interactions")
    values = category_values(dataset)
    noun = dataset.item_noun()
    rng = np.random.default_rng(seed)
    items = []
    seen_prompts: set[str] = set()
    attempts = 0
    while len(items) < n and attempts < n * 20:
        attempts += 1
        first, other = (int(p) for p in rng.choice(popular, size=2, replace=False))
        value = ""
        template = "chitchat_title"
        if values and rng.random() < 0.5:
            value = str(rng.choice(sorted(values)))
            template = "chitchat_value"
            holding = [p for p in popular if p in values[value]]
            first = holding[int(rng.integers(len(holding)))] if holding else first  # "$title" has $value
        prompt = render_variant(
            template,
            rng,
            package="recai.evaluate",
            item_noun=noun,
            title=spoken_title(catalog.display_title(first)),
            other=spoken_title(catalog.display_title(other)),
            value=value,
        )
        if prompt in seen_prompts:
            continue
        seen_prompts.add(prompt)
        mentioned = [p for p in (first, other) if spoken_title(catalog.display_title(p)) in prompt]
        facts = "\n".join(f"- {catalog.render(p, by_position=True, max_chars=240)}" for p in mentioned)
        items.append(
            PromptItem(
                id=f"chitchat-{len(items):04d}",
                kind="chitchat",
                prompt=prompt,
                facts=facts,
                items=[plain_value(catalog.ids[p]) for p in mentioned],
            )
        )
    provenance = {
        **_base_provenance(dataset, "templates", seed),
        "top_items": top_items,
        "category_values": sorted(values),
    }
    return PromptSet("chitchat", items, provenance)
