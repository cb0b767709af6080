"""Conversational evaluation with a simulated user who knows what they want but not its name.

The simulator (an LLM) is given the target item's attributes (never its title) and an intent derived
from the user's real history. It talks to the system under test for up to ``max_turns`` turns:

- the simulator's facts have every mention of the title masked, and every simulator message is checked
  for a leak (:class:`TitleGuard`: the title or its main part before a subtitle, accent- and
  case-insensitive on word boundaries; short titles as the exact capitalised word); a leaking message
  is regenerated with another seed, up to ``leak_retries`` times, then masked; both are counted;
- after each system turn, success means the target is among the first ``k`` items the system
  recommended in that turn: the item ids for systems that return them (recai's agent), or the titles in
  the reply grounded to the catalog for plain chat models (:mod:`recai.evaluate.parsing`);
- the session stops at the first success.

The report gives Hit@k by turn (the share of sessions that succeeded at or before each turn), the mean
number of turns to success, and LLM calls and tokens per session for the system and the simulator
separately.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from recai.data.catalog import Catalog
from recai.data.errors import plain_value
from recai.data.schema import ColumnRole
from recai.data.splits import Split
from recai.evaluate.generative import SampleEvaluator, user_seed
from recai.evaluate.parsing import ListGrounder, parse_item_list
from recai.llm.base import ChatModel
from recai.llm.catalog_prompter import CatalogPrompter, title_list
from recai.llm.prompting import render_prompt
from recai.llm.usage import UsageMeter, scoped


@dataclass
class ConversationSample:
    """One simulated user: what they liked (positions), the target, and what the simulator is told.

    Attributes:
        id: The sample's id in the run folder (the user id as text).
        user: The user id as the dataset stores it.
        history: Catalog positions of the user's most recent items, oldest first.
        target: Catalog position of the held-out test item the simulated user is after.
        intent: The taste the simulator is told about, from the history's categorical columns.
        target_facts: The target's attributes with every mention of its title masked.
        seen: The whole input log (``history`` shows only the most recent items); ``None`` means the
            history is all there is.
    """

    id: str
    user: Any
    history: list[int]
    target: int
    intent: str
    target_facts: str
    seen: list[int] | None = None


def describe_taste(catalog: Catalog, history: Sequence[int], *, top: int = 3) -> str:
    """An intent from the history: the most frequent values of each categorical column, no titles."""
    parts = []
    frame = catalog.items
    for spec in catalog.schema.columns:
        if spec.role not in (ColumnRole.CATEGORICAL, ColumnRole.MULTI_CATEGORICAL):
            continue
        counts: Counter[str] = Counter()
        for pos in history:
            value = frame.iat[int(pos), frame.columns.get_loc(spec.name)]
            values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
            counts.update(str(v) for v in values if v is not None and str(v) not in ("", "nan"))
        common = [v for v, c in counts.most_common(top) if c > 1]
        if common:
            parts.append(f"{spec.name.replace('_', ' ')}: {', '.join(common)}")
    return "; ".join(parts) or "no clear pattern"


def target_facts(catalog: Catalog, position: int, *, max_chars: int = 400) -> str:
    """The target's attributes without its title or id, and with every mention of the title masked
    (a synopsis may name it: "the surviving Avengers")."""
    columns = [
        spec.name
        for spec in catalog.schema.columns
        if spec.role not in (ColumnRole.ID, ColumnRole.TITLE) and spec.name in catalog.items
    ]
    text = catalog.render(position, columns=columns, by_position=True, max_chars=max_chars)
    return title_guard(catalog, position).mask(text)


def build_conversation_samples(
    split: Split, catalog: Catalog, *, n: int = 100, history_len: int = 20, seed: int = 0
) -> list[ConversationSample]:
    """``n`` test users of ``split`` (a seeded prefix of all of them), each with its held-out test item as
    the target."""
    history_log = split.train_and_valid()
    users = sorted(split.test.user_ids, key=str)
    # a seeded order of all users, cut at n: the first 40 of n=100 are the users of n=40, so a run can be
    # extended later with more sessions
    order = np.random.default_rng(seed).permutation(len(users))
    users = [users[i] for i in order[:n]]
    out = []
    for user in users:
        try:
            full = [int(i) for i in history_log.sequence(user)]
        except KeyError:
            full = []
        history = full[-history_len:]
        target = int(split.test.sequence(user)[-1])
        out.append(
            ConversationSample(
                id=str(user),
                user=user,
                history=history,
                target=target,
                intent=describe_taste(catalog, history),
                target_facts=target_facts(catalog, target),
                seen=full,
            )
        )
    return out


# ------------------------------------------------------------------ leak detection
def _fold(text: str) -> str:
    """Accents folded to ASCII, lower-cased."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()


def _norm(text: str) -> str:
    """Folded, punctuation as spaces, single spaces."""
    return " ".join(re.sub(r"[^\w\s]", " ", _fold(text)).split())


class TitleGuard:
    """Detects and masks mentions of one title in free text.

    Long forms (at least 4 characters after normalising: the title without its year, and its main part
    before a subtitle, leading article dropped) match case- and accent-insensitively on word
    boundaries. Short titles ("Up", "Her", "M") match only as the exact, capitalised word, since "up" and
    "her" are everyday words.

    Args:
        *titles: The spellings of one item's title (e.g. its display title and its raw title).
    """

    def __init__(self, *titles: Any) -> None:
        long_forms: set[str] = set()
        short_forms: set[str] = set()
        for title in titles:
            base = re.sub(r"\s*\(\d{4}\)\s*$", "", str(title)).strip()
            for variant in (base, re.split(r":|\s[-–]\s", base, maxsplit=1)[0].strip()):
                key = re.sub(r"^(the|a|an) ", "", _norm(variant))
                if len(key) >= 4:
                    long_forms.add(key)
                elif variant:
                    short_forms.add(variant)
        self.long_forms = sorted(long_forms, key=len, reverse=True)
        self.short_forms = sorted(short_forms, key=len, reverse=True)
        self._long = [
            re.compile(r"(?<![a-z0-9])" + r"[\W_]+".join(map(re.escape, form.split())) + r"(?![a-z0-9])")
            for form in self.long_forms
        ]
        self._short = [re.compile(r"(?<!\w)" + re.escape(form) + r"(?!\w)") for form in self.short_forms]

    def leaks(self, text: str) -> bool:
        folded = _fold(text)
        return any(p.search(folded) for p in self._long) or any(p.search(text) for p in self._short)

    def mask(self, text: str, replacement: str = "this one") -> str:
        """``text`` without any mention. Accents are folded when a mention is found only that way."""
        out = text
        for pattern in self._short:
            out = pattern.sub(replacement, out)
        for pattern in self._long:  # first on the original text, keeping its accents and case
            out = re.compile(pattern.pattern, re.I).sub(replacement, out)
        if self.leaks(out):
            out = _fold(out)
            for pattern in self._long:
                out = pattern.sub(replacement, out)
        return out


def title_guard(catalog: Catalog, position: int) -> TitleGuard:
    """The guard for one item: its display title and its raw title."""
    raw = catalog.items.iat[position, catalog.items.columns.get_loc(catalog.title_column)]
    return TitleGuard(catalog.display_title(position), raw)


# ------------------------------------------------------------------ systems under test
@dataclass
class SystemTurn:
    """What a system under test answered in one turn, so every system is scored the same way.

    Attributes:
        reply: The text shown to the simulated user.
        items: Recommended catalog positions, best first.
    """

    reply: str
    items: list[int] = field(default_factory=list)


class ConversationalSystem(ABC):
    """A system that holds one conversation at a time (:meth:`fork` gives another for the next one).

    The evaluator talks to every system under test through this interface, so an agent, a plain chat
    model and a classic recommender are measured by the same sessions.

    Attributes:
        name: The system's name in run configs and reports.
    """

    name: str = "system"

    def fork(self) -> ConversationalSystem:
        """An instance for one more conversation held at the same time: it shares the heavy parts (the
        model, indexes) and gets its own per-conversation state at :meth:`reset`. The default, a shallow
        copy, is right for systems whose ``reset`` assigns fresh state rather than mutating shared
        objects; override it otherwise."""
        return copy.copy(self)

    @abstractmethod
    def reset(self, sample: ConversationSample) -> None:
        """Start a fresh conversation (no memory from earlier sessions)."""

    @abstractmethod
    def respond(self, text: str) -> SystemTurn:
        """Answer the user's message."""

    def config(self) -> dict[str, Any]:
        return {"name": self.name}


class AgentSystem(ConversationalSystem):
    """recai's Agent: success is judged on the item ids it returns.

    Args:
        agent: A :class:`recai.agent.Agent`; each conversation gets a fresh session of it.
        name: The system's name in run configs and reports.
    """

    def __init__(self, agent: Any, *, name: str = "recai-agent") -> None:
        self.agent = agent
        self.name = name
        self._session: Any = None

    def reset(self, sample: ConversationSample) -> None:
        self._session = self.agent.session()

    def respond(self, text: str) -> SystemTurn:
        result = self.agent.chat(self._session, text)
        positions = self.agent.dataset.catalog.index_of(result.items, missing="drop").tolist()
        return SystemTurn(reply=result.reply, items=positions)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "llm": self.agent.llm.name}


@dataclass(eq=False, kw_only=True)
class ChatModelSystem(CatalogPrompter, ConversationalSystem):
    """A plain chat model without tools: success is judged on the titles in its replies, grounded.

    It is the baseline that shows what an LLM knows about the catalog on its own.

    Attributes:
        llm: The chat model that answers.
        catalog: The catalog the titles in replies are grounded to.
        item_noun: What the catalog's items are called in prompts ("films", "books").
        max_tokens: Longest reply, in tokens.
        name: The system's name in reports; empty: ``plain:<model name>``.
    """

    max_tokens: int = 250
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"plain:{self.llm.name}"
        self.grounder = ListGrounder(self.catalog)
        self._messages: list[dict[str, str]] = []

    def system_prompt(self) -> str:
        return render_prompt("plain_recommender", package="recai.evaluate", item_noun=self.item_noun)

    def reset(self, sample: ConversationSample) -> None:
        self._messages = [{"role": "system", "content": self.system_prompt()}]

    def _ask(self, text: str, extra: str = "") -> str:
        self._messages.append({"role": "user", "content": f"{extra}{text}"})
        reply = self.ask("system", self._messages, temperature=0.0).text
        self._messages[-1] = {"role": "user", "content": text}  # keep retrieved lists out of the history
        self._messages.append({"role": "assistant", "content": reply})
        return reply

    def respond(self, text: str) -> SystemTurn:
        reply = self._ask(text)
        grounded = self.grounder.ground(parse_item_list(reply))
        return SystemTurn(reply=reply, items=self.catalog.index_of(grounded.items).tolist())

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "llm": self.llm.name}


class ChatRecSystem(ChatModelSystem):
    """Chat-Rec style: embed the user's recent messages, retrieve candidates, let the LLM choose.

    Args:
        llm: The chat model that chooses among the candidates and answers.
        catalog: The catalog the titles in replies are grounded to.
        index: An item :class:`~recai.embed.index.VectorIndex` keyed by catalog id.
        encoder: The encoder that embeds the user's recent messages as a query.
        n_candidates: How many retrieved items the LLM sees each turn.
        item_noun: What the catalog's items are called in prompts.
        name: The system's name in reports; defaults to ``chatrec:<model name>``.
    """

    def __init__(
        self,
        llm: ChatModel,
        catalog: Catalog,
        index: Any,
        encoder: Any,
        *,
        n_candidates: int = 20,
        item_noun: str = "items",
        name: str | None = None,
    ) -> None:
        super().__init__(llm, catalog, item_noun=item_noun, name=name or f"chatrec:{llm.name}")
        self.index = index
        self.encoder = encoder
        self.n_candidates = n_candidates
        self._said: list[str] = []

    def reset(self, sample: ConversationSample) -> None:
        super().reset(sample)
        self._said = []

    def respond(self, text: str) -> SystemTurn:
        self._said.append(text)
        query = self.encoder.encode([" ".join(self._said[-3:])], "query")[0]
        ids, _ = self.index.search(query, self.n_candidates)  # an item VectorIndex keyed by catalog id
        positions = self.catalog.index_of(ids[0], missing="drop")
        listing = title_list(self.catalog, positions)
        extra = render_prompt(
            "chatrec_candidates", package="recai.evaluate", item_noun=self.item_noun, candidates=listing
        )
        reply = self._ask(text, extra=extra + "\n\n")
        grounded = self.grounder.ground(parse_item_list(reply))
        return SystemTurn(reply=reply, items=self.catalog.index_of(grounded.items).tolist())

    def config(self) -> dict[str, Any]:
        return {**super().config(), "n_candidates": self.n_candidates}


class HistoryRecommenderSystem(ConversationalSystem):
    """A classic recommender that ignores the conversation: each turn it shows the next k items for the
    user's history. It answers "how much does talking add over the history alone?".

    Args:
        recommend: ``recommend(history, k, exclude)`` gives ``k`` catalog positions, best first, for a
            history of positions, never one in ``exclude``.
        catalog: The catalog whose titles the reply lists.
        name: The system's name in reports.
        k: How many items each turn shows.
    """

    def __init__(
        self,
        recommend: Callable[[list[int], int, set[int]], list[int]],
        catalog: Catalog,
        *,
        name: str,
        k: int = 10,
    ) -> None:
        self._recommend = recommend
        self.catalog = catalog
        self.name = name
        self.k = k
        self._history: list[int] = []
        self._shown: set[int] = set()

    def reset(self, sample: ConversationSample) -> None:
        self._history = list(sample.history)
        self._shown = set(sample.seen or sample.history)  # never recommend what the user already had

    def respond(self, text: str) -> SystemTurn:
        items = self._recommend(self._history, self.k, self._shown)
        self._shown.update(items)
        titles = "; ".join(self.catalog.display_title(p) for p in items)
        return SystemTurn(reply=f"You might like: {titles}", items=items)


# ------------------------------------------------------------------ the simulator
@dataclass(eq=False, kw_only=True)
class UserSimulator(CatalogPrompter):
    """An LLM playing a user who wants the target item but knows it only by its attributes.

    A draft that names the target is regenerated (at a higher temperature) and, if it still leaks, masked,
    so a system cannot succeed by echoing the title.

    Attributes:
        llm: The chat model that plays the user.
        catalog: The catalog the target comes from (for its title guard).
        item_noun: What the catalog's items are called in prompts.
        leak_retries: How many times a leaking draft is regenerated before it is masked.
        seed: Base seed for the per-user, per-turn sampling seeds.
        max_tokens: Longest user message, in tokens.
    """

    leak_retries: int = 2
    seed: int = 0
    max_tokens: int = 80

    def messages(self, sample: ConversationSample, dialogue: list[tuple[str, str]]) -> list[dict[str, str]]:
        system = render_prompt(
            "simulator",
            package="recai.evaluate",
            item_noun=self.item_noun,
            facts=sample.target_facts,
            taste=sample.intent,
        )
        out = [{"role": "system", "content": system}]
        # roles flipped: the simulator is the "assistant" speaking as the user
        for user_text, system_text in dialogue:
            out.append({"role": "assistant", "content": user_text})
            out.append({"role": "user", "content": system_text})
        if not dialogue:  # the recommender opens, as a real one would; a stage direction gets parroted
            out.append({"role": "user", "content": f"Hi! What {self.item_noun} are you looking for today?"})
        return out

    def say(
        self, sample: ConversationSample, dialogue: list[tuple[str, str]], turn: int
    ) -> tuple[str, int, bool]:
        """The next user message, how many leaking drafts were regenerated, and whether it was masked."""
        guard = title_guard(self.catalog, sample.target)
        messages = self.messages(sample, dialogue)
        regenerated = 0
        text = ""
        for attempt in range(self.leak_retries + 1):
            text = self.ask(
                "simulator",
                messages,
                temperature=0.0 if attempt == 0 else 0.8,
                seed=user_seed(self.seed + 1000 * attempt + turn, sample.user) % 2**31,
            ).text.strip()
            if not guard.leaks(text):
                return text, regenerated, False
            regenerated += 1
        return guard.mask(text), regenerated, True


@dataclass
class ConversationEvaluator(SampleEvaluator[ConversationalSystem, ConversationSample]):
    """Runs simulated sessions against one system (``run``: every pending sample, see
    :class:`~recai.evaluate.generative.SampleEvaluator`).

    Attributes:
        catalog: The catalog whose ids the records report.
        simulator: The simulated user.
        max_turns: A session ends as a failure after this many turns without a hit.
        k: A turn is a hit when the target is among the system's top ``k`` items.
    """

    activity: ClassVar[str] = "conversations with"
    unit: ClassVar[str] = "session"

    catalog: Catalog
    simulator: UserSimulator
    max_turns: int = 5
    k: int = 10

    def run_session(self, system: ConversationalSystem, sample: ConversationSample) -> dict[str, Any]:
        system.reset(sample)
        dialogue: list[tuple[str, str]] = []
        turns: list[dict[str, Any]] = []
        success_turn = None
        leaks = masked = 0
        with scoped() as usage:  # simulator calls are tracked as "simulator", everything else is the system
            for turn in range(1, self.max_turns + 1):
                user_text, regenerated, was_masked = self.simulator.say(sample, dialogue, turn)
                leaks += regenerated
                masked += int(was_masked)
                try:
                    answer = system.respond(user_text)
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    turns.append({"user": user_text, "reply": "", "items": [], "hit": False, "error": error})
                    break
                top = answer.items[: self.k]
                hit = sample.target in top
                turns.append(
                    {
                        "user": user_text,
                        "reply": answer.reply,
                        "items": [plain_value(i) for i in self.catalog.ids[top]],
                        "hit": hit,
                        "leak_regenerations": regenerated,
                        "masked": was_masked,
                    }
                )
                dialogue.append((user_text, answer.reply))
                if hit:
                    success_turn = turn
                    break
        scores = {
            f"hit@{self.k}_turn{t}": float(success_turn is not None and success_turn <= t)
            for t in range(1, self.max_turns + 1)
        }
        scores["success"] = float(success_turn is not None)
        errors = [t["error"] for t in turns if t.get("error")]
        return {
            "id": sample.id,
            "user": plain_value(sample.user),
            "target": plain_value(self.catalog.ids[sample.target]),
            "intent": sample.intent,
            "target_facts": sample.target_facts,
            "turns": turns,
            "success_turn": success_turn,
            "leak_regenerations": leaks,
            "masked_turns": masked,
            "errors": errors,  # a turn the system failed with an exception ends the session as a failure
            "usage": _split_usage(usage),
            "scores": scores,
        }

    def evaluate_sample(self, system: ConversationalSystem, sample: ConversationSample) -> dict[str, Any]:
        """A session on a fork of ``system``, so sessions in flight side by side share no state."""
        return self.run_session(system.fork(), sample)

    def models(self, system: ConversationalSystem) -> list[Any]:
        """The simulator's model as well as the system's (and an agent's), which run in the same sessions."""
        models = [self.simulator.llm, getattr(system, "llm", None)]
        agent = getattr(system, "agent", None)
        if agent is not None:
            models.append(agent.llm)
        return [m for m in models if m is not None]


def _split_usage(usage: UsageMeter) -> dict[str, dict[str, float]]:
    """Calls, tokens and LLM time of the simulator and of the system under test (all other components)."""
    out = {
        side: {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "latency_s": 0.0}
        for side in ("system", "simulator")
    }
    for component, models in usage.report().items():
        side = out["simulator" if component == "simulator" else "system"]
        for stats in models.values():
            for key in side:
                side[key] += stats[key]
    for side in out.values():
        side["latency_s"] = round(float(side["latency_s"]), 3)
    return out


def summarize_conversations(records: Sequence[dict[str, Any]], max_turns: int, k: int) -> dict[str, Any]:
    """Per-turn success curve, turns to success, leaks and usage per session."""
    n = len(records)
    per_turn = [
        float(np.mean([r["success_turn"] is not None and r["success_turn"] <= t for r in records]))
        if n
        else 0.0
        for t in range(1, max_turns + 1)
    ]
    successes = [r["success_turn"] for r in records if r["success_turn"] is not None]

    def per_session(side: str, key: str) -> float:
        return round(float(np.mean([r["usage"][side][key] for r in records])), 2) if n else 0.0

    return {
        "per_turn": {f"hit@{k}": [round(v, 4) for v in per_turn]},
        # among the sessions that succeeded; the censored mean counts a failure as max_turns + 1
        "mean_turns_to_success": round(float(np.mean(successes)), 3) if successes else None,
        "mean_turns_censored": round(float(np.mean([r["success_turn"] or max_turns + 1 for r in records])), 3)
        if n
        else None,
        "sessions": n,
        "successes": len(successes),
        "leak_regenerations": int(sum(r["leak_regenerations"] for r in records)),
        "masked_turns": int(sum(r["masked_turns"] for r in records)),
        "sessions_with_errors": int(sum(bool(r.get("errors")) for r in records)),
        "usage_per_session": {
            side: {
                key: per_session(side, key)
                for key in ("calls", "prompt_tokens", "completion_tokens", "latency_s")
            }
            for side in ("system", "simulator")
        },
    }
