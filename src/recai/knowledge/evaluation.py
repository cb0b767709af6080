"""The knowledge ranker as an evaluated system: the same samples, run folder and report as
``recai eval ranking``, so its runs compare directly (``recai eval compare``) with any other system's.

:class:`KnowledgeListSystem` plugs a :class:`~recai.knowledge.ranker.KnowledgeRanker` into
:class:`~recai.evaluate.generative.ListEvaluator`: it answers with candidate positions, adds its repair
tallies to the record's answer counts and keeps the selected knowledge, the model's numbers and the
prompt's token count in the record.

:func:`run_knowledge_eval` writes the run folder. Its config has the keys of a ``recai eval ranking``
run (so the two compare), with everything about the knowledge inside ``system``. The knowledge base is
either given (a folder from ``recai knowledge build``, recorded with its save time so a rebuilt base is
not mixed into a resumed run) or built on the split's training part and saved in the run folder's
``knowledge/``, where a resumed run finds it again instead of refitting (a time-budgeted SASRec would
come out different). The run itself goes through :func:`recai.evaluate.sampled.run_sampled_eval`, as
every ``recai eval`` runner's does; this module states only the config, the samples, the system and the
knowledge summary. Classic baselines (``popularity``, ``itemcf``, ``bpr``, ``als``, ``sasrec``) run
through the same code, and use the knowledge base's own fitted model when it holds that one, so "SASRec
alone" and "the LLM told what SASRec thinks" are the same SASRec.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recai.data.catalog import Catalog
from recai.data.dataset import Dataset
from recai.evaluate.generative import (
    ListAnswer,
    ListEvaluator,
    ListSample,
    ListSampling,
    ListSystem,
    RandomListSystem,
    RecommenderListSystem,
    build_samples,
    list_run_config,
    summarize_list_records,
)
from recai.evaluate.prepare import DataOptions, fit_classic
from recai.evaluate.runs import RunFolder
from recai.evaluate.sampled import Built, RunSettings, run_sampled_eval
from recai.knowledge.ranker import KnowledgeRanker
from recai.knowledge.store import KnowledgeBase, parse_kinds
from recai.knowledge.workflows import evaluation_ranker, load_knowledge
from recai.rec import MODELS

KNOWLEDGE_DIR = "knowledge"


class KnowledgeListSystem(ListSystem):
    """A KnowledgeRanker as a ListSystem (ranking only: it needs candidates).

    Args:
        ranker: The knowledge ranker.
        name: The system's name in reports; defaults to ``knowledge[<kinds>]:<model name>``.
    """

    def __init__(self, ranker: KnowledgeRanker, *, name: str | None = None) -> None:
        self.ranker = ranker
        self.llm = ranker.llm  # the run's cache statistics are read from here
        kinds = "+".join(ranker.kinds) or "none"
        self.name = name or f"knowledge[{kinds}]:{ranker.llm.name}"

    def answer(self, sample: ListSample, candidates: list[int] | None, k: int) -> ListAnswer:
        if candidates is None:
            raise ValueError(
                "the knowledge ranker ranks a candidate list; use the ranking task, not retrieval"
            )
        result = self.ranker.rank(sample.history, candidates, user=sample.user, key=sample.id)
        return ListAnswer(
            text=result.raw,
            positions=result.positions,
            error=result.error,
            counts=result.counts,
            details=result.details(self.ranker.catalog, self.ranker.counter),
        )

    def config(self) -> dict[str, Any]:
        return {"name": self.name, **self.ranker.config()}


def summarize_knowledge(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Prompt and knowledge sizes over the records (for the report's ``extra``)."""
    prompt, knowledge, facts = [], [], []
    by_kind: Counter[str] = Counter()
    counters: set[str] = set()
    for record in records:
        for order in record.get("orders", []):
            details = order.get("details")
            if not details:
                continue
            prompt.append(details["prompt_tokens"])
            knowledge.append(details["knowledge_tokens"])
            facts.append(details["knowledge_facts"])
            counters.add(str(details["counter"]["name"]))
            for call in details["calls"]:
                by_kind.update(f["kind"] for f in call["knowledge"]["facts"])
    if not prompt:
        return {}
    return {
        "prompt_tokens_mean": round(float(np.mean(prompt)), 1),
        "knowledge_tokens_mean": round(float(np.mean(knowledge)), 1),
        "knowledge_facts_mean": round(float(np.mean(facts)), 2),
        "facts_by_kind": dict(sorted(by_kind.items())),
        "token_counter": sorted(counters),
    }


def run_knowledge_eval(
    system: str,
    out: str | Path,
    *,
    knowledge: str | Sequence[str] = "all",
    base: str | Path | KnowledgeBase | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    data: DataOptions | None = None,
    sampling: ListSampling = ListSampling(),
    ranker: Mapping[str, Any] | None = None,
    sasrec_budget_s: float = 300.0,
    settings: RunSettings = RunSettings(),
) -> Path:
    """Candidate ranking by the knowledge ranker (``system="llm:SPEC"``) or a classic baseline.

    ``knowledge`` names the extractor kinds in the prompt ('none', 'all' or a list; with a ``base``,
    'all' means every kind it holds); ``params`` their hyperparameters (when the base is built here);
    ``ranker`` the KnowledgeRanker options (``budget_tokens``, ``style``, ``orders``,
    ``candidate_order``...). ``data`` defaults to the base's data when a base is given. ``settings.batch``
    sets the LLM requests in flight (samples ranked at once; records stay in sample order) and a token
    or cost budget (:mod:`recai.llm.batch`). Returns the report's path.
    """
    kind, _, llm_spec = system.partition(":")
    is_llm = kind == "llm" and bool(llm_spec)
    if not is_llm and system not in (*MODELS, "random"):
        raise ValueError(f"unknown system '{system}': use llm:SPEC, random or one of {', '.join(MODELS)}")
    kinds = parse_kinds(knowledge) if is_llm else []
    loaded = load_knowledge(base)[0] if base is not None and not isinstance(base, KnowledgeBase) else None
    given = base if isinstance(base, KnowledgeBase) else loaded
    if data is None:  # a base's own data, else the default
        recorded = given.meta.get("data") if given is not None else None
        data = DataOptions(**recorded) if isinstance(recorded, dict) else DataOptions()
    if given is not None:
        _check_base_data(given, data, base)
        if is_llm and isinstance(knowledge, str) and knowledge.strip() == "all":
            kinds = list(given.kinds)  # 'all' of a given base: every kind it holds
        missing = [k for k in kinds if k not in given.kinds]
        if missing:
            raise ValueError(f"the knowledge base {base} has no {missing} extractor (it holds {given.kinds})")
    described: dict[str, Any] = {"name": system}
    if is_llm:
        described.update(
            {
                "kind": "knowledge",
                "knowledge": kinds,
                "ranker": dict(ranker or {}),
                "extractors": {k: dict((params or {}).get(k, {})) for k in kinds},
            }
        )
    if given is not None:
        described["base"] = {
            "path": str(base) if not isinstance(base, KnowledgeBase) else None,
            "saved_at": given.saved_at,
            "fingerprint": given.fingerprint(),
        }
    needs_base = is_llm and bool(kinds)
    if needs_base or system == "sasrec":
        described["sasrec_budget_s"] = sasrec_budget_s
    budget = sasrec_budget_s if system == "sasrec" else None
    config = list_run_config("ranking", data, described, sampling, sasrec_budget_s=budget)

    def build(dataset: Dataset, split: Any, run: RunFolder) -> Built:
        def fit_model(name: str) -> Any:
            return fit_classic(name, split, sasrec_budget_s=sasrec_budget_s, seed=data.seed, memo=data)

        kb = given
        if kb is None and needs_base:
            progress = settings.progress
            kb = _run_base(run.path, dataset.catalog, split, kinds, params, fit_model, data, progress)
        if is_llm:
            sut: ListSystem = KnowledgeListSystem(
                evaluation_ranker(
                    llm_spec, dataset, split, data, kb, kinds, options=ranker, cache=settings.cache
                )
            )
        elif system == "random":
            sut = RandomListSystem(len(dataset.catalog), seed=data.seed)
        else:
            model = kb.model(system) if kb is not None else None
            sut = RecommenderListSystem(model if model is not None else fit_model(system), name=system)
        return sut, ListEvaluator(dataset.catalog, k=sampling.k, orders=sampling.orders, seed=data.seed)

    return run_sampled_eval(
        out,
        config,
        data,
        lambda dataset, split: build_samples(split, sampling, seed=data.seed),
        build,
        lambda records: {**summarize_list_records(records), **summarize_knowledge(records)},
        settings=settings,
    )


def _check_base_data(base: KnowledgeBase, data: DataOptions, where: Any) -> None:
    recorded = base.meta.get("data")
    if recorded is not None and dict(recorded) != data.as_config():
        raise ValueError(
            f"the knowledge base {where} was built on {recorded}, but this run uses {data.as_config()}"
        )


def _run_base(
    folder: Path,
    catalog: Catalog,
    split: Any,
    kinds: list[str],
    params: Mapping[str, Mapping[str, Any]] | None,
    fit_model: Any,
    data: DataOptions,
    progress: bool,
) -> KnowledgeBase:
    """The run's own knowledge base: loaded when an earlier session saved it, else fitted and saved."""
    target = folder / KNOWLEDGE_DIR
    if (target / "knowledge.json").exists():
        return KnowledgeBase.load(target, catalog)
    kb = KnowledgeBase.build(
        catalog,
        split,
        kinds=kinds,
        params=params,
        fit_model=fit_model,
        meta={"data": data.as_config()},
        progress=progress,
    )
    kb.save(target)
    return kb
