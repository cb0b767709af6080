"""The evaluation runners: build samples, run a system, write the run folder, resume when asked.

Each ``run_*_eval`` function is what one ``recai eval`` command calls (ranking and retrieval share
:func:`run_list_eval`; the run folder records which as its ``task``). It writes a run folder (see
:mod:`recai.evaluate.runs`) with the config, one JSONL record per sample (written as soon as the
sample is done, so an interrupted run resumes where it stopped), metrics with 95% bootstrap intervals,
LLM usage with a cost estimate, and ``report.md``. LLM replies go through a response cache keyed by
model, prompt and sampling parameters, so re-running an evaluation costs nothing. The steps the
sample-based runners share (build only what is left, stop on a budget, finish the folder) are in
:mod:`recai.evaluate.sampled`; each runner here states its config, samples, system and summary, and
:class:`SystemBuilder` turns a ``--system`` spec into the system under test.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recai.data import Dataset
from recai.data import load as load_dataset
from recai.data.errors import plain_value
from recai.data.jsonl import FieldError, read_jsonl
from recai.evaluate.answers import Answerer, ChatModelAnswerer, ConversationAnswerer, answer_prompts
from recai.evaluate.choice import (
    CHOICE_SAMPLING,
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
    ListSampling,
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
from recai.evaluate.prompt_sets import KINDS as PROMPT_KINDS
from recai.evaluate.prompt_sets import PromptSet, build_chitchat_set, build_explanation_set
from recai.evaluate.recommender import rank_users
from recai.evaluate.report import metrics_document
from recai.evaluate.runs import RunFolder
from recai.evaluate.sampled import (
    Built,
    RunSettings,
    finish_run,
    response_caches,
    run_sampled_eval,
    spend_recorded_on_stop,
)
from recai.evaluate.summaries import SummaryEncoderListSystem, UserSummarizer
from recai.llm.base import ChatModel
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


@dataclass(frozen=True)
class SystemBuilder:
    """Builds the systems under test of one run (and the prompt sets they answer) from the same prepared
    data and settings, so each runner states the data, seed and cache choice once and asks for the kind
    of system its task needs (the specs are in the module docstring).

    Attributes:
        dataset: The dataset (after any k-core).
        split: Its leave-one-out split; classic models train on its training part.
        data: The options it was prepared with: their seed seeds every system.
        sasrec_budget_s: SASRec's training time budget in ranking, retrieval and multiple choice.
        cache: Whether chat models answer through the response cache.
    """

    dataset: Dataset
    split: Any
    data: DataOptions
    sasrec_budget_s: float = 300.0
    cache: bool = True

    def llm(self, spec: str) -> ChatModel:
        """The chat model for ``spec``, behind the response cache unless the run turned it off."""
        return cached_llm(spec, cache=self.cache)

    def list_system(self, spec: str) -> ListSystem:
        """The system under test for ranking and retrieval."""
        catalog, noun = self.dataset.catalog, item_noun(self.dataset)
        if spec == "random":
            return RandomListSystem(len(catalog), seed=self.data.seed)
        if spec in MODELS:
            fitted = fit_classic(spec, self.split, sasrec_budget_s=self.sasrec_budget_s, seed=self.data.seed)
            return RecommenderListSystem(fitted, name=spec)
        from recai.embed.encoder import load_encoder

        kind, _, llm_spec = spec.partition(":")
        if kind == "llm" and llm_spec:
            return LLMListSystem(self.llm(llm_spec), catalog, item_noun=noun)
        if kind == "chatrec" and llm_spec:
            retriever = EncoderListSystem(load_encoder(), catalog)
            return ChatRecListSystem(self.llm(llm_spec), self.dataset, retriever, item_noun=noun)
        if kind == "encoder":
            return EncoderListSystem(load_encoder(llm_spec or None), catalog)
        if kind == "summary" and llm_spec:
            summarizer = UserSummarizer(self.llm(llm_spec), catalog, item_noun=noun)
            return SummaryEncoderListSystem(load_encoder(), catalog, summarizer)
        raise ValueError(
            f"unknown system '{spec}': use random, {', '.join(MODELS)}, llm:SPEC, chatrec:SPEC, "
            "encoder[:SPEC] or summary:SPEC"
        )

    def choice_system(self, spec: str, kind: str) -> ListSystem:
        """The system under test for multiple choice of ``kind``: a chat model answers a letter, anything
        that ranks candidates chooses its top one (Chat-Rec's retrieval would drop options: refused)."""
        family, _, llm_spec = spec.partition(":")
        if family == "llm" and llm_spec:
            noun = item_noun(self.dataset)
            return LLMChoiceSystem(self.llm(llm_spec), self.dataset.catalog, kind=kind, item_noun=noun)
        if family == "chatrec":
            raise ValueError("chatrec retrieves a subset of the candidates; multiple choice shows them all")
        return self.list_system(spec)

    def conversation_system(
        self, spec: str, *, k: int = 5, llm: ChatModel | None = None
    ) -> ConversationalSystem:
        """The system under test in conversations; ``k`` items per turn for the history baselines (the
        agent shows its own). ``llm`` is the spec's chat model when the caller already holds it (a local
        model is loaded once)."""
        if spec == "random" or spec in MODELS:
            return self.history_system(spec, k=k)
        kind, _, llm_spec = spec.partition(":")
        if not llm_spec:
            raise ValueError(
                f"unknown system '{spec}': use agent:SPEC, plain:SPEC, chatrec:SPEC, random or "
                + ", ".join(MODELS)
            )
        llm = llm or self.llm(llm_spec)
        catalog, noun = self.dataset.catalog, item_noun(self.dataset)
        if kind == "agent":
            # the agent's own resources (popularity, item-CF, SASRec) must not see the test events
            known = self.dataset.with_interactions(
                self.split.train_and_valid(), note="evaluation: train + valid only"
            )
            return AgentSystem(_agent(known, llm))
        if kind == "plain":
            return ChatModelSystem(llm, catalog, item_noun=noun)
        if kind == "chatrec":
            from recai.embed.encoder import load_encoder

            encoder = load_encoder()
            index = catalog.index(encoder, progress=False)
            return ChatRecSystem(llm, catalog, index, encoder, item_noun=noun)
        raise ValueError(f"unknown system '{spec}': use agent:SPEC, plain:SPEC or chatrec:SPEC")

    def history_system(self, spec: str, *, k: int = 5) -> ConversationalSystem:
        """A classic recommender (or random) as a conversation baseline that only uses the user's
        history (fitted once per data options in this process)."""
        n_items, seed = len(self.dataset.catalog), self.data.seed
        if spec == "random":

            def recommend(history: list[int], k: int, shown: set[int]) -> list[int]:
                # seeded per session and turn, so a session never depends on which sessions ran before it
                rng = np.random.default_rng(user_seed(seed, (tuple(history), len(shown))))
                blocked = set(history) | shown
                pool = np.array([i for i in range(n_items) if i not in blocked])
                return rng.choice(pool, size=min(k, len(pool)), replace=False).astype(int).tolist()

        else:
            model = fit_classic(spec, self.split, seed=seed, memo=self.data)

            def recommend(history: list[int], k: int, shown: set[int]) -> list[int]:
                positions, _ = model.recommend(history, k, exclude=shown)
                return [int(p) for p in positions]

        return HistoryRecommenderSystem(recommend, self.dataset.catalog, name=spec, k=k)

    def answerer(self, spec: str) -> Answerer:
        """``llm:SPEC`` answers prompts directly; ``agent:``, ``plain:`` and ``chatrec:`` answer them as
        the first message of a conversation. Systems that write no text (random, classic models) are
        refused."""
        family, _, llm_spec = spec.partition(":")
        if not llm_spec:
            raise ValueError(f"'{spec}' writes no text: use llm:SPEC, agent:SPEC, plain:SPEC or chatrec:SPEC")
        llm = self.llm(llm_spec)
        if family == "llm":
            return ChatModelAnswerer(spec, llm)
        return ConversationAnswerer(spec, self.conversation_system(spec, llm=llm), llm)

    def prompt_set(self, kind: str, recommender: str, *, n: int = 100, history_len: int = 10) -> PromptSet:
        """A prompt set of ``kind`` for the systems to answer (see :mod:`recai.evaluate.prompt_sets`):
        explanations of the classic ``recommender``'s top item for ``n`` test users, or ``n`` chit-chat
        prompts."""
        if kind == "chitchat":
            return build_chitchat_set(self.dataset, n=n, seed=self.data.seed)
        model = fit_classic(recommender, self.split, seed=self.data.seed, memo=self.data)
        return build_explanation_set(
            self.dataset,
            self.split,
            model,
            recommender=recommender,
            n_users=n,
            history_len=history_len,
            seed=self.data.seed,
        )


def run_list_eval(
    task: str,
    system: str,
    out: str | Path,
    *,
    data: DataOptions | None = None,
    sampling: ListSampling = ListSampling(),
    sasrec_budget_s: float = 300.0,
    settings: RunSettings = RunSettings(),
) -> Path:
    """Generative ranking ('ranking') or retrieval ('retrieval'); returns the report's path."""
    data = data or DataOptions()
    budget = sasrec_budget_s if system == "sasrec" else None
    config = list_run_config(task, data, system, sampling, sasrec_budget_s=budget)

    def build(dataset: Dataset, split: Any, run: RunFolder) -> Built:
        systems = SystemBuilder(dataset, split, data, sasrec_budget_s=sasrec_budget_s, cache=settings.cache)
        evaluator = ListEvaluator(dataset.catalog, k=sampling.k, orders=sampling.orders, seed=data.seed)
        return systems.list_system(system), evaluator

    return run_sampled_eval(
        out,
        config,
        data,
        lambda dataset, split: build_samples(split, sampling, task=task, seed=data.seed),
        build,
        summarize_list_records,
        settings=settings,
    )


def run_choice_eval(
    kind: str,
    system: str,
    out: str | Path,
    *,
    data: DataOptions | None = None,
    sampling: ListSampling = CHOICE_SAMPLING,
    sasrec_budget_s: float = 300.0,
    settings: RunSettings = RunSettings(),
) -> Path:
    """Multiple-choice recommendation (``kind`` 'cf' or 'seq', see :mod:`recai.evaluate.choice`);
    returns the report's path. The run's task is ``choice_cf`` or ``choice_seq``. ``sampling`` defaults
    to ten lettered options (:data:`~recai.evaluate.choice.CHOICE_SAMPLING`); its ``k`` plays no part
    (one letter is scored)."""
    data = data or DataOptions()
    task = f"choice_{kind}"
    budget = sasrec_budget_s if system == "sasrec" else None
    config = list_run_config(task, data, system, sampling, sasrec_budget_s=budget)

    def draw(dataset: Dataset, split: Any) -> list[ListSample]:
        timed = dataset.interactions.has_timestamps
        return build_choice_samples(split, sampling, kind=kind, seed=data.seed, timed=timed)

    def build(dataset: Dataset, split: Any, run: RunFolder) -> Built:
        systems = SystemBuilder(dataset, split, data, sasrec_budget_s=sasrec_budget_s, cache=settings.cache)
        evaluator = ChoiceEvaluator(dataset.catalog, orders=sampling.orders, seed=data.seed)
        return systems.choice_system(system, kind), evaluator

    return run_sampled_eval(out, config, data, draw, build, summarize_choice_records, settings=settings)


def run_recommender_eval(
    system: str,
    out: str | Path,
    *,
    data: DataOptions | None = None,
    ks: Sequence[int] = (1, 5, 10, 20),
    sasrec_budget_s: float = 300.0,
    settings: RunSettings = RunSettings(),
) -> Path:
    """Full-catalog ranking of every test user (history excluded) by a classic recommender or random.

    All users are ranked by one fitted model. A resumed run whose records are complete only rebuilds
    the metrics and the report; an incomplete one is refused, because SASRec trains to a time budget
    and a refit would not be the same model (start again with ``settings.resume=False``). No chat model
    and no batch take part: of the ``settings``, only ``prices`` and ``resume`` matter here.
    """
    data = data or DataOptions()
    config = {
        "task": "recommender",
        **data.as_config(),
        "system": system,
        "ks": list(ks),
        "sasrec_budget_s": sasrec_budget_s if system == "sasrec" else None,
    }
    resume = settings.resume
    run = RunFolder.open(out, task="recommender", config=config, resume=resume, overwrite=not resume)
    try:
        dataset, split = data.load()
        history, targets = split.train_and_valid(), split.test
        done = run.done_ids()
        expected = {str(u) for u in targets.user_ids}
        if done and done != expected:
            raise ValueError(
                f"{out} holds {len(done)} of {len(expected)} users from an interrupted run; "
                "run it again from scratch (resume=False)"
            )
        if not done:
            # items that survive the k-core filter compete (RecBole's item set), as in `recai rec eval`
            competing = np.flatnonzero(dataset.interactions.item_counts() > 0)
            if system == "random":
                users = list(targets.user_ids)
                target_items = np.array([targets.sequence(u)[-1] for u in users])
                rng = np.random.default_rng(data.seed)
                known = set(history.user_ids)
                rankings = np.empty((len(users), max(ks)), dtype=np.int64)
                for row, user in enumerate(users):
                    seen = history.sequence(user) if user in known else np.empty(0, dtype=np.int64)
                    pool = np.setdiff1d(competing, seen)
                    rankings[row] = rng.choice(pool, size=max(ks), replace=False)
            else:
                model = fit_classic(system, split, sasrec_budget_s=sasrec_budget_s, seed=data.seed, memo=data)
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
                            plain_value(i)
                            for i in dataset.catalog.ids[rankings[row][rankings[row] >= 0][:10]]
                        ],
                        "scores": {name: float(values[row]) for name, values in per_user.items()},
                    }
                )
        document = metrics_document("recommender", run.records(), seed=data.seed)
        return finish_run(run, document, UsageMeter(), [], settings.prices)
    finally:
        run.close()


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
    settings: RunSettings = RunSettings(),
) -> Path:
    """Simulated-user conversations with ``system``; returns the report's path (``settings.batch``:
    sessions in flight at once, each on its own fork of the system, and a budget)."""
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

    def build(dataset: Dataset, split: Any, run: RunFolder) -> Built:
        made = SystemBuilder(dataset, split, data, cache=settings.cache).conversation_system(system, k=k)
        sim = UserSimulator(
            cached_llm(simulator, cache=settings.cache),
            dataset.catalog,
            item_noun=item_noun(dataset),
            seed=data.seed,
        )
        return made, ConversationEvaluator(dataset.catalog, sim, max_turns=max_turns, k=k)

    def sections(summary: dict[str, Any]) -> dict[str, Any]:
        leaks = {name: summary[name] for name in ("leak_regenerations", "masked_turns")}
        return {"per_turn": summary["per_turn"], "counts": leaks}

    return run_sampled_eval(
        out,
        config,
        data,
        lambda dataset, split: build_conversation_samples(
            split, dataset.catalog, n=n, history_len=history_len, seed=data.seed
        ),
        build,
        lambda records: summarize_conversations(records, max_turns, k),
        sections=sections,
        settings=settings,
    )


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
    return read_jsonl(path, _judge_item)


def _judge_item(raw: Any) -> JudgeItem:
    if not isinstance(raw, dict):
        raise FieldError(None, "must be a JSON object")
    for name in ("id", "prompt", "answer_a", "answer_b"):
        if not isinstance(raw.get(name), str):
            raise FieldError(name, "missing or not a string")
    return JudgeItem(raw["id"], raw["prompt"], raw["answer_a"], raw["answer_b"], str(raw.get("facts", "")))


def run_judge_eval(
    items_path: str | Path,
    out: str | Path,
    *,
    judge: str = "local:qwen2.5-1.5b-instruct",
    kind: str = "explanation",
    seed: int = 0,
    settings: RunSettings = RunSettings(),
) -> Path:
    """Pairwise judging of the answers in ``items_path`` in both orders; returns the report's path
    (``settings.batch``: items judged at once, and a budget)."""
    items = read_judge_items(items_path)
    config = {
        "task": "judge",
        "data": str(items_path),
        "judge": judge,
        "kind": kind,
        "seed": seed,
        "n": len(items),
    }
    run = RunFolder.open(out, task="judge", config=config, resume=settings.resume)
    try:
        with scoped() as usage:
            return _judge_into(run, items, judge, kind=kind, seed=seed, settings=settings, usage=usage)
    finally:
        run.close()


def _judge_into(
    run: RunFolder,
    items: Sequence[JudgeItem],
    judge: str,
    *,
    kind: str,
    seed: int,
    settings: RunSettings,
    usage: Any,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Judge the items the run does not hold yet (both orders), then write its metrics and report."""
    pairwise = PairwiseJudge(cached_llm(judge, cache=settings.cache), kind=kind, seed=seed)
    caches = response_caches(pairwise)
    with spend_recorded_on_stop(run, usage, caches, settings.prices):
        evaluate_pairwise(
            items,
            pairwise,
            on_verdict=lambda v: run.append({**v.as_record(), "scores": _judge_scores(v)}),
            skip_ids=run.done_ids(),
            progress=settings.progress,
            batch=settings.batch,
        )
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
    return finish_run(run, document, usage, caches, settings.prices)


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
    settings: RunSettings = RunSettings(),
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
    run = RunFolder.open(out, task=kind, config=config, resume=settings.resume)
    try:
        dataset, split = data.load()
        systems = SystemBuilder(dataset, split, data, cache=settings.cache)
        if not built:
            prompt_set = PromptSet.load(Path(str(prompts)), kind=kind)
        elif (run.path / "prompts").exists():
            prompt_set = PromptSet.load(run.path / "prompts", kind=kind)
        else:
            prompt_set = systems.prompt_set(kind, recommender, n=n, history_len=history_len)
            prompt_set.save(run.path / "prompts")
        answers: dict[str, dict[str, str]] = {}
        with scoped() as usage:
            with spend_recorded_on_stop(run, usage, [], settings.prices):
                for side, spec in (("a", system_a), ("b", system_b)):
                    answers[side] = answer_prompts(
                        systems.answerer(spec),
                        prompt_set.items,
                        run.path / f"answers_{side}",
                        prompts_sha256=prompt_set.sha256(),
                        batch=settings.batch,
                        progress=settings.progress,
                    )
            items = [
                JudgeItem(p.id, p.prompt, answers["a"][p.id], answers["b"][p.id], p.facts)
                for p in prompt_set.items
            ]
            extra = {"system_a": system_a, "system_b": system_b, "prompts": prompt_set.provenance}
            return _judge_into(
                run, items, judge, kind=kind, seed=data.seed, settings=settings, usage=usage, extra=extra
            )
    finally:
        run.close()


def _judge_scores(verdict: JudgeVerdict) -> dict[str, float]:
    """Per-item numbers for CIs and paired comparisons: A's win (1), tie or conflict (0.5), loss (0)."""
    if verdict.outcome == "invalid":
        return {}
    out = {"a_wins": {"A": 1.0, "B": 0.0}.get(verdict.outcome, 0.5)}
    for criterion, scores in verdict.mean_scores.items():
        out[f"{criterion}_a_minus_b"] = float(scores["A"] - scores["B"])
    return out


__all__ = [
    "SystemBuilder",
    "judge_pairs_from_runs",
    "read_judge_items",
    "run_choice_eval",
    "run_conversation_eval",
    "run_generation_eval",
    "run_judge_eval",
    "run_list_eval",
    "run_recommender_eval",
]
