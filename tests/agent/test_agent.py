from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from recai.agent import Agent, AgentSettings
from recai.agent.memory import Dialogue, ProfileStore, Turn
from recai.agent.planner import Demonstrations, plan_schema, said_in
from recai.data import Dataset
from recai.llm import ScriptedChatModel
from recai.testing.fakes import BagOfWordsEncoder


def plan(
    intent: str,
    steps: list[dict[str, Any]],
    liked: list[str] | None = None,
    reply: str = "",
    disliked: list[str] | None = None,
) -> str:
    return json.dumps(
        {
            "intent": intent,
            "steps": steps,
            "feedback": {"liked": liked or [], "disliked": disliked or []},
            "reply": reply,
        }
    )


def make_agent(
    dataset: Dataset, script: list[Any], tmp_path: Path, **settings: Any
) -> tuple[Agent, ScriptedChatModel]:
    llm = ScriptedChatModel(script)
    agent = Agent(
        dataset,
        llm,
        settings=AgentSettings(k=3, retrieve_k=5, sasrec_budget_s=2.0, **settings),
        encoder=BagOfWordsEncoder(),
        profile_store=ProfileStore(tmp_path / "profiles"),
        progress=False,
    )
    return agent, llm


def test_a_recommendation_turn_plans_runs_and_answers_in_two_calls(dataset: Dataset, tmp_path: Path) -> None:
    script = [
        plan(
            "recommend",
            [
                {"tool": "filter", "args": {"where": "list_contains(genres, 'crime') AND runtime < 160"}},
                {"tool": "rank", "args": {"by": "popularity"}},
            ],
        ),
        "Try **Pulp Fiction (1994)**, a classic. You might also like **Reservoir Dogs**.",
    ]
    agent, llm = make_agent(dataset, script, tmp_path)
    result = agent.chat(agent.session(), "a crime film under 160 minutes")
    assert result.items and set(result.items) <= {10, 11}  # only catalog items that satisfy the filter
    assert result.items[0] == 10  # most popular first
    assert "**Pulp Fiction (1994)**" in result.reply
    trace = result.trace
    assert trace.llm_calls == 2 and trace.replans == 0
    assert [s.tool for s in trace.steps] == ["filter", "rank"]
    first = trace.to_dict()["steps"][0]
    assert first["details"]["corrections"] == []  # 'crime' fixed silently (only case)
    assert first["output_size"] == 2
    responder_prompt = llm.calls[1][1]["content"]
    assert "Pulp Fiction (1994)" in responder_prompt and "Results:" in responder_prompt


def test_a_failing_step_triggers_one_replan_with_the_error(dataset: Dataset, tmp_path: Path) -> None:
    script = [
        plan("recommend", [{"tool": "filter", "args": {"where": "list_contains(genres, 'Telenovela')"}}]),
        plan("recommend", [{"tool": "filter", "args": {"where": "list_contains(genres, 'Romance')"}}]),
        "**Amélie (2001)** is charming.",
    ]
    agent, llm = make_agent(dataset, script, tmp_path)
    result = agent.chat(agent.session(), "a telenovela")
    assert result.trace.replans == 1 and len(result.trace.plans) == 2
    replan_message = llm.calls[1][-1]["content"]
    assert "no genres called 'Telenovela'" in replan_message and "did you mean" in replan_message
    assert set(result.items) <= {13, 14}


def test_when_replanning_fails_too_the_answer_says_so(dataset: Dataset, tmp_path: Path) -> None:
    empty = plan("recommend", [{"tool": "filter", "args": {"where": "year > 2100"}}])
    agent, llm = make_agent(dataset, [empty, empty, "Nothing matches; try a wider year range."], tmp_path)
    result = agent.chat(agent.session(), "films from the 22nd century")
    assert result.items == [] and result.trace.replans == 1
    assert "Nothing could be found" in llm.calls[2][1]["content"]  # the responder is told, no silent fallback


def test_chit_chat_is_answered_by_the_planner_alone(dataset: Dataset, tmp_path: Path) -> None:
    agent, _ = make_agent(
        dataset, [plan("chat", [], reply="Hello! What do you feel like watching?")], tmp_path
    )
    result = agent.chat(agent.session(), "hi!")
    assert result.reply == "Hello! What do you feel like watching?" and result.items == []
    assert result.trace.llm_calls == 1


def test_a_chat_reply_from_the_planner_is_grounding_checked_too(dataset: Dataset, tmp_path: Path) -> None:
    reply = "Happy to help! You should watch **The Godfather (1972)**. What else do you like?"
    agent, _ = make_agent(dataset, [plan("chat", [], reply=reply)], tmp_path)
    result = agent.chat(agent.session(), "hello")
    assert "Godfather" not in result.reply  # a title no tool returned, named without a lookup
    assert "Happy to help!" in result.reply and result.trace.to_dict()["grounding"]["off_list_titles"]


def test_hallucinated_titles_are_removed_from_the_answer(dataset: Dataset, tmp_path: Path) -> None:
    script = [
        plan("recommend", [{"tool": "filter", "args": {"where": "language = 'French'"}}]),
        "**Amélie (2001)** is lovely. You should also see **The Godfather**. And **Midnight in Lyon (2011)** too!",
    ]
    agent, _ = make_agent(dataset, script, tmp_path)
    result = agent.chat(agent.session(), "a French film")
    assert "Amélie" in result.reply and "Godfather" not in result.reply and "Lyon" not in result.reply
    grounding = result.trace.to_dict()["grounding"]
    assert (
        "The Godfather" in grounding["off_list_titles"]
        and "Midnight in Lyon (2011)" in grounding["unknown_titles"]
    )


def test_the_question_intent_answers_from_sql(dataset: Dataset, tmp_path: Path) -> None:
    script = [
        plan(
            "question",
            [
                {"tool": "user_candidates", "args": {"titles": ["Heat", "Reservoir Dogs"]}},
                {
                    "tool": "sql_query",
                    "args": {"sql": "SELECT title, runtime FROM items ORDER BY runtime LIMIT 1"},
                },
            ],
        ),
        "**Reservoir Dogs (1992)** is shorter, at 99 minutes.",
    ]
    agent, llm = make_agent(dataset, script, tmp_path)
    result = agent.chat(agent.session(), "which is shorter, Heat or Reservoir Dogs?")
    assert "title=Reservoir Dogs; runtime=99" in llm.calls[1][1]["content"]
    assert "Reservoir Dogs" in result.reply


def test_profiles_persist_per_user_and_shape_ranking(dataset: Dataset, tmp_path: Path) -> None:
    script = [
        plan(
            "recommend",
            [{"tool": "rank", "args": {"by": "popularity"}}],
            disliked=["Pulp Fiction"],
            liked=["Heat"],
        ),
        "Here are some picks.",
    ]
    agent, _ = make_agent(dataset, script, tmp_path)
    session = agent.session("alice")
    result = agent.chat(session, "I hated Pulp Fiction but loved Heat. Something popular?")
    assert 10 not in result.items  # disliked items are never recommended
    stored = json.loads((tmp_path / "profiles" / "alice.json").read_text())
    assert stored["disliked"] == [10] and stored["liked"] == [12]
    again = make_agent(dataset, [], tmp_path)[0].session("alice")
    assert again.profile.disliked == [10]


def test_feedback_titles_the_user_never_wrote_are_not_stored(dataset: Dataset, tmp_path: Path) -> None:
    script = [
        plan(
            "recommend",
            [{"tool": "rank", "args": {"by": "popularity"}}],
            liked=["Heat", "Pulp Fiction"],  # the planner invents a second like
        ),
        "Here are some picks.",
    ]
    agent, _ = make_agent(dataset, script, tmp_path)
    session = agent.session("bob")
    result = agent.chat(session, "I loved heat! Something popular?")
    assert session.profile.liked == [12]
    assert result.trace.feedback["unsaid"] == ["Pulp Fiction"]
    assert 10 in result.items  # an invented like does not steer or exclude anything


def test_title_mentions_tolerate_years_articles_and_typos() -> None:
    assert said_in("Godfather, The (1972)", "something like the godfathr please")
    assert said_in("Se7en (1995)", "like se7en")
    assert not said_in("Heat", "a night at the theatre")
    assert not said_in("The Dark Knight", "films about undercover cops in boston")
    assert said_in("Rocky II", "rocky 2 was great")  # numbers read as the catalog grounder reads them
    assert said_in("Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)", "I loved Amélie")


def test_dialogue_memory_stays_within_its_budget() -> None:
    dialogue = Dialogue(budget=40)
    for i in range(10):
        dialogue.add(Turn(user=f"request number {i} " * 5, reply="a reply " * 10, items=[f"Film {i}"]))
    text = dialogue.render()
    assert "request number 9" in text and "(earlier)" in text and len(text) < 4 * 40 * 3


def test_plans_and_demonstrations_share_one_format(dataset: Dataset, tmp_path: Path) -> None:
    agent, _ = make_agent(dataset, [], tmp_path)
    schema = plan_schema(list(agent.tools.values()))
    demos = Demonstrations.load(schema=schema, mode="lexical")
    assert len(demos.examples) >= 10
    picked = demos.select("more films by Christopher Nolan", 2)
    assert any("Nolan" in d.request for d in picked)
    bad = tmp_path / "demos.json"
    bad.write_text(
        json.dumps(
            [
                {
                    "request": "x",
                    "plan": {
                        "intent": "recommend",
                        "steps": [{"tool": "nope", "args": {}}],
                        "feedback": {"liked": [], "disliked": []},
                        "reply": "",
                    },
                }
            ]
        )
    )
    with pytest.raises(ValueError, match="not a valid plan"):
        Demonstrations.load(bad, schema=schema)


def test_a_planner_that_cannot_produce_a_plan_gets_a_polite_question(
    dataset: Dataset, tmp_path: Path
) -> None:
    agent, _ = make_agent(dataset, ["garbage", "still garbage", "more garbage"], tmp_path)
    result = agent.chat(agent.session(), "???")
    assert "rephrase" in result.reply and result.trace.planner_error is not None


def test_streaming_yields_the_same_reply(dataset: Dataset, tmp_path: Path) -> None:
    script = [plan("chat", [], reply="Hi there, friend.")]
    agent, _ = make_agent(dataset, script, tmp_path)
    stream = agent.chat_stream(agent.session(), "hello")
    assert "".join(stream) == "Hi there, friend." and stream.result is not None


def test_the_critic_can_send_the_plan_back_once(dataset: Dataset, tmp_path: Path) -> None:
    script = [
        plan("recommend", [{"tool": "filter", "args": {"where": "language = 'English'"}}]),
        "**Heat (1995)** is great.",
        json.dumps({"ok": False, "problem": "the user asked for a French film"}),
        plan("recommend", [{"tool": "filter", "args": {"where": "language = 'French'"}}]),
        "**Amélie (2001)** is French.",
    ]
    agent, llm = make_agent(dataset, script, tmp_path, reflect=True)
    result = agent.chat(agent.session(), "a French film")
    assert result.trace.critique is not None and result.trace.critique.ok is False
    assert result.trace.replans == 1
    assert set(result.items) <= {13, 14} and "Amélie" in result.reply
    assert "judged wrong: the user asked for a French film" in llm.calls[3][-1]["content"]


def test_stated_constraints_are_remembered_and_shown_to_the_planner(dataset: Dataset, tmp_path: Path) -> None:
    first = json.dumps(
        {
            "intent": "chat",
            "steps": [],
            "reply": "Noted.",
            "feedback": {"liked": [], "disliked": [], "constraints": ["no horror"]},
        }
    )
    agent, llm = make_agent(dataset, [first, plan("chat", [], reply="Sure.")], tmp_path)
    session = agent.session("bob")
    agent.chat(session, "I never watch horror")
    agent.chat(session, "what now?")
    assert session.profile.constraints == ["no horror"]
    assert "standing constraints: no horror" in llm.calls[1][1]["content"]


def test_a_turn_reports_its_own_usage_without_resetting_the_global_meter(
    dataset: Dataset, tmp_path: Path
) -> None:
    from recai.llm import meter

    meter.reset()
    agent, _ = make_agent(
        dataset, [plan("chat", [], reply="Hi."), plan("chat", [], reply="Hello again.")], tmp_path
    )
    session = agent.session()
    agent.chat(session, "hi")
    second = agent.chat(session, "hi again")
    assert second.trace.llm_calls == 1  # this turn only
    assert meter.totals().calls == 2  # the global meter saw both turns


def test_bold_titles_in_a_list_are_read_one_by_one(dataset: Dataset) -> None:
    from recai.agent.responder import GroundingCheck

    catalog = dataset.catalog
    allowed = set(catalog.index_of([10, 11, 12]).tolist())
    check = GroundingCheck(catalog, allowed)
    assert check.sentence_ok("Try **Pulp Fiction (1994)**, **Reservoir Dogs (1992)**, and **Heat (1995)**.")
    assert not check.report.unknown_titles and not check.report.off_list_titles
    assert check.sentence_ok("It is *really* good.")


def test_numbers_and_names_must_come_from_the_evidence(dataset: Dataset) -> None:
    from recai.agent.responder import GroundingCheck

    check = GroundingCheck(dataset.catalog, set())
    check.add_evidence("What year did Heat come out?", "SQL result: title=Heat; year=1995", counts=[0])
    assert check.sentence_ok("Heat came out in 1995.")
    assert not check.sentence_ok("Heat came out in 2015.")
    assert not check.sentence_ok("It was directed by Michael Mann.")  # a person no tool named
    assert check.sentence_ok("Here are 3 of them.")  # small counts are not claims
    assert check.report.unsupported_facts == ["2015", "Michael Mann"]
    check.add_evidence("director=Michael Mann")
    assert check.sentence_ok("Michael Mann's film is tense.")


def test_sentences_do_not_end_inside_titles_or_after_abbreviations() -> None:
    from recai.agent.responder import split_sentences

    done, rest = split_sentences("Try **The Cabinet of Dr. Caligari (1920)**. Samuel L. Jackson stars. And m")
    assert [s for s, _ in done] == ["Try **The Cabinet of Dr. Caligari (1920)**.", "Samuel L. Jackson stars."]
    assert rest == "And m"
