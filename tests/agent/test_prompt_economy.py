"""What the prompts carry: compact plans and brief dialogue history (fewer tokens, less parroting)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from recai.agent.memory import Dialogue, Turn, first_sentence
from recai.agent.planner import compact_plan_json, normalise_plan


def test_compact_plan_drops_empty_fields_and_spaces() -> None:
    plan = {
        "intent": "recommend",
        "steps": [{"tool": "rank", "args": {"by": "popularity"}}],
        "feedback": {"liked": [], "disliked": ["Titanic"], "constraints": []},
        "reply": "",
    }
    text = compact_plan_json(plan)
    assert " " not in text.replace("Titanic", "")
    assert json.loads(text) == {
        "intent": "recommend",
        "steps": [{"tool": "rank", "by": "popularity"}],  # flat: five tokens fewer per step
        "feedback": {"disliked": ["Titanic"]},
    }


def test_flat_and_nested_steps_are_both_plans_and_normalise_to_nested() -> None:
    import jsonschema

    from recai.agent.planner import plan_schema
    from recai.agent.tools.ranking import RankTool

    schema = plan_schema([RankTool()])
    flat = {"intent": "recommend", "steps": [{"tool": "rank", "by": "popularity"}]}
    nested = {"intent": "recommend", "steps": [{"tool": "rank", "args": {"by": "popularity"}}]}
    for plan in (flat, nested):
        jsonschema.validate(plan, schema)
        assert normalise_plan(json.loads(json.dumps(plan)))["steps"] == nested["steps"]
    mixed = {
        "intent": "recommend",
        "steps": [{"tool": "rank", "by": "popularity", "args": {"by": "similarity"}}],
    }
    assert not jsonschema.Draft202012Validator(schema).is_valid(mixed)


def test_a_plan_that_only_looks_something_up_is_a_question() -> None:
    sql = {"tool": "sql_query", "sql": "SELECT title, year FROM items WHERE title = 'Heat'"}
    plan = normalise_plan({"intent": "recommend", "steps": [sql]})
    assert plan["intent"] == "question"
    kept = normalise_plan({"intent": "recommend", "steps": [{"tool": "filter", "where": "year > 1990"}, sql]})
    assert kept["intent"] == "recommend"


def test_a_compact_plan_satisfies_the_plan_schema() -> None:
    # the demonstrations show compact plans, and a distilled planner learns to write them: the schema
    # a planner's reply is validated against must accept that form, or every imitation is rejected
    import jsonschema

    from recai.agent.planner import plan_schema

    rank = SimpleNamespace(name="rank", parameters={"type": "object"})
    schema = plan_schema([rank])  # type: ignore[list-item]  # only name and parameters are read
    for feedback in (
        {"liked": ["Heat"], "disliked": [], "constraints": []},
        {"liked": [], "disliked": ["Up"]},
    ):
        plan = {"intent": "recommend", "steps": [], "feedback": feedback, "reply": ""}
        compact = json.loads(compact_plan_json(plan))
        assert len(compact["feedback"]) == 1
        jsonschema.validate(compact, schema)
    with_extra = {"intent": "chat", "steps": [], "feedback": {"liked": [], "loved": ["Heat"]}}
    assert not jsonschema.Draft202012Validator(schema).is_valid(with_extra)


def test_optional_fields_are_filled_after_parsing() -> None:
    plan = normalise_plan({"intent": "chat", "steps": [{"tool": "rank", "args": {}}]})
    assert plan["feedback"] == {"liked": [], "disliked": [], "constraints": []}
    assert plan["reply"] == "" and plan["steps"] == []


def test_first_sentence() -> None:
    assert first_sentence("Try **Heat (1995)**. It is tense! More.") == "Try Heat (1995)."
    long = first_sentence("word " * 100)
    assert len(long) <= 163 and long.endswith("...")


def test_dialogue_is_brief_by_default() -> None:
    dialogue = Dialogue(budget=600)
    dialogue.add(Turn("a crime film", "You could try **Heat**. It is a long heist film.", ["Heat (1995)"]))
    brief = dialogue.render()
    assert "Assistant: You could try Heat." in brief and "heist" not in brief
    assert "(recommended: Heat (1995))" in brief
    assert "heist" in dialogue.render(brief=False)
