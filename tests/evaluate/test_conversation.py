"""Simulated-user conversations: leaks are caught, success is decided on items, sessions stop early."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recai.data import Catalog, Dataset, Interactions
from recai.evaluate.conversation import (
    ChatModelSystem,
    ChatRecSystem,
    ConversationalSystem,
    ConversationEvaluator,
    ConversationSample,
    SystemTurn,
    TitleGuard,
    UserSimulator,
    build_conversation_samples,
    describe_taste,
    summarize_conversations,
    target_facts,
)
from recai.llm.scripted import ScriptedChatModel


class ScriptedSystem(ConversationalSystem):
    """Recommends the given positions turn by turn."""

    name = "scripted-system"

    def __init__(self, turns: list[list[int]]) -> None:
        self.turns = turns
        self.resets = 0
        self.heard: list[str] = []

    def reset(self, sample: ConversationSample) -> None:
        self.resets += 1
        self._left = list(self.turns)

    def respond(self, text: str) -> SystemTurn:
        self.heard.append(text)
        return SystemTurn(reply="here you go", items=self._left.pop(0) if self._left else [])


def _sample(catalog: Catalog, target: int = 2) -> ConversationSample:
    return ConversationSample(
        id="u1",
        user="u1",
        history=[0, 1],
        target=target,
        intent=describe_taste(catalog, [0, 1, 6]),
        target_facts=target_facts(catalog, target),
    )


def test_target_facts_never_contain_the_title(catalog: Catalog) -> None:
    facts = target_facts(catalog, 2)  # Heat (1995)
    assert "Heat" not in facts and "1995" in facts and "Michael Mann" in facts
    assert "Crime" in describe_taste(catalog, [0, 1, 6])


def test_title_guard() -> None:
    guard = TitleGuard("The Godfather Part II (1974)", "The Godfather Part II")
    assert guard.leaks("have you seen godfather part ii?")
    assert not guard.leaks("Something like The Godfather, please")  # another film
    assert not guard.leaks("a mafia saga from the seventies")
    subtitled = TitleGuard("Avengers: Endgame (2019)", "Avengers: Endgame")
    assert subtitled.leaks("I loved the Avengers movies")  # the main title before a subtitle counts
    assert "Avengers" not in subtitled.mask("I loved the Avengers movies, and the surviving avengers")
    assert not TitleGuard("Heat (1995)").leaks("I'd like some heathen drama in a theater")
    assert TitleGuard("Heat (1995)").mask("a theater, then Heat") == "a theater, then this one"
    accented = TitleGuard("Amélie (2001)")
    assert (
        accented.leaks("maybe AMELIE?") and "amelie" not in accented.mask("maybe Amelie? or Amélie").lower()
    )
    short = TitleGuard("Up (2009)")
    assert short.leaks("Is it Up?") and not short.leaks("cheer me up, something upbeat")
    assert short.mask("Is it Up?") == "Is it this one?"


def test_leaking_messages_are_regenerated_then_masked(catalog: Catalog) -> None:
    calls: list[float] = []

    def simulator(messages: list[dict]) -> str:
        calls.append(1)
        assert "Heat" not in messages[0]["content"]  # the simulator is never told the title
        return "I want Heat, the one with the heist" if len(calls) <= 3 else "a heist film from the 90s"

    sim = UserSimulator(ScriptedChatModel(simulator), catalog, leak_retries=2)
    text, regenerated, masked = sim.say(_sample(catalog), [], 1)
    assert regenerated == 3 and masked and "Heat" not in text and "this one" in text
    text, regenerated, masked = sim.say(_sample(catalog), [], 2)
    assert (regenerated, masked) == (0, False) and text == "a heist film from the 90s"


def test_success_is_decided_on_items_and_stops_early(catalog: Catalog) -> None:
    sim = UserSimulator(ScriptedChatModel(lambda m: "a tense crime film"), catalog)
    evaluator = ConversationEvaluator(catalog, sim, max_turns=4, k=2)
    system = ScriptedSystem([[0, 1], [6, 3, 2], [2]])  # target 2 is third in turn 2 (outside k=2)
    record = evaluator.run_session(system, _sample(catalog))
    assert record["success_turn"] == 3 and len(record["turns"]) == 3
    assert record["scores"]["hit@2_turn2"] == 0.0 and record["scores"]["hit@2_turn3"] == 1.0
    assert record["scores"]["hit@2_turn4"] == 1.0
    assert record["usage"]["simulator"]["calls"] == 3 and record["usage"]["system"]["calls"] == 0
    never = evaluator.run_session(ScriptedSystem([[0]] * 4), _sample(catalog))
    assert never["success_turn"] is None and len(never["turns"]) == 4
    summary = summarize_conversations([record, never], max_turns=4, k=2)
    assert summary["per_turn"]["hit@2"] == [0.0, 0.0, 0.5, 0.5]
    assert summary["mean_turns_to_success"] == 3.0


def test_plain_chat_model_is_judged_on_grounded_titles(catalog: Catalog) -> None:
    replies = iter(["Try **Pulp Fiction** or **Toy Story 9**.", "Then **Heat (1995)** is the one."])
    llm = ScriptedChatModel(lambda m: next(replies))
    sim = UserSimulator(ScriptedChatModel(lambda m: "something with a heist"), catalog)
    system = ChatModelSystem(llm, catalog, item_noun="films")
    record = ConversationEvaluator(catalog, sim, max_turns=3, k=5).run_session(system, _sample(catalog))
    assert record["turns"][0]["items"] == [10]  # the invented title grounds to nothing
    assert record["success_turn"] == 2
    assert record["usage"]["system"]["calls"] == 2
    # the system sees the whole conversation, with its own earlier reply
    assert any("Pulp Fiction" in m["content"] for m in llm.calls[-1] if m["role"] == "assistant")


def test_chatrec_puts_retrieved_candidates_in_the_prompt(catalog: Catalog) -> None:
    class FixedIndex:
        def search(self, query: np.ndarray, k: int) -> tuple[list[list[int]], np.ndarray]:
            return [[12, 16]], np.zeros((1, 2))

    class Encoder:
        def encode(self, texts: list[str], kind: str) -> np.ndarray:
            return np.ones((len(texts), 3), dtype=np.float32)

    llm = ScriptedChatModel(lambda m: "**Heat**")
    system = ChatRecSystem(llm, catalog, FixedIndex(), Encoder(), item_noun="films")
    system.reset(_sample(catalog))
    turn = system.respond("a heist film")
    assert turn.items == [2]
    assert (
        "Heat (1995)" in llm.calls[0][-1]["content"] and "The Godfather (1972)" in llm.calls[0][-1]["content"]
    )
    system.respond("older please")
    assert "Relevant films" not in llm.calls[1][1]["content"]  # retrieved lists stay out of the history


def test_samples_from_a_split(catalog: Catalog) -> None:
    rows = [
        (f"u{u}", int(i), t)
        for u in range(6)
        for t, i in enumerate(np.random.default_rng(u).permutation(catalog.ids)[:4])
    ]
    data = Dataset(
        "conv",
        catalog,
        Interactions(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]), catalog.ids),
    )
    samples = build_conversation_samples(data.split(), catalog, n=3, seed=0)
    assert len(samples) == 3
    again = build_conversation_samples(data.split(), catalog, n=3, seed=0)
    assert [s.id for s in samples] == [s.id for s in again]
    for s in samples:
        assert catalog.display_title(s.target).split(" (")[0] not in s.target_facts


def test_a_system_that_fails_a_turn_fails_the_session_and_is_counted(catalog: Catalog) -> None:
    class Broken(ScriptedSystem):
        def respond(self, text: str) -> SystemTurn:
            raise RuntimeError("boom")

    sim = UserSimulator(ScriptedChatModel(lambda m: "a crime film"), catalog)
    record = ConversationEvaluator(catalog, sim, max_turns=3, k=2).run_session(Broken([]), _sample(catalog))
    assert record["success_turn"] is None and record["errors"] == ["RuntimeError: boom"]
    assert summarize_conversations([record], max_turns=3, k=2)["sessions_with_errors"] == 1
