"""The evaluation runners: build samples, run a system, write the run folder, resume when asked.

Each ``run_*_eval`` function is what one ``recai eval`` command calls (ranking and retrieval share
:func:`run_list_eval`; the run folder records which as its ``task``). It writes a run folder (see
:mod:`recai.evaluate.runs`) with the config, one JSONL record per sample (written as soon as the
sample is done, so an interrupted run resumes where it stopped), metrics with 95% bootstrap intervals,
LLM usage with a cost estimate, and ``report.md``. LLM replies go through a response cache keyed by
model, prompt and sampling parameters, so re-running an evaluation costs nothing.

System specs (``--system``):
- ranking/retrieval: ``random`` or a name in :data:`recai.rec.MODELS` (``popularity``, ``itemcf``,
  ``als``, ``bpr``, ``sasrec``: trained on the split's training part), ``llm:SPEC`` (a chat model,
  zero-shot; SPEC as for ``--llm``, e.g. ``llm:local:qwen2.5-0.5b-instruct`` or
  ``llm:openai:gpt-4o-mini``), ``chatrec:SPEC`` (embedding retrieval of candidates from the history,
  then the chat model chooses), ``encoder`` or ``encoder:SPEC`` (a text Encoder alone: the recent
  titles as the query, items by similarity), ``summary:SPEC`` (the default Encoder with the chat
  model's summary of the user's taste as the query);
- multiple choice: ``llm:SPEC`` answers a letter; every ranking system above except ``chatrec`` chooses
  its top candidate;
- explanation and chit-chat generation: ``llm:SPEC`` (the chat model answers the prompt directly) or
  a conversational system (``agent:SPEC``, ``plain:SPEC``, ``chatrec:SPEC``) answering it as the
  first message of a new conversation;
- conversation: ``agent:SPEC`` (recai's agent with that brain), ``plain:SPEC``, ``chatrec:SPEC``, and
  ``random`` or a classic recommender, which ignore the conversation and show the next k items for the
  user's history each turn (what talking adds over the history alone).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recai.data import Dataset
from recai.data import load as load_dataset
from recai.data.errors import DataError, plain_value
from recai.evaluate.answers import Answerer, ChatModelAnswerer, ConversationAnswerer, answer_prompts
from recai.evaluate.choice import (
    ChoiceEvaluator,
    LLMChoiceSystem,
    build_choice_samples,
    summarize_choice_records,
)
from recai.evaluate.conversation import (
    AgentSystem,
    ChatModelSystem,
    ChatRecSystem,
    ConversationalSystem,
    ConversationEvaluator,
    HistoryRecommenderSystem,
    UserSimulator,
    build_conversation_samples,
    summarize_conversations,
)
from recai.evaluate.generative import (
    EncoderListSystem,
    ListEvaluator,
    ListSample,
    ListSystem,
    LLMListSystem,
    RandomListSystem,
    RecommenderListSystem,
    build_samples,
    list_run_config,
    summarize_list_records,
    user_seed,
)
from recai.evaluate.judge import JudgeItem, JudgeVerdict, PairwiseJudge, evaluate_pairwise, summarize_verdicts
from recai.evaluate.metrics import ranking_metrics
from recai.evaluate.prepare import DataOptions, cached_llm, fit_classic, item_noun
from recai.evaluate.prices import PriceTable
from recai.evaluate.prompt_sets import KINDS as PROMPT_KINDS
from recai.evaluate.prompt_sets import PromptSet, build_chitchat_set, build_explanation_set
from recai.evaluate.recommender import rank_users
from recai.evaluate.report import metrics_document
from recai.evaluate.runs import RunFolder
from recai.evaluate.summaries import SummaryEncoderListSystem, UserSummarizer
from recai.llm.base import ChatModel
from recai.llm.batch import BatchSettings, BudgetExhaustedError
from recai.llm.cache import CachedChatModel
from recai.llm.usage import UsageMeter, scoped
from recai.rec import MODELS


class ChatRecListSystem(LLMListSystem):
    """Chat-Rec for lists: candidates retrieved by embedding similarity to the history, then the LLM
    ranks, so the LLM never has to name items from memory.

    For ranking, the offered candidates are reordered by similarity and the top ``n_retrieve`` shown;
    for retrieval, the ``n_retrieve`` nearest unseen items of the catalog are shown.

    Args:
        llm: the chat model that ranks.
        dataset: the dataset whose catalog is ranked.
        retriever: the encoder system that retrieves by similarity.
        n_retrieve: how many retrieved items the LLM is shown.
        **kwargs: passed to :class:`~recai.evaluate.generative.LLMListSystem` (``item_noun``...).
    """

    def __init__(
        self,
        llm: ChatModel,
        dataset: Dataset,
        retriever: EncoderListSystem,
        *,
        n_retrieve: int = 20,
        **kwargs: Any,
    ) -> None:
        super().__init__(llm, dataset.catalog, name=f"chatrec:{llm.name}", **kwargs)
        self.retriever = retriever
        self.n_retrieve = n_retrieve

    def answer(self, sample: ListSample, candidates: list[int] | None, k: int) -> Any:
        shown = self.retriever.ranked(sample, candidates, self.n_retrieve)
        if candidates is not None:  # keep the offered order, so candidate orders still test position bias
            kept = set(shown)
            shown = [p for p in candidates if p in kept]
        return super().answer(sample, shown, k)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "n_retrieve": self.n_retrieve, "retriever": self.retriever.config()}


def list_system(
    spec: str,
    dataset: Dataset,
    split: Any,
    *,
    seed: int = 0,
    sasrec_budget_s: float = 300.0,
    cache: bool = True,
) -> ListSystem:
    """The system under test for ranking/retrieval (see the module docstring for the specs)."""
    if spec == "random":
        return RandomListSystem(len(dataset.catalog), seed=seed)
    if spec in MODELS:
        return RecommenderListSystem(
            fit_classic(spec, split, sasrec_budget_s=sasrec_budget_s, seed=seed), name=spec
        )
    from recai.embed.encoder import load_encoder

    kind, _, llm_spec = spec.partition(":")
    if kind == "llm" and llm_spec:
        return LLMListSystem(cached_llm(llm_spec, cache=cache), dataset.catalog, item_noun=item_noun(dataset))
    if kind == "chatrec" and llm_spec:
        retriever = EncoderListSystem(load_encoder(), dataset.catalog)
        return ChatRecListSystem(
            cached_llm(llm_spec, cache=cache), dataset, retriever, item_noun=item_noun(dataset)
        )
    if kind == "encoder":
        return EncoderListSystem(load_encoder(llm_spec or None), dataset.catalog)
    if kind == "summary" and llm_spec:
        summarizer = UserSummarizer(
            cached_llm(llm_spec, cache=cache), dataset.catalog, item_noun=item_noun(dataset)
        )
        return SummaryEncoderListSystem(load_encoder(), dataset.catalog, summarizer)
    raise ValueError(
        f"unknown system '{spec}': use random, {', '.join(MODELS)}, llm:SPEC, chatrec:SPEC, encoder[:SPEC] "
        "or summary:SPEC"
    )


def choice_system(
    spec: str,
    kind: str,
    dataset: Dataset,
    split: Any,
    *,
    seed: int = 0,
    sasrec_budget_s: float = 300.0,
    cache: bool = True,
) -> ListSystem:
    """The system under test for multiple choice: a chat model answers a letter, anything that ranks
    candidates chooses its top one (Chat-Rec's retrieval would drop options, so it is refused)."""
    family, _, llm_spec = spec.partition(":")
    if family == "llm" and llm_spec:
        return LLMChoiceSystem(
            cached_llm(llm_spec, cache=cache), dataset.catalog, kind=kind, item_noun=item_noun(dataset)
        )
    if family == "chatrec":
        raise ValueError("chatrec retrieves a subset of the candidates; multiple choice shows them all")
    return list_system(spec, dataset, split, seed=seed, sasrec_budget_s=sasrec_budget_s, cache=cache)


def _finish(
    run: RunFolder, document: dict[str, Any], usage: Any, caches: list[Any], prices: str | None
) -> Path:
    run.write_metrics(document)
    run.write_usage(usage.report(), PriceTable.load(prices), cache=[c.stats() for c in caches])
    report = run.write_report()
    run.close()
    return report


def _evaluate_into(
    run: RunFolder,
    evaluator: ListEvaluator | ConversationEvaluator,
    system: Any,
    samples: Sequence[Any],
    usage: Any,
    caches: list[Any],
    prices: str | None,
    progress: bool,
    batch: BatchSettings | None,
) -> None:
    """Evaluate the samples the run does not hold yet, appending each record; a budget stop first
    records what was spent (see :func:`_finish_partial`)."""
    try:
        evaluator.run(
            system, samples, on_record=run.append, skip_ids=run.done_ids(), progress=progress, batch=batch
        )
    except BudgetExhaustedError:
        _finish_partial(run, usage, caches, prices)
        raise


def _finish_partial(run: RunFolder, usage: Any, caches: list[Any], prices: str | None) -> None:
    """A run stopped by its budget: its records are saved; record what was spent (the metrics and
    report wait for the run to be resumed and finished)."""
    run.write_usage(usage.report(), PriceTable.load(prices), cache=[c.stats() for c in caches])


def _caches(*objects: Any) -> list[Any]:
    out = []
    for obj in objects:
        llm = getattr(obj, "llm", None)
        if isinstance(llm, CachedChatModel):
            out.append(llm)
    return out


def run_list_eval(
    task: str,
    system: str,
    out: str | Path,
    *,
    data: DataOptions | None = None,
    n_users: int | None = 200,
    n_candidates: int = 20,
    negatives: str = "uniform",
    history_len: int = 20,
    k: int = 10,
    orders: int = 1,
    sasrec_budget_s: float = 300.0,
    cache: bool = True,
    prices: str | None = None,
    resume: bool = True,
    progress: bool = True,
    batch: BatchSettings | None = None,
) -> Path:
    """Generative ranking ('ranking') or retrieval ('retrieval'); returns the report's path.

    ``batch`` sets the requests in flight and a budget; neither changes the records, so neither is
    part of the run's config (a run may be resumed at another concurrency)."""
    data = data or DataOptions()
    config = list_run_config(
        task,
        data,
        system,
        n_users=n_users,
        n_candidates=n_candidates,
        negatives=negatives,
        history_len=history_len,
        k=k,
        orders=orders,
        sasrec_budget_s=sasrec_budget_s if system == "sasrec" else None,
    )
    run = RunFolder.open(out, task=task, config=config, resume=resume)
    try:
        dataset, split = data.load()
        samples = build_samples(
            split,
            task=task,
            n_users=n_users,
            n_candidates=n_candidates,
            negatives=negatives,
            history_len=history_len,
            seed=data.seed,
        )
        return _sampled_eval(
            run,
            samples,
            lambda: list_system(
                system, dataset, split, seed=data.seed, sasrec_budget_s=sasrec_budget_s, cache=cache
            ),
            ListEvaluator(dataset.catalog, k=k, orders=orders, seed=data.seed),
            summarize_list_records,
            seed=data.seed,
            prices=prices,
            progress=progress,
            batch=batch,
        )
    finally:
        run.close()


def _sampled_eval(
    run: RunFolder,
    samples: Sequence[Any],
    make_system: Any,
    evaluator: Any,
    summarize: Any,
    *,
    seed: int,
    prices: str | None,
    progress: bool,
    batch: BatchSettings | None,
) -> Path:
    """Evaluate the samples the run lacks with the system ``make_system`` builds (not built when nothing
    is left, so a finished run trains and loads nothing), then write its metrics and report."""
    sut = None
    usage: Any = UsageMeter()
    if not all(sample.id in run.done_ids() for sample in samples):
        with scoped() as usage:
            sut = make_system()
            _evaluate_into(run, evaluator, sut, samples, usage, _caches(sut), prices, progress, batch)
    records = _current(run, samples)
    summary = summarize(records)
    extra = summary if sut is None else {**summary, "system": sut.config()}
    document = metrics_document(run.task, records, seed=seed, counts=summary["counts"], extra=extra)
    return _finish(run, document, usage, _caches(sut) if sut is not None else [], prices)


def run_choice_eval(
    kind: str,
    system: str,
    out: str | Path,
    *,
    data: DataOptions | None = None,
    n_users: int | None = 200,
    n_candidates: int = 10,
    negatives: str = "uniform",
    history_len: int = 20,
    orders: int = 1,
    sasrec_budget_s: float = 300.0,
    cache: bool = True,
    prices: str | None = None,
    resume: bool = True,
    progress: bool = True,
    batch: BatchSettings | None = None,
) -> Path:
    """Multiple-choice recommendation (``kind`` 'cf' or 'seq', see :mod:`recai.evaluate.choice`);
    returns the report's path. The run's task is ``choice_cf`` or ``choice_seq``."""
    data = data or DataOptions()
    task = f"choice_{kind}"
    config = {
        "task": task,
        **data.as_config(),
        "system": system,
        "n_users": n_users,
        "_volatile": ["n_users"],
        "sasrec_budget_s": sasrec_budget_s if system == "sasrec" else None,
        "n_candidates": n_candidates,
        "negatives": negatives,
        "history_len": history_len,
        "orders": orders,
    }
    # the samples first: a question the data cannot answer ('seq' on an untimed log) leaves no run behind
    dataset, split = data.load()
    samples = build_choice_samples(
        split,
        kind=kind,
        n_users=n_users,
        n_candidates=n_candidates,
        negatives=negatives,
        history_len=history_len,
        seed=data.seed,
        timed=dataset.interactions.has_timestamps,
    )
    run = RunFolder.open(out, task=task, config=config, resume=resume)
    try:
        return _sampled_eval(
            run,
            samples,
            lambda: choice_system(
                system, kind, dataset, split, seed=data.seed, sasrec_budget_s=sasrec_budget_s, cache=cache
            ),
            ChoiceEvaluator(dataset.catalog, orders=orders, seed=data.seed),
            summarize_choice_records,
            seed=data.seed,
            prices=prices,
            progress=progress,
            batch=batch,
        )
    finally:
        run.close()


def run_recommender_eval(
    system: str,
    out: str | Path,
    *,
    data: DataOptions | None = None,
    ks: Sequence[int] = (1, 5, 10, 20),
    sasrec_budget_s: float = 300.0,
    prices: str | None = None,
    resume: bool = True,
    progress: bool = True,
) -> Path:
    """Full-catalog ranking of every test user (history excluded) by a classic recommender or random.

    All users are ranked by one fitted model. A resumed run whose records are complete only rebuilds
    the metrics and the report; an incomplete one is refused, because SASRec trains to a time budget
    and a refit would not be the same model (start again with ``resume=False``).
    """
    data = data or DataOptions()
    config = {
        "task": "recommender",
        **data.as_config(),
        "system": system,
        "ks": list(ks),
        "sasrec_budget_s": sasrec_budget_s if system == "sasrec" else None,
    }
    run = RunFolder.open(out, task="recommender", config=config, resume=resume, overwrite=not resume)
    try:
        dataset, split = data.load()
        history, targets = split.train_and_valid(), split.test
        done = run.done_ids()
        if done:
            expected = {str(u) for u in targets.user_ids}
            if done != expected:
                raise ValueError(
                    f"{out} holds {len(done)} of {len(expected)} users from an interrupted run; "
                    "run it again from scratch (resume=False)"
                )
            records = run.records()
            return _finish(
                run, metrics_document("recommender", records, seed=data.seed), UsageMeter(), [], prices
            )
        if system == "random":
            users = list(targets.user_ids)
            target_items = np.array([targets.sequence(u)[-1] for u in users])
            rng = np.random.default_rng(data.seed)
            competing = np.flatnonzero(dataset.interactions.item_counts() > 0)
            known = set(history.user_ids)
            rankings = np.empty((len(users), max(ks)), dtype=np.int64)
            for row, user in enumerate(users):
                seen = history.sequence(user) if user in known else np.empty(0, dtype=np.int64)
                pool = np.setdiff1d(competing, seen)
                rankings[row] = rng.choice(pool, size=max(ks), replace=False)
        else:
            memo = (data.data, data.k_core, data.seed)
            model = fit_classic(system, split, sasrec_budget_s=sasrec_budget_s, seed=data.seed, memo=memo)
            # items that survive the k-core filter compete (RecBole's item set), as in `recai rec eval`
            competing = np.flatnonzero(dataset.interactions.item_counts() > 0)
            rankings, target_items, users = rank_users(
                model, history, targets, k=max(ks), candidates=competing
            )
        per_user = ranking_metrics(rankings, target_items, ks=ks, metrics=("hit", "ndcg", "mrr"))
        for row, user in enumerate(users):
            run.append(
                {
                    "id": str(user),
                    "target": plain_value(dataset.catalog.ids[int(target_items[row])]),
                    "top": [
                        plain_value(i) for i in dataset.catalog.ids[rankings[row][rankings[row] >= 0][:10]]
                    ],
                    "scores": {name: float(values[row]) for name, values in per_user.items()},
                }
            )
        records = run.records()
        return _finish(
            run, metrics_document("recommender", records, seed=data.seed), UsageMeter(), [], prices
        )
    finally:
        run.close()


def conversation_system(
    spec: str,
    dataset: Dataset,
    split: Any = None,
    *,
    cache: bool = True,
    k: int = 5,
    seed: int = 0,
    memo: tuple[Any, ...] | None = None,
    llm: ChatModel | None = None,
) -> ConversationalSystem:
    """The system under test; ``k`` items per turn for the history baselines (the agent shows its own).
    ``llm`` is the spec's chat model when the caller already holds it (a local model is loaded once)."""
    if spec == "random" or spec in MODELS:
        return history_system(spec, dataset, split, k=k, seed=seed, memo=memo)
    kind, _, llm_spec = spec.partition(":")
    if not llm_spec:
        raise ValueError(
            f"unknown system '{spec}': use agent:SPEC, plain:SPEC, chatrec:SPEC, random or "
            + ", ".join(MODELS)
        )
    llm = llm or cached_llm(llm_spec, cache=cache)
    noun = item_noun(dataset)
    if kind == "agent":
        # the agent's own resources (popularity, item-CF, SASRec) must not see the test events
        known = dataset.with_interactions(split.train_and_valid(), note="evaluation: train + valid only")
        return AgentSystem(_agent(known, llm))
    if kind == "plain":
        return ChatModelSystem(llm, dataset.catalog, item_noun=noun)
    if kind == "chatrec":
        from recai.embed.encoder import load_encoder

        encoder = load_encoder()
        index = dataset.catalog.index(encoder, progress=False)
        return ChatRecSystem(llm, dataset.catalog, index, encoder, item_noun=noun)
    raise ValueError(f"unknown system '{spec}': use agent:SPEC, plain:SPEC or chatrec:SPEC")


def history_system(
    spec: str, dataset: Dataset, split: Any, *, k: int = 5, seed: int = 0, memo: tuple[Any, ...] | None = None
) -> ConversationalSystem:
    """A classic recommender (or random) as a conversation baseline that only uses the user's history."""
    n_items = len(dataset.catalog)
    if spec == "random":

        def recommend(history: list[int], k: int, shown: set[int]) -> list[int]:
            # seeded per session and turn, so a session never depends on which sessions ran before it
            rng = np.random.default_rng(user_seed(seed, (tuple(history), len(shown))))
            blocked = set(history) | shown
            pool = np.array([i for i in range(n_items) if i not in blocked])
            return rng.choice(pool, size=min(k, len(pool)), replace=False).astype(int).tolist()

    else:
        model = fit_classic(spec, split, seed=seed, memo=memo)

        def recommend(history: list[int], k: int, shown: set[int]) -> list[int]:
            positions, _ = model.recommend(history, k, exclude=shown)
            return [int(p) for p in positions]

    return HistoryRecommenderSystem(recommend, dataset.catalog, name=spec, k=k)


def _agent(dataset: Dataset, llm: ChatModel) -> Any:
    from recai.agent import Agent

    return Agent.from_dataset(dataset, llm=llm, progress=False)


def run_conversation_eval(
    system: str,
    out: str | Path,
    *,
    simulator: str = "local:qwen2.5-1.5b-instruct",
    data: DataOptions | None = None,
    n: int = 100,
    max_turns: int = 5,
    k: int = 5,
    history_len: int = 20,
    cache: bool = True,
    prices: str | None = None,
    resume: bool = True,
    progress: bool = True,
    batch: BatchSettings | None = None,
) -> Path:
    """Simulated-user conversations with ``system``; returns the report's path (``batch``: sessions in
    flight at once, each on its own fork of the system, and a budget)."""
    data = data or DataOptions()
    config = {
        "task": "conversation",
        **data.as_config(),
        "system": system,
        "simulator": simulator,
        "n": n,  # volatile: the sessions are a seeded prefix, so a larger n extends the run
        "_volatile": ["n"],
        "max_turns": max_turns,
        "k": k,
        "history_len": history_len,
    }
    run = RunFolder.open(out, task="conversation", config=config, resume=resume)
    try:
        dataset, split = data.load()
        samples = build_conversation_samples(
            split, dataset.catalog, n=n, history_len=history_len, seed=data.seed
        )
        with scoped() as usage:
            sut = conversation_system(
                system,
                dataset,
                split,
                cache=cache,
                k=k,
                seed=data.seed,
                memo=(data.data, data.k_core, data.seed),
            )
            sim = UserSimulator(
                cached_llm(simulator, cache=cache),
                dataset.catalog,
                item_noun=item_noun(dataset),
                seed=data.seed,
            )
            evaluator = ConversationEvaluator(dataset.catalog, sim, max_turns=max_turns, k=k)
            llms = [getattr(sut, "llm", None) or getattr(getattr(sut, "agent", None), "llm", None), sim.llm]
            caches = list({id(c): c for c in llms if isinstance(c, CachedChatModel)}.values())
            _evaluate_into(run, evaluator, sut, samples, usage, caches, prices, progress, batch)
        records = _current(run, samples)
        summary = summarize_conversations(records, max_turns, k)
        document = metrics_document(
            "conversation",
            records,
            seed=data.seed,
            per_turn=summary["per_turn"],
            counts={
                "leak_regenerations": summary["leak_regenerations"],
                "masked_turns": summary["masked_turns"],
            },
            extra={**summary, "system": sut.config()},
        )
        return _finish(run, document, usage, caches, prices)
    finally:
        run.close()


def judge_pairs_from_runs(run_a: str | Path, run_b: str | Path, out: str | Path, *, turn: int = 1) -> int:
    """Write judge items (JSONL) from two conversation runs: the same simulated user's message at
    ``turn``, each system's reply to it, and the facts of the items both replies recommended.

    Only sessions where both runs reached ``turn`` with the same user message are paired (the first
    message is the same for every system; later ones depend on the replies). Returns the pair count.
    """
    from recai.data.atomic import write_text_atomic

    a, b = RunFolder.load(run_a), RunFolder.load(run_b)
    for run in (a, b):
        if run.task != "conversation":
            raise ValueError(f"{run.path} is a {run.task!r} run; pairs come from conversation runs")
    if a.config.get("data") != b.config.get("data"):
        raise ValueError(f"{a.path} and {b.path} use different data")
    catalog = load_dataset(str(a.config["data"])).catalog
    by_id = {r["id"]: r for r in b.records()}
    lines = []
    for record in a.records():
        other = by_id.get(record["id"])
        if other is None or len(record["turns"]) < turn or len(other["turns"]) < turn:
            continue
        ta, tb = record["turns"][turn - 1], other["turns"][turn - 1]
        if ta["user"] != tb["user"]:
            continue
        items = list(dict.fromkeys([*ta["items"], *tb["items"]]))
        positions = catalog.index_of(items, missing="drop")
        facts = "\n".join(f"- {catalog.render(int(p), by_position=True, max_chars=240)}" for p in positions)
        lines.append(
            json.dumps(
                {
                    "id": f"{record['id']}#{turn}",
                    "prompt": ta["user"],
                    "answer_a": ta["reply"],
                    "answer_b": tb["reply"],
                    "facts": facts,
                },
                ensure_ascii=False,
            )
        )
    write_text_atomic(Path(out), "\n".join(lines) + ("\n" if lines else ""))
    return len(lines)


def read_judge_items(path: str | Path) -> list[JudgeItem]:
    """JSONL with one object per line: id, prompt, answer_a, answer_b and optional facts."""
    path = Path(path)
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"not JSON: {exc.msg}", path=path, line=number) from exc
        for field in ("id", "prompt", "answer_a", "answer_b"):
            if not isinstance(raw.get(field), str):
                raise DataError("missing or not a string", path=path, line=number, field=field)
        items.append(
            JudgeItem(raw["id"], raw["prompt"], raw["answer_a"], raw["answer_b"], str(raw.get("facts", "")))
        )
    return items


def run_judge_eval(
    items_path: str | Path,
    out: str | Path,
    *,
    judge: str = "local:qwen2.5-1.5b-instruct",
    kind: str = "explanation",
    cache: bool = True,
    prices: str | None = None,
    resume: bool = True,
    progress: bool = True,
    seed: int = 0,
    batch: BatchSettings | None = None,
) -> Path:
    """Pairwise judging of the answers in ``items_path`` in both orders; returns the report's path
    (``batch``: items judged at once, and a budget)."""
    items = read_judge_items(items_path)
    config = {
        "task": "judge",
        "data": str(items_path),
        "judge": judge,
        "kind": kind,
        "seed": seed,
        "n": len(items),
    }
    run = RunFolder.open(out, task="judge", config=config, resume=resume)
    try:
        with scoped() as usage:
            return _judge_into(
                run,
                items,
                judge,
                kind=kind,
                seed=seed,
                cache=cache,
                prices=prices,
                progress=progress,
                batch=batch,
                usage=usage,
            )
    finally:
        run.close()


def _judge_into(
    run: RunFolder,
    items: Sequence[JudgeItem],
    judge: str,
    *,
    kind: str,
    seed: int,
    cache: bool,
    prices: str | None,
    progress: bool,
    batch: BatchSettings | None,
    usage: Any,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Judge the items the run does not hold yet (both orders), then write its metrics and report."""
    pairwise = PairwiseJudge(cached_llm(judge, cache=cache), kind=kind, seed=seed)
    caches = [pairwise.llm] if isinstance(pairwise.llm, CachedChatModel) else []
    try:
        evaluate_pairwise(
            items,
            pairwise,
            on_verdict=lambda v: run.append({**v.as_record(), "scores": _judge_scores(v)}),
            skip_ids=run.done_ids(),
            progress=progress,
            batch=batch,
        )
    except BudgetExhaustedError:
        _finish_partial(run, usage, caches, prices)
        raise
    records = run.records()
    verdicts = [JudgeVerdict.from_record(r) for r in records]
    summary = summarize_verdicts(verdicts, seed=seed)
    counts = {
        "win": summary["win"],
        "tie": summary["tie"] - summary["conflict"],
        "loss": summary["loss"],
        "conflict": summary["conflict"],
        "invalid": summary["invalid"],
    }
    document = metrics_document(
        run.task, records, seed=seed, judge=counts, extra={**summary, **(extra or {})}
    )
    return _finish(run, document, usage, caches, prices)


def run_generation_eval(
    kind: str,
    system_a: str,
    system_b: str,
    out: str | Path,
    *,
    data: DataOptions | None = None,
    prompts: str | Path | None = None,
    recommender: str = "itemcf",
    n: int = 100,
    history_len: int = 10,
    judge: str = "local:qwen2.5-1.5b-instruct",
    cache: bool = True,
    prices: str | None = None,
    resume: bool = True,
    progress: bool = True,
    batch: BatchSettings | None = None,
) -> Path:
    """Both systems answer a prompt set of ``kind`` ('explanation' or 'chitchat') and a judge compares
    the answers in both orders; returns the report's path.

    ``prompts`` is a prompt-set folder or a hand-written ``prompts.jsonl``; without it the set is built
    (:mod:`recai.evaluate.prompt_sets`: explanations of ``recommender``'s top item for ``n`` test users,
    or ``n`` chit-chat prompts from the catalog) and kept in the run folder with its provenance, so a
    resumed run answers the same prompts. Each system's answers are a run folder of their own inside it.
    """
    if kind not in PROMPT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PROMPT_KINDS)}, not '{kind}'")
    if system_a == system_b:
        raise ValueError("compare two different systems (system A and B are the same)")
    data = data or DataOptions()
    built = prompts is None
    config = {
        "task": kind,
        **data.as_config(),
        "system_a": system_a,
        "system_b": system_b,
        "judge": judge,
        "prompts": None if built else str(prompts),
        "recommender": recommender if built and kind == "explanation" else None,
        "n": n if built else None,
        "history_len": history_len if built and kind == "explanation" else None,
    }
    run = RunFolder.open(out, task=kind, config=config, resume=resume)
    try:
        dataset, split = data.load()
        if not built:
            prompt_set = PromptSet.load(Path(str(prompts)), kind=kind)
        elif (run.path / "prompts").exists():
            prompt_set = PromptSet.load(run.path / "prompts", kind=kind)
        else:
            prompt_set = build_prompt_set(
                kind, dataset, split, data, recommender, n=n, history_len=history_len
            )
            prompt_set.save(run.path / "prompts")
        answers: dict[str, dict[str, str]] = {}
        with scoped() as usage:
            try:
                for side, spec in (("a", system_a), ("b", system_b)):
                    answers[side] = answer_prompts(
                        _answerer(spec, dataset, split, data, cache=cache),
                        prompt_set.items,
                        run.path / f"answers_{side}",
                        prompts_sha256=prompt_set.sha256(),
                        batch=batch,
                        progress=progress,
                    )
            except BudgetExhaustedError:
                _finish_partial(run, usage, [], prices)
                raise
            items = [
                JudgeItem(p.id, p.prompt, answers["a"][p.id], answers["b"][p.id], p.facts)
                for p in prompt_set.items
            ]
            extra = {"system_a": system_a, "system_b": system_b, "prompts": prompt_set.provenance}
            return _judge_into(
                run,
                items,
                judge,
                kind=kind,
                seed=data.seed,
                cache=cache,
                prices=prices,
                progress=progress,
                batch=batch,
                usage=usage,
                extra=extra,
            )
    finally:
        run.close()


def build_prompt_set(
    kind: str,
    dataset: Dataset,
    split: Any,
    data: DataOptions,
    recommender: str,
    *,
    n: int = 100,
    history_len: int = 10,
) -> PromptSet:
    """A prompt set of ``kind`` for ``dataset``, seeded by the data options (see :mod:`prompt_sets`)."""
    if kind == "chitchat":
        return build_chitchat_set(dataset, n=n, seed=data.seed)
    memo = (data.data, data.k_core, data.seed)
    model = fit_classic(recommender, split, seed=data.seed, memo=memo)
    return build_explanation_set(
        dataset, split, model, recommender=recommender, n_users=n, history_len=history_len, seed=data.seed
    )


def _answerer(spec: str, dataset: Dataset, split: Any, data: DataOptions, *, cache: bool) -> Answerer:
    """``llm:SPEC`` answers prompts directly; ``agent:``, ``plain:`` and ``chatrec:`` answer them as the
    first message of a conversation. Systems that write no text (random, classic models) are refused."""
    family, _, llm_spec = spec.partition(":")
    if not llm_spec:
        raise ValueError(f"'{spec}' writes no text: use llm:SPEC, agent:SPEC, plain:SPEC or chatrec:SPEC")
    llm = cached_llm(llm_spec, cache=cache)
    if family == "llm":
        return ChatModelAnswerer(spec, llm)
    system = conversation_system(spec, dataset, split, cache=cache, seed=data.seed, llm=llm)
    return ConversationAnswerer(spec, system, llm)


def _judge_scores(verdict: JudgeVerdict) -> dict[str, float]:
    """Per-item numbers for CIs and paired comparisons: A's win (1), tie or conflict (0.5), loss (0)."""
    if verdict.outcome == "invalid":
        return {}
    out = {"a_wins": {"A": 1.0, "B": 0.0}.get(verdict.outcome, 0.5)}
    for criterion, scores in verdict.mean_scores.items():
        out[f"{criterion}_a_minus_b"] = float(scores["A"] - scores["B"])
    return out


def _current(run: RunFolder, samples: Sequence[Any]) -> list[dict[str, Any]]:
    """The run's records for this call's samples (a run extended to more samples and then summarised
    with fewer must not mix the two)."""
    wanted = {s.id for s in samples}
    return [r for r in run.records() if r["id"] in wanted]


__all__ = [
    "build_prompt_set",
    "judge_pairs_from_runs",
    "read_judge_items",
    "run_choice_eval",
    "run_conversation_eval",
    "run_generation_eval",
    "run_judge_eval",
    "run_list_eval",
    "run_recommender_eval",
]
