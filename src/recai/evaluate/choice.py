"""Multiple-choice recommendation: a history, lettered candidates, and the model answers one letter.

This is RecLM-eval's ``cf_ranking_mc`` / ``seq_ranking_mc`` on recai's samples. A letter is cheaper to
produce and to check than a ranked list of titles, so the task isolates the model's judgement from its
ability to copy titles, and it runs on a small model in a few tokens per user.

Protocol (one sample per test user of a split, as :func:`recai.evaluate.generative.build_samples`):
- candidates: the held-out target plus ``n_candidates - 1`` negatives (uniform or popularity-weighted,
  never from the user's log), lettered ``A``, ``B``, ... in a seeded order;
- ``kind="seq"``: the user's most recent ``history_len`` items in time order (refused on a log without
  timestamps, where "next" means nothing); ``kind="cf"``: a seeded random sample of ``history_len`` of
  the user's items shown in a seeded random order, so the prompt carries no recency signal;
- each answer is bucketed: ``valid`` (exactly one letter of a shown option), ``invalid`` (no letter, or
  one outside the options) or ``several`` (more than one option named); accuracy@1 counts a valid
  answer naming the target, so an invalid answer scores 0 and is counted, never repaired;
- position bias: with ``orders > 1`` every sample is answered under that many candidate orders; the
  score is the mean over orders, and the report adds how often the same item is chosen under every
  order, accuracy by the target's letter, and how often each letter is answered (a model with no
  letter preference answers each about equally often, because the target's letter is uniform).

Classic recommenders, encoders and ``random`` answer by ranking the candidates: their top candidate is
their choice, so every system is scored by one rule.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recai.data.catalog import Catalog
from recai.data.errors import plain_value
from recai.data.splits import Split
from recai.evaluate.generative import (
    ListAnswer,
    ListEvaluator,
    ListSample,
    ListSampling,
    ListSystem,
    build_samples,
    user_seed,
)
from recai.llm.base import ChatModel
from recai.llm.prompting import render_prompt
from recai.llm.usage import track

KINDS = ("cf", "seq")
LETTERS = string.ascii_uppercase
OUTCOMES = ("valid", "invalid", "several")
#: The sampling a multiple-choice run uses unless told otherwise: ten lettered options per user.
CHOICE_SAMPLING = ListSampling(n_candidates=10)

_WHOLE = re.compile(r"^\W*([A-Za-z])\W*$")
_ANSWER_PHRASE = re.compile(r"\b(?i:answer|option|choice)\s*(?i:is|would be|:)?\s*[\(\[]?([A-Z])(?![\w'])")
_LINE_MARKER = re.compile(r"(?m)^\W*?[\(\[]?([A-Z])[\)\].:]")
_BARE = re.compile(r"(?<![\w'])([A-Z])(?![\w'])")
_ARTICLE = re.compile(r"(?<![\w'])[AI] +[a-z]")


@dataclass(frozen=True)
class ParsedChoice:
    """What an answer names.

    Attributes:
        letters: the distinct option letters the answer names, in the order first named.
        outcome: ``valid`` (exactly one shown option), ``invalid`` (none, or a letter past the last
            option) or ``several``.
    """

    letters: tuple[str, ...]
    outcome: str

    def index(self) -> int | None:
        """The chosen option's index for a valid answer, else None."""
        return LETTERS.index(self.letters[0]) if self.outcome == "valid" else None


def parse_choice(text: str, n_options: int) -> ParsedChoice:
    """The option letters ``text`` names, read by the first rule that finds any.

    The rules, most specific first: the whole answer is one letter (``"C"``, ``"(c)."``); an answer
    phrase (``"The answer is C"``); options marking lines (``"C) Heat"``); capital letters standing
    alone, where "A" and "I" followed by a lowercase word are words, not options. A title without its
    letter is invalid: the task asks for the letter.
    """
    if n_options < 1 or n_options > len(LETTERS):
        raise ValueError(f"n_options must be between 1 and {len(LETTERS)}, got {n_options}")
    cleaned = text.replace("*", "").replace("`", "").strip()
    whole = _WHOLE.match(cleaned)
    if whole:
        found = [whole.group(1).upper()]
    else:
        found = []
        for rule in (_ANSWER_PHRASE, _LINE_MARKER):
            found = [m.group(1).upper() for m in rule.finditer(cleaned)]
            if found:
                break
        if not found:
            words = {m.start() for m in _ARTICLE.finditer(cleaned)}
            found = [m.group(1) for m in _BARE.finditer(cleaned) if m.start() not in words]
    letters = tuple(dict.fromkeys(found))
    if len(letters) > 1:
        return ParsedChoice(letters, "several")
    if not letters or LETTERS.index(letters[0]) >= n_options:
        return ParsedChoice(letters, "invalid")
    return ParsedChoice(letters, "valid")


def build_choice_samples(
    split: Split,
    sampling: ListSampling = CHOICE_SAMPLING,
    *,
    kind: str = "seq",
    seed: int = 0,
    timed: bool = True,
) -> list[ListSample]:
    """Multiple-choice samples for ``kind`` ('cf' or 'seq'); ``timed`` says whether the log has times."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not '{kind}'")
    if kind == "seq" and not timed:
        raise ValueError(
            "kind 'seq' asks what comes next, but this dataset's log has no timestamps; use kind 'cf'"
        )
    if not 2 <= sampling.n_candidates <= len(LETTERS):
        raise ValueError(f"n_candidates must be between 2 and {len(LETTERS)}, got {sampling.n_candidates}")
    samples = build_samples(split, sampling, task="ranking", seed=seed)
    history_len = sampling.history_len
    if kind == "cf":
        for sample in samples:
            seen = sample.excluded
            rng = np.random.default_rng(user_seed(seed + 2, sample.user))
            size = min(history_len, len(seen)) if history_len > 0 else 0
            sample.history = [int(p) for p in rng.choice(seen, size=size, replace=False)] if size else []
    return samples


class LLMChoiceSystem(ListSystem):
    """A chat model shown the history and lettered candidates, asked for one letter (zero-shot).

    Args:
        llm: the model under test; replies are parsed by :func:`parse_choice`.
        catalog: renders the history and the candidates as display titles.
        kind: ``cf`` (an unordered set of liked items) or ``seq`` (oldest first, "what comes next").
        item_noun: what the catalog's items are called in the prompt ("movies", "artists").
        max_tokens: the reply budget; a letter needs a few tokens, the rest lets a chatty model finish.
        name: the system's name in reports (default ``llm:<model name>``).
    """

    def __init__(
        self,
        llm: ChatModel,
        catalog: Catalog,
        *,
        kind: str = "seq",
        item_noun: str = "items",
        max_tokens: int = 32,
        name: str | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not '{kind}'")
        self.llm = llm
        self.catalog = catalog
        self.kind = kind
        self.item_noun = item_noun
        self.max_tokens = max_tokens
        self.name = name or f"llm:{llm.name}"

    def prompt(self, sample: ListSample, candidates: list[int]) -> str:
        titles = [self.catalog.display_title(p) for p in sample.history]
        history = "\n".join(f"- {t}" for t in titles) or "(nothing yet)"
        options = "\n".join(
            f"{LETTERS[i]}. {self.catalog.display_title(p)}" for i, p in enumerate(candidates)
        )
        return render_prompt(
            f"choice_{self.kind}",
            package="recai.evaluate",
            item_noun=self.item_noun,
            history=history,
            candidates=options,
            n=str(len(candidates)),
        )

    def answer(self, sample: ListSample, candidates: list[int] | None, k: int) -> ListAnswer:
        if candidates is None:
            raise ValueError("a multiple-choice system needs candidates")
        messages = [{"role": "user", "content": self.prompt(sample, candidates)}]
        with track("evaluated"):
            out = self.llm.complete(messages, max_tokens=self.max_tokens, temperature=0.0)
        return ListAnswer(text=out.text)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "llm": self.llm.name, "kind": self.kind, "max_tokens": self.max_tokens}


class ChoiceEvaluator(ListEvaluator):
    """Runs any ListSystem on multiple-choice samples and scores accuracy@1 with answer buckets.

    A system that answers with text is parsed for letters; one that answers with item positions chooses
    its first position among the candidates. Candidate orders, resume, concurrency and budgets work as
    for :class:`ListEvaluator`, whose ``run`` this uses.

    Args:
        catalog: the catalog the samples index.
        orders: candidate orders per sample (1 = the sample's own order); more measure position bias.
        seed: seeds the extra candidate orders.
    """

    def __init__(self, catalog: Catalog, *, orders: int = 1, seed: int = 0) -> None:
        super().__init__(catalog, k=1, ks=(1,), orders=orders, seed=seed)

    def evaluate_sample(self, system: ListSystem, sample: ListSample) -> dict[str, Any]:
        catalog = self.catalog
        if not sample.candidates:
            raise ValueError(f"sample {sample.id}: a multiple-choice sample needs candidates")
        runs = []
        for order in self.candidate_orders(sample):
            candidates = list(order or ())
            answer = system.answer(sample, candidates, 1)
            if answer.positions is not None:
                shown = [p for p in answer.positions if p in set(candidates)]
                letters = (LETTERS[candidates.index(shown[0])],) if shown else ()
                parsed = ParsedChoice(letters, "valid" if shown else "invalid")
            else:
                parsed = parse_choice(answer.text or "", len(candidates))
            index = parsed.index()
            chosen = candidates[index] if index is not None else None
            run = {
                "candidates": catalog.ids[candidates].tolist(),
                "target_letter": LETTERS[candidates.index(sample.target)],
                "raw": answer.text,
                "error": answer.error,
                "letters": list(parsed.letters),
                "outcome": parsed.outcome,
                "chosen": None if chosen is None else plain_value(catalog.ids[chosen]),
                "correct": chosen == sample.target,
            }
            runs.append(run)
        record: dict[str, Any] = {
            "id": sample.id,
            "user": plain_value(sample.user),
            "history": catalog.ids[sample.history].tolist(),
            "target": plain_value(catalog.ids[sample.target]),
            "scores": {"accuracy@1": float(np.mean([r["correct"] for r in runs]))},
            "counts": {name: sum(r["outcome"] == name for r in runs) for name in OUTCOMES},
            "orders": runs,
        }
        if len(runs) > 1:
            chosen_items = [r["chosen"] for r in runs]
            record["top1_agree"] = float(chosen_items[0] is not None and len(set(chosen_items)) == 1)
        return record


def summarize_choice_records(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Answer buckets, letter preferences and position-bias consistency, for the metrics file."""
    answers = [run for record in records for run in record["orders"]]
    counts = {name: sum(run["outcome"] == name for run in answers) for name in OUTCOMES}
    out: dict[str, Any] = {"counts": counts, "answers": len(answers)}
    if answers:
        out["rates"] = {f"{name}_rate": round(counts[name] / len(answers), 4) for name in OUTCOMES}
        chosen_letters = Counter(run["letters"][0] for run in answers if run["outcome"] == "valid")
        n_options = len(answers[0]["candidates"])
        out["answer_letters"] = {letter: chosen_letters.get(letter, 0) for letter in LETTERS[:n_options]}
        by_target: dict[str, list[bool]] = {}
        for run in answers:
            by_target.setdefault(run["target_letter"], []).append(bool(run["correct"]))
        out["accuracy_by_target_letter"] = {
            letter: {"accuracy": round(float(np.mean(hits)), 4), "n": len(hits)}
            for letter, hits in sorted(by_target.items())
        }
    with_orders = [r for r in records if "top1_agree" in r]
    if with_orders:
        out["position_bias"] = {
            "orders": len(records[0]["orders"]),
            "top1_agreement": round(float(np.mean([r["top1_agree"] for r in with_orders])), 4),
        }
    errors = sum(1 for run in answers if run.get("error"))
    if errors:
        out["answers_with_errors"] = errors
    return out
