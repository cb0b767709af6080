"""Who called which model how often, with how many tokens, and how long it took.

Every ChatModel call is recorded against the *component* active at the time (``with track("planner"):``),
so an agent turn or an evaluation run can report its LLM cost per component afterwards.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import asdict, dataclass

_component: ContextVar[str] = ContextVar("recai_llm_component", default="default")
_scopes: ContextVar[tuple[UsageMeter, ...]] = ContextVar("recai_llm_usage_scopes", default=())


@dataclass
class UsageStats:
    """Totals for one (component, model) pair: what a run reports and a budget checks.

    Attributes:
        calls: Calls made.
        prompt_tokens: Tokens read.
        completion_tokens: Tokens written.
        latency_s: Seconds spent waiting for replies.
        failures: Calls that raised.
        cached_calls: Calls a response cache answered (counted above too, but not paid for).
        cached_prompt_tokens: Prompt tokens of those calls.
        cached_completion_tokens: Completion tokens of those calls.
    """

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    failures: int = 0
    cached_calls: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0

    @property
    def paid_tokens(self) -> int:
        """Tokens a model actually processed (cache hits excluded): what a token budget limits."""
        return (
            self.prompt_tokens
            + self.completion_tokens
            - self.cached_prompt_tokens
            - self.cached_completion_tokens
        )


class UsageMeter:
    """Thread-safe accumulator of LLM usage, keyed by (component, model), for reports and budgets.

    The process-wide ``meter`` records every call; ``scoped`` opens further meters that count only
    the calls made inside them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[tuple[str, str], UsageStats] = {}

    def record(
        self,
        model: str,
        *,
        prompt_tokens: int,
        completion_tokens: int,
        latency_s: float,
        failed: bool = False,
        cached: bool = False,
    ) -> None:
        key = (_component.get(), model)
        if self is meter:  # also count the call in every scope opened around it (see ``scoped``)
            for scope in _scopes.get():
                scope.record(
                    model,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    latency_s=latency_s,
                    failed=failed,
                    cached=cached,
                )
        with self._lock:
            stats = self._stats.setdefault(key, UsageStats())
            stats.calls += 1
            stats.prompt_tokens += prompt_tokens
            stats.completion_tokens += completion_tokens
            stats.latency_s += latency_s
            stats.failures += int(failed)
            if cached:
                stats.cached_calls += 1
                stats.cached_prompt_tokens += prompt_tokens
                stats.cached_completion_tokens += completion_tokens

    def report(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{component: {model: {calls, prompt_tokens, completion_tokens, latency_s, failures}}}``."""
        with self._lock:
            out: dict[str, dict[str, dict[str, float]]] = {}
            for (component, model), stats in sorted(self._stats.items()):
                out.setdefault(component, {})[model] = asdict(stats)
            return out

    def totals(self) -> UsageStats:
        with self._lock:
            total = UsageStats()
            for s in self._stats.values():
                for name, value in asdict(s).items():
                    setattr(total, name, getattr(total, name) + value)
            return total

    def by_model(self) -> dict[str, UsageStats]:
        """Totals per model over every component (what prices apply to)."""
        with self._lock:
            out: dict[str, UsageStats] = {}
            for (_, model), s in self._stats.items():
                total = out.setdefault(model, UsageStats())
                for name, value in asdict(s).items():
                    setattr(total, name, getattr(total, name) + value)
            return out

    def reset(self) -> None:
        with self._lock:
            self._stats.clear()


meter = UsageMeter()


@contextlib.contextmanager
def scoped() -> Iterator[UsageMeter]:
    """A fresh meter that sees only the calls made inside the block (in this thread or task), so one
    agent turn can report its own usage without resetting the global meter other code relies on."""
    scope = UsageMeter()
    token = _scopes.set((*_scopes.get(), scope))
    try:
        yield scope
    finally:
        _scopes.reset(token)


@contextlib.contextmanager
def track(component: str) -> Iterator[None]:
    """Attribute the LLM calls made inside the block to ``component``."""
    token = _component.set(component)
    try:
        yield
    finally:
        _component.reset(token)


def current_component() -> str:
    return _component.get()
