"""The steps every sample-based evaluation runner shares, in one place.

``recai eval ranking|retrieval|mc|conversation`` (:mod:`recai.evaluate.runners`) and ``recai knowledge
eval`` (:mod:`recai.knowledge.evaluation`, a layer below the runners) differ only in their config, their
samples, the system and evaluator they build, and how their records are summarised.
:func:`run_sampled_eval` does everything else the same way for all of them: it loads the data, draws the
samples, opens the run folder, builds the system only when samples are left (a finished run trains and
loads nothing), appends each record as it is done, records the spend when a budget stops the run, and
writes the metrics, the usage and the report. The finishing steps (:func:`finish_run`,
:func:`record_spend`, :func:`response_caches`) serve the runners that judge items instead of sampling
users too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recai.data import Dataset
from recai.evaluate.conversation import ConversationEvaluator
from recai.evaluate.generative import ListEvaluator
from recai.evaluate.prepare import DataOptions
from recai.evaluate.prices import PriceTable
from recai.evaluate.report import metrics_document
from recai.evaluate.runs import METRICS, RunFolder
from recai.llm.batch import BatchSettings, BudgetExhaustedError
from recai.llm.cache import CachedChatModel
from recai.llm.usage import UsageMeter, scoped

Records = list[dict[str, Any]]
#: What a runner builds once samples are left: the system under test and the evaluator that runs it.
Built = tuple[Any, ListEvaluator | ConversationEvaluator]


@dataclass(frozen=True)
class RunSettings:
    """How an evaluation run executes, as opposed to what it measures: every runner takes these, and
    none of them is part of the run's config, so a run may be resumed with other settings (another
    concurrency, a fresh budget, the cache off).

    Attributes:
        cache: Whether chat models answer through the response cache (runners without a chat model,
            like the classic recommenders' full ranking, have nothing to cache).
        prices: The price table for the run's cost estimate (a path); ``None``: the built-in one.
        resume: Continue the run already in the output folder (refused when its config differs);
            ``False`` starts it again.
        progress: Show a progress bar.
        batch: The requests in flight at once and a token or cost budget (:mod:`recai.llm.batch`);
            ``None``: one at a time, no budget.
    """

    cache: bool = True
    prices: str | None = None
    resume: bool = True
    progress: bool = True
    batch: BatchSettings | None = None


def answer_counts(summary: dict[str, Any]) -> dict[str, Any]:
    """The metrics document's sections of a list summary: its answer counts (valid, invalid, ...)."""
    return {"counts": summary["counts"]}


def run_sampled_eval(
    out: str | Path,
    config: dict[str, Any],
    data: DataOptions,
    draw: Callable[[Dataset, Any], Sequence[Any]],
    build: Callable[[Dataset, Any, RunFolder], Built],
    summarize: Callable[[Records], dict[str, Any]],
    *,
    sections: Callable[[dict[str, Any]], dict[str, Any]] = answer_counts,
    settings: RunSettings = RunSettings(),
) -> Path:
    """Evaluate the samples ``draw`` takes from ``data`` that the run in ``out`` lacks, then write its
    metrics and report; returns the report's path.

    ``config`` is the run's config (its ``task`` is the run's task). ``build`` gets the data and the open
    run (a runner may keep what it fits in the folder). ``summarize`` turns the records into the
    metrics' ``extra`` (the system's description is added), ``sections`` picks the metrics document's
    other sections from that summary. ``settings`` say how the run executes (``build`` reads their
    ``cache``); they change no record, so they are not in the config.
    """
    dataset, split = data.load()
    samples = draw(dataset, split)  # first: a question the data cannot answer leaves no run behind
    with RunFolder.open(out, task=config["task"], config=config, resume=settings.resume) as run:
        system, caches, usage = _evaluate_rest(run, samples, lambda: build(dataset, split, run), settings)
        wanted = {sample.id for sample in samples}  # a run extended to more samples, summarised with fewer
        records = [record for record in run.records() if record["id"] in wanted]
        summary = summarize(records)
        described = system.config() if system is not None else _system_recorded(run)
        extra = summary if described is None else {**summary, "system": described}
        document = metrics_document(run.task, records, seed=data.seed, extra=extra, **sections(summary))
        return finish_run(run, document, usage, caches, settings.prices)


def _evaluate_rest(
    run: RunFolder, samples: Sequence[Any], build: Callable[[], Built], settings: RunSettings
) -> tuple[Any, list[CachedChatModel], UsageMeter]:
    """Build the system and evaluate the samples the run lacks; returns the system (None when nothing was
    left, so nothing was built), the response caches it talked through and the usage it spent."""
    if all(sample.id in run.done_ids() for sample in samples):
        return None, [], UsageMeter()
    with scoped() as usage:
        system, evaluator = build()
        caches = response_caches(system, getattr(evaluator, "simulator", None))
        with spend_recorded_on_stop(run, usage, caches, settings.prices):
            evaluator.run(
                system,
                samples,
                on_record=run.append,
                skip_ids=run.done_ids(),
                progress=settings.progress,
                batch=settings.batch,
            )
    return system, caches, usage


def _system_recorded(run: RunFolder) -> Any:
    """The system description the run's metrics already hold: a finished run is summarised again
    without building its system, and keeps saying which system wrote its records."""
    if not (run.path / METRICS).exists():
        return None
    extra = run.read_metrics().get("extra")
    return extra.get("system") if isinstance(extra, dict) else None


def response_caches(*talkers: Any) -> list[CachedChatModel]:
    """The response caches behind the chat models of a system, an agent system's agent or a simulator,
    each once: the run's usage record reports what they saved."""
    found: dict[int, CachedChatModel] = {}
    for talker in talkers:
        llm = getattr(talker, "llm", None) or getattr(getattr(talker, "agent", None), "llm", None)
        if isinstance(llm, CachedChatModel):
            found.setdefault(id(llm), llm)
    return list(found.values())


@contextmanager
def spend_recorded_on_stop(
    run: RunFolder, usage: UsageMeter, caches: list[CachedChatModel], prices: str | None
) -> Iterator[None]:
    """Let a budget stop inside the block through, after recording what the run spent: its records are
    saved, and its metrics and report wait for it to be resumed and finished."""
    try:
        yield
    except BudgetExhaustedError:
        record_spend(run, usage, caches, prices)
        raise


def record_spend(
    run: RunFolder, usage: UsageMeter, caches: list[CachedChatModel], prices: str | None
) -> None:
    """Record what the run spent: LLM usage with its cost estimate, and what the caches saved."""
    run.write_usage(usage.report(), PriceTable.load(prices), cache=[cache.stats() for cache in caches])


def finish_run(
    run: RunFolder,
    document: dict[str, Any],
    usage: UsageMeter,
    caches: list[CachedChatModel],
    prices: str | None,
) -> Path:
    """Write the run's metrics, spend and report, and close it; returns the report's path."""
    run.write_metrics(document)
    record_spend(run, usage, caches, prices)
    report = run.write_report()
    run.close()
    return report
