"""The responder: one streamed LLM call that sees the request, the final items with their key facts and
the tools' facts, and writes the answer; and the grounding check that keeps that answer honest.

The check runs sentence by sentence while the answer streams: every title-like span (bold, quoted,
or "Title (Year)") is grounded against the catalog. A sentence that names a catalog item the tools did
not return (and the user did not mention), or a "Title (Year)" that is in no catalog at all, is held
back, so hallucinated titles never reach the user. What was removed is recorded in the trace.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from recai.data.catalog import Catalog
from recai.llm.base import ChatModel
from recai.llm.prompting import render_prompt

_SPANS = [
    re.compile(r"\*\*(.+?)\*\*"),
    re.compile(r"(?<!\w)\*(?!\s)(.+?)(?<!\s)\*(?!\w)"),
    re.compile(r"[\"“](.+?)[\"”]"),
    re.compile(r"\b([A-Z0-9][\w'’:&,.!? -]{0,80}?\(\d{4}\))"),
]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass
class GroundingReport:
    removed: list[str] = field(default_factory=list)  # sentences held back
    unknown_titles: list[str] = field(default_factory=list)
    off_list_titles: list[str] = field(default_factory=list)


class GroundingCheck:
    """Decides, per sentence, whether every title it names is allowed."""

    def __init__(self, catalog: Catalog, allowed_positions: set[int], threshold: float = 90.0) -> None:
        self.catalog = catalog
        self.allowed = allowed_positions
        self.threshold = threshold
        self.report = GroundingReport()

    def sentence_ok(self, sentence: str) -> bool:
        ok = True
        for pattern in _SPANS:
            for match in pattern.finditer(sentence):
                span = match.group(1).strip(" .,:;!?")
                if len(span) < 2:
                    continue
                has_year = bool(re.search(r"\(\d{4}\)$", span))
                g = self.catalog.ground(span, threshold=self.threshold)
                if g.resolved:
                    pos = int(self.catalog.index_of([g.item_id])[0])
                    if pos not in self.allowed:
                        self.report.off_list_titles.append(span)
                        ok = False
                elif has_year or pattern.pattern.startswith(r"\*\*"):
                    # "Title (Year)" or a bold title that is in no catalog: a hallucinated item. Bold
                    # emphasis that is not a title ("**great**") is rare in answers told to bold titles.
                    near = self.catalog.ground(span, threshold=0)
                    if has_year or (near.alternatives and near.alternatives[0].score >= 60):
                        self.report.unknown_titles.append(span)
                        ok = False
        if not ok:
            self.report.removed.append(sentence.strip())
        return ok

    def filter_stream(self, chunks: Iterator[str]) -> Iterator[str]:
        """Pass through complete sentences that pass the check; hold back the rest."""
        buffer = ""
        for chunk in chunks:
            buffer += chunk
            parts = _SENTENCE_END.split(buffer)
            seps = _SENTENCE_END.findall(buffer)
            for sentence, sep in zip(parts[:-1], seps, strict=True):
                if self.sentence_ok(sentence):
                    yield sentence + sep
            buffer = parts[-1]
        if buffer.strip() and self.sentence_ok(buffer):
            yield buffer


class Responder:
    def __init__(self, llm: ChatModel, catalog: Catalog, *, item_noun: str, max_sentences: int = 4) -> None:
        self.llm = llm
        self.catalog = catalog
        example = catalog.display_title(0) if len(catalog) else "Title"
        self.system = render_prompt(
            "responder_system",
            package="recai.agent",
            item_noun=item_noun,
            max_sentences=max_sentences,
            example_title=example,
        )

    def messages(self, request: str, dialogue: str, facts: str, items: str) -> list[dict[str, str]]:
        user = render_prompt(
            "responder_user",
            package="recai.agent",
            dialogue=dialogue or "(none)",
            request=request,
            facts=facts or "(none)",
            items=items or "(no items)",
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def stream(
        self,
        messages: list[dict[str, str]],
        check: GroundingCheck,
        max_tokens: int = 160,
    ) -> Iterator[str]:
        # a small model sometimes goes on to write the next section of its own prompt: stop there
        stop = ["What the tools found:", "Results:", "User's message:", "Conversation so far:"]
        yield from check.filter_stream(
            self.llm.stream(messages, max_tokens=max_tokens, temperature=0.0, stop=stop)
        )
