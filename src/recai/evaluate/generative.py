"""Generative ranking and retrieval: a system names items for a user, and we score what it named.

Protocol (one sample per test user of a leave-one-out split):
- the input is the user's most recent ``history_len`` items (train + validation events, oldest first),
  shown to LLMs as titles; classic recommenders get the same items; every item of the user's input log
  (not only the shown ones) is excluded from answers and counted as already seen; the target is the
  user's held-out test item;
- ranking: the target plus ``n_candidates - 1`` negatives, drawn (seeded per user) uniformly or in
  proportion to training popularity from the items that occur in training and that the user never
  interacted with, shown in a seeded random order;
- retrieval: no candidates, the system names ``k`` items from the whole catalog;
- the answer is parsed and grounded (:mod:`recai.evaluate.parsing`), and the metrics are computed on the
  valid items only, in the order given, never padded: Hit@k, NDCG@k (one relevant item:
  ``1 / log2(rank + 2)``) and MRR@k (for the largest k);
- position bias: with ``orders > 1`` every sample is answered under that many candidate orders; the
  per-sample score is the mean over orders, and the report adds how often the top-1 item agrees across
  all orders and the mean top-k overlap between orders.

Classic recommenders answer with item positions directly and go through the same bucketing, so every
system is scored by one rule.
"""

from __future__ import annotations

import hashlib
import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np

from recai.data.catalog import Catalog
from recai.data.errors import plain_value
from recai.data.splits import Split
from recai.evaluate.parsing import GroundedList, ListGrounder, parse_item_list
from recai.llm.base import SchemaError
from recai.llm.batch import BatchSettings, run_batch
from recai.llm.catalog_prompter import CatalogPrompter, title_list
from recai.llm.prompting import render_prompt

if TYPE_CHECKING:
    from recai.evaluate.prepare import DataOptions

DEFAULT_KS = (1, 5, 10, 20)


@dataclass
class ListSample:
    """One user's request: history positions (oldest first), the target position and the candidates.

    Attributes:
        id: The sample's id in the run folder (the user id as text).
        user: The user id as the dataset stores it.
        history: Catalog positions the system is shown (the most recent items), oldest first.
        target: Catalog position of the held-out item.
        candidates: Positions in the order shown; ``None`` for retrieval over the whole catalog.
        seen: Every item of the user's input log, excluded and bucketed as seen; ``None`` means the
            history is all there is.
    """

    id: str
    user: Any
    history: list[int]
    target: int
    candidates: list[int] | None = None
    seen: list[int] | None = None

    @property
    def excluded(self) -> list[int]:
        return self.seen if self.seen is not None else self.history


def user_seed(seed: int, user: Any) -> int:
    """A per-user seed, so one sample does not depend on which other users were drawn."""
    digest = hashlib.sha256(f"{seed}:{user}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


@dataclass(frozen=True)
class ListSampling:
    """Which samples a candidate-list run draws and how its answers are scored: the options ranking,
    retrieval, multiple choice and the knowledge ranker's runs share, with their defaults stated once.
    The seed is the run's data seed (:class:`~recai.evaluate.prepare.DataOptions`), not repeated here.

    Attributes:
        n_users: Test users sampled, a seeded prefix of all of them (a larger value extends a run);
            ``None``: every test user.
        n_candidates: Candidates shown per user in ranking and multiple choice, the target included.
        negatives: How the other candidates are drawn: ``uniform``, or in proportion to training
            ``popularity``.
        history_len: The user's most recent items shown (0: none).
        k: The list length scored in ranking and retrieval (multiple choice scores one letter).
        orders: Candidate orders each sample is answered under (position bias).
    """

    n_users: int | None = 200
    n_candidates: int = 20
    negatives: str = "uniform"
    history_len: int = 20
    k: int = 10
    orders: int = 1


def build_samples(
    split: Split, sampling: ListSampling = ListSampling(), *, task: str = "ranking", seed: int = 0
) -> list[ListSample]:
    """Samples for ``task`` ('ranking' or 'retrieval') from the test users of ``split``."""
    if task not in ("ranking", "retrieval"):
        raise ValueError(f"task must be 'ranking' or 'retrieval', not '{task}'")
    negatives, history_len = sampling.negatives, sampling.history_len
    if negatives not in ("uniform", "popularity"):
        raise ValueError(f"negatives must be 'uniform' or 'popularity', not '{negatives}'")
    history_log = split.train_and_valid()
    users = sorted(split.test.user_ids, key=str)
    # a seeded order of all users, cut at n_users: a larger n_users adds users and keeps the others
    order = np.random.default_rng(seed).permutation(len(users))
    users = [users[i] for i in order[: sampling.n_users if sampling.n_users is not None else len(users)]]
    counts = split.train.item_counts().astype(np.float64)
    samples = []
    for user in users:
        try:
            full = history_log.sequence(user)
        except KeyError:
            full = np.empty(0, dtype=np.int64)
        target = int(split.test.sequence(user)[-1])
        candidates = None
        if task == "ranking":
            rng = np.random.default_rng(user_seed(seed, user))
            blocked = counts == 0  # items absent from training (e.g. removed by a k-core) are no negatives
            blocked[full] = True
            blocked[target] = True
            pool = np.flatnonzero(~blocked)
            n_neg = min(sampling.n_candidates - 1, len(pool))
            if negatives == "uniform":
                chosen = rng.choice(pool, size=n_neg, replace=False)
            else:
                weights = counts[pool] + 1.0  # +1: never-seen items stay possible
                chosen = rng.choice(pool, size=n_neg, replace=False, p=weights / weights.sum())
            shown = np.concatenate([chosen, [target]])
            candidates = rng.permutation(shown).astype(int).tolist()
        samples.append(
            ListSample(
                id=str(user),
                user=user,
                history=[int(i) for i in full[-history_len:]] if history_len > 0 else [],
                target=target,
                candidates=candidates,
                seen=[int(i) for i in full],
            )
        )
    return samples


def list_run_config(
    task: str,
    data: DataOptions,
    system: Any,
    sampling: ListSampling,
    *,
    sasrec_budget_s: float | None,
) -> dict[str, Any]:
    """A ranking, retrieval or multiple-choice (``choice_*``) run's config: what decides its samples and
    scores. ``recai eval`` and ``recai knowledge eval`` write the same keys, so their runs can be
    compared sample by sample (:mod:`recai.evaluate.compare`). Retrieval shows no candidates (its
    candidate options are ``None``), multiple choice scores one letter (its config has no ``k``).
    ``sasrec_budget_s`` is the classic SASRec's training budget, ``None`` for any other system."""
    shown = task != "retrieval"
    scored_k = {} if task.startswith("choice_") else {"k": sampling.k}
    return {
        "task": task,
        **data.as_config(),
        "system": system,
        # volatile: users are a seeded prefix, so a larger n_users extends the run
        "n_users": sampling.n_users,
        "_volatile": ["n_users"],
        "sasrec_budget_s": sasrec_budget_s,
        "n_candidates": sampling.n_candidates if shown else None,
        "negatives": sampling.negatives if shown else None,
        "history_len": sampling.history_len,
        **scored_k,
        "orders": sampling.orders,
    }


@dataclass
class ListAnswer:
    """A system's answer: raw text (LLMs) or item positions (classic recommenders).

    ``counts`` adds the system's own tallies to the record's answer buckets (a ranker that repairs its
    model's output counts what it repaired, so nothing is fixed silently) and ``details`` is kept
    verbatim in the record (e.g. the knowledge a prompt carried).

    Attributes:
        text: The raw reply of a system that answers in text; parsed and grounded by the evaluator.
        positions: Catalog positions, best first, of a system that answers with items.
        error: Why the answer is unusable (e.g. invalid structured output), else ``None``.
        counts: The system's own tallies, added to the record's answer buckets.
        details: Anything the system wants kept verbatim in the record.
    """

    text: str | None = None
    positions: list[int] | None = None
    error: str | None = None
    counts: dict[str, int] | None = None
    details: dict[str, Any] | None = None


class ListSystem(ABC):
    """Anything that names up to k items for a sample.

    The one interface :class:`ListEvaluator` scores, so LLMs, classic recommenders and encoders are
    compared on the same samples and buckets.

    Attributes:
        name: The system's name in run configs and reports.
    """

    name: str = "system"

    @abstractmethod
    def answer(self, sample: ListSample, candidates: list[int] | None, k: int) -> ListAnswer:
        """Answer ``sample`` with ``candidates`` in the order given (None for retrieval)."""

    def config(self) -> dict[str, Any]:
        return {"name": self.name}


@dataclass(eq=False, kw_only=True)
class LLMListSystem(CatalogPrompter, ListSystem):
    """A chat model asked for a list of titles (zero-shot), parsed and grounded afterwards.

    ``constrained`` asks the backend for a JSON array of strings (a grammar on local backends); off by
    default, because measuring how well a model follows the format is part of the evaluation.

    Attributes:
        llm: The chat model asked for the list.
        catalog: The catalog whose titles the prompt shows.
        item_noun: What the catalog's items are called in prompts ("films", "books").
        constrained: Ask for a JSON array of strings instead of free text.
        max_tokens: Longest reply, in tokens.
        name: The system's name in reports; empty: ``llm:<model name>``.
    """

    constrained: bool = False
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"llm:{self.llm.name}"

    def prompt(self, sample: ListSample, candidates: list[int] | None, k: int) -> str:
        history = title_list(self.catalog, sample.history) or "(nothing yet)"
        if candidates is None:
            return render_prompt(
                "retrieval", package="recai.evaluate", item_noun=self.item_noun, history=history, k=str(k)
            )
        return render_prompt(
            "ranking",
            package="recai.evaluate",
            item_noun=self.item_noun,
            history=history,
            candidates=title_list(self.catalog, candidates),
            n=str(len(candidates)),
            k=str(min(k, len(candidates))),
        )

    def answer(self, sample: ListSample, candidates: list[int] | None, k: int) -> ListAnswer:
        messages = [{"role": "user", "content": self.prompt(sample, candidates, k)}]
        schema = None
        if self.constrained:
            schema = {"type": "array", "items": {"type": "string", "maxLength": 200}, "maxItems": k}
        try:
            out = self.ask("evaluated", messages, response_format=schema, temperature=0.0)
        except SchemaError as exc:
            return ListAnswer(text=exc.raw[-1] if exc.raw else "", error=f"invalid structured output: {exc}")
        return ListAnswer(text=out.text)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "llm": self.llm.name, "constrained": self.constrained}


class RecommenderListSystem(ListSystem):
    """A fitted classic Recommender: scores the candidates (or the catalog minus the history).

    Args:
        model: A fitted :class:`~recai.rec.base.Recommender`.
        name: The system's name in reports; defaults to the model's class name, lower-cased.
    """

    def __init__(self, model: Any, *, name: str | None = None) -> None:
        self.model = model
        self.name = name or type(model).__name__.lower()

    def answer(self, sample: ListSample, candidates: list[int] | None, k: int) -> ListAnswer:
        positions, _ = self.model.recommend(
            sample.history, k, candidates=candidates, exclude=sample.excluded, user=sample.user
        )
        return ListAnswer(positions=[int(p) for p in positions])


class EncoderListSystem(ListSystem):
    """A text Encoder as a recommender: the user's recent titles (newest first) are the query, and items
    are ranked by embedding similarity, over the candidates or the whole catalog minus the history.

    Args:
        encoder: The text :class:`~recai.embed.encoder.Encoder`; the catalog is indexed with it once.
        catalog: The catalog to rank.
        history_items: How many of the user's most recent titles make the query.
        name: The system's name in reports; defaults to ``encoder:<encoder identity>``.
    """

    def __init__(
        self, encoder: Any, catalog: Catalog, *, history_items: int = 10, name: str | None = None
    ) -> None:
        self.encoder = encoder
        self.catalog = catalog
        self.history_items = history_items
        self.index = catalog.index(encoder, progress=False)
        self.name = name or f"encoder:{getattr(encoder, 'identity', type(encoder).__name__)}"

    def query_text(self, sample: ListSample) -> str:
        recent = sample.history[-self.history_items :][::-1]
        return "; ".join(self.catalog.display_title(p) for p in recent) or "popular"

    def ranked(self, sample: ListSample, candidates: list[int] | None, n: int) -> list[int]:
        """Up to ``n`` positions by similarity, never from the history."""
        catalog = self.catalog
        query = self.encoder.encode([self.query_text(sample)], "query")[0]
        seen = set(sample.excluded)
        if candidates is not None:
            ids, _ = self.index.search(query, len(candidates), within=catalog.ids[candidates].tolist())
        else:
            ids, _ = self.index.search(query, n + len(seen))
        positions = catalog.index_of(ids[0], missing="drop").tolist()
        return [int(p) for p in positions if p not in seen][:n]

    def answer(self, sample: ListSample, candidates: list[int] | None, k: int) -> ListAnswer:
        return ListAnswer(positions=self.ranked(sample, candidates, k))

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "history_items": self.history_items}


class RandomListSystem(ListSystem):
    """Uniformly random items (seeded per sample and candidate order): the floor every system must beat.

    Args:
        n_items: The catalog's size (positions ``0..n_items-1``) for retrieval samples.
        seed: Base seed; each sample and candidate order draws from its own stream.
    """

    name = "random"

    def __init__(self, n_items: int, *, seed: int = 0) -> None:
        self.n_items = n_items
        self.seed = seed

    def answer(self, sample: ListSample, candidates: list[int] | None, k: int) -> ListAnswer:
        rng = np.random.default_rng(user_seed(self.seed, (sample.id, tuple(candidates or ()))))
        if candidates is not None:
            pool = np.asarray(candidates)
        else:
            blocked = np.zeros(self.n_items, dtype=bool)
            blocked[sample.excluded] = True
            pool = np.flatnonzero(~blocked)
        return ListAnswer(positions=rng.permutation(pool)[:k].astype(int).tolist())


def single_target_scores(ranked: Sequence[int], target: int, ks: Sequence[int]) -> dict[str, float]:
    """Hit@k, NDCG@k and MRR@max(k) for one relevant item in an unpadded ranked list."""
    rank = next((i for i, p in enumerate(ranked) if p == target), None)
    out: dict[str, float] = {}
    for k in ks:
        hit = rank is not None and rank < k
        out[f"hit@{k}"] = float(hit)
        out[f"ndcg@{k}"] = float(1.0 / np.log2(rank + 2)) if hit else 0.0
    top = max(ks)
    out[f"mrr@{top}"] = 1.0 / (rank + 1) if rank is not None and rank < top else 0.0
    return out


class _NamedSystem(Protocol):
    name: str


SystemT = TypeVar("SystemT", bound=_NamedSystem)
SampleT = TypeVar("SampleT")


class SampleEvaluator(ABC, Generic[SystemT, SampleT]):
    """The resumable loop every evaluator of one system over samples shares (lists, multiple choice,
    conversations): ``run`` evaluates the samples a run folder has not recorded yet, records in sample
    order, as many at once as the chat models involved allow. A subclass says how one sample is
    evaluated, what the progress bar calls the work and which models set the concurrency.

    Attributes:
        activity: The progress bar's words before the system's name.
        unit: What the progress bar counts.
    """

    activity: ClassVar[str] = "evaluating"
    unit: ClassVar[str] = "sample"

    @abstractmethod
    def evaluate_sample(self, system: SystemT, sample: SampleT) -> dict[str, Any]:
        """The scored record of ``system`` on ``sample``."""

    def models(self, system: SystemT) -> list[Any]:
        """The chat models whose limits set how many samples are in flight: the system's own, if any."""
        llm = getattr(system, "llm", None)
        return [llm] if llm is not None else []

    def run(
        self,
        system: SystemT,
        samples: Sequence[SampleT],
        *,
        on_record: Callable[[dict[str, Any]], None] | None = None,
        skip_ids: set[str] | frozenset[str] = frozenset(),
        progress: bool = True,
        batch: BatchSettings | None = None,
    ) -> list[dict[str, Any]]:
        """Evaluate every sample not in ``skip_ids``; ``on_record`` sees the records in sample order
        (``batch``: samples in flight at once, and a budget)."""
        return evaluate_pending(
            samples,
            lambda sample: self.evaluate_sample(system, sample),
            desc=f"{self.activity} {system.name}",
            unit=self.unit,
            on_record=on_record,
            skip_ids=skip_ids,
            progress=progress,
            batch=batch,
            models=self.models(system),
        )


@dataclass
class ListEvaluator(SampleEvaluator[ListSystem, ListSample]):
    """Runs a ListSystem over samples and turns every answer into a scored record.

    Attributes:
        catalog: The catalog the answers are grounded to.
        k: How many items of each answer are scored.
        ks: The cut-offs of Hit@k and NDCG@k (those above ``k`` are dropped).
        orders: How many candidate orders each sample is asked in (more than one measures position bias).
        seed: Seed of the shuffled candidate orders.
        threshold: Title-matching threshold of the grounder; ``None`` uses the catalog's own.
        grounder: The :class:`ListGrounder` built from ``catalog`` and ``threshold``.
    """

    catalog: Catalog
    k: int = 10
    ks: Sequence[int] = DEFAULT_KS
    orders: int = 1
    seed: int = 0
    threshold: float | None = None
    grounder: ListGrounder = field(init=False)

    def __post_init__(self) -> None:
        if self.orders < 1:
            raise ValueError("orders must be at least 1")
        self.grounder = ListGrounder(self.catalog, threshold=self.threshold)
        self.ks = tuple(k for k in self.ks if k <= self.k) or (self.k,)

    def candidate_orders(self, sample: ListSample) -> list[list[int] | None]:
        if sample.candidates is None:
            return [None]
        orders = [list(sample.candidates)]
        rng = np.random.default_rng(user_seed(self.seed + 1, sample.user))
        for _ in range(self.orders - 1):
            orders.append(rng.permutation(sample.candidates).astype(int).tolist())
        return orders

    def evaluate_sample(self, system: ListSystem, sample: ListSample) -> dict[str, Any]:
        catalog = self.catalog
        runs = []
        for candidates in self.candidate_orders(sample):
            answer = system.answer(sample, candidates, self.k)
            candidate_ids = None if candidates is None else catalog.ids[candidates].tolist()
            seen_ids = catalog.ids[sample.excluded].tolist()
            if answer.positions is not None:
                names = [catalog.display_title(p) for p in answer.positions]
                grounded = bucket_positions(answer.positions, catalog, candidates, sample.excluded, names)
            else:
                names = parse_item_list(answer.text or "")
                grounded = self.grounder.ground(names, candidates=candidate_ids, seen=seen_ids)
            positions = catalog.index_of(grounded.items).tolist()[: self.k]
            counts = grounded.counts()
            counts.update(answer.counts or {})
            run = {
                "candidates": candidate_ids,
                "raw": answer.text,
                "error": answer.error,
                "grounded": grounded.as_record(),
                "counts": counts,
                "ranked": positions,
                "scores": single_target_scores(positions, sample.target, self.ks),
            }
            if answer.details is not None:
                run["details"] = answer.details
            runs.append(run)
        scores = {name: float(np.mean([r["scores"][name] for r in runs])) for name in runs[0]["scores"]}
        record: dict[str, Any] = {
            "id": sample.id,
            "user": plain_value(sample.user),
            "history": catalog.ids[sample.history].tolist(),
            "target": plain_value(catalog.ids[sample.target]),
            "scores": scores,
            "counts": {name: int(sum(r["counts"][name] for r in runs)) for name in runs[0]["counts"]},
            "orders": [{key: value for key, value in r.items() if key != "ranked"} for r in runs],
        }
        if len(runs) > 1:
            tops = [r["ranked"][0] if r["ranked"] else None for r in runs]
            record["top1_agree"] = float(tops[0] is not None and len(set(tops)) == 1)
            overlaps = [
                _overlap(a["ranked"][: self.k], b["ranked"][: self.k])
                for a, b in itertools.combinations(runs, 2)
            ]
            record["topk_overlap"] = float(np.mean(overlaps))
        return record


def evaluate_pending(
    samples: Sequence[Any],
    evaluate: Callable[[Any], dict[str, Any]],
    *,
    desc: str,
    unit: str,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    skip_ids: set[str] | frozenset[str] = frozenset(),
    progress: bool = True,
    batch: BatchSettings | None = None,
    models: Sequence[Any] = (),
) -> list[dict[str, Any]]:
    """Records for the samples not in ``skip_ids`` (a resumed run's done ids), in order, each handed to
    ``on_record`` as soon as it and every sample before it exist, so an interruption loses at most the
    samples in flight. ``batch`` sets the requests in flight (default: what ``models`` allow) and a
    budget (:mod:`recai.llm.batch`)."""
    batch = batch or BatchSettings()
    return run_batch(
        [s for s in samples if s.id not in skip_ids],
        evaluate,
        concurrency=batch.concurrency_for(*models),
        on_result=on_record,
        budget=batch.budget,
        desc=desc,
        unit=unit,
        progress=progress,
    )


def evaluate_batches(
    groups: Sequence[Sequence[Any]],
    batch_size: int,
    evaluate: Callable[[int, Sequence[Any]], Iterable[dict[str, Any]]],
    *,
    desc: str,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Records for local models that answer a batch at once: ``evaluate(offset, batch)`` yields one
    record per sample of each batch of up to ``batch_size`` samples, cut from each group in turn
    (``offset``: the batch's start within its group). ``on_record`` sees every record as it is yielded,
    so an interruption loses at most one batch."""
    from tqdm.auto import tqdm

    records: list[dict[str, Any]] = []
    total = sum(len(group) for group in groups)
    bar = tqdm(total=total, desc=desc, unit="sample", disable=not progress)
    for group in groups:
        for lo in range(0, len(group), batch_size):
            batch = group[lo : lo + batch_size]
            for record in evaluate(lo, batch):
                records.append(record)
                if on_record is not None:
                    on_record(record)
            bar.update(len(batch))
    bar.close()
    return records


def _overlap(a: Sequence[int], b: Sequence[int]) -> float:
    if not a and not b:
        return 1.0
    return len(set(a) & set(b)) / len(set(a) | set(b))


def bucket_positions(
    positions: Sequence[int | None],
    catalog: Catalog,
    candidates: Sequence[int] | None,
    history: Sequence[int],
    names: Sequence[str],
) -> GroundedList:
    """The bucketing of :class:`ListGrounder`, for systems that answer with positions (``None``: the
    name grounds to no item)."""

    def ids(chosen: Iterable[int | None]) -> list[Any]:
        return [None if p is None else plain_value(catalog.ids[p]) for p in chosen]

    return GroundedList.sort(
        names,
        ids(positions),
        candidates=None if candidates is None else set(ids(candidates)),
        seen=set(ids(history)),
    )


def summarize_list_records(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Totals of the answer buckets and the position-bias consistency, for the metrics file."""
    counts: dict[str, int] = {}
    for record in records:
        for name, value in record["counts"].items():
            counts[name] = counts.get(name, 0) + int(value)
    named = counts.pop("named", 0)
    out: dict[str, Any] = {"counts": counts, "named": named}
    if named:
        out["rates"] = {
            f"{name}_rate": round(counts.get(name, 0) / named, 4)
            for name in ("invalid", "duplicate", "out_of_candidates", "already_seen")
        }
    with_orders = [r for r in records if "top1_agree" in r]
    if with_orders:
        out["position_bias"] = {
            "orders": len(records[0]["orders"]),
            "top1_agreement": round(float(np.mean([r["top1_agree"] for r in with_orders])), 4),
            "mean_topk_overlap": round(float(np.mean([r["topk_overlap"] for r in with_orders])), 4),
        }
    errors = sum(1 for r in records for o in r["orders"] if o.get("error"))
    if errors:
        out["answers_with_errors"] = errors
    return out
