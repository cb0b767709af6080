"""The conversational recommender: plan (one LLM call), execute tools over the candidate bus, respond
(one streamed LLM call), remember. At most one replan per turn, and an optional critic.

A turn never falls back silently: a tool error or an emptied bus goes back to the planner once with the
reason; if the second plan fails too, the responder is told that nothing matched and why, so it can say
so or ask the user to relax a condition.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from recai.agent.bus import CandidateBus
from recai.agent.context import AgentContext, AgentResources, AgentSettings
from recai.agent.memory import Dialogue, Profile, ProfileStore, Turn
from recai.agent.planner import Demonstrations, Planner, planner_card, said_in
from recai.agent.resolver import NotInCatalogError
from recai.agent.responder import GroundingCheck, Responder
from recai.agent.tools.base import Tool, ToolError
from recai.agent.tools.previous import PreviousResultsTool
from recai.agent.tools.ranking import RankTool
from recai.agent.tools.retrieval import (
    CandidateStoreTool,
    SemanticSearchTool,
    SimilarItemsTool,
    ground_titles,
)
from recai.agent.tools.sql import FilterTool, InfoQueryTool
from recai.agent.trace import CritiqueStep, PlanStep, ResponseStep, ToolStep, TurnTrace
from recai.data.dataset import Dataset
from recai.llm.base import ChatModel
from recai.llm.prompting import render_prompt
from recai.llm.structured import SchemaError
from recai.llm.usage import scoped, track


def default_tools() -> list[Tool]:
    """One of each built-in tool (the knowledge tools are added where knowledge is set up)."""
    return [
        InfoQueryTool(),
        FilterTool(),
        SemanticSearchTool(),
        SimilarItemsTool(),
        CandidateStoreTool(),
        PreviousResultsTool(),
        RankTool(),
    ]


@dataclass
class Session:
    """One conversation: its dialogue and the user's profile, kept apart from the agent so one agent
    serves many conversations.

    Attributes:
        user: the user's id (None: anonymous; the profile is then neither loaded nor saved).
        dialogue: the turns so far.
        profile: what the user liked, disliked and asked for.
    """

    user: str | None = None
    dialogue: Dialogue = field(default_factory=Dialogue)
    profile: Profile = field(default_factory=Profile)


@dataclass
class TurnResult:
    """What a turn returns: the answer, its items and how it got there.

    Attributes:
        reply: the answer's text.
        items: the recommended catalog ids, best first.
        trace: the turn's steps (see :class:`recai.agent.trace.TurnTrace`; ``to_dict()`` for JSON).
    """

    reply: str
    items: list[Any]
    trace: TurnTrace


@dataclass
class TurnEvent:
    """What a turn hook sees once a turn is done: the planner's prompt, the trace (whose plans keep each
    plan as the planner wrote it, before the executor added a default rank step) and the result. Tool
    learning records these as (prompt, plan, outcome) trajectories.

    Attributes:
        session: the conversation the turn belongs to.
        request: the user's message.
        dialogue: the dialogue as the planner saw it (before this turn).
        planner_messages: the planner's prompt.
        trace: the turn's trace.
        result: the turn's result.
    """

    session: Session
    request: str
    dialogue: str
    planner_messages: list[dict[str, str]]
    trace: TurnTrace
    result: TurnResult

    @property
    def written_plans(self) -> list[dict[str, Any]]:
        """Each plan of the turn as the planner wrote it."""
        return [p.written for p in self.trace.plans]


class TurnStream:
    """A turn's reply as it is written: iterate for the text chunks; afterwards ``result`` holds the
    TurnResult.

    Args:
        chunks: the turn's generator (it yields the chunks and returns the TurnResult).
    """

    def __init__(self, chunks: Generator[str, None, TurnResult]) -> None:
        self._chunks = chunks
        self.result: TurnResult | None = None

    def __iter__(self) -> Iterator[str]:
        self.result = yield from self._chunks


@dataclass
class Execution:
    """What running one plan left, for the reply and a replan.

    Attributes:
        plan: the plan that ran.
        bus: the candidates it left, scored.
        facts: what its tools found that the responder should read.
        failure: why it failed (a tool error or an emptied bus), None when it did not.
    """

    plan: dict[str, Any]
    bus: CandidateBus
    facts: list[str]
    failure: str | None


@dataclass
class Draft:
    """An answer about to be written: its items and the (lazy) stream of its checked text.

    Attributes:
        items: the recommended items (catalog positions), best first.
        chunks: the answer's text, checked by ``check`` as it streams.
        check: the grounding check (None when the answer needs no model).
    """

    items: list[int]
    chunks: Iterator[str]
    check: GroundingCheck | None


class Agent:
    """The conversational recommender: a planner LLM turns a message into tool steps over the catalog,
    the tools narrow and rank candidates, a responder LLM writes a grounded answer. One agent serves many
    sessions at once (each turn has its own :class:`AgentContext`; the heavy resources are shared).

    Args:
        dataset: the catalog (and interaction log) to recommend from.
        llm: the model that writes answers (and plans, unless ``planner_llm`` is given).
        settings: the agent's knobs.
        tools: the tools the planner may use (default: :func:`default_tools`).
        demonstrations: the planner's examples (None: derived from this catalog on first use).
        item_noun: what the items are called in prompts ("films").
        profile_store: where users' profiles are kept (default: in the agent's cache folder).
        encoder: a text encoder to use instead of the default embedder.
        progress: show progress bars while resources are built.
        planner_llm: a separate (e.g. small, fine-tuned) planner model.
    """

    def __init__(
        self,
        dataset: Dataset,
        llm: ChatModel,
        *,
        settings: AgentSettings | None = None,
        tools: list[Tool] | None = None,
        demonstrations: Demonstrations | None = None,
        item_noun: str = "items",
        profile_store: ProfileStore | None = None,
        encoder: Any = None,
        progress: bool = True,
        planner_llm: ChatModel | None = None,
    ) -> None:
        self.dataset = dataset
        self.llm = llm
        # a separate (e.g. small, fine-tuned) planner model; the responder and critic keep ``llm``
        self.planner_llm = planner_llm or llm
        #: called with a TurnEvent after every turn (trajectory recording, logging); must be thread-safe
        self.turn_hooks: list[Callable[[TurnEvent], None]] = []
        self.settings = settings or AgentSettings()
        self.tools = {t.name: t for t in (tools or default_tools())}
        if not has_item_text(dataset.catalog):  # names only: searching descriptions finds nothing real
            self.tools.pop(SemanticSearchTool.name, None)
        self.item_noun = item_noun
        self.resources = AgentResources(dataset, self.settings, progress=progress, encoder=encoder)
        self.profile_store = profile_store or ProfileStore(self.resources.cache_dir / "profiles")
        schema_card = planner_card(dataset.catalog)
        # None: derived from this catalog on first use (see recai.agent.catalog_demos); picked by string
        # similarity unless from_dataset switches to embeddings
        self._derive_demonstrations = demonstrations is None
        self._demonstration_mode = "lexical"
        if demonstrations is None:
            demonstrations = Demonstrations([], mode="fixed")
        self.planner = Planner(
            self.planner_llm,
            list(self.tools.values()),
            schema_card=schema_card,
            item_noun=item_noun,
            demonstrations=demonstrations,
            n_demonstrations=self.settings.demonstrations,
            max_steps=self.settings.max_steps,
        )
        self.responder = Responder(llm, dataset.catalog, item_noun=item_noun)

    @classmethod
    def from_dataset(
        cls, name_or_path: str | Dataset = "demo", llm: str | ChatModel | None = None, **kwargs: Any
    ) -> Agent:
        """An agent over a dataset by name or path, with a ChatModel or a model spec (default: $RECAI_LLM
        or the offline 1.5B model). Demonstrations are picked by embedding similarity. ``planner_llm``
        (a ChatModel or a spec such as ``hf:/path/to/distilled/planner``) plans instead of ``llm``."""
        from recai.data import load
        from recai.llm import load_chat_model

        dataset = name_or_path if isinstance(name_or_path, Dataset) else load(name_or_path)
        chat = llm if isinstance(llm, ChatModel) else load_chat_model(llm)
        planner = kwargs.pop("planner_llm", None)
        if planner is not None and not isinstance(planner, ChatModel):
            kwargs["planner_llm"] = load_chat_model(planner)
        elif planner is not None:
            kwargs["planner_llm"] = planner
        tools = kwargs.pop("tools", None) or default_tools()
        item_noun = kwargs.pop("item_noun", None) or dataset.item_noun()
        agent = cls(dataset, chat, tools=tools, item_noun=item_noun, **kwargs)
        agent._demonstration_mode = "dynamic"
        return agent

    def warm_up(self) -> None:
        """Build (or load) everything a turn needs now, so the first turn is not the slow one: the item
        index, item-CF, the sequential model when preference ranking uses it, and the demonstrations."""
        _ = self.resources.item_index, self.resources.itemcf
        if self.resources.preference_model == "sasrec" and len(self.dataset.interactions):
            _ = self.resources.sequential
        self.ensure_demonstrations()

    def ensure_demonstrations(self) -> None:
        """Derive this catalog's demonstrations (cached on disk) and add the user's own, once."""
        if not self._derive_demonstrations:
            return
        from recai.agent.catalog_demos import (
            CHARS_PER_TOKEN,
            core_demonstrations,
            derived_demonstrations,
            load_user_demonstrations,
        )
        from recai.agent.planner import plan_schema

        # one example per plan shape, shown in every prompt (the cached part); the user's own examples
        # can be many, so the most similar ones are picked per request
        # the examples get what the rest of the system prompt leaves of its budget
        self.planner.set_fixed([])
        left = self.settings.planner_prompt_tokens - len(self.planner.system) / CHARS_PER_TOKEN
        self.planner.set_fixed(core_demonstrations(derived_demonstrations(self), max(0, int(left))))
        if self.settings.demonstrations_file:
            schema = plan_schema(list(self.tools.values()))
            own = load_user_demonstrations(self.settings.demonstrations_file, self.dataset.catalog, schema)
            encoder = self.resources.encoder if self._demonstration_mode == "dynamic" else None
            self.planner.demonstrations = Demonstrations(own, mode=self._demonstration_mode, encoder=encoder)
        self._derive_demonstrations = False

    def session(self, user: str | None = None) -> Session:
        """A new conversation; for a user id the profile is loaded, and a user the dataset's log knows
        brings their logged items as history (preference ranking uses it, and it counts as seen)."""
        profile = self.profile_store.load(user) if user is not None else Profile()
        if user is not None:
            profile.history = self.logged_history(user)
        return Session(user=user, dialogue=Dialogue(budget=self.settings.history_tokens), profile=profile)

    def logged_history(self, user: Any) -> list[Any]:
        """The item ids a user of the dataset's log interacted with, oldest first (empty if unknown)."""
        interactions = self.dataset.interactions
        try:
            codes = interactions.sequence(user)
        except KeyError:
            return []
        ids = self.dataset.catalog.ids[codes].tolist()
        return list(reversed(dict.fromkeys(reversed(ids))))  # each item once, where it was last seen

    # ----------------------------------------------------------------- turn
    def chat(self, session: Session, text: str) -> TurnResult:
        """One turn, the reply written whole."""
        stream = self.chat_stream(session, text)
        for _ in stream:  # the turn builds the reply text itself
            pass
        assert stream.result is not None
        return stream.result

    def chat_stream(
        self, session: Session, text: str, *, on_items: Callable[[list[Any]], None] | None = None
    ) -> TurnStream:
        """The turn as a stream of reply chunks. ``on_items`` is called with the recommended item ids as
        soon as they are known, before the first chunk, so a client can show them while the reply is
        still being written."""
        return TurnStream(self._turn(session, text, on_items))

    def _turn(
        self, session: Session, text: str, on_items: Callable[[list[Any]], None] | None = None
    ) -> Generator[str, None, TurnResult]:
        """The turn's named steps: plan, execute (with one replan), draft, critique, respond, remember."""
        with scoped() as usage:
            started = time.perf_counter()
            self.ensure_demonstrations()
            turn = AgentTurn(self, session, text, started)
            execution = turn.execute_with_replan(turn.plan())
            draft = turn.draft(execution)
            if self.settings.reflect and execution.plan["intent"] != "chat" and not turn.ctx.not_found:
                execution, draft = turn.critique(execution, draft)
            reply = yield from turn.respond(execution, draft, on_items)
            turn.remember(execution, draft, reply)
            return turn.finish(reply, usage)

    def turn_context(
        self, profile: Profile | None = None, *, shown: list[int] | None = None, kept: list[int] | None = None
    ) -> AgentContext:
        """A context for one turn: its own profile, the previous answer's items (positions: what was
        ``shown``, and every candidate it ``kept``; those shown when it kept none) and the agent's
        resources (built once, shared)."""
        return AgentContext(
            self.resources,
            profile or Profile(),
            previous_shown=list(shown or []),
            previous_candidates=list(kept or shown or []),
        )

    def orders(self, step: dict[str, Any]) -> bool:
        """Whether a plan step puts the candidates in their final order (``rank``, ``knowledge_rank``)."""
        tool = self.tools.get(step.get("tool", ""))
        return tool is not None and tool.orders_candidates

    def run_plan(self, plan: dict[str, Any], trace: TurnTrace, ctx: AgentContext) -> Execution:
        """Run a plan's steps over a fresh bus, recording each in ``trace``; stop at the first failure (a
        tool error, or a step other than a lookup that empties the bus). A recommending plan without a
        step that orders the candidates gets a default ``rank`` step."""
        bus = CandidateBus(len(self.dataset.catalog))
        facts: list[str] = []
        if plan["intent"] == "recommend" and not any(self.orders(s) for s in plan["steps"]):
            plan["steps"].append(
                {"tool": "rank", "args": {"by": "similarity" if plan["steps"] else "preference"}}
            )
        for number, step in enumerate(plan["steps"], start=1):
            tool = self.tools.get(step.get("tool", ""))
            record = ToolStep(
                plan=len(trace.plans),
                step=number,
                tool=step.get("tool"),
                args=step.get("args"),
                input_size=bus.snapshot()["size"],
            )
            trace.steps.append(record)
            start = time.perf_counter()
            try:
                if tool is None:
                    raise ToolError(f"there is no tool called '{step.get('tool')}'")
                result = tool.run(tool.validate(step.get("args")), bus, ctx, number)
            except (NotInCatalogError, ToolError) as exc:
                if isinstance(exc, NotInCatalogError):
                    ctx.not_found.update(exc.missing)
                record.error = str(exc)
                record.latency_s = round(time.perf_counter() - start, 4)
                return Execution(plan, bus, facts, f"step {number} ({step.get('tool')}) failed: {exc}")
            record.output_size = bus.snapshot()["size"]
            record.latency_s = round(time.perf_counter() - start, 4)
            record.details = result.details
            if result.facts and (tool.facts_for_reply or "corrected" in result.facts):
                facts.append(result.facts)
            if bus.empty and step.get("tool") != "sql_query":
                failure = f"step {number} ({step['tool']}) left no candidates ({result.facts})"
                return Execution(plan, bus, facts, failure)
        return Execution(plan, bus, facts, None)

    def execute_plan(
        self,
        plan: dict[str, Any],
        profile: Profile | None = None,
        *,
        previous: list[int] | None = None,
    ) -> tuple[CandidateBus, list[str], str | None, list[ToolStep]]:
        """Run a plan against the catalog outside a conversation (no LLM call): the bus, the tool facts,
        the failure (a tool error or an emptied bus, else None) and the step records. Used to check
        whether a planner's output is executable. ``previous`` (positions) stands for the previous
        answer's items, for plans that start from them."""
        trace = TurnTrace(request="", plans=[PlanStep(plan, plan)])
        ctx = self.turn_context(profile, shown=previous, kept=previous)
        execution = self.run_plan(copy.deepcopy(plan), trace, ctx)
        return execution.bus, execution.facts, execution.failure, trace.steps


class AgentTurn:
    """One turn of a conversation as named steps, each recording what it did in a typed trace:
    :meth:`plan`, :meth:`execute_with_replan`, :meth:`draft`, :meth:`critique`, :meth:`respond`,
    :meth:`remember`, :meth:`finish`. The agent runs them in that order; the steps share the turn's
    context (profile, previous answer, names the catalog lacks) and its trace.

    Args:
        agent: the agent whose planner, tools and responder the turn uses.
        session: the conversation (its dialogue and profile are read and updated).
        text: the user's message.
        started: when the turn started (``time.perf_counter()``), for its latencies.
    """

    def __init__(self, agent: Agent, session: Session, text: str, started: float) -> None:
        self.agent = agent
        self.session = session
        self.text = text
        self.started = started
        self.catalog = agent.dataset.catalog
        # this turn's profile and the previous answer's items; other sessions' turns keep theirs
        self.ctx = agent.turn_context(
            session.profile,
            shown=self.catalog.index_of(session.dialogue.last_item_ids, missing="drop").tolist(),
            kept=self.catalog.index_of(session.dialogue.last_candidate_ids, missing="drop").tolist(),
        )
        self.trace = TurnTrace(request=text)
        self.dialogue = session.dialogue.render()
        self.messages = agent.planner.messages(
            text, self.dialogue, profile_text(self.catalog, session.profile)
        )

    # -------------------------------------------------------------- plan
    def plan(self) -> dict[str, Any]:
        """The first plan: the planner's (or, when its output is unusable, a chat plan asking the user to
        rephrase), repaired where small planners go wrong, with its feedback stored in the profile."""
        with track("planner"):
            try:
                plan, completion = self.agent.planner.plan(self.messages)
            except SchemaError as exc:
                plan = {
                    "intent": "chat",
                    "steps": [],
                    "feedback": {"liked": [], "disliked": []},
                    "reply": "Sorry, I could not work out what to do with that. Could you rephrase it?",
                }
                self.trace.planner_error = str(exc)
                completion = None
        self._record_plan(plan)
        repairs = self.trace.repairs
        if narrow_follow_up(plan, self.text, bool(self.ctx.previous_candidates)):
            repairs.append("started from the previous answer ('only ...' narrows it)")
        for title in title_searches_as_similar(plan, self.catalog):
            repairs.append(f"semantic_search '{title}' names an item: similar_to")
        for value in category_searches_as_filters(plan, self.catalog):
            repairs.append(f"semantic_search '{value}' is a category: filter")
        if completion is not None:
            self.trace.planner_tokens = (completion.prompt_tokens, completion.completion_tokens)
        self.apply_feedback(plan)
        return plan

    def _record_plan(self, plan: dict[str, Any]) -> None:
        self.trace.plans.append(PlanStep(plan=plan, written=copy.deepcopy(plan)))

    def apply_feedback(self, plan: dict[str, Any]) -> None:
        """Store what the plan says the user liked, disliked or asked for always, when the user said it
        (a title the planner invented is recorded as ``unsaid`` and never stored)."""
        profile = self.session.profile
        feedback = self.trace.feedback
        for constraint in plan.get("feedback", {}).get("constraints", []) or []:
            if constraint.strip() and constraint.strip() not in profile.constraints:
                profile.constraints.append(constraint.strip())
                feedback.setdefault("constraints", []).append(constraint.strip())
        said = f"{self.session.dialogue.render()}\n{self.text}"
        for kind in ("liked", "disliked"):
            titles = plan.get("feedback", {}).get(kind, [])
            if not titles:
                continue
            unsaid = [t for t in titles if not said_in(t, said)]
            if unsaid:  # the planner's invention, not the user's words: never stored
                feedback.setdefault("unsaid", []).extend(unsaid)
            found = [t for t in titles if t not in unsaid and self.catalog.ground(t).resolved]
            if found:
                positions, _ = ground_titles(self.ctx, found, "feedback")
                profile.add(kind, self.catalog.ids[positions].tolist())
            feedback[kind] = found

    # ----------------------------------------------------------- execute
    def execute_with_replan(self, plan: dict[str, Any]) -> Execution:
        """Run the plan; when it fails, go back to the planner once with the reason and run the new plan
        (a name the catalog lacks is not a planning mistake: replanning cannot make it exist)."""
        execution = self.agent.run_plan(plan, self.trace, self.ctx)
        if execution.failure is not None and self.agent.settings.replan and not self.ctx.not_found:
            self.trace.replans += 1
            with track("planner"):
                try:
                    replanned, _ = self.agent.planner.replan(self.messages, plan, execution.failure)
                    self._record_plan(replanned)
                    self.apply_feedback(replanned)
                    first_failure = execution.failure
                    execution = self.agent.run_plan(replanned, self.trace, self.ctx)
                    if replanned["intent"] == "chat" and not replanned["reply"]:
                        # a "plan" that gives up without a word: the answer must still say what failed
                        execution.failure = first_failure
                except SchemaError as exc:
                    self.trace.planner_error = str(exc)
        if self.ctx.not_found:
            self.trace.not_found = dict(self.ctx.not_found)
        return execution

    # ------------------------------------------------------------- draft
    def draft(self, execution: Execution) -> Draft:
        """The final items and a (lazy) stream of the checked answer."""
        catalog, settings, not_found = self.catalog, self.agent.settings, self.ctx.not_found
        plan, bus, failure = execution.plan, execution.bus, execution.failure
        if not_found and (failure is not None or bus.empty):
            # nothing to show: the honest answer needs no model, and names only catalog titles
            return Draft([], iter([NotInCatalogError(not_found, "").sentence()]), None)
        facts = execution.facts
        if failure is not None:
            facts = [
                *facts,
                f"Nothing could be found: {failure}. Say so briefly and suggest relaxing a condition.",
            ]
        items: list[int] = []
        if (
            failure is None
            and not bus.empty
            and (plan["intent"] == "recommend" or (plan["intent"] == "question" and not bus.unrestricted))
        ):
            items = bus.top(settings.k)[0].tolist()
        mentioned = mentioned_items(catalog, self.text)
        allowed = set(items) | set(catalog.index_of(self.session.profile.liked, missing="drop").tolist())
        allowed |= set(mentioned)
        allowed |= set(
            catalog.index_of(self.session.dialogue.last_item_ids, missing="drop").tolist()
        )  # "of those"
        check = GroundingCheck(catalog, allowed)
        if plan["intent"] == "chat" and not plan["steps"] and plan["reply"]:
            # the planner's own reply is LLM output too: a title it names must be one it may name
            return Draft(items, check.filter_stream(iter([plan["reply"]])), check)
        # the responder sees the best few items, briefly: every token it reads is ~25 ms on a 2-core CPU
        shown = items[: settings.responder_items]
        item_lines = "\n".join(
            f"- {catalog.render(p, by_position=True, max_chars=settings.item_chars, max_list=2)}"
            for p in shown
        )
        facts_text = "\n".join(facts)
        named = "\n".join(catalog.render(p, by_position=True, max_chars=300) for p in mentioned)
        check.add_evidence(self.text, self.dialogue, facts_text, item_lines, named, counts=[len(items)])
        messages = self.agent.responder.messages(self.text, self.dialogue, facts_text, item_lines)
        stream = self.agent.responder.stream(messages, check, max_tokens=settings.reply_tokens)
        if not_found:  # some names resolved, others did not: say which first, then answer for the rest
            sentence = NotInCatalogError(not_found, "").sentence()
            check.allowed |= set(catalog.index_of(_titles_of(not_found, catalog), missing="drop").tolist())
            return Draft(items, _chain([sentence + " "], stream), check)
        return Draft(items, stream, check)

    # ---------------------------------------------------------- critique
    def critique(self, execution: Execution, draft: Draft) -> tuple[Execution, Draft]:
        """Reflection: a critic judges the drafted answer; one judged wrong goes back to the planner (when
        the turn has not replanned yet) and is drafted again."""
        with track("responder"):
            written = "".join(draft.chunks)
        verdict = self.verdict(written, draft.items)
        self.trace.critique = verdict
        kept = Draft(draft.items, iter([written]), draft.check)
        if verdict.ok or self.trace.replans:
            return execution, kept
        self.trace.replans += 1
        with track("planner"):
            try:
                plan, _ = self.agent.planner.replan(
                    self.messages, execution.plan, f"the answer was judged wrong: {verdict.problem}"
                )
                self._record_plan(plan)
                execution = self.agent.run_plan(plan, self.trace, self.ctx)
                return execution, self.draft(execution)
            except SchemaError as exc:
                self.trace.planner_error = str(exc)
                return execution, kept

    def verdict(self, reply: str, items: list[int]) -> CritiqueStep:
        """One JSON verdict on whether the answer meets the request."""
        prompt = render_prompt(
            "critic",
            package="recai.agent",
            request=self.text,
            reply=reply,
            item_noun=self.agent.item_noun,
            items="; ".join(self.catalog.render(p, by_position=True, max_chars=140) for p in items)
            or "(none)",
        )
        schema = {
            "type": "object",
            "properties": {"ok": {"type": "boolean"}, "problem": {"type": "string", "maxLength": 300}},
            "required": ["ok", "problem"],
            "additionalProperties": False,
        }
        with track("critic"):
            try:
                verdict = self.agent.llm.complete(
                    [{"role": "user", "content": prompt}],
                    response_format=schema,
                    max_tokens=120,
                    describe_schema=False,
                ).parsed
            except SchemaError as exc:
                return CritiqueStep(ok=True, problem=f"critic gave no verdict ({exc})")
        return CritiqueStep(ok=verdict["ok"], problem=verdict["problem"])

    # ----------------------------------------------------------- respond
    def respond(
        self, execution: Execution, draft: Draft, on_items: Callable[[list[Any]], None] | None = None
    ) -> Generator[str, None, str]:
        """Announce the items, then stream the answer; returns the reply as shown. A question answered by
        a one-row lookup must name that row's item; an answer the grounding check emptied is replaced by
        what the catalog says."""
        catalog, plan, items = self.catalog, execution.plan, draft.items
        ids = catalog.ids[items].tolist() if items else []
        response = ResponseStep(items=ids, items_at_s=round(time.perf_counter() - self.started, 3))
        self.trace.response = response
        if on_items is not None:
            on_items(ids)
        reply_parts: list[str] = []
        answer = (
            _lookup_answer(self.trace) if plan["intent"] == "question" and execution.failure is None else None
        )
        with track("responder"):
            if answer is None:
                for chunk in draft.chunks:
                    reply_parts.append(chunk)
                    yield chunk
            else:
                # a question whose lookup returned one item: the reply must name it, or it contradicts the
                # catalog ("Madonna is more popular" over a row saying Britney Spears); such a reply is
                # checked whole before it is shown, and replaced by the row itself when it fails
                drafted = "".join(draft.chunks).strip()
                if drafted and not said_in(answer, drafted):
                    response.contradicted = drafted
                    drafted = ""
                if drafted:
                    reply_parts.append(drafted)
                    yield drafted
        reply = "".join(reply_parts).strip()
        if not reply:  # the grounding check held everything back: say something true instead of nothing
            reply = self._fallback_reply(execution, items)
            yield reply
        if draft.check is not None:
            report = draft.check.report
            response.grounding = {
                "removed": report.removed,
                "unknown_titles": sorted(set(report.unknown_titles)),
                "off_list_titles": sorted(set(report.off_list_titles)),
                "unsupported_facts": sorted(set(report.unsupported_facts)),
            }
        return reply

    def _fallback_reply(self, execution: Execution, items: list[int]) -> str:
        catalog = self.catalog
        question = execution.plan["intent"] == "question"
        rows = [f for f in execution.facts if f.startswith("SQL result")] if question else []
        if rows:  # a question the lookup answered: the rows themselves are the answer
            listed = "; ".join(
                _readable_row(line, catalog.title_column) for line in rows[0].splitlines()[1:4]
            )
            return f"From the catalog: {listed}."
        if items:
            named = [f"**{catalog.display_title(p)}**" for p in items[:3]]
            listed = ", ".join(named[:-1]) + (" and " if len(named) > 1 else "") + named[-1]
            return f"Here is what I found in the catalog: {listed}."
        return "I could not find anything in the catalog for that. Could you say it differently?"

    # ---------------------------------------------------------- remember
    def remember(self, execution: Execution, draft: Draft, reply: str) -> None:
        """Add the turn to the dialogue (with the candidates a follow-up may refine) and save the
        profile of a known user."""
        catalog, items, bus = self.catalog, draft.items, execution.bus
        settings = self.agent.settings
        kept = bus.top(settings.kept_candidates)[0].tolist() if items and not bus.unrestricted else items
        self.session.dialogue.add(
            Turn(
                user=self.text,
                reply=reply,
                items=[catalog.display_title(p) for p in items],
                item_ids=catalog.ids[items].tolist() if items else [],
                candidate_ids=catalog.ids[kept].tolist() if kept else [],
            )
        )
        if self.session.user is not None:
            self.agent.profile_store.save(self.session.user, self.session.profile)

    def finish(self, reply: str, usage_meter: Any) -> TurnResult:
        """The turn's LLM usage and latency into the trace; the result, handed to the turn hooks."""
        trace = self.trace
        usage = usage_meter.report()
        trace.llm = {component: next(iter(models.values())) for component, models in usage.items()}
        trace.llm_calls = sum(int(v["calls"]) for v in trace.llm.values())
        trace.latency_s = round(time.perf_counter() - self.started, 3)
        trace.llm_latency_s = round(sum(float(v["latency_s"]) for v in trace.llm.values()), 3)
        ids = trace.response.items if trace.response is not None else []
        result = TurnResult(reply=reply, items=ids, trace=trace)
        if self.agent.turn_hooks:
            event = TurnEvent(self.session, self.text, self.dialogue, self.messages, trace, result)
            for hook in self.agent.turn_hooks:
                hook(event)
        return result


def profile_text(catalog: Any, profile: Profile) -> str:
    """The profile as the planner reads it: the last liked and disliked titles, standing constraints."""
    parts = []
    for kind in ("liked", "disliked"):
        ids = getattr(profile, kind)
        if ids:
            titles = [catalog.display_title(int(p)) for p in catalog.index_of(ids, missing="drop")][-8:]
            parts.append(f"{kind}: {', '.join(titles)}")
    if profile.constraints:
        parts.append("standing constraints: " + "; ".join(profile.constraints[-5:]))
    return "; ".join(parts)


def mentioned_items(catalog: Any, text: str) -> list[int]:
    """Catalog items (positions) the user named in a message (the answer may mention them)."""
    out = []
    for piece in re.split(r",| and | or |;|\?|!|\.|\blike\b", text):
        piece = piece.strip()
        if len(piece) >= 3:
            g = catalog.ground(piece, threshold=92)
            if g.resolved:
                out.append(int(catalog.index_of([g.item_id])[0]))
    return out


def has_item_text(catalog: Any) -> bool:
    """Whether items have text beyond their title (a text, list or categorical column) for semantic
    search to match a description against."""
    from recai.data.schema import ColumnRole

    roles = (ColumnRole.TEXT, ColumnRole.MULTI_CATEGORICAL, ColumnRole.CATEGORICAL)
    return any(c.role in roles and c.name in catalog.items for c in catalog.schema.columns)


_NARROWING = re.compile(
    r"^\s*(only|just)\b"
    r"|^\s*(something|anything|any|ones?|those|but|and)\b.{0,40}\b(shorter|longer|older|newer|earlier|later"
    r"|cheaper|more recent|less|fewer|under|over|before|after|below|above)\b",
    re.I,
)


def category_searches_as_filters(plan: dict[str, Any], catalog: Any) -> list[str]:
    """A semantic search for a genre value ("comedy", "war films") is a hard condition: it becomes a
    filter on that column, which keeps exactly the items that have it. Returns the values moved."""
    from recai.agent.tools.retrieval import category_named, category_value
    from recai.data.schema import ColumnRole

    moved = []
    for step in plan.get("steps") or []:
        query = str((step.get("args") or {}).get("query", ""))
        column = category_named(catalog, query) if step.get("tool") == "semantic_search" and query else None
        if column is None:
            continue
        value = category_value(catalog, column, query).replace("'", "''")
        listed = catalog.schema.column(column).role is ColumnRole.MULTI_CATEGORICAL
        where = f"list_contains({column}, '{value}')" if listed else f"{column} = '{value}'"
        step["tool"], step["args"] = "filter", {"where": where}
        moved.append(query)
    return moved


def title_searches_as_similar(plan: dict[str, Any], catalog: Any) -> list[str]:
    """A semantic search whose query is a catalog title ("Pulp Fiction") is a request for items like
    that item: it becomes ``similar_to`` (a text search would return the item itself first). Returns
    the titles that were moved."""
    moved = []
    for step in plan.get("steps") or []:
        query = str((step.get("args") or {}).get("query", ""))
        if step.get("tool") != "semantic_search" or not query:
            continue
        if catalog.ground(query, threshold=90).resolved:  # a typo of a title still names it
            step["tool"], step["args"] = "similar_to", {"titles": [query]}
            moved.append(query)
    return moved


def narrow_follow_up(plan: dict[str, Any], text: str, has_previous: bool) -> bool:
    """ "Only ones from the 90s" after an answer narrows that answer: when a recommendation plan for such
    a message starts with a filter over the whole catalog, it is made to start from the previous
    answer's candidates (the planner sometimes restates only the new condition and loses the old ones).
    Returns whether the plan was changed."""
    steps = plan.get("steps") or []
    if not (has_previous and _NARROWING.match(text) and plan.get("intent") == "recommend" and steps):
        return False
    if steps[0].get("tool") != "filter":
        return False
    plan["steps"] = [{"tool": "previous_results", "args": {"which": "all"}}, *steps]
    return True


def _readable_row(line: str, title_column: str) -> str:
    """A result row of the SQL facts ("title=Fargo; runtime=98") as a reader would write it
    ("Fargo: runtime 98")."""
    pairs = [part.partition("=") for part in line.split("; ")]
    if not all(sep for _, sep, _ in pairs):
        return line
    title = next((value for key, _, value in pairs if key == title_column), None)
    rest = ", ".join(f"{key.replace('_', ' ')} {value}" for key, _, value in pairs if key != title_column)
    if title is None:
        return rest
    return f"{title}: {rest}" if rest else title


def _lookup_answer(trace: TurnTrace) -> str | None:
    """The item a question's last successful lookup answered with, when it returned exactly one."""
    for step in reversed(trace.steps):
        if step.tool == "sql_query" and not step.error:
            return (step.details or {}).get("answer")
    return None


def _chain(*parts: Iterable[str]) -> Iterator[str]:
    for part in parts:
        yield from part


def _titles_of(not_found: dict[str, list[str]], catalog: Any) -> list[Any]:
    """Ids of the closest titles a not-found sentence names (they are catalog items, so allowed)."""
    ids = []
    for titles in not_found.values():
        for title in titles[:2]:
            g = catalog.ground(title)
            if g.resolved:
                ids.append(g.item_id)
    return ids
