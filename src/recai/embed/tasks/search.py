"""Tasks whose query an LLM can write: a natural search query (6) and a short dialogue (optional).

Both start from one to three conditions the positive satisfies, so that hard negatives provably violate
the query whoever wrote it. The LLM gets the item's facts with its title masked and must state every
condition; a reply that names the item, leaves out a condition, is empty or too long is rejected and
asked for again, and after the retries the template text is used. Without an LLM only templates are used.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np

from recai.embed.tasks.base import Draft, EmbedTask
from recai.embed.tasks.conditions import exact_condition, pick, vague_conditions
from recai.embed.tasks.context import TaskContext
from recai.embed.tasks.predicates import InRange, Predicate
from recai.embed.tasks.profile import ColumnKind
from recai.embed.tasks.wording import compose, tidy
from recai.embed.tasks.writer import Written, dialogue, first_line
from recai.evaluate.conversation import TitleGuard, target_facts

MAX_SEARCH_CHARS = 200
MAX_DIALOGUE_CHARS = 900
_STYLES = (
    "a few keywords",
    "a short question",
    "a casual request",
    "a description of what they remember about it",
)
_OPENERS = (
    "I'm looking for {a} {noun}.",
    "Can you help me find {a} {noun}?",
    "Any {noun} suggestions?",
    "I need something new.",
    "Hi! I want a recommendation.",
)
_ASKS = ("Sure! What are you in the mood for?", "Happy to help. Any preferences?", "Of course. Tell me more.")
_FOLLOW_UPS = ("Got it. Anything else?", "Noted. Any other wishes?", "Okay. Something more specific?")
_WISHES = ("{c}, please.", "Ideally {c}.", "I'd like {c}.", "Maybe {c}?", "{C}.", "It should be {c}.")


def _conditions(ctx: TaskContext, position: int, rng: np.random.Generator, k: int) -> tuple[Predicate, ...]:
    """Up to ``k`` selective conditions the item satisfies: values it has, its decade, vague ranges."""
    options: list[Predicate] = []
    for info in ctx.profile.columns.values():
        if info.kind is ColumnKind.YEAR and ctx.profile.values(position, info.name):
            decade = int(float(ctx.profile.values(position, info.name)[0]) // 10 * 10)
            options.append(InRange(info.name, decade, decade + 9))
        elif info.kind in (ColumnKind.TAG, ColumnKind.ENTITY, ColumnKind.CATEGORY):
            condition = exact_condition(ctx, position, info, rng)
            if condition is not None and ctx.share(condition) <= 0.5:
                options.append(condition)
    if rng.random() < 0.3:
        options += pick(rng, vague_conditions(ctx, position, rng), 1)
    return tuple(pick(rng, options, k))


def _condition_list(ctx: TaskContext, predicates: tuple[Predicate, ...], rng: np.random.Generator) -> str:
    """The conditions in words for a prompt: one phrase each, separated by semicolons."""
    phrases = []
    for p in predicates:
        words = p.wordings(ctx.profile.columns)
        options = words.modifiers or words.adjectives
        phrases.append(str(rng.choice(options)))
    return "; ".join(phrases)


def _llm_source(ctx: TaskContext, written: Written) -> dict[str, Any]:
    assert ctx.writer is not None
    return {
        "writer": "llm" if written.text else "template",
        "model": ctx.writer.model_id,
        "attempts": written.attempts,
        "rejected": written.rejected,
    }


def _draft(
    ctx: TaskContext,
    positive: int,
    predicates: tuple[Predicate, ...],
    query: str,
    rng: np.random.Generator,
    source: dict[str, Any],
) -> Draft:
    violated = ctx.violations(predicates)
    negatives = ctx.hard_negatives(positive, violated > 0, rng, violations=violated)
    return Draft(query, positive, negatives, predicates, source=source)


def _stated(
    text: str, said: str, guard: TitleGuard, predicates: tuple[Predicate, ...]
) -> tuple[str | None, str]:
    """``text`` when it does not name the item and ``said`` (what the user says in it) states every
    condition; otherwise None and the reason."""
    if guard.leaks(text):
        return None, "names the item"
    missing = [p for p in predicates if not p.mentioned_in(said)]
    if missing:
        return None, f"leaves out {missing[0].to_dict()}"
    return text, ""


class StatedConditions(EmbedTask):
    """An item's selective conditions stated in text: LLM-written when the build has a model (checked,
    and asked again when a reply is rejected), from a template otherwise; hard negatives violate one of
    the conditions. Subclasses pick the conditions and say how the text is asked for, checked and made
    without a model."""

    uses_llm: ClassVar[bool] = True
    #: The prompt file (``recai/embed/prompts/<prompt>.txt``) and the reply's token budget.
    prompt: ClassVar[str]
    max_tokens: ClassVar[int]
    #: Ways of asking, one drawn per prompt (none: the prompt has no style).
    styles: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def conditions(self, ctx: TaskContext, anchor: int, rng: np.random.Generator) -> tuple[Predicate, ...]:
        """The conditions the text states; too few (none) skips the anchor."""

    def prompt_values(
        self, ctx: TaskContext, anchor: int, predicates: tuple[Predicate, ...], rng: np.random.Generator
    ) -> dict[str, str]:
        """The values the prompt file is filled with: the noun, the item's facts, a style drawn from
        ``styles`` (when there are any) and the conditions in words."""
        values = {"noun": ctx.noun, "facts": target_facts(ctx.catalog, anchor)}
        if self.styles:
            values["style"] = str(rng.choice(self.styles))
        values["conditions"] = _condition_list(ctx, predicates, rng)
        return values

    @abstractmethod
    def accept(
        self, reply: str, guard: TitleGuard, predicates: tuple[Predicate, ...]
    ) -> tuple[str | None, str]:
        """The text of an LLM reply, or None and why it was rejected."""

    @abstractmethod
    def template(
        self, ctx: TaskContext, anchor: int, predicates: tuple[Predicate, ...], rng: np.random.Generator
    ) -> str:
        """The text without a model."""

    def make(self, ctx: TaskContext, anchor: int, rng: np.random.Generator) -> Draft | None:
        predicates = self.conditions(ctx, anchor, rng)
        if not predicates:
            return None
        text: str | None = None
        source: dict[str, Any] = {}
        if ctx.writer is not None:
            guard = ctx.guard(anchor)
            values = self.prompt_values(ctx, anchor, predicates, rng)
            written = ctx.writer.write(
                self.prompt,
                values,
                seed=int(rng.integers(2**31)),
                check=lambda reply: self.accept(reply, guard, predicates),
                max_tokens=self.max_tokens,
            )
            text, source = written.text, _llm_source(ctx, written)
        if text is None:
            text = self.template(ctx, anchor, predicates, rng)
            source.setdefault("writer", "template")
        return _draft(ctx, anchor, predicates, text, rng, source)


class SearchQuery(StatedConditions):
    """6. natural search query -> item: what a person would type to find the item."""

    name: ClassVar[str] = "search_query"
    prompt: ClassVar[str] = "search_query"
    max_tokens: ClassVar[int] = 64
    styles: ClassVar[tuple[str, ...]] = _STYLES

    def conditions(self, ctx: TaskContext, anchor: int, rng: np.random.Generator) -> tuple[Predicate, ...]:
        return _conditions(ctx, anchor, rng, 1 + int(rng.integers(2)))

    def accept(
        self, reply: str, guard: TitleGuard, predicates: tuple[Predicate, ...]
    ) -> tuple[str | None, str]:
        text = first_line(reply)
        if not text:
            return None, "empty"
        if len(text) > MAX_SEARCH_CHARS:
            return None, "too long"
        return _stated(text, text, guard, predicates)

    def template(
        self, ctx: TaskContext, anchor: int, predicates: tuple[Predicate, ...], rng: np.random.Generator
    ) -> str:
        return keyword_query(ctx, anchor, predicates, rng)


def keyword_query(
    ctx: TaskContext, position: int, predicates: tuple[Predicate, ...], rng: np.random.Generator
) -> str:
    """A search-box query without an LLM: the conditions as short words plus a few rare words of the
    item's text (never words of its title)."""
    terms = []
    for p in predicates:
        words = p.wordings(ctx.profile.columns)
        terms.append(str(rng.choice(words.adjectives or words.modifiers)))
    title_words = set(re.findall(r"\w+", ctx.title(position).lower()))
    rare = [w for w in ctx.profile.rare_words[position][:4] if w not in title_words]
    if rare:
        k = min(len(rare), 1 + int(rng.integers(2)))
        terms += [rare[int(i)] for i in np.sort(rng.choice(len(rare), size=k, replace=False))]
    order = [terms[int(i)] for i in rng.permutation(len(terms))]
    query = tidy(" ".join(order))
    return query.lower() if rng.random() < 0.5 else query


class Conversation(StatedConditions):
    """Optional: a short dialogue in which the user gradually states what they want (the target is
    never named)."""

    name: ClassVar[str] = "conversation"
    prompt: ClassVar[str] = "conversation"
    max_tokens: ClassVar[int] = 300

    def conditions(self, ctx: TaskContext, anchor: int, rng: np.random.Generator) -> tuple[Predicate, ...]:
        predicates = _conditions(ctx, anchor, rng, 2 + int(rng.integers(2)))
        return predicates if len(predicates) >= 2 else ()

    def accept(
        self, reply: str, guard: TitleGuard, predicates: tuple[Predicate, ...]
    ) -> tuple[str | None, str]:
        turns = dialogue(reply)
        if not any(role == "user" for role, _ in turns):
            return None, "no User lines"
        joined = "\n".join(f"{role.capitalize()}: {line}" for role, line in turns)
        if len(joined) > MAX_DIALOGUE_CHARS:
            return None, "too long"
        said = " ".join(line for role, line in turns if role == "user")
        return _stated(joined, said, guard, predicates)

    def template(
        self, ctx: TaskContext, anchor: int, predicates: tuple[Predicate, ...], rng: np.random.Generator
    ) -> str:
        return template_dialogue(ctx, predicates, rng)


def template_dialogue(ctx: TaskContext, predicates: tuple[Predicate, ...], rng: np.random.Generator) -> str:
    """A dialogue in which each user turn adds one condition."""
    noun = ctx.noun
    a = "an" if noun[:1].lower() in "aeiou" else "a"
    lines = [f"User: {str(rng.choice(_OPENERS)).format(a=a, noun=noun)}", f"Assistant: {rng.choice(_ASKS)}"]
    for i, p in enumerate(predicates):
        wish = compose([p.wordings(ctx.profile.columns)], noun, rng, phrase=True)
        shape = str(rng.choice(_WISHES))
        lines.append("User: " + tidy(shape.format(c=wish, C=wish[:1].upper() + wish[1:])))
        if i < len(predicates) - 1:
            lines.append(f"Assistant: {rng.choice(_FOLLOW_UPS)}")
    return "\n".join(lines)
