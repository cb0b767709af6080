"""LoRA and full SFT on tiny random models: learning, saving, resuming, merging, GGUF conversion."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from recai.gen.items import add_item_tokens  # noqa: E402
from recai.gen.models import load_gen_model, merge_adapter  # noqa: E402
from recai.gen.training import encode_examples, finished_sft, train_sft  # noqa: E402
from recai.train.chat import encode_chat  # noqa: E402
from recai.train.collate import PadCollator  # noqa: E402
from recai.train.models import convert_gguf, save_model_folder  # noqa: E402
from tests.gen.fixtures import base_folder, config, data  # noqa: E402
from tests.gen.tiny import tiny_model, tiny_tokenizer, write_tiny_gguf  # noqa: E402


def logits(
    model: object, tokenizer: object, text: str = "Try <|item_start|>Heat (1995)<|item_end|> now"
) -> object:
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(ids).logits


def test_pad_collator_pads_right_and_masks_labels() -> None:
    collator = PadCollator(pad_id=9)
    batch = collator([{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}, {"input_ids": [4], "labels": [4]}])
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 9, 9]]
    assert batch["labels"].tolist() == [[-100, 2, 3], [4, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert collator.tokens == 4


def test_lora_learns_saves_a_small_adapter_and_merges(tmp_path: Path) -> None:
    base = base_folder(tmp_path)
    # 5e-2 already moves the span rows fast: ten times that (the default token_lr_scale) diverges
    cfg = config(base, max_steps=10, learning_rate=5e-2, token_lr_scale=1.0)
    assert finished_sft(tmp_path / "lora", cfg, data()) is None
    result = train_sft(data(), tmp_path / "lora", cfg, progress=False)
    # a rerun of the same config and data can reuse it; any other config cannot
    assert finished_sft(tmp_path / "lora", cfg, data()) == result.summary
    other = config(base, max_steps=11, learning_rate=5e-2, token_lr_scale=1.0)
    assert finished_sft(tmp_path / "lora", other, data()) is None
    curve = [p["loss"] for p in result.summary["training"]["loss_curve"]]
    assert max(curve[-3:]) < curve[0] - 0.1, curve  # it learns (a 32-wide LoRA soon saturates)
    info = result.summary
    assert info["data"]["encoded"] == len(data().train) and info["data"]["dropped"]["too_long"] == 0
    assert 0 < info["training"]["trainable_parameters"] < info["training"]["parameters"] / 2
    assert info["training"]["tokens_per_second"] > 0
    assert not (tmp_path / "lora.work").exists()
    from safetensors import safe_open

    with safe_open(str(tmp_path / "lora" / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert any("trainable_tokens" in k for k in keys), "the span tokens' rows are not in the adapter"
    assert not any(k.endswith("embed_tokens.weight") for k in keys), "the whole embedding matrix was copied"
    adapter, tokenizer = load_gen_model(tmp_path / "lora")
    assert "<|item_start|>" in tokenizer.get_vocab()
    merge_adapter(tmp_path / "lora", tmp_path / "merged", dtype="float32")
    merged, merged_tok = load_gen_model(tmp_path / "merged")
    assert torch.allclose(logits(adapter, tokenizer), logits(merged, merged_tok), atol=1e-5)
    base_model, base_tok = load_gen_model(base)
    plain = "Try Heat (1995) now"
    assert not torch.allclose(
        logits(base_model, base_tok, plain)[..., :100], logits(merged, merged_tok, plain)[..., :100]
    )


def test_bf16_lora_trains_on_a_machine_without_a_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # CPUs with bf16 units train LoRA about twice as fast in bf16; the device is left to the default
    from recai.llm import devices

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: True)  # the warning has its own test
    base = base_folder(tmp_path)
    result = train_sft(data(), tmp_path / "bf16", config(base, max_steps=2, precision="bf16", device=None))
    assert result.summary["training"]["precision"] == "bf16"
    assert result.summary["training"]["steps"] == 2


def test_bf16_on_a_cpu_without_bf16_kernels_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    from recai.llm import devices
    from recai.train.arguments import resolve_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: False)
    with pytest.warns(RuntimeWarning, match="fp32"):
        assert resolve_precision("bf16", "cpu") == "bf16"
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bf16", None) == "bf16"
        assert resolve_precision("auto", "cpu") == "fp32"
        assert resolve_precision("fp32", "cpu") == "fp32"


def test_untied_head_gets_the_span_rows_too(tmp_path: Path) -> None:
    base = base_folder(tmp_path, tie=False)
    train_sft(data(), tmp_path / "lora", config(base, max_steps=2), progress=False)
    adapter, tokenizer = load_gen_model(tmp_path / "lora")
    merge_adapter(tmp_path / "lora", tmp_path / "merged", dtype="float32")
    merged, _ = load_gen_model(tmp_path / "merged")
    assert torch.allclose(logits(adapter, tokenizer), logits(merged, tokenizer), atol=1e-5)


class CrashError(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    from transformers import TrainerCallback

    class CrashAt(TrainerCallback):
        def on_step_end(self, args: object, state: object, control: object, **kwargs: object) -> None:
            if state.global_step == 3:  # type: ignore[attr-defined]
                raise CrashError

    base = base_folder(tmp_path)
    cfg = config(base, lora_dropout=0.1, max_steps=4)
    with pytest.raises(CrashError):
        train_sft(data(), tmp_path / "a", cfg, progress=False, callbacks=[CrashAt()])
    assert (tmp_path / "a.work" / "checkpoint-2").exists() and not (tmp_path / "a").exists()
    with pytest.raises(ValueError, match="learning_rate"):
        train_sft(
            data(),
            tmp_path / "a",
            config(base, lora_dropout=0.1, max_steps=4, learning_rate=1e-3),
            progress=False,
        )
    resumed = train_sft(data(), tmp_path / "a", cfg, progress=False)
    assert resumed.resumed_from is not None and resumed.resumed_from.endswith("checkpoint-2")
    straight = train_sft(data(), tmp_path / "b", cfg, progress=False)
    assert straight.resumed_from is None and resumed.steps == straight.steps == 4
    a, tok = load_gen_model(tmp_path / "a")
    b, _ = load_gen_model(tmp_path / "b")
    assert torch.allclose(logits(a, tok), logits(b, tok), atol=1e-5)
    with pytest.raises(FileExistsError):
        train_sft(data(), tmp_path / "b", cfg, progress=False)


def test_full_fine_tuning_writes_a_plain_model(tmp_path: Path) -> None:
    base = base_folder(tmp_path)
    result = train_sft(
        data(),
        tmp_path / "full",
        config(base, method="full", max_steps=2, learning_rate=1e-3),
        progress=False,
    )
    assert result.summary["training"]["trainable_parameters"] == result.summary["training"]["parameters"]
    assert (tmp_path / "full" / "config.json").exists() and not (
        tmp_path / "full" / "adapter_config.json"
    ).exists()
    model, tokenizer = load_gen_model(tmp_path / "full")
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    with pytest.raises(ValueError, match="already a full model"):
        merge_adapter(tmp_path / "full", tmp_path / "merged")


def test_examples_longer_than_max_length_are_dropped_and_counted() -> None:
    tokenizer = tiny_tokenizer()
    add_item_tokens(tokenizer)
    examples = data().train
    lengths = sorted(len(encode_chat(tokenizer, e.messages)) for e in examples)
    cut = lengths[len(lengths) // 2]
    kept, dropped = encode_examples(examples, tokenizer, max_length=cut)
    assert dropped == {"too_long": sum(n > cut for n in lengths), "no_answer_tokens": 0}
    assert len(kept) == sum(n <= cut for n in lengths) and all(len(e) <= cut for e in kept)


@pytest.mark.parametrize("tie", [True, False], ids=["tied", "untied"])
def test_gguf_converts_to_an_identical_safetensors_model(tmp_path: Path, tie: bool) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer, seed=4, tie=tie)
    gguf = tmp_path / "tiny.gguf"
    write_tiny_gguf(model, tokenizer, gguf)
    out = convert_gguf(gguf, tmp_path / "hf", dtype="float32", progress=False)
    converted = AutoModelForCausalLM.from_pretrained(out)
    converted_tok = AutoTokenizer.from_pretrained(out)
    text = "Recommend 3 films like Heat (1995)"
    assert converted_tok(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert converted_tok.chat_template == tokenizer.chat_template
    assert torch.equal(logits(model, tokenizer), logits(converted, tokenizer))
    assert converted.config.tie_word_embeddings is tie
    assert not hasattr(converted.config, "quantization_config")


def test_save_model_folder_round_trips(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer, seed=5)
    save_model_folder(model, tokenizer, tmp_path / "m", info={"info.json": {"note": "x"}})
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    assert torch.equal(logits(model, tokenizer), logits(again, tokenizer))
    assert (tmp_path / "m" / "info.json").exists()
    with pytest.raises(FileExistsError):
        save_model_folder(model, tokenizer, tmp_path / "m")
