"""The responder: one streamed LLM call that sees the request, the final items with their key facts and
the tools' facts, and writes the answer; and the grounding check that keeps that answer honest.

The check runs sentence by sentence while the answer streams: every title-like span (bold, quoted,
or "Title (Year)") is grounded against the catalog. A sentence that names a catalog item the tools did
not return (and the user did not mention), or a "Title (Year)" that is in no catalog at all, is held
back, so hallucinated titles never reach the user.

Facts get the same treatment: once the check has its evidence (the user's message, the dialogue, the
tools' facts and the item lines the responder was shown), a sentence stating a number (a year, a
runtime, a count) or naming a person (two or more capitalised words) that appears nowhere in that
evidence is held back too: "Heat came out in 2015" cannot survive a lookup that returned 1995, or
nothing. What was removed, and why, is recorded in the trace.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

from recai.data.catalog import Catalog
from recai.llm.base import ChatModel
from recai.llm.prompting import render_prompt

_SPANS = [
    re.compile(r"\*\*(.+?)\*\*"),
    # single-asterisk emphasis, never the inside of a **bold** pair ("**A**, and **B**")
    re.compile(r"(?<![\w*])\*(?![\s*])([^*]+?)(?<![\s*])\*(?![\w*])"),
    re.compile(r"[\"“](.+?)[\"”]"),
    re.compile(r"\b([A-Z0-9][\w'’:&,.!? -]{0,80}?\(\d{4}\))"),
]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?![\w])")
#: Two or more capitalised words in a row ("Christopher Nolan", "Jean-Pierre Jeunet").
_WORD = r"[A-Z][a-z\u00c0-\u024f'’-]+"
_NAME = re.compile(rf"\b{_WORD}(?:\s+(?:de |van |von |da |del |le |la )?{_WORD})+")
_NOT_NAMES = frozenset(
    [
        "the",
        "a",
        "an",
        "i",
        "you",
        "we",
        "they",
        "it",
        "this",
        "that",
        "these",
        "those",
        "here",
        "there",
        "if",
        "my",
        "your",
        "our",
        "their",
        "his",
        "her",
        "its",
        "and",
        "or",
        "but",
        "so",
        "also",
        "both",
        "each",
        "all",
        "some",
        "any",
        "most",
        "more",
        "as",
        "for",
        "with",
        "from",
        "of",
        "in",
        "on",
        "at",
        "by",
        "to",
        "yes",
        "no",
        "hello",
        "hi",
        "thanks",
        "thank",
        "sure",
        "great",
        "happy",
        "enjoy",
    ]
)


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def _small(text: str) -> bool:
    return text.isdigit() and int(text) <= 10


def _number_key(text: str) -> str:
    return text.replace(",", "").rstrip("0").rstrip(".") if "." in text else text.replace(",", "")


@dataclass
class GroundingReport:
    """What the grounding check held back or flagged in an answer, for the trace.

    Attributes:
        removed: sentences held back.
        unknown_titles: titles named that the catalog does not have.
        off_list_titles: catalog titles named that the answer may not name.
        unsupported_facts: numbers and names no tool gave.
    """

    removed: list[str] = field(default_factory=list)  # sentences held back
    unknown_titles: list[str] = field(default_factory=list)
    off_list_titles: list[str] = field(default_factory=list)
    unsupported_facts: list[str] = field(default_factory=list)  # numbers and names no tool gave


class GroundingCheck:
    """Decides, per sentence, whether every title it names is allowed and, once it has evidence, whether
    every number and person's name it states comes from the evidence: an LLM's answer may only say what
    the tools found.

    Args:
        catalog: the catalog whose titles are recognized.
        allowed_positions: the items (positions) the answer may name.
        threshold: how closely a named title must match a catalog title to count as naming it.
    """

    def __init__(self, catalog: Catalog, allowed_positions: set[int], threshold: float = 90.0) -> None:
        self.catalog = catalog
        self.allowed = allowed_positions
        self.threshold = threshold
        self.report = GroundingReport()
        self._evidence: str | None = None
        self._numbers: set[str] = set()

    def add_evidence(self, *texts: str, counts: list[int] | None = None) -> None:
        """What the answer may state facts from; counts (how many items) are allowed as numbers too."""
        joined = "\n".join(t for t in texts if t)
        self._evidence = (self._evidence or "") + "\n" + _folded(joined)
        self._numbers |= {_number_key(m.group(0)) for m in _NUMBER.finditer(joined)}
        self._numbers |= {str(c) for c in counts or []}

    def _facts_ok(self, sentence: str) -> bool:
        if self._evidence is None:
            return True
        # titles were judged above; their words and years are not claims of their own
        text = sentence
        for pattern in _SPANS:
            text = pattern.sub(" ", text)
        # small whole numbers are list markers and counts ("1.", "top 3") far more often than claims
        unsupported = [
            m.group(0)
            for m in _NUMBER.finditer(text)
            if _number_key(m.group(0)) not in self._numbers and not _small(m.group(0))
        ]
        for match in _NAME.finditer(text):
            words = match.group(0).split()
            if words[0].lower() in _NOT_NAMES:
                words = words[1:]
            if len(words) < 2 or any(w.lower() in _NOT_NAMES for w in words):
                continue
            name = re.sub(r"['’]s$", "", " ".join(words))
            if _folded(name) not in self._evidence:
                unsupported.append(name)
        if unsupported:
            self.report.unsupported_facts.extend(unsupported)
            return False
        return True

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
        if ok and not self._facts_ok(sentence):
            ok = False
        if not ok:
            self.report.removed.append(sentence.strip())
        return ok

    def filter_stream(self, chunks: Iterator[str]) -> Iterator[str]:
        """Pass through complete sentences that pass the check; hold back the rest."""
        buffer = ""
        for chunk in chunks:
            buffer += chunk
            sentences, buffer = split_sentences(buffer)
            for sentence, sep in sentences:
                if self.sentence_ok(sentence):
                    yield sentence + sep
        if buffer.strip() and self.sentence_ok(buffer):
            yield buffer


_ABBREVIATION = re.compile(r"\b(?:Dr|Mr|Mrs|Ms|St|Jr|Sr|vs|Vol|No|Mt|Ft|Prof|Capt|Lt|Gen|Sgt)\.$|\b[A-Z]\.$")


def split_sentences(text: str) -> tuple[list[tuple[str, str]], str]:
    """Complete sentences of ``text`` (each with the whitespace after it) and the unfinished rest.

    A full stop does not end a sentence after an abbreviation or an initial ("Dr. Caligari",
    "Samuel L. Jackson"), nor inside a **bold** or quoted title, so a title is never checked in halves."""
    out: list[tuple[str, str]] = []
    start = 0
    pending = ""
    for match in _SENTENCE_END.finditer(text):
        piece = pending + text[start : match.start()]
        start = match.end()
        open_span = piece.count("**") % 2 == 1 or piece.count('"') % 2 == 1
        if "\n" not in match.group(0) and (open_span or _ABBREVIATION.search(piece)):
            pending = piece + match.group(0)
            continue
        out.append((piece, match.group(0)))
        pending = ""
    return out, pending + text[start:]


class Responder:
    """Writes the answer from the tools' results in one streamed LLM call, checked sentence by sentence as
    it streams, so the user reads it as it is written and never reads an item the tools did not return.

    Args:
        llm: the model that writes the answer.
        catalog: the catalog the items come from.
        item_noun: what the items are called in the prompt ("films").
        max_sentences: the longest answer, in sentences.
    """

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
        """The prompt: a fixed system message (served from the prefix cache) and a user message with only
        what this turn has (sections that would be empty are left out: every token read costs time)."""
        user = render_prompt(
            "responder_user",
            package="recai.agent",
            dialogue=f"Conversation so far:\n{dialogue}\n\n" if dialogue else "",
            request=request,
            facts=f"What the tools found:\n{facts}\n\n" if facts else "",
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
