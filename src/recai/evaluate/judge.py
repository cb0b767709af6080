"""Pairwise LLM-as-judge comparison of two systems' explanations or chit-chat replies.

Kinds: ``explanation`` (why a recommended item suits the user), ``decision`` (whether a recommender
would recommend an item and why: faithfulness to its actual decision comes first, since half of such
questions are about items it rejects, where a persuasive case for the item is a wrong answer) and
``chitchat``.

LLM judges favour a position (often the first answer) and longer answers. Every pair is therefore
judged twice, once as (Answer 1 = A, Answer 2 = B) and once swapped, and a system wins only when both
orders name it; orders that disagree are a *conflict*, reported separately (the order-conflict rate
measures how much the verdicts depend on position) and counted as a tie in win rates. A judge that
never produced schema-valid JSON yields an explicit ``invalid`` verdict rather than a dropped item.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from recai.evaluate.metrics import MetricSummary, bootstrap_ci
from recai.llm.base import ChatModel, Message
from recai.llm.batch import BatchSettings, run_batch
from recai.llm.prompting import render_prompt
from recai.llm.structured import SchemaError
from recai.llm.usage import track

Outcome = Literal["A", "B", "tie", "conflict", "invalid"]
Order = Literal["AB", "BA"]

CRITERIA: dict[str, tuple[str, ...]] = {
    "explanation": ("informativeness", "persuasiveness", "helpfulness"),
    "decision": ("faithfulness", "informativeness", "helpfulness"),
    "chitchat": ("helpfulness", "relevance", "depth"),
}
#: Kinds whose prompt carries ground-truth facts for the judge.
WITH_FACTS = frozenset({"explanation", "decision"})

#: One-line definitions shown to the judge; a criterion's meaning depends on what is judged.
DEFINITIONS: dict[str, dict[str, str]] = {
    "explanation": {
        "informativeness": "tells the user specific, correct things about the item, supported by the facts",
        "persuasiveness": "makes a convincing case that the item suits this user's request",
        "helpfulness": "helps the user decide whether to try the item",
    },
    "decision": {
        "faithfulness": "states the recommender's actual decision given in the facts (would or would not "
        "recommend, and roughly how high it ranks the item) and never argues the opposite",
        "informativeness": "gives specific, correct reasons from the user's history and the item's facts",
        "helpfulness": "helps the user understand why the recommender decided as it did",
    },
    "chitchat": {
        "helpfulness": "addresses what the user needs and moves the conversation forward",
        "relevance": "stays on the user's message and the conversation so far",
        "depth": "offers substance and insight rather than generic filler",
    },
}

REASON_MAX_CHARS = 300
_POSITIONS = {"AB": ("A", "B"), "BA": ("B", "A")}  # which system is Answer 1, Answer 2


@dataclass
class JudgeItem:
    """One prompt answered by both systems; ``facts`` ground the judge for explanations.

    Attributes:
        id: The item's id in the run folder.
        prompt: What both systems were asked.
        answer_a: System A's answer.
        answer_b: System B's answer.
        facts: Ground truth the judge may check the answers against (empty for chitchat).
    """

    id: str
    prompt: str
    answer_a: str
    answer_b: str
    facts: str = ""


@dataclass
class OrderVerdict:
    """The judge's reply for one presentation order, already mapped from positions to systems A/B.

    ``better`` is None and ``error`` is set when the judge gave no schema-valid reply; ``raw`` keeps
    the judge's replies so an invalid verdict can be inspected.

    Attributes:
        order: Which system was shown first (``"AB"``: A is Answer 1).
        better: The preferred system, ``"tie"``, or ``None`` when the reply was invalid.
        scores: ``scores[criterion][system]``, the judge's 1-5 score.
        reason: The judge's short justification, cut to ``REASON_MAX_CHARS``.
        error: Why the reply was invalid, else ``None``.
        raw: The judge's raw replies.
    """

    order: Order
    better: Literal["A", "B", "tie"] | None
    scores: dict[str, dict[str, int]]
    reason: str = ""
    error: str | None = None
    raw: list[str] = field(default_factory=list)

    def criterion_winner(self, criterion: str) -> Literal["A", "B", "tie"]:
        a, b = self.scores[criterion]["A"], self.scores[criterion]["B"]
        return "A" if a > b else "B" if b > a else "tie"


@dataclass
class JudgeVerdict:
    """Both orders of one item combined: a winner only where both orders agree.

    ``mean_scores[criterion]`` averages each system's score over the two orders (empty when invalid).

    Attributes:
        id: The judged item's id.
        outcome: ``"A"``, ``"B"``, ``"tie"``, ``"conflict"`` (the orders disagree) or ``"invalid"``.
        criteria: The same outcome per criterion.
        orders: The verdict of each presentation order.
        mean_scores: Each system's score per criterion, averaged over the orders.
    """

    id: str
    outcome: Outcome
    criteria: dict[str, Outcome]
    orders: list[OrderVerdict]
    mean_scores: dict[str, dict[str, float]]

    def as_record(self) -> dict[str, Any]:
        """A JSON-serialisable dict (one line of a results JSONL file)."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> JudgeVerdict:
        """Rebuild a verdict from :meth:`as_record`, so a resumed run can be summarised as a whole."""
        return cls(
            id=record["id"],
            outcome=record["outcome"],
            criteria=dict(record["criteria"]),
            orders=[OrderVerdict(**o) for o in record["orders"]],
            mean_scores={c: dict(s) for c, s in record["mean_scores"].items()},
        )


def verdict_schema(criteria: Sequence[str]) -> dict[str, Any]:
    """The JSON schema of one judge reply: the reason first (the judge compares before it scores),
    1-5 scores per criterion for both positions, then the overall preference."""
    score = {"type": "integer", "minimum": 1, "maximum": 5}
    pair = {
        "type": "object",
        "properties": {"answer_1": score, "answer_2": score},
        "required": ["answer_1", "answer_2"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "reason": {"type": "string", "maxLength": REASON_MAX_CHARS},
            "scores": {
                "type": "object",
                "properties": {c: pair for c in criteria},
                "required": list(criteria),
                "additionalProperties": False,
            },
            "better": {"type": "string", "enum": ["1", "2", "tie"]},
        },
        "required": ["reason", "scores", "better"],
        "additionalProperties": False,
    }


def _format_example(criteria: Sequence[str]) -> str:
    """The reply shape spelled out for the prompt (small models follow an example better than a schema)."""
    scores = ", ".join(f'"{c}": {{"answer_1": <1-5>, "answer_2": <1-5>}}' for c in criteria)
    better = '"1" or "2" or "tie"'
    return f'{{"reason": "<one or two short sentences>", "scores": {{{scores}}}, "better": {better}}}'


def _agree(first: str, second: str) -> Outcome:
    """Combine the two orders: their common answer, else a conflict."""
    return first if first == second else "conflict"  # type: ignore[return-value]


class PairwiseJudge:
    """Compares answer A with answer B for one item by asking ``llm`` in both presentation orders.

    Asking in both orders and keeping only agreeing verdicts cancels the judge's position bias.

    Args:
        llm: The judging chat model.
        kind: Which criteria set and definitions to use (a key of ``CRITERIA``).
        criteria: The criteria to score, overriding the kind's; each needs a known definition.
        max_tokens: Longest judge reply, in tokens.
        seed: Sampling seed passed to the judge.
    """

    def __init__(
        self,
        llm: ChatModel,
        *,
        kind: str = "explanation",
        criteria: Sequence[str] | None = None,
        max_tokens: int = 300,
        seed: int = 0,
    ) -> None:
        if kind not in CRITERIA:
            raise ValueError(f"kind must be one of {sorted(CRITERIA)}, got {kind!r}")
        self.llm = llm
        self.kind = kind
        self.criteria = tuple(criteria) if criteria is not None else CRITERIA[kind]
        self.max_tokens = max_tokens
        self.seed = seed
        if not self.criteria:
            raise ValueError("criteria must not be empty")
        if len(set(self.criteria)) != len(self.criteria):
            raise ValueError(f"criteria must not repeat, got {list(self.criteria)}")
        self.definitions = {c: self._definition(c) for c in self.criteria}
        self.schema = verdict_schema(self.criteria)

    def _definition(self, criterion: str) -> str:
        """The kind's own definition, else another kind's (so criteria can be mixed)."""
        for source in (self.kind, *DEFINITIONS):
            if criterion in DEFINITIONS[source]:
                return DEFINITIONS[source][criterion]
        known = sorted({c for d in DEFINITIONS.values() for c in d})
        raise ValueError(f"unknown criterion {criterion!r}; known: {known}")

    def messages(self, item: JudgeItem, order: Order) -> list[Message]:
        """The judge prompt with the answers placed as ``order`` says (``"AB"``: A is Answer 1)."""
        first, second = (item.answer_a, item.answer_b) if order == "AB" else (item.answer_b, item.answer_a)
        values: dict[str, object] = {
            "request": item.prompt,
            "answer_1": first,
            "answer_2": second,
            "criteria": "\n".join(f"- {c}: {self.definitions[c]}" for c in self.criteria),
            "format": _format_example(self.criteria),
        }
        if self.kind in WITH_FACTS:
            values["facts"] = item.facts.strip() or "(none given)"
        prompt = render_prompt(f"judge_{self.kind}", package="recai.evaluate", **values)
        return [{"role": "user", "content": prompt}]

    def judge(self, item: JudgeItem) -> JudgeVerdict:
        """Judge ``item`` in both orders and combine; both calls are made even if one fails."""
        orders = [self._ask(item, "AB"), self._ask(item, "BA")]
        if any(o.better is None for o in orders):
            return JudgeVerdict(
                id=item.id,
                outcome="invalid",
                criteria=dict.fromkeys(self.criteria, "invalid"),
                orders=orders,
                mean_scores={},
            )
        first, second = orders
        criteria = {c: _agree(first.criterion_winner(c), second.criterion_winner(c)) for c in self.criteria}
        means = {
            c: {s: (first.scores[c][s] + second.scores[c][s]) / 2 for s in ("A", "B")} for c in self.criteria
        }
        return JudgeVerdict(
            id=item.id,
            outcome=_agree(first.better, second.better),  # type: ignore[arg-type]
            criteria=criteria,
            orders=orders,
            mean_scores=means,
        )

    def _ask(self, item: JudgeItem, order: Order) -> OrderVerdict:
        """One judge call, with positions mapped back to systems."""
        one, two = _POSITIONS[order]
        with track("judge"):
            try:
                completion = self.llm.complete(
                    self.messages(item, order),
                    response_format=self.schema,
                    max_tokens=self.max_tokens,
                    temperature=0.0,
                    seed=self.seed,
                    describe_schema=False,
                )
            except SchemaError as exc:
                return OrderVerdict(order=order, better=None, scores={}, error=str(exc), raw=list(exc.raw))
        reply = completion.parsed
        scores = {
            c: {one: int(reply["scores"][c]["answer_1"]), two: int(reply["scores"][c]["answer_2"])}
            for c in self.criteria
        }
        better = {"1": one, "2": two, "tie": "tie"}[reply["better"]]
        return OrderVerdict(
            order=order,
            better=better,  # type: ignore[arg-type]
            scores=scores,
            reason=reply["reason"],
            raw=[completion.text],
        )


def _counts(outcomes: Sequence[str]) -> dict[str, Any]:
    """Win/tie/loss for A over judged items; ``tie`` includes conflicts, which are also counted apart."""
    judged = len(outcomes)
    win, loss = outcomes.count("A"), outcomes.count("B")
    conflict = outcomes.count("conflict")
    tie = judged - win - loss

    def rate(k: int) -> float | None:
        return k / judged if judged else None

    return {
        "judged": judged,
        "win": win,
        "tie": tie,
        "loss": loss,
        "conflict": conflict,
        "win_rate": rate(win),
        "tie_rate": rate(tie),
        "loss_rate": rate(loss),
        "order_conflict_rate": rate(conflict),
    }


def _mean_with_ci(
    values: Sequence[float], *, confidence: float, n_resamples: int, seed: int
) -> dict[str, Any]:
    array = np.asarray(values, dtype=np.float64)
    if not len(array):
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    low, high = bootstrap_ci(array, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return MetricSummary(float(array.mean()), low, high, len(array)).as_dict()


def summarize_verdicts(
    verdicts: Iterable[JudgeVerdict], *, confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Win/tie/loss of system A against B, overall and per criterion, with mean scores and CIs.

    Rates are over validly judged items (``invalid`` ones are only counted). ``tie`` includes order
    conflicts; ``order_conflict_rate`` = conflicts / judged. Per criterion, ``scores`` gives each
    system's mean score (its two orders averaged per item) and the paired difference A - B, each with a
    bootstrap interval over items. Rates and means are None when nothing was judged.
    """
    verdicts = list(verdicts)
    valid = [v for v in verdicts if v.outcome != "invalid"]
    names: list[str] = []
    for v in verdicts:
        names += [c for c in v.criteria if c not in names]
    ci = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    per_criterion: dict[str, Any] = {}
    for c in names:
        rated = [v for v in valid if c in v.criteria]
        a = [v.mean_scores[c]["A"] for v in rated]
        b = [v.mean_scores[c]["B"] for v in rated]
        per_criterion[c] = {
            **_counts([v.criteria[c] for v in rated]),
            "scores": {
                "A": _mean_with_ci(a, **ci),
                "B": _mean_with_ci(b, **ci),
                "A_minus_B": _mean_with_ci([x - y for x, y in zip(a, b, strict=True)], **ci),
            },
        }
    return {
        "n": len(verdicts),
        "invalid": len(verdicts) - len(valid),
        **_counts([v.outcome for v in valid]),
        "criteria": per_criterion,
    }


def evaluate_pairwise(
    items: Iterable[JudgeItem],
    judge: PairwiseJudge,
    *,
    on_verdict: Callable[[JudgeVerdict], None] | None = None,
    skip_ids: set[str] | frozenset[str] = frozenset(),
    progress: bool = True,
    batch: BatchSettings | None = None,
) -> list[JudgeVerdict]:
    """Judge every item whose id is not in ``skip_ids``, calling ``on_verdict`` with each verdict in
    item order.

    ``on_verdict`` lets a caller append each verdict to a file as soon as it exists, and ``skip_ids``
    (the ids already in that file) resumes an interrupted run; only the new verdicts are returned.
    ``batch`` sets how many items are judged at once (default: what the judge's model allows) and a budget.
    """
    items = list(items)
    duplicates = sorted(i for i, n in Counter(item.id for item in items).items() if n > 1)
    if duplicates:
        raise ValueError(f"item ids must be unique for resuming to work; repeated: {duplicates[:5]}")
    batch = batch or BatchSettings()
    return run_batch(
        [item for item in items if item.id not in skip_ids],
        judge.judge,
        concurrency=batch.concurrency_for(judge.llm),
        on_result=on_verdict,
        budget=batch.budget,
        desc=f"judge {judge.kind}",
        unit="pair",
        progress=progress,
    )
