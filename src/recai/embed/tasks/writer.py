"""LLM-written query text, treated as untrusted: cached, validated, retried, and otherwise replaced by a
template.

Every call goes through :class:`~recai.llm.cache.CachedChatModel`, so an interrupted build resumes for
free and a rebuild with the same model, prompts and seed reads the same replies back. A reply is
rejected when it is empty, too long, names the target (or another forbidden title), or leaves out a
condition the query must state; the writer then asks again with another seed, and after ``retries``
failures the task falls back to its template text and records why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from recai.data.home import data_home
from recai.llm.base import ChatModel
from recai.llm.cache import CachedChatModel
from recai.llm.prompting import render_prompt

PACKAGE = "recai.embed"
#: A check returns the cleaned text, or None and the reason it was rejected.
Check = Callable[[str], tuple[str | None, str]]


@dataclass
class Written:
    """What the writer produced, recorded in each example's ``source``.

    Attributes:
        text: the accepted text, or None when every reply was rejected.
        attempts: how many calls it took.
        rejected: why each rejected reply was rejected, in order.
    """

    text: str | None
    attempts: int
    rejected: list[str] = field(default_factory=list)


def default_cache_path() -> Path:
    """The response cache shared with ``recai eval``: ``$RECAI_HOME/cache/llm_responses.sqlite``."""
    return data_home() / "cache" / "llm_responses.sqlite"


class LLMWriter:
    """Writes one piece of text per call from a prompt template in ``recai/embed/prompts``, through a
    response cache so that a rebuild reads the same replies back.

    Args:
        llm: the chat model (a :class:`CachedChatModel` is used as it is).
        cache: the response cache file (default ``$RECAI_HOME/cache/llm_responses.sqlite``).
        model_id: the model's name in the cache key and in ``meta.json`` (default: the model's own).
        temperature: the sampling temperature of every call.
        retries: how many times a rejected reply is asked for again (with another seed).
    """

    def __init__(
        self,
        llm: ChatModel,
        *,
        cache: str | Path | None = None,
        model_id: str | None = None,
        temperature: float = 0.7,
        retries: int = 2,
    ) -> None:
        if isinstance(llm, CachedChatModel):
            self.llm: ChatModel = llm
            self.model_id = llm.model_id
        else:
            self.llm = CachedChatModel(llm, cache or default_cache_path(), model_id=model_id)
            self.model_id = model_id or llm.name
        self._owns_cache = not isinstance(llm, CachedChatModel)
        self.temperature = temperature
        self.retries = retries

    def write(
        self, prompt: str, values: Mapping[str, object], *, seed: int, check: Check, max_tokens: int = 160
    ) -> Written:
        """Fill ``prompts/<prompt>.txt`` with ``values``, ask the model, and validate with ``check``.

        Errors of the model itself (a server that is down) propagate: silently writing template data
        when the user asked for an LLM would be worse than stopping; the cache keeps what was done.
        """
        messages = [
            {"role": "system", "content": render_prompt("system", package=PACKAGE)},
            {"role": "user", "content": render_prompt(prompt, package=PACKAGE, **values)},
        ]
        rejected: list[str] = []
        for attempt in range(self.retries + 1):
            reply = self.llm.complete(
                messages, max_tokens=max_tokens, temperature=self.temperature, seed=seed + attempt
            )
            text, reason = check(reply.text)
            if text is not None:
                return Written(text, attempt + 1, rejected)
            rejected.append(reason)
        return Written(None, self.retries + 1, rejected)

    def close(self) -> None:
        if self._owns_cache and isinstance(self.llm, CachedChatModel):
            self.llm.close()


# ------------------------------------------------------------------ cleaning replies
_LEAD = re.compile(r"^\s*(?:[-*•]|\d+[.)]|(?:search )?query\s*:|summary\s*:)\s*", re.I)


def first_line(text: str) -> str:
    """The first non-empty line without list markers, labels or surrounding quotes."""
    for line in text.splitlines():
        line = _LEAD.sub("", line).strip().strip("\"'“”`").strip()
        if line:
            return line
    return ""


def paragraph(text: str) -> str:
    """All lines joined into one paragraph, without a leading label or surrounding quotes."""
    joined = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return _LEAD.sub("", joined).strip().strip("\"'“”`").strip()


_TURN = re.compile(r"^\s*\**\s*(user|assistant)\s*\**\s*:\s*(.+)$", re.I)


def dialogue(text: str) -> list[tuple[str, str]]:
    """The ``User:`` / ``Assistant:`` lines of a reply as (role, text); other lines are dropped."""
    turns = []
    for line in text.splitlines():
        match = _TURN.match(line)
        if match and match.group(2).strip():
            turns.append((match.group(1).lower(), match.group(2).strip()))
    return turns
