"""The LLM ranker: listwise ranking of a candidate list, given the history and the selected knowledge.

One call per candidate order. The prompt (``prompts/rank.txt``) lists the history by title, the
knowledge selected for this sample under the token budget (:mod:`recai.knowledge.selection`) and the
candidates numbered 1..n; the answer is constrained (``response_format``) to a JSON list of candidate
numbers, so no title matching is needed.

Models still err, so the answer is repaired, and every repair is counted, never silent:
``index_not_integer`` (an entry that is not a whole number), ``index_out_of_range``,
``index_duplicate``, ``index_missing_appended`` (candidates the model left out, appended in the order
shown, unless ``append_missing=False``), ``answer_not_schema_valid`` (the reply failed the schema even
after the retries; its numbers are then read leniently) and ``answer_unparsed`` (no number at all).
One count is a diagnosis, not a repair: ``answer_in_shown_order`` marks an answer that mostly copies the
order the candidates were shown in (runs of consecutive numbers, ``[1, 2, 3, ...]`` or a rotation of it),
i.e. a model that did not rank at all. Nothing can fix that, but a report must show it.

Position bias: ``candidate_order`` decides the order the candidates are shown in (``given``, a seeded
``random`` shuffle, or training ``popularity``), and ``orders > 1`` asks once per order (the first as
chosen, then seeded shuffles) and merges the rankings by Borda count (ties: the first order's ranking).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from recai.data.catalog import Catalog
from recai.data.errors import plain_value
from recai.knowledge.facts import Fact, Query
from recai.knowledge.selection import Selection, select
from recai.knowledge.similar_users import SimilarUsers
from recai.knowledge.store import KnowledgeBase
from recai.knowledge.tokens import TokenCounter, token_counter
from recai.knowledge.verbalise import Verbaliser
from recai.llm.base import ChatModel, SchemaError
from recai.llm.catalog_prompter import title_list
from recai.llm.prompting import render_prompt
from recai.llm.structured import json_candidates
from recai.llm.usage import track

ORDERS = ("given", "random", "popularity")
STYLES = ("listwise", "chain", "rating")
_TEMPLATES = {"listwise": "rank", "chain": "rank_chain", "rating": "rank_rating"}
#: Reply tokens beyond the numbers: the chain's stated preferences (at most ``PREFERENCES_MAX_CHARS``).
PREFERENCES_MAX_CHARS = 600
REPAIRS = (
    "index_not_integer",
    "index_out_of_range",
    "index_duplicate",
    "index_missing_appended",
    "answer_not_schema_valid",
    "answer_unparsed",
    "answer_in_shown_order",
)
_INT = re.compile(r"-?\d+")


def repair(
    values: Sequence[Any] | None, n: int, *, append_missing: bool = True
) -> tuple[list[int], dict[str, int]]:
    """0-based candidate indices from a model's 1-based numbers, and the repairs that needed (counted)."""
    counts = dict.fromkeys(REPAIRS, 0)
    if values is None:
        counts["answer_unparsed"] = 1
        values = []
    kept: list[int] = []
    seen: set[int] = set()
    for value in values:
        number = _as_int(value)
        if number is None:
            counts["index_not_integer"] += 1
        elif not 1 <= number <= n:
            counts["index_out_of_range"] += 1
        elif number - 1 in seen:
            counts["index_duplicate"] += 1
        else:
            seen.add(number - 1)
            kept.append(number - 1)
    counts["answer_in_shown_order"] = int(in_shown_order(kept))
    if append_missing:
        missing = [i for i in range(n) if i not in seen]
        counts["index_missing_appended"] = len(missing)
        kept.extend(missing)
    return kept, counts


def in_shown_order(indices: Sequence[int], *, share: float = 0.8) -> bool:
    """Whether at least ``share`` of the steps of an answer (five or more indices) go to the next
    candidate shown: the model copied the list instead of ranking it."""
    if len(indices) < 5:
        return False
    steps = sum(1 for a, b in pairwise(indices) if b == a + 1)
    return steps >= share * (len(indices) - 1)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*\[?\s*-?\d+\s*\]?\s*", value):
        return int(re.sub(r"[^\d-]", "", value))
    return None


def lenient_numbers(text: str) -> list[Any] | None:
    """The numbers in a reply that failed the schema: its first JSON list, else every integer in it."""
    for value in json_candidates(text):
        if isinstance(value, list):
            return value
        if isinstance(value, dict):
            lists = [v for v in value.values() if isinstance(v, list)]
            if lists:
                return lists[0]
    found = _INT.findall(text)
    return [int(x) for x in found] if found else None


@dataclass
class OrderResult:
    """One call: the candidates as shown, the prompt's knowledge, the answer and its repairs.

    Attributes:
        shown: Candidate positions in the order the prompt listed them.
        ranking: Candidate positions, best first, after repair.
        raw: The model's reply.
        numbers: The candidate numbers read from the reply; ``None`` when none could be read.
        repairs: How often each repair of the module docstring was made.
        selection: The knowledge the prompt carried.
        prompt_tokens: The prompt's size in tokens.
        error: Why the reply was unusable as given, else ``None``.
    """

    shown: list[int]
    ranking: list[int]
    raw: str
    numbers: list[Any] | None
    repairs: dict[str, int]
    selection: Selection
    prompt_tokens: int
    error: str | None = None

    def as_record(self, catalog: Catalog) -> dict[str, Any]:
        return {
            "shown": [plain_value(i) for i in catalog.ids[self.shown].tolist()],
            "numbers": self.numbers,
            "repairs": {k: v for k, v in self.repairs.items() if v},
            "knowledge": self.selection.as_record(),
            "prompt_tokens": self.prompt_tokens,
            "error": self.error,
        }


@dataclass
class RankResult:
    """The merged ranking (candidate positions, best first) and every call that made it.

    Attributes:
        positions: Candidate positions, best first, merged over the calls by Borda count.
        calls: One result per candidate order asked.
    """

    positions: list[int]
    calls: list[OrderResult] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {name: sum(c.repairs[name] for c in self.calls) for name in REPAIRS}

    @property
    def raw(self) -> str:
        return "\n---\n".join(c.raw for c in self.calls)

    @property
    def error(self) -> str | None:
        errors = [c.error for c in self.calls if c.error]
        return "; ".join(errors) if errors else None

    def details(self, catalog: Catalog, counter: TokenCounter) -> dict[str, Any]:
        return {
            "prompt_tokens": float(np.mean([c.prompt_tokens for c in self.calls])),
            "knowledge_tokens": float(np.mean([c.selection.tokens for c in self.calls])),
            "knowledge_facts": float(np.mean([len(c.selection.facts) for c in self.calls])),
            "counter": counter.describe(),
            "calls": [c.as_record(catalog) for c in self.calls],
        }


class KnowledgeRanker:
    """Ranks candidates with ``llm``, given the knowledge of ``knowledge`` (None: no knowledge).

    It is the system the knowledge pillar measures: the same LLM ranks with and without knowledge, so
    the difference is what the knowledge adds.

    Args:
        llm: The chat model that ranks.
        catalog: The catalog the candidates are positions of.
        knowledge: The fitted knowledge base; ``None`` ranks without knowledge.
        kinds: Restrict the base to these extractor kinds; ``None`` uses all it holds.
        budget_tokens: Largest knowledge section, in tokens (0: no knowledge).
        style: The :class:`~recai.knowledge.verbalise.Verbaliser` style of the facts.
        counter: Counts the budget's tokens: a :class:`~recai.knowledge.tokens.TokenCounter`, a model
            spec, or ``None`` to find ``llm``'s own tokenizer.
        item_noun: What the catalog's items are called in prompts ("films", "books").
        max_per_candidate: Most facts about one candidate (``None``: no limit).
        max_per_anchor: Most facts about one history item (``None``: no limit).
        decay: Recency weight per step back in the history (see :mod:`recai.knowledge.selection`).
        kind_weights: Usefulness weight per fact kind (default 1).
        orders: How many candidate orders to ask in; more than one merges rankings by Borda count.
        candidate_order: The first order: ``"given"``, ``"random"`` or ``"popularity"``.
        popularity: Training counts per item; needed for ``candidate_order="popularity"``.
        seed: Seed of the shuffled orders.
        max_tokens: Longest reply, in tokens; ``None``: enough for ``n`` numbers.
        schema_retries: Retries of a reply that fails the schema.
        append_missing: Append candidates the model left out, in the order shown (else drop them).
        prompt_style: DOKE's prompt variants: ``"listwise"`` (a list of candidate numbers), ``"chain"``
            (state the user's taste, then rank: a preference chain) or ``"rating"`` (rate every
            candidate 1-5; ranked by rating, ties in the order shown).
        similar_users: Finds in-context examples from the training log (``None``: no examples).
        n_examples: How many similar users' examples the prompt shows (needs ``similar_users``).
    """

    def __init__(
        self,
        llm: ChatModel,
        catalog: Catalog,
        knowledge: KnowledgeBase | None = None,
        *,
        kinds: Sequence[str] | None = None,
        budget_tokens: int = 400,
        style: str = "natural",
        counter: TokenCounter | str | None = None,
        item_noun: str = "items",
        max_per_candidate: int | None = 3,
        max_per_anchor: int | None = 3,
        decay: float = 0.9,
        kind_weights: Mapping[str, float] | None = None,
        orders: int = 1,
        candidate_order: str = "given",
        popularity: np.ndarray | None = None,
        seed: int = 0,
        max_tokens: int | None = None,
        schema_retries: int = 1,
        append_missing: bool = True,
        prompt_style: str = "listwise",
        similar_users: SimilarUsers | None = None,
        n_examples: int = 0,
    ) -> None:
        if candidate_order not in ORDERS:
            raise ValueError(f"candidate_order must be one of {ORDERS}, not '{candidate_order}'")
        if candidate_order == "popularity" and popularity is None:
            raise ValueError("candidate_order='popularity' needs the training popularity (popularity=)")
        if orders < 1:
            raise ValueError("orders must be at least 1")
        if budget_tokens < 0:
            raise ValueError("budget_tokens must be 0 or more")
        if prompt_style not in STYLES:
            raise ValueError(f"prompt_style must be one of {STYLES}, not '{prompt_style}'")
        if n_examples < 0:
            raise ValueError("n_examples must be 0 or more")
        if n_examples and similar_users is None:
            raise ValueError("n_examples > 0 needs the training users (similar_users=)")
        if knowledge is not None and kinds is not None:
            knowledge = knowledge.subset(list(kinds))
        self.llm = llm
        self.catalog = catalog
        self.knowledge = knowledge
        self.budget_tokens = budget_tokens
        self.verbaliser = Verbaliser(style, item_noun=item_noun)
        self.counter = counter if isinstance(counter, TokenCounter) else token_counter(counter or llm)
        self.item_noun = item_noun
        self.max_per_candidate = max_per_candidate
        self.max_per_anchor = max_per_anchor
        self.decay = decay
        self.kind_weights = dict(kind_weights) if kind_weights else None
        self.orders = orders
        self.candidate_order = candidate_order
        self.popularity = None if popularity is None else np.asarray(popularity, dtype=np.float64)
        self.seed = seed
        self.max_tokens = max_tokens
        self.schema_retries = schema_retries
        self.append_missing = append_missing
        self.prompt_style = prompt_style
        self.similar_users = similar_users
        self.n_examples = n_examples

    @property
    def kinds(self) -> list[str]:
        return [] if self.knowledge is None else self.knowledge.kinds

    # ---------------------------------------------------------------- API
    def rank(
        self, history: Sequence[int], candidates: Sequence[int], *, user: Any = None, key: Any = None
    ) -> RankResult:
        """Rank ``candidates`` (positions) for ``history`` (positions, oldest first). ``key`` (e.g. the
        sample id) seeds the shuffled orders, so a sample is shown the same way on every run."""
        candidates = [int(c) for c in candidates]
        if not candidates:
            return RankResult([])
        if len(set(candidates)) != len(candidates):
            raise ValueError("the candidates must be distinct items")
        query = Query.of(history, candidates, user)
        facts = self.knowledge.facts(query) if self.knowledge is not None and self.budget_tokens > 0 else []
        calls = [self._call(query, shown, facts) for shown in self.shown_orders(candidates, key)]
        if len(calls) == 1:
            return RankResult(calls[0].ranking, calls)
        n = len(candidates)
        points = dict.fromkeys(candidates, 0)
        for call in calls:
            for rank, position in enumerate(call.ranking):
                points[position] += n - rank
        first = {p: i for i, p in enumerate(calls[0].ranking)}
        first.update({p: n + i for i, p in enumerate(candidates) if p not in first})
        merged = sorted(candidates, key=lambda p: (-points[p], first[p]))
        if not self.append_missing:  # keep only what some call ranked
            ranked = {p for c in calls for p in c.ranking}
            merged = [p for p in merged if p in ranked]
        return RankResult(merged, calls)

    def shown_orders(self, candidates: Sequence[int], key: Any = None) -> list[list[int]]:
        """The candidate orders to ask in: the configured first order, then seeded shuffles."""
        base = list(candidates)
        rng = np.random.default_rng(_seed(self.seed, key, base))
        if self.candidate_order == "random":
            base = rng.permutation(base).astype(int).tolist()
        elif self.candidate_order == "popularity":
            assert self.popularity is not None
            base = sorted(base, key=lambda p: (-self.popularity[p], base.index(p)))
        out = [base]
        for _ in range(self.orders - 1):
            out.append(rng.permutation(base).astype(int).tolist())
        return out

    def prompt(self, query: Query, shown: Sequence[int], facts: Sequence[Fact]) -> tuple[str, Selection]:
        """The prompt for candidates ``shown`` in that order, and the knowledge selected for it."""
        number = {p: i + 1 for i, p in enumerate(shown)}
        catalog = self.catalog

        def name(position: int) -> str:
            title = catalog.display_title(position)
            return f"{title} [{number[position]}]" if position in number else title

        texts = [self.verbaliser.render(f, name) for f in facts]
        selection = select(
            facts,
            texts,
            self.counter,
            self.budget_tokens,
            query=query,
            decay=self.decay,
            max_per_candidate=self.max_per_candidate,
            max_per_anchor=self.max_per_anchor,
            kind_weights=self.kind_weights,
        )
        knowledge = self.examples_section(query)
        if selection.lines:
            section = render_prompt(
                "knowledge_section", package="recai.knowledge", item_noun=self.item_noun, facts=selection.text
            )
            knowledge += f"\n{section}\n"
        history = title_list(catalog, query.history) or "(nothing yet)"
        listed = "\n".join(f"[{i + 1}] {catalog.display_title(p)}" for i, p in enumerate(shown))
        text = render_prompt(
            _TEMPLATES[self.prompt_style],
            package="recai.knowledge",
            item_noun=self.item_noun,
            history=history,
            knowledge=knowledge,
            candidates=listed,
            n=str(len(shown)),
            using=", using the facts above" if selection.lines else "",
        )
        return text, selection

    def examples_section(self, query: Query) -> str:
        """The similar users' examples for this sample ('' without any)."""
        if not self.n_examples or self.similar_users is None:
            return ""
        found = self.similar_users.examples(query.history, self.n_examples, exclude_user=query.user)
        if not found:
            return ""
        title = self.catalog.display_title
        lines = [
            f"- liked {'; '.join(title(p) for p in e.history) or '(nothing else)'} -> {title(e.chosen)}"
            for e in found
        ]
        chose = "chose next" if self.similar_users.timed else "also liked"
        section = render_prompt(
            "similar_users_section", package="recai.knowledge", chose=chose, examples="\n".join(lines)
        )
        return f"\n{section}\n"

    def schema(self, n: int) -> dict[str, Any]:
        """What the reply must be: candidate numbers 1..n (listwise), the same after the user's stated
        taste (chain), or one rating 1-5 per candidate in the order shown (rating)."""
        numbers = {
            "type": "array",
            "items": {"type": "integer", "minimum": 1, "maximum": n},
            "minItems": 1,
            "maxItems": n,
        }
        if self.prompt_style == "chain":
            return {
                "type": "object",
                "properties": {
                    "preferences": {"type": "string", "maxLength": PREFERENCES_MAX_CHARS},
                    "ranking": numbers,
                },
                "required": ["preferences", "ranking"],
            }
        if self.prompt_style == "rating":
            return {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": 5},
                "minItems": n,
                "maxItems": n,
            }
        return numbers

    def reply_budget(self, n: int) -> int:
        """Tokens a complete answer needs: a few per number, plus the stated taste for the chain."""
        if self.max_tokens:
            return self.max_tokens
        extra = PREFERENCES_MAX_CHARS // 3 if self.prompt_style == "chain" else 0
        return 4 * n + 16 + extra

    def numbers_of(self, parsed: Any, n: int) -> list[Any] | None:
        """Candidate numbers, best first, from a reply of this style (a schema-valid one, or the values
        read leniently from one that failed the schema). Ratings become numbers by rating, ties in the
        order shown; a rating that is not 1-5 drops its candidate (then appended and counted)."""
        if self.prompt_style == "chain" and isinstance(parsed, dict):
            parsed = parsed.get("ranking")
        if parsed is None or not isinstance(parsed, list):
            return None
        if self.prompt_style != "rating":
            return list(parsed)
        rated = [(_as_int(value), i) for i, value in enumerate(parsed[:n])]
        kept = [(rating, i) for rating, i in rated if rating is not None and 1 <= rating <= 5]
        return [i + 1 for _, i in sorted(kept, key=lambda pair: (-pair[0], pair[1]))]

    def config(self) -> dict[str, Any]:
        return {
            "llm": self.llm.name,
            "kinds": self.kinds,
            "budget_tokens": self.budget_tokens,
            "style": self.verbaliser.style,
            "counter": self.counter.describe(),
            "max_per_candidate": self.max_per_candidate,
            "max_per_anchor": self.max_per_anchor,
            "decay": self.decay,
            "kind_weights": self.kind_weights,
            "orders": self.orders,
            "candidate_order": self.candidate_order,
            "schema_retries": self.schema_retries,
            "append_missing": self.append_missing,
            "prompt_style": self.prompt_style,
            "n_examples": self.n_examples,
        }

    # ------------------------------------------------------------ internals
    def _call(self, query: Query, shown: list[int], facts: Sequence[Fact]) -> OrderResult:
        text, selection = self.prompt(query, shown, facts)
        n = len(shown)
        numbers: list[Any] | None
        error = None
        not_valid = 0
        try:
            with track("knowledge_ranker"):
                out = self.llm.complete(
                    [{"role": "user", "content": text}],
                    response_format=self.schema(n),
                    max_tokens=self.reply_budget(n),
                    temperature=0.0,
                    max_schema_retries=self.schema_retries,
                    describe_schema=False,  # the prompt already says what to answer
                )
            raw, numbers = out.text, self.numbers_of(out.parsed, n)
        except SchemaError as exc:
            raw = exc.raw[-1] if exc.raw else ""
            numbers = self.numbers_of(lenient_numbers(raw), n)
            error = f"invalid structured output: {exc}"
            not_valid = 1
        order, repairs = repair(numbers, n, append_missing=self.append_missing)
        repairs["answer_not_schema_valid"] = not_valid
        return OrderResult(
            shown=list(shown),
            ranking=[shown[i] for i in order],
            raw=raw,
            numbers=numbers,
            repairs=repairs,
            selection=selection,
            prompt_tokens=self.counter.count(text),
            error=error,
        )


def _seed(seed: int, key: Any, candidates: Sequence[int]) -> int:
    digest = hashlib.sha256(f"{seed}:{key}:{','.join(map(str, candidates))}".encode()).digest()
    return int.from_bytes(digest[:8], "little")
