"""Embedding ranking and retrieval from an LLM-written summary of the user (RecLM-eval's embedding tasks).

A text encoder given a list of recent titles matches on surface words; a summary of the user's taste
("likes slow, atmospheric science fiction") is closer to what an item description says. The summary
system asks a chat model to describe the history, embeds that description as the query and ranks items
by similarity, over the candidates or the whole catalog, exactly as :class:`EncoderListSystem` does
with the titles. A model that returns nothing usable falls back to the titles and is counted
(``summary_fallback``), so a weak summariser is visible rather than silently replaced.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from recai.data.catalog import Catalog
from recai.evaluate.generative import EncoderListSystem, ListAnswer, ListSample
from recai.llm.catalog_prompter import CatalogPrompter, title_list
from recai.llm.prompting import render_prompt


@dataclass(eq=False, kw_only=True)
class UserSummarizer(CatalogPrompter):
    """Describes a user's taste from their history with a chat model; one call per distinct history.

    Attributes:
        llm: the summarising model (behind the response cache in evaluations, so reruns are free).
        catalog: renders the history as display titles.
        item_noun: what the items are called in the prompt.
        max_tokens: the summary's budget; a few sentences.
        max_chars: summaries are cut here, so a rambling model cannot flood the encoder's input.
    """

    max_tokens: int = 160
    max_chars: int = 1000
    _memo: dict[tuple[int, ...], str] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def prompt(self, history: list[int]) -> str:
        titles = title_list(self.catalog, history) or "(nothing yet)"
        return render_prompt(
            "user_summary", package="recai.evaluate", item_noun=self.item_noun, history=titles
        )

    def summary(self, history: list[int]) -> str:
        """The model's description of ``history`` ('' when it gave none), memoised per history."""
        key = tuple(history)
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        messages = [{"role": "user", "content": self.prompt(history)}]
        out = self.ask("summarised", messages, temperature=0.0)
        text = " ".join(out.text.split())[: self.max_chars]
        with self._lock:
            self._memo[key] = text
        return text


class SummaryEncoderListSystem(EncoderListSystem):
    """An Encoder ranking items against an LLM summary of the user's history instead of the titles.

    Args:
        encoder: the text Encoder; the summary is encoded as a query, items as items.
        catalog: the catalog whose index is searched.
        summarizer: writes the summary (its ``llm`` sets the evaluation's concurrency and cache).
        history_items: how many of the most recent history items are summarised.
        name: the system's name in reports (default ``summary:<model>+<encoder>``).
    """

    def __init__(
        self,
        encoder: Any,
        catalog: Catalog,
        summarizer: UserSummarizer,
        *,
        history_items: int = 20,
        name: str | None = None,
    ) -> None:
        identity = getattr(encoder, "identity", type(encoder).__name__)
        super().__init__(
            encoder,
            catalog,
            history_items=history_items,
            name=name or f"summary:{summarizer.llm.name}+{identity}",
        )
        self.summarizer = summarizer
        self.llm = summarizer.llm

    def query_text(self, sample: ListSample) -> str:
        summary = self.summarizer.summary(sample.history[-self.history_items :])
        return summary or super().query_text(sample)

    def answer(self, sample: ListSample, candidates: list[int] | None, k: int) -> ListAnswer:
        summary = self.summarizer.summary(sample.history[-self.history_items :])
        return ListAnswer(
            positions=self.ranked(sample, candidates, k),
            counts={"summary_fallback": int(not summary)},
            details={"summary": summary},
        )

    def config(self) -> dict[str, Any]:
        return {**super().config(), "summarizer": self.llm.name, "max_tokens": self.summarizer.max_tokens}
