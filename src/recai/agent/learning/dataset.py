"""From recorded trajectories to planner training data: filter, deduplicate, balance, split.

- **Filter.** A turn is kept when the plan the planner wrote first executed without error (no tool
  error, no emptied bus, no schema failure) and the turn succeeded (its templated check held, or the
  simulated session found the target). With ``repaired=True`` a turn whose first plan failed but whose
  replan worked is kept too, with the working plan as the answer to the original prompt.
  Feedback titles the conversation never mentions are removed from the kept plans (the teacher
  invents famous titles there; the student would learn to invent them too).
- **Deduplicate.** Near-identical requests (same plan shape, same kind of context, request and dialogue
  at least ``dedup_threshold`` similar by rapidfuzz's ratio) are kept once.
- **Balance.** A plan shape is the intent and the tool sequence (``recommend:filter>rank``); no shape
  keeps more than ``max_per_shape`` examples (default: twice the median shape count), chosen seeded.
- **Split.** Held-out examples are whole conversations, so a refinement never sits in training while
  its first turn is tested; each shape gives about ``test_share`` of its conversations.

The examples are gen-pillar :class:`~recai.gen.examples.GenExample` objects (planner prompt, then the
plan as compact JSON as the assistant turn; ``task`` is the shape), so the gen pillar's SFT trains on
them unchanged.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

from recai.agent.planner import compact_plan_json, said_feedback
from recai.gen.examples import GenData, GenExample


def plan_shape(plan: dict[str, Any]) -> str:
    """The plan's signature: its intent and tool sequence (``chat`` for a plan without tools)."""
    tools = [str(step.get("tool")) for step in plan.get("steps") or []]
    if not tools:
        return str(plan.get("intent") or "chat")
    return f"{plan.get('intent')}:{'>'.join(tools)}"


@dataclass
class PlanPair:
    """One (planner prompt -> plan) training pair and where it came from, so a distilled planner learns
    from the teacher's successful plans and a split never puts one conversation on both sides.

    Attributes:
        id: the pair's id.
        conversation: the conversation it belongs to (the unit a split keeps together).
        source: where it was recorded ("templates", "simulated").
        shape: the plan shape of its request.
        request: the user's message.
        dialogue: the dialogue before it, as the planner saw it.
        messages: the planner's prompt.
        plan: the plan the teacher wrote.
    """

    id: str
    conversation: str
    source: str
    shape: str
    request: str
    dialogue: str
    messages: list[dict[str, str]]
    plan: dict[str, Any]

    def example(self) -> GenExample:
        answer = {"role": "assistant", "content": compact_plan_json(self.plan)}
        return GenExample(id=self.id, task=self.shape, messages=(*self.messages, answer))


def training_pairs(
    records: Iterable[dict[str, Any]], *, repaired: bool = False
) -> tuple[list[PlanPair], Counter[str]]:
    """The turns worth imitating, and why the others were dropped."""
    kept: list[PlanPair] = []
    dropped: Counter[str] = Counter()
    for record in records:
        for number, turn in enumerate(record.get("turns", []), start=1):
            plans = turn.get("plans") or []
            if not plans:
                dropped["no plan"] += 1
                continue
            if not turn.get("success"):
                dropped["not successful"] += 1
                continue
            chosen = plans[0]
            if chosen.get("error"):
                if not (repaired and len(plans) > 1 and not plans[-1].get("error")):
                    dropped["plan failed"] += 1
                    continue
                chosen = plans[-1]
            # The teacher's feedback lists are cleaned of titles nobody wrote (a hallucinated "liked"
            # list taught the student to write runaway lists), so the student learns to leave them empty.
            plan, unsaid = said_feedback(chosen["plan"], f"{turn.get('dialogue') or ''}\n{turn['request']}")
            if unsaid:
                dropped["unsaid feedback titles removed (turn kept)"] += len(unsaid)
            kept.append(
                PlanPair(
                    id=f"{record['id']}#{number}",
                    # retries of one templated conversation share it, so the split keeps them together
                    conversation=str(record.get("conversation") or record["id"]),
                    source=str(record.get("source")),
                    shape=plan_shape(plan),
                    request=turn["request"],
                    dialogue=turn.get("dialogue") or "",
                    messages=[dict(m) for m in turn["messages"]],
                    plan=plan,
                )
            )
    return kept, dropped


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def deduplicate(pairs: Sequence[PlanPair], *, threshold: float = 95.0) -> list[PlanPair]:
    """Keep the first of each group of near-identical requests (same shape and kind of context)."""
    kept: list[PlanPair] = []
    seen: dict[tuple[str, bool], list[str]] = defaultdict(list)
    for pair in pairs:
        group = (pair.shape, bool(pair.dialogue))
        key = _key(pair.request) + " || " + _key(pair.dialogue[-300:])
        if seen[group] and process.extractOne(key, seen[group], scorer=fuzz.ratio, score_cutoff=threshold):
            continue
        seen[group].append(key)
        kept.append(pair)
    return kept


def balance(pairs: Sequence[PlanPair], *, max_per_shape: int | None = None, seed: int = 0) -> list[PlanPair]:
    """At most ``max_per_shape`` pairs of each shape (default: twice the median count), original order."""
    by_shape: dict[str, list[int]] = defaultdict(list)
    for i, pair in enumerate(pairs):
        by_shape[pair.shape].append(i)
    if not by_shape:
        return []
    cap = max_per_shape or max(1, int(2 * np.median([len(v) for v in by_shape.values()])))
    rng = np.random.default_rng(seed)
    keep: set[int] = set()
    for shape in sorted(by_shape):
        members = by_shape[shape]
        chosen = members if len(members) <= cap else rng.choice(members, size=cap, replace=False).tolist()
        keep.update(int(i) for i in chosen)
    return [pairs[i] for i in sorted(keep)]


def split_pairs(
    pairs: Sequence[PlanPair], *, test_share: float = 0.2, seed: int = 0
) -> tuple[list[PlanPair], list[PlanPair]]:
    """Train and held-out pairs; whole conversations go to one side, about ``test_share`` of each shape's
    conversations (by their first pair's shape) to the held-out side, at least one when a shape has two."""
    first_shape: dict[str, str] = {}
    for pair in pairs:
        first_shape.setdefault(pair.conversation, pair.shape)
    by_shape: dict[str, list[str]] = defaultdict(list)
    for conversation, shape in first_shape.items():
        by_shape[shape].append(conversation)
    rng = np.random.default_rng(seed)
    held: set[str] = set()
    for shape in sorted(by_shape):
        conversations = sorted(by_shape[shape])
        n = round(test_share * len(conversations))
        if test_share > 0 and len(conversations) >= 2:
            n = max(n, 1)
        n = min(n, len(conversations) - 1) if len(conversations) > 1 else 0
        held.update(rng.choice(conversations, size=n, replace=False).tolist() if n else [])
    train = [p for p in pairs if p.conversation not in held]
    test = [p for p in pairs if p.conversation in held]
    return train, test


def build_planner_data(
    records: Iterable[dict[str, Any]],
    *,
    repaired: bool = False,
    dedup_threshold: float = 95.0,
    max_per_shape: int | None = None,
    test_share: float = 0.2,
    seed: int = 0,
) -> GenData:
    """Filtered, deduplicated, balanced and split planner examples, with the counts of every stage."""
    records = list(records)
    pairs, dropped = training_pairs(records, repaired=repaired)
    unique = deduplicate(pairs, threshold=dedup_threshold)
    balanced = balance(unique, max_per_shape=max_per_shape, seed=seed)
    train, test = split_pairs(balanced, test_share=test_share, seed=seed)
    meta = {
        "kind": "planner",
        "seed": seed,
        "teacher": sorted({str(r.get("teacher")) for r in records}),
        "filter": {
            "conversations": len(records),
            "turns": sum(len(r.get("turns", [])) for r in records),
            "kept": len(pairs),
            "dropped": dict(dropped),
            "after_dedup": len(unique),
            "after_balance": len(balanced),
            "repaired": repaired,
            "dedup_threshold": dedup_threshold,
            "max_per_shape": max_per_shape,
        },
        "shapes": {
            "before_balance": dict(sorted(Counter(p.shape for p in unique).items())),
            "train": dict(sorted(Counter(p.shape for p in train).items())),
            "test": dict(sorted(Counter(p.shape for p in test).items())),
        },
        "sources": dict(Counter(p.source for p in balanced)),
    }
    return GenData([p.example() for p in train], [p.example() for p in test], meta)


def reference_plan(example: GenExample) -> dict[str, Any]:
    """The teacher's plan of a planner example."""
    return json.loads(example.answer)
