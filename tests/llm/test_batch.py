"""run_batch: input order at any concurrency, stops on failure and budget, context in worker threads,
and retries of refused requests against a real HTTP server."""

from __future__ import annotations

import random
import threading
import time

import pytest

from recai.llm.batch import (
    BatchSettings,
    Budget,
    BudgetExhaustedError,
    default_concurrency,
    run_batch,
)
from recai.llm.cache import CachedChatModel
from recai.llm.openai_compat import OpenAIChatModel
from recai.llm.retry import RetryPolicy, TransientModelError, call_with_retries, is_transient, retry_after_of
from recai.llm.scripted import ScriptedChatModel
from recai.llm.usage import current_component, meter, track
from tests.llm.openai_server import ServerState, openai_server, ranking_responder


def _slow_square(x: int) -> int:
    time.sleep(random.uniform(0, 0.02))
    return x * x


@pytest.mark.parametrize("concurrency", [1, 2, 7, 32])
def test_results_reach_on_result_in_input_order(concurrency: int) -> None:
    seen: list[int] = []
    out = run_batch(range(40), _slow_square, concurrency=concurrency, on_result=seen.append, progress=False)
    assert out == seen == [x * x for x in range(40)]


def test_concurrency_keeps_that_many_in_flight_and_no_more() -> None:
    lock = threading.Lock()
    running = peak = 0

    def work(x: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return x

    run_batch(range(30), work, concurrency=5, progress=False)
    assert peak == 5


def test_concurrency_one_runs_in_the_calling_thread() -> None:
    threads = run_batch(range(3), lambda _: threading.get_ident(), concurrency=1, progress=False)
    assert set(threads) == {threading.get_ident()}


def test_a_failure_writes_the_results_before_it_and_raises() -> None:
    seen: list[int] = []

    def work(x: int) -> int:
        time.sleep(0.01 * (x % 3))
        if x == 6:
            raise KeyError("item 6 is broken")
        return x

    with pytest.raises(KeyError, match="item 6"):
        run_batch(range(20), work, concurrency=4, on_result=seen.append, progress=False)
    assert seen == list(range(6))  # in order, nothing after the failed item


def test_the_context_follows_work_into_worker_threads() -> None:
    with track("judge"):
        components = run_batch(range(8), lambda _: current_component(), concurrency=4, progress=False)
    assert components == ["judge"] * 8


def test_a_token_budget_stops_new_work_and_the_rerun_resumes() -> None:
    llm = ScriptedChatModel(lambda messages: "one two three four", name="budgeted")
    written: list[str] = []

    def work(x: int) -> str:
        llm.complete([{"role": "user", "content": f"item {x}"}])
        return f"r{x}"

    budget = Budget(max_tokens=30)
    with pytest.raises(BudgetExhaustedError, match="token budget") as stop:
        run_batch(range(20), work, concurrency=2, on_result=written.append, budget=budget, progress=False)
    assert 0 < stop.value.done == len(written) < 20
    assert written == [f"r{x}" for x in range(len(written))]
    # each call is 6 tokens (2 prompt + 4 completion): the stop comes at most concurrency-1 items late
    assert stop.value.done * 6 < 30 + 2 * 6
    rest = run_batch(range(len(written), 20), work, concurrency=2, progress=False)
    assert written + rest == [f"r{x}" for x in range(20)]


def test_a_cost_budget_needs_a_price_for_every_model() -> None:
    llm = ScriptedChatModel(lambda messages: "ok", name="unpriced")
    budget = Budget(max_cost=1.0, cost_of=lambda model, p, c: None)
    with pytest.raises(ValueError, match=r"unpriced.*no price"):
        run_batch(range(3), lambda x: llm.complete([{"role": "user", "content": "x"}]), budget=budget)
    with pytest.raises(ValueError, match="needs prices"):
        Budget(max_cost=1.0)
    with pytest.raises(ValueError, match="concurrency"):
        BatchSettings(concurrency=0)


def test_cache_hits_are_free_under_a_budget(tmp_path) -> None:
    llm = CachedChatModel(ScriptedChatModel(lambda m: "a b c d e f g h", name="m"), tmp_path / "c.sqlite")

    def work(x: int) -> str:
        return llm.complete([{"role": "user", "content": "same prompt"}]).text

    out = run_batch(range(50), work, budget=Budget(max_tokens=20), progress=False)
    assert len(out) == 50  # one paid call of 11 tokens, 49 hits


def test_default_concurrency_follows_the_slowest_model(tmp_path) -> None:
    local = ScriptedChatModel(lambda m: "x")
    server = OpenAIChatModel("m", base_url="http://127.0.0.1:9/v1")
    assert default_concurrency(server) == 8
    assert default_concurrency(CachedChatModel(server, tmp_path / "c.sqlite")) == 8
    assert default_concurrency(server, local) == 1
    assert BatchSettings().concurrency_for(server) == 8
    assert BatchSettings(concurrency=3).concurrency_for(local) == 3
    assert BatchSettings(concurrency=1).concurrency_for(server) == 1


def test_transient_errors_and_retry_after() -> None:
    waits: list[float] = []
    attempts = iter([TransientModelError("busy", retry_after=2.5), TransientModelError("busy"), None])

    def call() -> str:
        error = next(attempts)
        if error is not None:
            raise error
        return "done"

    policy = RetryPolicy(max_retries=3, base_delay_s=1.0)
    assert call_with_retries(call, policy, sleep=waits.append) == "done"
    assert waits[0] == 2.5 and 1.0 <= waits[1] <= 2.0  # the second retry backs off twice as long
    assert not is_transient(ValueError("bad request"))
    with pytest.raises(TransientModelError):
        call_with_retries(lambda: (_ for _ in ()).throw(TransientModelError("x")), RetryPolicy(max_retries=0))


def test_the_server_s_retry_after_is_honoured() -> None:
    state = ServerState(responder=ranking_responder, fail_with=[429, 503], retry_after=0.3)
    with openai_server(state) as (url, _):
        model = OpenAIChatModel("m", base_url=url, max_retries=2)
        before = meter.totals().failures
        started = time.perf_counter()
        text = model.complete([{"role": "user", "content": "- A\n- B"}]).text
        assert time.perf_counter() - started >= 0.6  # two waits of the server's 0.3 s
        assert text.startswith("[") and len(state.requests) == 3
        assert meter.totals().failures - before == 2
        state.fail_with[:] = [400]
        with pytest.raises(Exception, match="400"):  # a bad request is not retried
            model.complete([{"role": "user", "content": "x"}])
        assert len(state.requests) == 4


def test_requests_in_flight_reach_the_server_at_once() -> None:
    state = ServerState(responder=ranking_responder, latency_s=0.2)
    with openai_server(state) as (url, _):
        model = OpenAIChatModel("m", base_url=url)
        prompts = [f"- item {i}\n- other {i}" for i in range(16)]
        started = time.perf_counter()
        replies = run_batch(
            prompts,
            lambda p: model.complete([{"role": "user", "content": p}]).text,
            concurrency=8,
            progress=False,
        )
        elapsed = time.perf_counter() - started
    assert state.peak_in_flight == 8
    assert elapsed < 16 * 0.2 / 2  # sequentially it would take 3.2 s
    assert replies == [ranking_responder({"messages": [{"content": p}]}) for p in prompts]


def test_retry_after_parsing() -> None:
    class Response:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers

    class RefusedError(Exception):
        def __init__(self, headers: dict[str, str]) -> None:
            self.response = Response(headers)
            self.status_code = 429

    assert retry_after_of(RefusedError({"retry-after": "7"})) == 7.0
    assert retry_after_of(RefusedError({"retry-after-ms": "250"})) == 0.25
    assert retry_after_of(RefusedError({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after_of(RefusedError({})) is None
    assert is_transient(RefusedError({}))
