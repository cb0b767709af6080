"""How well an explainer mimics its target model (alignment metrics per task), and judged explanations.

Alignment metrics, each scored on the test examples of one task against what the *target model* did:

- retrieval: ``retrieval_hit@5``, ``retrieval_ndcg@5``: the target's top-1 among the reply's first 5
  valid items;
- ranking: ``ranking_ndcg``: NDCG of the reply's order of the shown items, gain = how high the target
  put each, rescaled so that the reversed order scores 0 and the target's order 1. Raw NDCG with a
  linear gain gives even the reversed order of 5 items 0.72 and a random order 0.86, which hides how
  little a ranking agrees; rescaled, any random order scores 0.5 in expectation, exactly;
- classification: ``classification_accuracy``: the reply's first yes / no equals the target's side;
  ``classification_answered``: the reply says yes or no at all (so a wrong side and no answer differ);
- item_title: ``title_accuracy``: the reply grounds to the item whose vector was shown;
- item_similar: ``similar_overlap``: share of the target's nearest items among the reply's first
  ``k`` distinct items (``k`` = how many the target gave, so listing more cannot raise the score);
- history: ``history_coverage``: share of the user's history among the reply's first ``len(history)``
  distinct items (likewise);
- uid2summary: ``summary_coverage``: share of the summary's facts the reply mentions (whole words, any
  case): each recurring category value and each typical item's title (a catalog without category
  columns has items only). The summary is recomputed from the example's history, as the label was;
- feature2iid: ``feature_accuracy``: the reply's first line grounds to the item, or to another item with
  exactly the same features (several items may share them, and the question cannot tell them apart);
- description2iid: ``description_accuracy``: likewise for the description.

A reply that names nothing scores 0. Replies are parsed like every other list answer in recai
(:func:`recai.evaluate.parsing.parse_item_list`) and grounded in the catalog. Opaque tasks
(``item_title``, ``history``) have no behaviour-mode version, so text-only systems (behaviour mode, the
un-aligned base model) have no value for them.

Explanations: :func:`why_cases` picks (user, item) pairs from test users, half from the target's top
share and half from its bottom share; :func:`decision_facts` states what the target actually did (rank,
score, side) and the item's catalog facts, which the evaluator's :class:`~recai.evaluate.judge.PairwiseJudge`
receives as ground truth when it compares two systems' explanations.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recai.data.errors import plain_value
from recai.evaluate.generative import evaluate_batches, single_target_scores
from recai.evaluate.parsing import ListGrounder, parse_item_list
from recai.explain.examples import ExplainExample, item_slot, user_slot
from recai.explain.profiles import mentions, user_summary
from recai.explain.render import Renderer
from recai.explain.tasks import EXPLAIN_TASKS, TEST_TASKS, ItemFromText
from recai.llm.batch import BatchSettings
from recai.llm.prompting import render_prompt

METRICS: dict[str, tuple[str, ...]] = {
    "retrieval": ("retrieval_hit@5", "retrieval_ndcg@5"),
    "ranking": ("ranking_ndcg",),
    "classification": ("classification_accuracy", "classification_answered"),
    "item_title": ("title_accuracy",),
    "item_similar": ("similar_overlap",),
    "history": ("history_coverage",),
    "uid2summary": ("summary_coverage",),
    "feature2iid": ("feature_accuracy",),
    "description2iid": ("description_accuracy",),
}
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def token_budget(task: str, k: int = 5) -> int:
    """New tokens enough for a task's answer: a few words for classification ("Yes, it would."), a title,
    or a list."""
    if task == "classification":
        return 8
    if task in ("item_title", "feature2iid", "description2iid"):
        return 32
    if task == "uid2summary":
        return 128
    return 16 + 24 * k


def ranking_ndcg(reply_order: Sequence[Any], target_order: Sequence[Any]) -> float:
    """DCG of ``reply_order`` with gain n - rank in ``target_order`` (items not in it gain nothing),
    rescaled between the reversed order (0) and the target's order (1); a reply that leaves items out
    can fall below the reversed order and is clipped to 0. One item: 1 when named first, else 0."""
    n = len(target_order)
    if n == 0:
        return 0.0
    gain = {item: float(n - r) for r, item in enumerate(target_order)}
    dcg = sum(gain.get(item, 0.0) / math.log2(i + 2) for i, item in enumerate(reply_order[:n]))
    ideal = sum(float(n - r) / math.log2(r + 2) for r in range(n))
    worst = sum(float(r + 1) / math.log2(r + 2) for r in range(n))
    if ideal == worst:
        return 1.0 if dcg >= ideal else 0.0
    return min(1.0, max(0.0, (dcg - worst) / (ideal - worst)))


class AlignmentScorer:
    """Scores one reply to one test example (see the module's list).

    One scorer for every alignment task, so an explainer and its references are measured alike.

    Args:
        catalog: The catalog the reply's titles are grounded to.
    """

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog
        self.grounder = ListGrounder(catalog)

    def _items(
        self, reply: str, *, candidates: Sequence[Any] | None = None, seen: Sequence[Any] = ()
    ) -> list[Any]:
        names = parse_item_list(reply)
        grounded = self.grounder.ground(names, candidates=list(candidates) if candidates else None, seen=seen)
        return [plain_value(i) for i in grounded.items]

    def score(self, example: ExplainExample, reply: str) -> dict[str, float]:
        task = example.task
        if task == "retrieval":
            items = self._items(reply, seen=example.history)
            s = single_target_scores(items, example.items[0], [5])
            return {"retrieval_hit@5": s["hit@5"], "retrieval_ndcg@5": s["ndcg@5"]}
        if task == "ranking":
            items = self._items(reply, candidates=example.candidates)
            return {"ranking_ndcg": ranking_ndcg(items, list(example.items))}
        if task == "classification":
            found = _YES_NO.search(reply)
            said = found.group(1).lower() if found else None
            return {
                "classification_accuracy": float(said == example.label),
                "classification_answered": float(said is not None),
            }
        if task == "item_title":
            return {"title_accuracy": float(self._first_line_item(reply) == example.items[0])}
        if task in EXPLAIN_TASKS and issubclass(EXPLAIN_TASKS[task], ItemFromText):
            named = self._first_line_item(reply)
            right = named == example.items[0]
            if named is not None and not right:  # an item with the same text is as right
                profile = EXPLAIN_TASKS[task].profile
                positions = self.catalog.index_of([named, example.items[0]])
                right = profile(self.catalog, int(positions[0])) == profile(self.catalog, int(positions[1]))
            return {METRICS[task][0]: float(right)}
        if task == "uid2summary":
            history = [int(p) for p in self.catalog.index_of(list(example.history))]
            facts = user_summary(self.catalog, history).facts(self.catalog)
            said = sum(mentions(reply, spellings) for spellings in facts)
            return {"summary_coverage": said / max(1, len(facts))}
        if task == "item_similar":
            wanted = set(example.items)
            items = set(_first_distinct(self._items(reply), len(wanted)))
            return {"similar_overlap": len(items & wanted) / max(1, len(wanted))}
        if task == "history":
            wanted = set(example.items)
            items = set(_first_distinct(self._items(reply), len(wanted)))
            return {"history_coverage": len(items & wanted) / max(1, len(wanted))}
        raise ValueError(f"task '{task}' has no alignment metric (scored tasks: {', '.join(TEST_TASKS)})")

    def _first_line_item(self, reply: str) -> Any:
        """The item the reply's first line grounds to (a plain id), or None."""
        first = reply.strip().splitlines()[0] if reply.strip() else ""
        grounded = self.catalog.ground(first).item_id if first else None
        return plain_value(grounded) if grounded is not None else None


def _first_distinct(items: Sequence[Any], k: int) -> list[Any]:
    """The first ``k`` distinct items, in reply order."""
    return list(dict.fromkeys(items))[:k]


def evaluate_alignment(
    explainer: Any,
    examples: Sequence[ExplainExample],
    *,
    mode: str | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    skip_ids: set[str] | frozenset[str] = frozenset(),
    batch_size: int = 8,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """One scored record per test example the explainer's mode applies to (and not in ``skip_ids``)."""
    renderer = Renderer(explainer.catalog, mode or explainer.mode)
    scorer = AlignmentScorer(explainer.catalog)
    pending = [e for e in examples if e.id not in skip_ids and renderer.applies(e) and e.task in METRICS]
    by_task: dict[str, list[ExplainExample]] = {}
    for e in pending:
        by_task.setdefault(e.task, []).append(e)
    # a task's replies get the budget of its longest answer
    budgets = {task: token_budget(task, max(len(e.items) for e in group)) for task, group in by_task.items()}

    def evaluate(offset: int, batch: Sequence[ExplainExample]) -> Iterator[dict[str, Any]]:
        task = batch[0].task
        rendered = [renderer.render(e, with_answer=False) for e in batch]
        replies = explainer.generate(rendered, max_new_tokens=budgets[task], batch_size=batch_size)
        for example, reply in zip(batch, replies, strict=True):
            yield {"id": example.id, "task": task, "reply": reply, "scores": scorer.score(example, reply)}

    return evaluate_batches(
        list(by_task.values()),
        batch_size,
        evaluate,
        desc=f"aligning ({explainer.name})",
        on_record=on_record,
        progress=progress,
    )


def alignment_metrics(records: Sequence[dict[str, Any]], *, seed: int = 0) -> dict[str, Any]:
    """A metrics.json document: one mean and interval per metric (each metric belongs to one task)."""
    from recai.evaluate.report import metrics_document

    counts: dict[str, int] = {}
    for r in records:
        counts[r["task"]] = counts.get(r["task"], 0) + 1
    return metrics_document("explain", records, seed=seed, extra={"tasks": counts})


def rescore_records(run: Any, examples: Sequence[ExplainExample], catalog: Any) -> int:
    """Recompute the scores of ``run``'s recorded replies; rewrite the records if any changed.

    Returns how many records changed. Records of examples not in ``examples`` are kept as they are.
    """
    scorer = AlignmentScorer(catalog)

    def fields(record: dict[str, Any], example: ExplainExample) -> dict[str, Any] | None:
        return {"scores": scorer.score(example, record["reply"])} if "reply" in record else None

    return int(run.update_records({e.id: e for e in examples}, fields))


def run_alignment(
    explainer: Any,
    examples: Sequence[ExplainExample],
    folder: str | Path,
    *,
    run_config: dict[str, Any] | None = None,
    batch_size: int = 8,
    resume: bool = True,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate into a resumable run folder (:class:`recai.evaluate.runs.RunFolder`); the metrics document.

    Replies already recorded are rescored with the current scorer before the metrics are computed (and
    the records rewritten where a score changed), so a corrected metric applies to earlier runs without
    asking the model again.
    """
    from recai.evaluate.runs import RunFolder

    config = {"system": {"name": explainer.name, "mode": explainer.mode}, **(run_config or {})}
    with RunFolder.open(folder, task="explain", config=config, resume=resume, overwrite=overwrite) as run:
        rescore_records(run, examples, explainer.catalog)
        evaluate_alignment(
            explainer,
            examples,
            on_record=run.append,
            skip_ids=run.done_ids(),
            batch_size=batch_size,
            progress=progress,
        )
        wanted = {e.id for e in examples}
        metrics = alignment_metrics([r for r in run.records() if r["id"] in wanted])
        run.write_metrics(metrics)
        run.write_report()
    return metrics


# ------------------------------------------------------------------ explanations
@dataclass(frozen=True)
class WhyCase:
    """A user (by history) and an item the target ranks high or low for them.

    Attributes:
        id: The case's id in the run folder.
        user: The user id.
        history: The ids of the user's items, oldest first.
        item: The id of the item the explainer is asked about.
    """

    id: str
    user: Any
    history: tuple[Any, ...]
    item: Any

    def example(self, noun: str = "item") -> ExplainExample:
        """The question as an example without an answer slot filled (a placeholder answer is dropped)."""
        prompt = render_prompt(
            "why",
            package="recai.explain",
            user=user_slot(),
            item=item_slot(self.item),
            noun=noun,
            nouns=f"{noun}s",
        )
        return ExplainExample(
            id=self.id,
            task="why",
            messages=({"role": "user", "content": prompt}, {"role": "assistant", "content": "-"}),
            user=self.user,
            history=self.history,
            items=(self.item,),
        )


def why_cases(
    examples: Sequence[ExplainExample],
    target: Any,
    catalog: Any,
    *,
    n: int = 20,
    top_share: float = 0.1,
    seed: int = 0,
) -> list[WhyCase]:
    """``n`` cases from distinct test users: alternately a top-share and a bottom-half item."""
    rng = np.random.default_rng(seed)
    users: dict[Any, tuple[Any, ...]] = {}
    for e in examples:
        if e.user is not None and e.history:
            users.setdefault(e.user, e.history)
    cases: list[WhyCase] = []
    for i, (user, history) in enumerate(list(users.items())[:n]):
        positions = [int(p) for p in catalog.index_of(list(history))]
        ranking = target.ranking(positions)
        n_top = max(1, int(len(ranking) * top_share))
        pool = ranking[:n_top] if i % 2 == 0 else ranking[len(ranking) // 2 :]
        item = plain_value(catalog.ids[int(pool[int(rng.integers(len(pool)))])])
        cases.append(WhyCase(f"why-{i:04d}", user, tuple(history), item))
    return cases


def target_decision(
    ranking: Sequence[int], position: int, *, top_share: float = 0.1
) -> tuple[int | None, int, bool]:
    """The item's 1-based rank in the target's ``ranking`` (None when it is not ranked: the user has
    it), the ranking's length, and whether that rank is within the top share (the target recommends)."""
    n = len(ranking)
    rank = list(ranking).index(position) + 1 if position in ranking else None
    return rank, n, rank is not None and rank <= max(1, int(n * top_share))


def decision_facts(
    target: Any, catalog: Any, history: Sequence[Any], item: Any, *, top_share: float = 0.1
) -> str:
    """What the target model did for this user and item, and the item's catalog facts (for the judge)."""
    positions = [int(p) for p in catalog.index_of(list(history))]
    ranking = [int(p) for p in target.ranking(positions)]
    position = int(catalog.index_of([item])[0])
    rank, n, recommends = target_decision(ranking, position, top_share=top_share)
    if rank is None:
        decision = "The item is already in the user's history, so the recommender does not rank it."
    else:
        side = "would recommend it" if recommends else "would not recommend it"
        decision = f"The recommender ranks this item {rank} of {n} for this user, so it {side}."
    top = ", ".join(catalog.display_title(p) for p in ranking[:3])
    history_titles = "; ".join(catalog.display_title(p) for p in positions)
    return (
        f"{decision}\nIts top 3 for this user: {top}.\nThe user's history (oldest first): {history_titles}.\n"
        f"The item: {catalog.render(position, by_position=True, max_chars=400)}"
    )


def explain_cases(
    explainer: Any, cases: Sequence[WhyCase], *, noun: str = "item", max_new_tokens: int = 128
) -> list[str]:
    """Each case's explanation by ``explainer`` in its own mode."""
    renderer = Renderer(explainer.catalog, explainer.mode)
    rendered = [renderer.render(c.example(noun), with_answer=False) for c in cases]
    return explainer.generate(rendered, max_new_tokens=max_new_tokens)


def decision_judge(llm: Any, *, seed: int = 0) -> Any:
    """The evaluator's pairwise judge for explanations of a decision: faithfulness to what the target
    did, informativeness, helpfulness (not persuasiveness: half of the cases are items it rejects)."""
    from recai.evaluate.judge import PairwiseJudge

    return PairwiseJudge(llm, kind="decision", seed=seed)


def judge_explanations(
    cases: Sequence[WhyCase],
    answers_a: Sequence[str],
    answers_b: Sequence[str],
    judge: Any,
    target: Any,
    catalog: Any,
    *,
    noun: str = "item",
    top_share: float = 0.1,
    progress: bool = False,
    batch: BatchSettings | None = None,
) -> dict[str, Any]:
    """Pairwise verdicts (A against B) with the target's decision and the item facts given to the judge.

    ``judge`` should be a ``decision`` judge (:func:`decision_judge`), which scores faithfulness to the
    target's decision; ``top_share`` must be the data's, so the stated decision is the labels' one.
    ``batch`` sets how many cases are judged at once (verdicts stay in case order) and a budget.
    """
    from recai.evaluate.judge import JudgeItem, evaluate_pairwise, summarize_verdicts

    behaviour = Renderer(catalog, "behaviour")
    items = [
        JudgeItem(
            id=c.id,
            prompt=behaviour.render(c.example(noun), with_answer=False).messages[-1]["content"],
            answer_a=a,
            answer_b=b,
            facts=decision_facts(target, catalog, c.history, c.item, top_share=top_share),
        )
        for c, a, b in zip(cases, answers_a, answers_b, strict=True)
    ]
    verdicts = evaluate_pairwise(items, judge, progress=progress, batch=batch)
    return {"summary": summarize_verdicts(verdicts), "verdicts": [v.as_record() for v in verdicts]}
