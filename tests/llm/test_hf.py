"""The transformers backend on a tiny random model built in the test (grammar-constrained JSON)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch")

from recai.llm.hf import HFChatModel
from recai.testing.chat_model import FILM_REQUEST, FILM_SCHEMA, ChatModelSuite
from tests.llm.tiny_hf import tiny_causal_lm


@pytest.fixture(scope="module")
def tiny() -> HFChatModel:
    model, tokenizer = tiny_causal_lm(seed=3)
    return HFChatModel(model, tokenizer=tokenizer, dtype="float32", name="tiny-llama")


class TestHFConformance(ChatModelSuite):
    @pytest.fixture
    def chat_model(self, tiny: HFChatModel) -> HFChatModel:
        return tiny


def test_grammar_makes_even_a_random_model_emit_valid_json(tiny: HFChatModel) -> None:
    assert tiny.native_schema
    result = tiny.complete(FILM_REQUEST, response_format=FILM_SCHEMA, max_tokens=160)
    assert result.attempts == 1 and set(result.parsed) == {"genre", "year", "details"}


def test_custom_logits_processors_plug_in(tiny: HFChatModel) -> None:
    import torch

    forced = tiny.tokenizer.encode("Heat")  # a processor that spells "Heat" proves the hook is applied

    class Force:
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            step = input_ids.shape[1] - prompt_len[0]
            out = torch.full_like(scores, -float("inf"))
            out[:, forced[step] if step < len(forced) else tiny.tokenizer.eos_token_id] = 0
            return out

    prompt_len = [0]
    model = HFChatModel(
        tiny.model,
        tokenizer=tiny.tokenizer,
        name="forced",
        logits_processors=lambda msgs, decoding: [Force()],
    )
    messages = [{"role": "user", "content": "anything"}]
    prompt_len[0] = model._inputs(messages)["input_ids"].shape[1]
    assert model.complete(messages, max_tokens=10).text == "Heat"


def test_a_saved_folder_and_a_peft_adapter_load_by_path(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    from peft import LoraConfig, get_peft_model

    model, tokenizer = tiny_causal_lm(seed=3)
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    lora = get_peft_model(
        model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    lora.save_pretrained(tmp_path / "adapter")

    plain = HFChatModel(tmp_path / "base", dtype="float32", use_grammar=False)
    adapted = HFChatModel(tmp_path / "base", dtype="float32", adapter=tmp_path / "adapter", use_grammar=False)
    messages = [{"role": "user", "content": "hello"}]
    assert plain.name == "base" and plain.complete(messages, max_tokens=5).prompt_tokens > 0
    import torch

    inputs = plain._inputs(messages)
    with torch.no_grad():
        base_logits = plain.model(**inputs).logits
        adapted_logits = adapted.model(**inputs).logits
    assert not torch.allclose(base_logits, adapted_logits)  # the adapter is really applied


@pytest.mark.parametrize(("fast_bf16", "loaded"), [(False, "float32"), (True, "bfloat16")])
def test_a_folder_loads_in_bf16_only_where_the_cpu_computes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_bf16: bool, loaded: str
) -> None:
    import torch

    import recai.llm.devices as devices

    model, tokenizer = tiny_causal_lm(seed=3)
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: fast_bf16)
    chat = HFChatModel(tmp_path / "base", use_grammar=False)
    assert next(chat.model.parameters()).dtype == getattr(torch, loaded)
    explicit = HFChatModel(tmp_path / "base", dtype="bfloat16", use_grammar=False)  # asked for: obeyed
    assert next(explicit.model.parameters()).dtype == torch.bfloat16
