"""A rule-based stand-in for the LLM: no weights, instant, deterministic (``--llm scripted:stand-in``).

It lets the server, the page and load tests run the real agent pipeline (plan schema, tools, grounding
check, memory, trace) without a model, so they measure the server and not the LLM. It is not a
recommender brain: it plans a semantic search on the message (a greeting gets a chat reply), reads
"I liked X" / "I didn't like X" as feedback, and answers by naming the items the tools returned.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from recai.llm.base import Generation, Message
from recai.llm.scripted import ScriptedChatModel

SPEC = "scripted:stand-in"
_GREETING = re.compile(
    r"^\s*(hi|hello|hey|thanks|thank you|good (morning|evening))\b[\s!.,]*$", re.IGNORECASE
)
_DISLIKED = re.compile(
    r"\bI (?:did ?n[o']t|do ?n[o']t|didn't|don't) (?:like|enjoy) ([^.!?;]+)", re.IGNORECASE
)
_LIKED = re.compile(r"\bI (?:liked|loved|enjoyed) ([^.!?;]+)", re.IGNORECASE)
_RESULT = re.compile(r"^- (.+?\(\d{4}\))\.", re.MULTILINE)
_RESULT_NO_YEAR = re.compile(r"^- (.+?)\. ", re.MULTILINE)


class StandIn(ScriptedChatModel):
    """A ScriptedChatModel that keeps no record of its calls: a server runs it for days.

    Args:
        script: A function of the messages that writes every reply (see ScriptedChatModel).
        name: The name in usage reports.
        chunk_size: Characters per streamed chunk.
    """

    def _next(self, messages: list[Message]) -> str:
        assert self._function is not None
        return self._function(messages)

    def _generate(self, messages: list[Message], **kwargs: Any) -> Generation:
        generation = super()._generate(messages, **kwargs)
        self.schemas.clear()
        return generation


def stand_in_model(*, delay_s: float = 0.0, chunk_size: int = 6) -> ScriptedChatModel:
    """The stand-in as a ChatModel; ``delay_s`` adds a fixed latency to every call (to mimic an LLM)."""

    def reply(messages: list[Message]) -> str:
        if delay_s:
            time.sleep(delay_s)
        return respond(messages)

    return StandIn(reply, name=SPEC, chunk_size=chunk_size)


def respond(messages: list[Message]) -> str:
    """The stand-in's reply to the agent's planner, responder or critic prompt."""
    last = messages[-1]["content"]
    if last.rstrip().endswith("Plan:"):
        return json.dumps(plan_for(_request(last)))
    if len(messages) > 2 and messages[1]["content"].rstrip().endswith("Plan:"):  # a replan: give up politely
        return json.dumps(_chat("I could not find anything for that. Could you put it another way?"))
    if "Results:" in last:
        return _answer(last)
    return json.dumps({"ok": True, "problem": ""})  # the critic


def plan_for(request: str) -> dict:
    if _GREETING.match(request) or len(request.strip()) < 2:
        return _chat("Hello! Tell me what you are in the mood for, and I will look through the catalog.")
    disliked = [m.strip() for m in _DISLIKED.findall(request)]
    liked = [m.strip() for m in _LIKED.findall(request)]
    return {
        "intent": "recommend",
        "steps": [
            {"tool": "semantic_search", "args": {"query": request[:300]}},
            {"tool": "rank", "args": {"by": "similarity"}},
        ],
        "feedback": {"liked": liked[:5], "disliked": disliked[:5]},
    }


def _chat(reply: str) -> dict:
    return {"intent": "chat", "steps": [], "reply": reply}


def _request(prompt: str) -> str:
    head, _, _ = prompt.rpartition("\nPlan:")
    return head.rpartition("Message: ")[2].strip()


def _answer(prompt: str) -> str:
    results = prompt.partition("Results:")[2].partition("\n\nUser's message:")[0]
    titles = _RESULT.findall(results) or _RESULT_NO_YEAR.findall(results)
    if not titles:
        return "I could not find anything in the catalog for that. Could you describe it differently?"
    named = [f"**{t}**" for t in titles[:3]]
    listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + f" and {named[-1]}"
    return f"You might enjoy {listed}. They are the closest matches to what you described."
