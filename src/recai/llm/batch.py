"""Batch LLM work with a bounded number of requests in flight: the one loop every batch job runs.

Throughput from a model server (vLLM, SGLang, TGI, llama.cpp's server, a hosted API) comes from the
requests it holds at once: it batches them, so a client sending one request at a time uses a few
percent of it. :func:`run_batch` runs ``work(item)`` for every item on up to ``concurrency`` threads and
still behaves like the sequential loop it replaces:

- results reach ``on_result`` (which appends to a resumable run folder) in input order, whatever order
  they finish in, so the same inputs and a temperature-0 model give byte-identical records at any
  concurrency, and a resumed run skips finished records exactly as before;
- the first failure stops new work; the requests in flight finish, the results before the failed item
  are written, and the error is raised (a resumed run redoes the failed item onwards);
- a :class:`Budget` on tokens or cost stops new work once spent (the requests in flight, at most
  ``concurrency - 1``, still finish and are written), raising :class:`BudgetExhaustedError`;
- the progress bar shows requests/s, tokens/s and retries; refused requests (429/5xx) are retried by
  the model layer (:mod:`recai.llm.retry`), honouring ``Retry-After``.

``concurrency=1`` runs everything in the calling thread, exactly like a plain loop. In-process models
(llama.cpp, transformers) serialise calls behind a lock, so more in flight only overlaps the non-model
work; their ``default_concurrency`` is 1.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from recai.errors import RecaiError
from recai.llm.retry import retries
from recai.llm.usage import UsageMeter, scoped

T = TypeVar("T")
R = TypeVar("R")

#: Price lookup: (model, prompt tokens, completion tokens) -> cost, or None when the price is unknown.
CostOf = Callable[[str, int, int], float | None]


class BudgetExhaustedError(RuntimeError, RecaiError):
    """The token or cost budget was spent: a run stops cleanly and says how far it got.

    Args:
        message: What was spent and how to resume.
        done: Results written before the stop.
        remaining: Items not run.
    """

    def __init__(self, message: str, *, done: int, remaining: int) -> None:
        super().__init__(message)
        self.done = done
        self.remaining = remaining


@dataclass(frozen=True)
class Budget:
    """A limit on what one batch run may spend, so a large job cannot run up an open-ended bill.

    Cache hits cost nothing and do not count.

    Attributes:
        max_tokens: Paid tokens (prompt and completion) the run may use, or None for no limit.
        max_cost: Money the run may spend, or None; needs ``cost_of``. A model without a known price
            under a cost budget is refused at the first call rather than run unmetered.
        cost_of: Price lookup (usually ``PriceTable.cost``): (model, prompt tokens, completion tokens)
            to cost, or None when the price is unknown.
    """

    max_tokens: int | None = None
    max_cost: float | None = None
    cost_of: CostOf | None = None

    def __post_init__(self) -> None:
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise ValueError(f"the token budget must be positive, got {self.max_tokens}")
        if self.max_cost is not None:
            if self.max_cost <= 0:
                raise ValueError(f"the cost budget must be positive, got {self.max_cost}")
            if self.cost_of is None:
                raise ValueError("a cost budget needs prices (cost_of)")

    @property
    def limited(self) -> bool:
        return self.max_tokens is not None or self.max_cost is not None

    def spent(self, usage: UsageMeter) -> tuple[int, float]:
        """Tokens and cost paid for so far (cache hits excluded)."""
        tokens, cost = 0, 0.0
        for model, stats in usage.by_model().items():
            tokens += stats.paid_tokens
            if self.max_cost is not None and self.cost_of is not None:
                prompt = stats.prompt_tokens - stats.cached_prompt_tokens
                completion = stats.completion_tokens - stats.cached_completion_tokens
                price = self.cost_of(model, prompt, completion)
                if price is None:
                    raise ValueError(
                        f"a cost budget is set but model '{model}' has no price; add it to a prices "
                        "file (--prices) or use a token budget"
                    )
                cost += price
        return tokens, cost

    def exhausted(self, usage: UsageMeter) -> str | None:
        """Why the budget is spent, or None while it is not."""
        if not self.limited:
            return None
        tokens, cost = self.spent(usage)
        if self.max_tokens is not None and tokens >= self.max_tokens:
            return f"token budget spent ({tokens:,} of {self.max_tokens:,} tokens)"
        if self.max_cost is not None and cost >= self.max_cost:
            return f"cost budget spent ({cost:.4f} of {self.max_cost:.4f})"
        return None


@dataclass(frozen=True)
class BatchSettings:
    """What a batch command was told about throughput; jobs pass it down to :func:`run_batch` unchanged.

    Attributes:
        concurrency: Requests in flight, or None for the models' default.
        budget: What the run may spend, or None for no limit.
    """

    concurrency: int | None = None
    budget: Budget | None = None

    def __post_init__(self) -> None:
        if self.concurrency is not None:
            check_concurrency(self.concurrency)

    def concurrency_for(self, *models: Any) -> int:
        """The concurrency to use with these models (the user's, else their default)."""
        return self.concurrency if self.concurrency is not None else default_concurrency(*models)


def check_concurrency(concurrency: int) -> int:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a whole number of requests, 1 or more; got {concurrency!r}")
    return concurrency


def default_concurrency(*models: Any) -> int:
    """The concurrency a job gets when the user names none: the smallest any of its models asks for
    (one in-process model in the mix makes more in flight pointless)."""
    found = [int(getattr(m, "default_concurrency", 1)) for m in models if m is not None]
    return max(1, min(found)) if found else 1


def run_batch(
    items: Sequence[T],
    work: Callable[[T], R],
    *,
    concurrency: int = 1,
    on_result: Callable[[R], None] | None = None,
    budget: Budget | None = None,
    desc: str = "requests",
    unit: str = "item",
    progress: bool = True,
) -> list[R]:
    """``[work(item) for item in items]`` with up to ``concurrency`` running at once (see the module)."""
    check_concurrency(concurrency)
    items = list(items)
    with scoped() as usage, _Progress(len(items), desc, unit, usage, progress) as bar:
        run = _Run(items, work, on_result, budget, usage, bar)
        if concurrency == 1 or len(items) <= 1:
            return run.sequential()
        return run.concurrent(concurrency)


class _Run(Generic[T, R]):
    """One :func:`run_batch` call: what its sequential and concurrent loops share."""

    def __init__(
        self,
        items: list[T],
        work: Callable[[T], R],
        on_result: Callable[[R], None] | None,
        budget: Budget | None,
        usage: UsageMeter,
        bar: _Progress,
    ) -> None:
        self.items, self.work, self.on_result = items, work, on_result
        self.budget, self.usage, self.bar = budget, usage, bar
        self.results: list[R] = []

    def budget_spent(self) -> str | None:
        """Why no new work may start, or None."""
        return self.budget.exhausted(self.usage) if self.budget else None

    def deliver(self, result: R) -> None:
        """Hand on the next result in input order."""
        self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)

    def sequential(self) -> list[R]:
        for index, item in enumerate(self.items):
            reason = self.budget_spent()
            if reason:
                raise _stopped(reason, index, len(self.items))
            self.deliver(self.work(item))
            self.bar.advance(1, in_flight=0)
        return self.results

    def concurrent(self, concurrency: int) -> list[R]:
        items = self.items
        ready: dict[int, R] = {}
        failures: dict[int, BaseException] = {}
        running: dict[Future[R], int] = {}
        submitted = 0
        stop_reason: str | None = None

        def flush() -> None:
            while len(self.results) in ready:
                self.deliver(ready.pop(len(self.results)))

        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="recai-batch") as pool:
            try:
                while True:
                    while (
                        submitted < len(items)
                        and len(running) < concurrency
                        and not failures
                        and not stop_reason
                    ):
                        stop_reason = self.budget_spent()
                        if stop_reason:
                            break
                        # each task runs in a copy of this context: usage scopes and the component being
                        # tracked follow the work into the pool's threads
                        context = contextvars.copy_context()
                        running[pool.submit(context.run, self.work, items[submitted])] = submitted
                        submitted += 1
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        index = running.pop(future)
                        error = future.exception()
                        if error is not None:
                            failures[index] = error
                        else:
                            ready[index] = future.result()
                    flush()
                    self.bar.advance(len(done), in_flight=len(running))
            except BaseException:
                for future in running:  # Ctrl-C: start nothing new; what is running finishes in the pool
                    future.cancel()
                flush()
                raise
        if failures:
            raise failures[min(failures)]
        if stop_reason:
            raise _stopped(stop_reason, len(self.results), len(items))
        return self.results


def _stopped(reason: str, done: int, total: int) -> BudgetExhaustedError:
    return BudgetExhaustedError(
        f"stopped: {reason} after {done} of {total} items; the finished ones are saved, so running again "
        "with a larger budget resumes from there",
        done=done,
        remaining=total - done,
    )


class _Progress:
    """A tqdm bar whose postfix shows requests/s, tokens/s, requests in flight and retries."""

    def __init__(self, total: int, desc: str, unit: str, usage: UsageMeter, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.usage = usage
        self.started = time.perf_counter()
        self.retries_before = retries.retries
        self.bar = tqdm(total=total, desc=desc, unit=unit, disable=not enabled)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()

    def advance(self, finished: int, *, in_flight: int) -> None:
        self.bar.update(finished)
        if self.bar.disable:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        totals = self.usage.totals()
        postfix = {
            "req/s": f"{totals.calls / elapsed:.1f}",
            "tok/s": f"{(totals.prompt_tokens + totals.completion_tokens) / elapsed:.0f}",
        }
        if in_flight:
            postfix["in flight"] = str(in_flight)
        retried = retries.retries - self.retries_before
        if retried:
            postfix["retries"] = str(retried)
        self.bar.set_postfix(postfix, refresh=False)
