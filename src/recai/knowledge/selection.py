"""Choosing which facts go into one prompt, under a token budget.

Every fact gets a usefulness score::

    usefulness = strength * recency(anchor) * kind_weight(kind)

where ``recency`` is 1 for the most recent history item and ``decay`` per step further back (1 for a
fact that links to no history item), so facts about what the user did last come first. Facts are then
taken greedily, most useful first (ties broken by a fixed order of kind, relation, candidate and anchor,
so the same sample always gets the same knowledge), skipping a fact when:

- its text repeats one already taken, or it is evidence of the same thing (its ``topic``) as one
  already taken (a co-occurrence stated once as a fact and once as a one-edge path);
- its candidate already has ``max_per_candidate`` facts, or its history item ``max_per_anchor``
  facts (the budget is spread over candidates and history instead of being spent on the single
  best-linked pair of items);
- its tokens do not fit in what is left of the budget (a shorter, weaker fact may still fit).

Tokens are counted with the target model's tokenizer (:mod:`recai.knowledge.tokens`), one line per fact
("- " + text + newline). The joined section is counted once more at the end, and the weakest facts are
dropped until it fits, so the budget holds even for tokenizers whose counts do not add up line by line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from recai.knowledge.facts import Fact, Query
from recai.knowledge.tokens import TokenCounter


@dataclass
class Selection:
    """The facts chosen for one prompt, their lines and the section's size.

    Attributes:
        facts: The chosen facts, most useful first.
        lines: Each chosen fact's text.
        usefulness: Each chosen fact's usefulness score.
        tokens: The section's size in tokens.
        budget: The token budget it was chosen under.
        considered: How many facts were offered.
    """

    facts: list[Fact] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    usefulness: list[float] = field(default_factory=list)
    tokens: int = 0
    budget: int = 0
    considered: int = 0

    @property
    def text(self) -> str:
        return "\n".join(f"- {line}" for line in self.lines)

    def as_record(self) -> dict[str, Any]:
        return {
            "facts": [
                {**fact.as_record(), "usefulness": round(u, 4), "text": line}
                for fact, line, u in zip(self.facts, self.lines, self.usefulness, strict=True)
            ],
            "tokens": self.tokens,
            "budget": self.budget,
            "considered": self.considered,
        }


def usefulness(
    fact: Fact, recency: Mapping[int, float], kind_weights: Mapping[str, float] | None = None
) -> float:
    """How much a fact is worth its tokens (see the module docstring)."""
    weight = 1.0 if kind_weights is None else float(kind_weights.get(fact.kind, 1.0))
    link = 1.0 if fact.anchor is None else recency.get(fact.anchor, 0.0)
    return float(fact.strength) * link * weight


def select(
    facts: Sequence[Fact],
    texts: Sequence[str],
    counter: TokenCounter,
    budget: int,
    *,
    query: Query,
    decay: float = 0.9,
    max_per_candidate: int | None = 3,
    max_per_anchor: int | None = 3,
    kind_weights: Mapping[str, float] | None = None,
) -> Selection:
    """The most useful facts whose lines fit in ``budget`` tokens (module docstring); ``texts[i]`` is
    the verbalised ``facts[i]``."""
    if len(facts) != len(texts):
        raise ValueError(f"{len(texts)} texts for {len(facts)} facts")
    if budget < 0:
        raise ValueError(f"the token budget must be 0 or more, got {budget}")
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"decay must be in (0, 1], got {decay}")
    recency = query.recency(decay)
    scored = sorted(
        ((usefulness(f, recency, kind_weights), i) for i, f in enumerate(facts)),
        key=lambda s: (-s[0], facts[s[1]].sort_key(), texts[s[1]]),
    )
    out = Selection(budget=budget, considered=len(facts))
    used = 0
    per_candidate: dict[int, int] = {}
    per_anchor: dict[int, int] = {}
    seen: set[str] = set()
    topics: set[tuple[Any, ...]] = set()
    for score, i in scored:
        if score <= 0.0:
            break
        fact, text = facts[i], texts[i]
        if not text or text in seen or (fact.topic is not None and fact.topic in topics):
            continue
        if (
            max_per_candidate is not None
            and fact.candidate is not None
            and per_candidate.get(fact.candidate, 0) >= max_per_candidate
        ):
            continue
        if (
            max_per_anchor is not None
            and fact.anchor is not None
            and per_anchor.get(fact.anchor, 0) >= max_per_anchor
        ):
            continue
        cost = counter.count(f"- {text}\n")
        if used + cost > budget:
            continue
        used += cost
        seen.add(text)
        if fact.topic is not None:
            topics.add(fact.topic)
        if fact.candidate is not None:
            per_candidate[fact.candidate] = per_candidate.get(fact.candidate, 0) + 1
        if fact.anchor is not None:
            per_anchor[fact.anchor] = per_anchor.get(fact.anchor, 0) + 1
        out.facts.append(fact)
        out.lines.append(text)
        out.usefulness.append(score)
    out.tokens = counter.count(out.text) if out.lines else 0
    while out.lines and out.tokens > budget:  # the whole may count more than its lines
        out.facts.pop()
        out.lines.pop()
        out.usefulness.pop()
        out.tokens = counter.count(out.text) if out.lines else 0
    return out
