"""A rule-based teacher planner, a scripted user simulator, a small agent and a trajectories run folder
for tool-learning tests (no weights)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from recai.agent import Agent, AgentSettings
from recai.agent.memory import ProfileStore
from recai.data import Dataset
from recai.evaluate.runs import RunFolder
from recai.llm import ScriptedChatModel
from recai.testing.fakes import BagOfWordsEncoder

_CONDITION = re.compile(r"(?:with|whose|where the) (\w+) (?:include |is )?([A-Z][\w' -]*?)(?:,|$|\?| about)")
_LIMIT = re.compile(r"(?:under|below) (\d+)(?: in (\w+))?")
LIST_COLUMNS = ("genres", "director")


def _message(prompt: str) -> str:
    return prompt.rpartition("Message: ")[2].rpartition("\nPlan:")[0].strip()


def _dialogue(prompt: str) -> str:
    return prompt.partition("Conversation so far:")[2].partition("What is known about")[0]


def _where(column: str, value: str) -> str:
    value = value.replace("'", "''")
    return f"list_contains({column}, '{value}')" if column in LIST_COLUMNS else f"{column} = '{value}'"


def _title(text: str) -> str:
    return re.sub(r"\s*\(\d{4}\)\s*$", "", text.strip())


def teacher_plan(message: str, dialogue: str = "") -> dict[str, Any]:
    """What a good planner writes for the templated requests (on the test catalog's columns)."""
    if re.match(r"^(hi|hello|thanks|thank you|good evening|what can you do)", message, re.I):
        return {"intent": "chat", "steps": [], "reply": "Hello! What would you like?"}
    question = re.match(r"(?:What is|Tell me) the (\w+) of (.+?)[?.]$", message)
    if question:
        column, title = question.groups()
        sql = f"SELECT {column} FROM items WHERE title = '{_title(title)}'"
        return {"intent": "question", "steps": [{"tool": "sql_query", "args": {"sql": sql}}]}
    pick = re.match(r"Which should I pick: (.+)\?$", message)
    if pick:
        titles = [_title(t) for t in re.split(r", | or ", pick.group(1))]
        steps = [
            {"tool": "user_candidates", "args": {"titles": titles}},
            {"tool": "rank", "args": {"by": "popularity"}},
        ]
        return {"intent": "recommend", "steps": steps}
    steps: list[dict[str, Any]] = []
    similar = re.search(r"(?:like|loved) (.+?\(\d{4}\))", message)
    if similar:
        steps.append({"tool": "similar_to", "args": {"titles": [_title(similar.group(1))], "by": "both"}})
    limit = _LIMIT.search(message)
    conditions = _CONDITION.findall(message) or (_CONDITION.findall(dialogue) if limit else [])
    wheres = [_where(c, v.strip()) for c, v in conditions]
    if limit:
        wheres.append(f"{limit.group(2) or 'runtime'} < {limit.group(1)}")
    if wheres:
        steps.append({"tool": "filter", "args": {"where": " AND ".join(wheres)}})
    soft = re.search(r"about (.+)$", message)
    if soft:
        steps.append({"tool": "semantic_search", "args": {"query": soft.group(1)}})
    if not steps:
        steps.append({"tool": "semantic_search", "args": {"query": message}})
    steps.append({"tool": "rank", "args": {"by": "similarity" if similar or soft else "popularity"}})
    return {"intent": "recommend", "steps": steps}


def teacher_reply(messages: list[dict[str, str]]) -> str:
    last = messages[-1]["content"]
    if last.rstrip().endswith("Plan:"):
        return json.dumps(teacher_plan(_message(last), _dialogue(last)))
    if len(messages) > 2 and messages[1]["content"].rstrip().endswith("Plan:"):  # a replan: give up
        return json.dumps({"intent": "chat", "steps": [], "reply": "Nothing found."})
    return "Here is what I found."


def teacher() -> ScriptedChatModel:
    return ScriptedChatModel(teacher_reply, name="scripted-teacher")


def simulator() -> ScriptedChatModel:
    """A simulated user who always asks for crime films."""
    return ScriptedChatModel(lambda messages: "Show me films with genres Crime", name="scripted-user")


def make_agent(dataset: Dataset, llm: Any, tmp_path: Path, **kwargs: Any) -> Agent:
    """A small agent on ``llm`` with a bag-of-words encoder and its profiles under ``tmp_path``."""
    return Agent(
        dataset,
        llm,
        settings=AgentSettings(k=3, retrieve_k=5, sasrec_budget_s=2.0),
        encoder=BagOfWordsEncoder(),
        profile_store=ProfileStore(tmp_path / "profiles"),
        item_noun="films",
        progress=False,
        **kwargs,
    )


def open_run(path: Path) -> RunFolder:
    """A trajectories run folder at ``path``, as `recai agent record` opens one."""
    return RunFolder.open(path, task="trajectories", config={"test": 1})
