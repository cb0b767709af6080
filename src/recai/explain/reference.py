"""A model-free reference for the alignment metrics: answer from how often the target recommended each
item in the *training* examples, ignoring the user.

An LLM that only learned the target's popular answers scores about what this reference scores, so an
aligned mode has shown per-user alignment only where it beats it. It answers the text tasks (retrieval,
ranking, classification, similar items); opaque tasks (title and history from an embedding) have no
model-free answer and get no value, as for the un-aligned base model.

- retrieval: the items most often the target's top-1 in training (ties: most often in its top-k), the
  user's own history left out;
- ranking: the shown candidates by how often each was in the target's training top-k lists;
- classification: ``yes`` when the item was in at least ``t`` training top-k lists, ``t`` the threshold
  that is most accurate on the *training* classification examples;
- item_similar: the items most often among the target's nearest neighbours in training, the asked-about
  item left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recai.data.errors import plain_value
from recai.explain.evaluation import METRICS, AlignmentScorer, alignment_metrics
from recai.explain.examples import SLOT, ExplainExample

#: Scored tasks a model-free system can answer (the opaque ones need an embedding reader).
REFERENCE_TASKS: tuple[str, ...] = ("retrieval", "ranking", "classification", "item_similar")


def _key(item: Any) -> str:
    """Ids compare as text: slots in prompts hold ids as text, examples hold them as JSON values."""
    return str(plain_value(item))


class AnswerPopularityReference:
    """Replies to test examples from the target's answer frequencies in training examples (no LLM).

    It is the floor an explainer must beat: what answering from popularity alone already achieves.

    Args:
        train: The training examples whose answers are counted.
        catalog: The catalog whose titles the replies name.
        k: How many items a retrieval reply names.
    """

    name = "answer-popularity"
    mode = "reference"

    def __init__(self, train: Sequence[ExplainExample], catalog: Any, *, k: int = 5) -> None:
        self.catalog = catalog
        self.k = k
        self.top1: Counter[str] = Counter()
        self.in_top_k: Counter[str] = Counter()
        self.similar: Counter[str] = Counter()
        self.ids: dict[str, Any] = {}
        for e in train:
            if e.task == "retrieval" and e.items:
                self.top1[_key(e.items[0])] += 1
                self.in_top_k.update(_key(i) for i in e.items)
            elif e.task == "item_similar":
                self.similar.update(_key(i) for i in e.items)
            for i in e.items:
                self.ids.setdefault(_key(i), i)
        if not self.in_top_k:
            raise ValueError("the training examples hold no retrieval answers to count")
        self.threshold = self._fit_threshold([e for e in train if e.task == "classification" and e.label])

    def _fit_threshold(self, examples: Sequence[ExplainExample]) -> int:
        """The count threshold most accurate on training labels (ties: the smallest)."""
        if not examples:
            return 1
        counts = [self.in_top_k[_key(e.items[0])] for e in examples]
        best, best_right = 1, -1
        for t in sorted({0, *counts, max(counts) + 1}):
            right = sum((c >= t) == (e.label == "yes") for c, e in zip(counts, examples, strict=True))
            if right > best_right:
                best, best_right = t, right
        return best

    def _titles(self, items: Sequence[Any]) -> str:
        positions = self.catalog.index_of(list(items))
        return "\n".join(f"{n}. {self.catalog.display_title(int(p))}" for n, p in enumerate(positions, 1))

    def reply(self, example: ExplainExample) -> str:
        """The reference's answer to one test example, in the form the aligned models are trained on."""
        task = example.task
        if task == "retrieval":
            seen = {_key(i) for i in example.history}
            ranked = sorted(self.in_top_k, key=lambda i: (-self.top1[i], -self.in_top_k[i], i))
            return self._titles([self.ids[i] for i in ranked if i not in seen][: self.k])
        if task == "ranking":
            order = sorted(example.candidates, key=lambda c: (-self.in_top_k[_key(c)], -self.top1[_key(c)]))
            return self._titles(order)
        if task == "classification":
            return "Yes." if self.in_top_k[_key(example.items[0])] >= self.threshold else "No."
        if task == "item_similar":
            asked = {m.group(2) for m in SLOT.finditer(" ".join(m["content"] for m in example.prompt))}
            pool = self.similar or self.in_top_k
            ranked = sorted(pool, key=lambda i: (-pool[i], i))
            return self._titles([self.ids[i] for i in ranked if i not in asked][: max(1, len(example.items))])
        raise ValueError(f"the reference answers {', '.join(REFERENCE_TASKS)}, not '{task}'")


def reference_alignment(
    train: Sequence[ExplainExample],
    test: Sequence[ExplainExample],
    catalog: Any,
    *,
    k: int = 5,
    folder: str | Path | None = None,
    run_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The reference's metrics document on the test examples it can answer (same scorer as the LLMs);
    with ``folder``, also written as a run folder like an explainer's (records, metrics, report)."""
    reference = AnswerPopularityReference(train, catalog, k=k)
    scorer = AlignmentScorer(catalog)
    records = []
    for e in test:
        if e.task not in REFERENCE_TASKS or e.task not in METRICS or e.opaque:
            continue
        reply = reference.reply(e)
        records.append({"id": e.id, "task": e.task, "reply": reply, "scores": scorer.score(e, reply)})
    document = alignment_metrics(records)
    document.setdefault("extra", {})["classification_threshold"] = reference.threshold
    if folder is not None:
        from recai.evaluate.runs import RunFolder

        config = {"system": {"name": reference.name, "mode": reference.mode, "k": k}, **(run_config or {})}
        with RunFolder.open(folder, task="explain", config=config, resume=False, overwrite=True) as run:
            for record in records:
                run.append(record)
            run.write_metrics(document)
            run.write_report()
    return document
