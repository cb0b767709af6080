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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from recai.agent.bus import CandidateBus
from recai.agent.context import AgentContext, AgentSettings
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
from recai.data.dataset import Dataset
from recai.llm.base import ChatModel
from recai.llm.prompting import render_prompt
from recai.llm.structured import SchemaError
from recai.llm.usage import scoped, track


def default_tools() -> list[Tool]:
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
    """One conversation: its dialogue, the user's profile, and where the profile is stored."""

    user: str | None = None
    dialogue: Dialogue = field(default_factory=Dialogue)
    profile: Profile = field(default_factory=Profile)


@dataclass
class TurnResult:
    reply: str
    items: list[Any]  # catalog ids, best first
    trace: dict[str, Any]


@dataclass
class TurnEvent:
    """What a turn hook sees once a turn is done: the planner's prompt, each plan as the planner wrote it
    (before the executor added a default rank step), the trace and the result. Tool learning records
    these as (prompt, plan, outcome) trajectories."""

    session: Session
    request: str
    dialogue: str  # the dialogue as the planner saw it (before this turn)
    planner_messages: list[dict[str, str]]
    written_plans: list[dict[str, Any]]
    trace: dict[str, Any]
    result: TurnResult


class TurnStream:
    """Iterate for the reply's text chunks; afterwards ``result`` holds the TurnResult."""

    def __init__(self, chunks: Iterator[str]) -> None:
        self._chunks = chunks
        self.result: TurnResult | None = None

    def __iter__(self) -> Iterator[str]:
        self.result = yield from self._chunks


class Agent:
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
        self.ctx = AgentContext(dataset, self.settings, progress=progress)
        if encoder is not None:  # otherwise the default embedder loads on first use
            self.ctx.encoder = encoder
        self.profile_store = profile_store or ProfileStore(self.ctx.cache_dir / "profiles")
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
        _ = self.ctx.item_index, self.ctx.itemcf
        if self.ctx.preference_model == "sasrec" and len(self.dataset.interactions):
            _ = self.ctx.sequential
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
            encoder = self.ctx.encoder if self._demonstration_mode == "dynamic" else None
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
    ) -> Iterator[str]:
        with scoped() as usage:
            return (yield from self._turn_inner(session, text, usage, on_items))

    def _turn_inner(
        self,
        session: Session,
        text: str,
        usage_meter: Any,
        on_items: Callable[[list[Any]], None] | None = None,
    ) -> Iterator[str]:
        started = time.perf_counter()
        self.ensure_demonstrations()
        catalog = self.dataset.catalog
        # this turn's profile and the previous answer's items; other sessions' turns keep theirs
        ctx = self.ctx.for_turn(
            session.profile,
            previous_shown=catalog.index_of(session.dialogue.last_item_ids, missing="drop").tolist(),
            previous_candidates=catalog.index_of(
                session.dialogue.last_candidate_ids, missing="drop"
            ).tolist(),
        )
        trace: dict[str, Any] = {"request": text, "plans": [], "steps": [], "replans": 0}
        dialogue = session.dialogue.render()
        profile_text = self._profile_text(session.profile)
        messages = self.planner.messages(text, dialogue, profile_text)
        with track("planner"):
            try:
                plan, completion = self.planner.plan(messages)
            except SchemaError as exc:
                plan = {
                    "intent": "chat",
                    "steps": [],
                    "feedback": {"liked": [], "disliked": []},
                    "reply": "Sorry, I could not work out what to do with that. Could you rephrase it?",
                }
                trace["planner_error"] = str(exc)
                completion = None
        trace["plans"].append(plan)
        written = [copy.deepcopy(plan)]
        if narrow_follow_up(plan, text, bool(ctx.previous_candidates)):
            trace.setdefault("repairs", []).append("started from the previous answer ('only ...' narrows it)")
        for title in title_searches_as_similar(plan, catalog):
            trace.setdefault("repairs", []).append(f"semantic_search '{title}' names an item: similar_to")
        for value in category_searches_as_filters(plan, catalog):
            trace.setdefault("repairs", []).append(f"semantic_search '{value}' is a category: filter")
        if completion is not None:
            trace["planner_tokens"] = [completion.prompt_tokens, completion.completion_tokens]
        self._apply_feedback(plan, session, trace, ctx)

        bus, facts, failure = self._execute(plan, trace, ctx)
        if failure is not None and self.settings.replan and not ctx.not_found:
            # (a name the catalog lacks is not a planning mistake: replanning cannot make it exist)
            trace["replans"] += 1
            with track("planner"):
                try:
                    first_failure = failure
                    plan, _ = self.planner.replan(messages, plan, failure)
                    trace["plans"].append(plan)
                    written.append(copy.deepcopy(plan))
                    self._apply_feedback(plan, session, trace, ctx)
                    bus, facts, failure = self._execute(plan, trace, ctx)
                    if plan["intent"] == "chat" and not plan["reply"]:
                        # a "plan" that gives up without a word: the answer must still say what failed
                        failure = first_failure
                except SchemaError as exc:
                    trace["planner_error"] = str(exc)

        if ctx.not_found:
            trace["not_found"] = dict(ctx.not_found)
        items, reply_chunks, check = self._prepare_reply(
            text, dialogue, plan, bus, facts, failure, session, ctx.not_found
        )
        if self.settings.reflect and plan["intent"] != "chat" and not ctx.not_found:
            with track("responder"):
                draft = "".join(reply_chunks)
            verdict = self._critic(text, draft, items)
            trace["critic"] = [verdict]
            if not verdict["ok"] and trace["replans"] == 0:
                trace["replans"] += 1
                with track("planner"):
                    try:
                        plan, _ = self.planner.replan(
                            messages, plan, f"the answer was judged wrong: {verdict['problem']}"
                        )
                        trace["plans"].append(plan)
                        written.append(copy.deepcopy(plan))
                        bus, facts, failure = self._execute(plan, trace, ctx)
                        items, reply_chunks, check = self._prepare_reply(
                            text, dialogue, plan, bus, facts, failure, session, ctx.not_found
                        )
                    except SchemaError as exc:
                        trace["planner_error"] = str(exc)
                        reply_chunks = iter([draft])
            else:
                reply_chunks = iter([draft])
        ids = catalog.ids[items].tolist() if items else []
        trace["items_at_s"] = round(time.perf_counter() - started, 3)
        if on_items is not None:
            on_items(ids)
        reply_parts: list[str] = []
        answer = _lookup_answer(trace) if plan["intent"] == "question" and failure is None else None
        with track("responder"):
            if answer is None:
                for chunk in reply_chunks:
                    reply_parts.append(chunk)
                    yield chunk
            else:
                # a question whose lookup returned one item: the reply must name it, or it contradicts the
                # catalog ("Madonna is more popular" over a row saying Britney Spears); such a reply is
                # checked whole before it is shown, and replaced by the row itself when it fails
                drafted = "".join(reply_chunks).strip()
                if drafted and not _names(drafted, answer):
                    trace.setdefault("grounding_answer", {})["contradicted"] = drafted
                    drafted = ""
                if drafted:
                    reply_parts.append(drafted)
                    yield drafted
        reply = "".join(reply_parts).strip()
        if not reply:  # the grounding check held everything back: say something true instead of nothing
            rows = [f for f in facts if f.startswith("SQL result")] if plan["intent"] == "question" else []
            if rows:  # a question the lookup answered: the rows themselves are the answer
                reply = "From the catalog: " + "; ".join(
                    _readable_row(line, catalog.title_column) for line in rows[0].splitlines()[1:4]
                )
                reply += "."
            elif items:
                named = [f"**{catalog.display_title(p)}**" for p in items[:3]]
                listed = ", ".join(named[:-1]) + (" and " if len(named) > 1 else "") + named[-1]
                reply = f"Here is what I found in the catalog: {listed}."
            if not reply:
                reply = "I could not find anything in the catalog for that. Could you say it differently?"
            yield reply
        if check is not None:
            trace["grounding"] = {
                "removed": check.report.removed,
                "unknown_titles": sorted(set(check.report.unknown_titles)),
                "off_list_titles": sorted(set(check.report.off_list_titles)),
                "unsupported_facts": sorted(set(check.report.unsupported_facts)),
            }
        kept = bus.top(self.settings.kept_candidates)[0].tolist() if items and not bus.unrestricted else items
        session.dialogue.add(
            Turn(
                user=text,
                reply=reply,
                items=[catalog.display_title(p) for p in items],
                item_ids=ids,
                candidate_ids=catalog.ids[kept].tolist() if kept else [],
            )
        )
        if session.user is not None:
            self.profile_store.save(session.user, session.profile)
        usage = usage_meter.report()
        trace["llm"] = {component: next(iter(models.values())) for component, models in usage.items()}
        trace["llm_calls"] = sum(int(v["calls"]) for v in trace["llm"].values())
        trace["latency_s"] = round(time.perf_counter() - started, 3)
        trace["llm_latency_s"] = round(sum(float(v["latency_s"]) for v in trace["llm"].values()), 3)
        trace["items"] = ids
        result = TurnResult(reply=reply, items=ids, trace=trace)
        if self.turn_hooks:
            event = TurnEvent(session, text, dialogue, messages, written, trace, result)
            for hook in self.turn_hooks:
                hook(event)
        return result

    # ------------------------------------------------------------ internals
    def _prepare_reply(
        self,
        text: str,
        dialogue: str,
        plan: dict[str, Any],
        bus: CandidateBus,
        facts: list[str],
        failure: str | None,
        session: Session,
        not_found: dict[str, list[str]] | None = None,
    ) -> tuple[list[int], Iterator[str], GroundingCheck | None]:
        """The final items and a (lazy) stream of the checked answer."""
        catalog = self.dataset.catalog
        if not_found and (failure is not None or bus.empty):
            # nothing to show: the honest answer needs no model, and names only catalog titles
            return [], iter([NotInCatalogError(not_found, "").sentence()]), None
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
            items = bus.top(self.settings.k)[0].tolist()
        allowed = set(items) | set(catalog.index_of(session.profile.liked, missing="drop").tolist())
        allowed |= set(self._mentioned(text))
        allowed |= set(
            catalog.index_of(session.dialogue.last_item_ids, missing="drop").tolist()
        )  # "of those"
        check = GroundingCheck(catalog, allowed)
        if plan["intent"] == "chat" and not plan["steps"] and plan["reply"]:
            # the planner's own reply is LLM output too: a title it names must be one it may name
            return items, check.filter_stream(iter([plan["reply"]])), check
        # the responder sees the best few items, briefly: every token it reads is ~25 ms on a 2-core CPU
        shown = items[: self.settings.responder_items]
        item_lines = "\n".join(
            f"- {catalog.render(p, by_position=True, max_chars=self.settings.item_chars, max_list=2)}"
            for p in shown
        )
        facts_text = "\n".join(facts)
        named = "\n".join(catalog.render(p, by_position=True, max_chars=300) for p in self._mentioned(text))
        check.add_evidence(text, dialogue, facts_text, item_lines, named, counts=[len(items)])
        messages = self.responder.messages(text, dialogue, facts_text, item_lines)
        stream = self.responder.stream(messages, check, max_tokens=self.settings.reply_tokens)
        if not_found:  # some names resolved, others did not: say which first, then answer for the rest
            sentence = NotInCatalogError(not_found, "").sentence()
            check.allowed |= set(catalog.index_of(_titles_of(not_found, catalog), missing="drop").tolist())
            return items, _chain([sentence + " "], stream), check
        return items, stream, check

    def _critic(self, text: str, reply: str, items: list[int]) -> dict[str, Any]:
        """One JSON verdict on whether the answer meets the request (reflection)."""
        catalog = self.dataset.catalog
        prompt = render_prompt(
            "critic",
            package="recai.agent",
            request=text,
            reply=reply,
            item_noun=self.item_noun,
            items="; ".join(catalog.render(p, by_position=True, max_chars=140) for p in items) or "(none)",
        )
        schema = {
            "type": "object",
            "properties": {"ok": {"type": "boolean"}, "problem": {"type": "string", "maxLength": 300}},
            "required": ["ok", "problem"],
            "additionalProperties": False,
        }
        with track("critic"):
            try:
                verdict = self.llm.complete(
                    [{"role": "user", "content": prompt}],
                    response_format=schema,
                    max_tokens=120,
                    describe_schema=False,
                ).parsed
            except SchemaError as exc:
                return {"ok": True, "problem": f"critic gave no verdict ({exc})"}
        return verdict

    def _orders(self, step: dict[str, Any]) -> bool:
        """Whether a plan step puts the candidates in their final order (``rank``, ``knowledge_rank``)."""
        tool = self.tools.get(step.get("tool", ""))
        return tool is not None and tool.orders_candidates

    def _execute(
        self, plan: dict[str, Any], trace: dict[str, Any], ctx: AgentContext
    ) -> tuple[CandidateBus, list[str], str | None]:
        bus = CandidateBus(len(self.dataset.catalog))
        facts: list[str] = []
        if plan["intent"] == "recommend" and not any(self._orders(s) for s in plan["steps"]):
            plan["steps"].append(
                {"tool": "rank", "args": {"by": "similarity" if plan["steps"] else "preference"}}
            )
        for number, step in enumerate(plan["steps"], start=1):
            tool = self.tools.get(step.get("tool", ""))
            record: dict[str, Any] = {
                "plan": len(trace["plans"]),  # which plan of the turn this step belongs to (1 = first)
                "step": number,
                "tool": step.get("tool"),
                "args": step.get("args"),
                "input_size": bus.snapshot()["size"],
            }
            start = time.perf_counter()
            try:
                if tool is None:
                    raise ToolError(f"there is no tool called '{step.get('tool')}'")
                args = tool.validate(step.get("args"))
                result = tool.run(args, bus, ctx, number)
            except NotInCatalogError as exc:
                ctx.not_found.update(exc.missing)
                record.update(error=str(exc), latency_s=round(time.perf_counter() - start, 4))
                trace["steps"].append(record)
                return bus, facts, f"step {number} ({step.get('tool')}) failed: {exc}"
            except ToolError as exc:
                record.update(error=str(exc), latency_s=round(time.perf_counter() - start, 4))
                trace["steps"].append(record)
                return bus, facts, f"step {number} ({step.get('tool')}) failed: {exc}"
            record.update(
                output_size=bus.snapshot()["size"],
                latency_s=round(time.perf_counter() - start, 4),
                details=result.details,
            )
            trace["steps"].append(record)
            if result.facts and (tool.facts_for_reply or "corrected" in result.facts):
                facts.append(result.facts)
            if bus.empty and step.get("tool") != "sql_query":
                return bus, facts, f"step {number} ({step['tool']}) left no candidates ({result.facts})"
        return bus, facts, None

    def execute_plan(
        self,
        plan: dict[str, Any],
        profile: Profile | None = None,
        *,
        previous: list[int] | None = None,
    ) -> tuple[CandidateBus, list[str], str | None, list[dict[str, Any]]]:
        """Run a plan against the catalog outside a conversation (no LLM call): the bus, the tool facts,
        the failure (a tool error or an emptied bus, else None) and the step records. Used to check
        whether a planner's output is executable. ``previous`` (positions) stands for the previous
        answer's items, for plans that start from them."""
        trace: dict[str, Any] = {"plans": [plan], "steps": []}
        ctx = self.ctx.for_turn(profile or Profile(), previous_shown=previous, previous_candidates=previous)
        bus, facts, failure = self._execute(copy.deepcopy(plan), trace, ctx)
        return bus, facts, failure, trace["steps"]

    def _apply_feedback(
        self, plan: dict[str, Any], session: Session, trace: dict[str, Any], ctx: AgentContext
    ) -> None:
        for constraint in plan.get("feedback", {}).get("constraints", []) or []:
            if constraint.strip() and constraint.strip() not in session.profile.constraints:
                session.profile.constraints.append(constraint.strip())
                trace.setdefault("feedback", {}).setdefault("constraints", []).append(constraint.strip())
        said = f"{session.dialogue.render()}\n{trace.get('request', '')}"
        for kind in ("liked", "disliked"):
            titles = plan.get("feedback", {}).get(kind, [])
            if not titles:
                continue
            unsaid = [t for t in titles if not said_in(t, said)]
            if unsaid:  # the planner's invention, not the user's words: never stored
                trace.setdefault("feedback", {}).setdefault("unsaid", []).extend(unsaid)
            found = [t for t in titles if t not in unsaid and self.dataset.catalog.ground(t).resolved]
            if found:
                positions, _ = ground_titles(ctx, found, "feedback")
                session.profile.add(kind, self.dataset.catalog.ids[positions].tolist())
            trace.setdefault("feedback", {})[kind] = found

    def _profile_text(self, profile: Profile) -> str:
        catalog = self.dataset.catalog
        parts = []
        for kind in ("liked", "disliked"):
            ids = getattr(profile, kind)
            if ids:
                titles = [catalog.display_title(int(p)) for p in catalog.index_of(ids, missing="drop")][-8:]
                parts.append(f"{kind}: {', '.join(titles)}")
        if profile.constraints:
            parts.append("standing constraints: " + "; ".join(profile.constraints[-5:]))
        return "; ".join(parts)

    def _mentioned(self, text: str) -> list[int]:
        """Catalog items the user named in this message (the answer may mention them)."""
        out = []
        for piece in re.split(r",| and | or |;|\?|!|\.|\blike\b", text):
            piece = piece.strip()
            if len(piece) >= 3:
                g = self.dataset.catalog.ground(piece, threshold=92)
                if g.resolved:
                    out.append(int(self.dataset.catalog.index_of([g.item_id])[0]))
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


def _lookup_answer(trace: dict[str, Any]) -> str | None:
    """The item a question's last successful lookup answered with, when it returned exactly one."""
    for step in reversed(trace.get("steps", [])):
        if step.get("tool") == "sql_query" and not step.get("error"):
            return (step.get("details") or {}).get("answer")
    return None


def _names(reply: str, title: str) -> bool:
    """Whether ``reply`` names ``title`` (as stored, without its year, or with the article in front)."""
    from recai.agent.planner import said_in

    return said_in(title, reply)


def _chain(*parts: Any) -> Iterator[str]:
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
