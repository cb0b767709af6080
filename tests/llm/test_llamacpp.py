"""The llama.cpp backend on the packaged SmolLM2-135M GGUF (wiring only: it is too small to be smart)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("llama_cpp")

from recai.llm.llamacpp import LlamaCppChatModel
from recai.llm.resolve import ModelNotFoundError, resolve_model
from recai.testing.chat_model import FILM_REQUEST, FILM_SCHEMA, ChatModelSuite


@pytest.fixture(scope="module")
def smollm() -> Iterator[LlamaCppChatModel]:
    try:
        path = resolve_model("smollm2-135m-instruct", progress=False, allow_download=False)
    except ModelNotFoundError as exc:
        pytest.skip(f"SmolLM2 is not installed: {exc}")
    model = LlamaCppChatModel(path, name="smollm2", n_ctx=2048, n_threads=2)
    yield model
    model.close()


class TestLlamaCppConformance(ChatModelSuite):
    @pytest.fixture
    def chat_model(self, smollm: LlamaCppChatModel) -> LlamaCppChatModel:
        return smollm


def test_the_grammar_makes_a_tiny_model_valid_on_the_first_try(smollm: LlamaCppChatModel) -> None:
    result = smollm.complete(FILM_REQUEST, response_format=FILM_SCHEMA, max_tokens=160)
    assert result.attempts == 1 and result.parsed["genre"] in ("crime", "drama", "comedy")


def test_a_follow_up_turn_reuses_the_cached_prefix(smollm: LlamaCppChatModel) -> None:
    import llama_cpp

    ctx = smollm._llm._ctx.ctx
    first = [{"role": "system", "content": "You are terse. " * 40}, {"role": "user", "content": "Hi."}]
    reply = smollm.complete(first, max_tokens=8).text
    llama_cpp.llama_perf_context_reset(ctx)
    follow_up = [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": "And?"}]
    result = smollm.complete(follow_up, max_tokens=8)
    evaluated = llama_cpp.llama_perf_context(ctx).n_p_eval
    # Only the new turn is read; the 200+ token history comes from the KV cache.
    assert result.prompt_tokens > 200 and evaluated < result.prompt_tokens / 4


def test_missing_files_are_reported() -> None:
    with pytest.raises(FileNotFoundError, match="no GGUF file"):
        LlamaCppChatModel("/nonexistent/model.gguf")


def test_the_prompt_cache_counts_the_logits_it_keeps() -> None:
    """A saved state also holds an n_batch x n_vocab logits copy; the cache must count it, or it grows
    without bound over a long evaluation."""
    try:
        path = resolve_model("smollm2-135m-instruct", progress=False, allow_download=False)
    except ModelNotFoundError as exc:
        pytest.skip(f"SmolLM2 weights not installed: {exc}")
    model = LlamaCppChatModel(path, name="smollm2", n_ctx=1024, n_threads=2, prompt_cache_mb=16)
    try:
        cache = model._llm.cache
        for i in range(5):
            model.complete([{"role": "user", "content": f"Say the number {i} in words."}], max_tokens=4)
        states = list(cache.cache_state.values())
        held = sum(s.llama_state_size + s.scores.nbytes + s.input_ids.nbytes for s in states)
        assert states and held <= 16 * 2**20 and cache.cache_size == held
        assert len(states) < 5  # each state carries ~7 MB of logits (36 tokens x 49k vocabulary)
    finally:
        model.close()
