"""LLM-backbone embedders: decoder pooling, LoRA fine-tuning, and query/item prefixes from specs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from recai.embed import load_encoder
from recai.embed.encoder import PREFIX_PRESETS, parse_encoder_spec
from recai.embed.st_encoder import SentenceTransformerEncoder
from recai.embed.training import TRAINING_FILE, TrainConfig, train_embedder
from recai.testing.fakes import BagOfWordsEncoder
from tests.embed.fixtures import InterruptError, film_examples, stop_after, tiny_decoder
from tests.embed.tiny_st import tiny_sentence_transformer

TEXTS = ["Heat (1995)", "Pulp Fiction (1994) Reservoir Dogs (1992) Amélie (2001)", "a"]


@pytest.fixture(scope="module")
def decoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_decoder(tmp_path_factory.mktemp("decoder") / "lm")


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sentence_transformer(tmp_path_factory.mktemp("tiny"))


# ----------------------------------------------------------------------------- specs
def test_specs_parse_backends_prefixes_and_pooling() -> None:
    assert parse_encoder_spec("all-minilm-l6-v2") == parse_encoder_spec("st:all-minilm-l6-v2")
    spec = parse_encoder_spec("st:intfloat/e5-small-v2?query=query: &item=passage: ")
    assert (spec.backend, spec.model, spec.query_prefix, spec.item_prefix) == (
        "st",
        "intfloat/e5-small-v2",
        "query: ",
        "passage: ",
    )
    assert parse_encoder_spec("st:m?prefixes=bge").prefix_kwargs() == dict(
        zip(("query_prefix", "item_prefix"), PREFIX_PRESETS["bge"], strict=True)
    )
    assert parse_encoder_spec("st:m?query=q%3A+x").query_prefix == "q: x"  # URL-encoded
    decoder = parse_encoder_spec("decoder:/models/lm?pooling=mean&prefixes=e5")
    assert (decoder.backend, decoder.model, decoder.pooling) == ("decoder", "/models/lm", "mean")
    assert parse_encoder_spec("openai:http://host/v1#emb?prefixes=e5").model == "http://host/v1#emb"
    assert parse_encoder_spec("st:m").prefix_kwargs() == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("st:m?pooling=mean", "unknown option 'pooling' for st"),
        ("decoder:m?pooling=cls", "pooling must be one of lasttoken, mean"),
        ("st:m?prefixes=e6", "unknown prefixes preset 'e6'"),
        ("st:m?prefixes=e5&query=q", "either prefixes= or query=/item="),
        ("st:m?query=a&query=b", "given twice"),
        ("st:m?query", "bad query field"),
        ("decoder:", "no model named"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_encoder_spec(spec)


def test_prefixes_are_part_of_the_identity_and_cache_key() -> None:
    plain, prefixed = BagOfWordsEncoder(), BagOfWordsEncoder()
    prefixed.query_prefix, prefixed.item_prefix = PREFIX_PRESETS["e5"]
    assert plain.identity == "bag-of-words-64"  # unchanged without prefixes: old caches stay valid
    assert prefixed.identity != plain.identity
    assert prefixed.cache_key("item") != plain.cache_key("item")


def test_spec_prefixes_reach_the_model(tiny_st: Path) -> None:
    encoder = load_encoder(f"st:{tiny_st}?query=find: &item=item: ")
    assert isinstance(encoder, SentenceTransformerEncoder)
    model = encoder._model
    expected = model.encode(["find: Heat", "item: Heat"], normalize_embeddings=True)
    assert np.allclose(encoder.encode(["Heat"], "query")[0], expected[0], atol=1e-5)
    assert np.allclose(encoder.encode(["Heat"], "item")[0], expected[1], atol=1e-5)
    assert load_encoder(f"st:{tiny_st}", query_prefix="x: ").query_prefix == "x: "  # kwargs win


# ----------------------------------------------------------------------------- decoder pooling
def _hidden(encoder: SentenceTransformerEncoder, texts: list[str]) -> tuple[Any, Any]:
    model = encoder._model
    features = model.preprocess(texts)
    with torch.no_grad():
        hidden = (
            model[0]
            .auto_model(input_ids=features["input_ids"], attention_mask=features["attention_mask"])
            .last_hidden_state
        )
    return features, hidden


def test_last_token_pooling_reads_the_eos_position(decoder: Path) -> None:
    encoder = load_encoder(f"decoder:{decoder}")
    assert isinstance(encoder, SentenceTransformerEncoder)
    tokenizer = encoder._model.tokenizer
    features, hidden = _hidden(encoder, TEXTS)
    last = features["attention_mask"].sum(dim=1) - 1  # right padding: the last real position
    ids = features["input_ids"][torch.arange(len(TEXTS)), last]
    assert (ids == tokenizer.eos_token_id).all()  # every text ends with EOS, and that is what is pooled
    assert len(set(last.tolist())) > 1  # the texts have different lengths, so padding was exercised
    expected = torch.nn.functional.normalize(hidden[torch.arange(len(TEXTS)), last], dim=-1).numpy()
    assert np.allclose(encoder.encode(TEXTS), expected, atol=1e-5)
    assert encoder.identity.startswith("decoder:") and encoder.identity.endswith(":lasttoken")


def test_eos_survives_truncation(decoder: Path) -> None:
    encoder = SentenceTransformerEncoder(decoder, decoder=True, max_seq_length=4)
    ids = encoder._model.preprocess([TEXTS[1]])["input_ids"][0]
    assert len(ids) == 4 and ids[-1] == encoder._model.tokenizer.eos_token_id


def test_mean_pooling_is_the_masked_mean(decoder: Path) -> None:
    encoder = load_encoder(f"decoder:{decoder}?pooling=mean")
    features, hidden = _hidden(encoder, TEXTS)  # type: ignore[arg-type]
    mask = features["attention_mask"].unsqueeze(-1).float()
    mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
    expected = torch.nn.functional.normalize(mean, dim=-1).numpy()
    assert np.allclose(encoder.encode(TEXTS), expected, atol=1e-5)
    assert encoder.identity.endswith(":mean")


def test_a_tokenizer_without_pad_pads_with_eos(tmp_path: Path) -> None:
    folder = tiny_decoder(tmp_path / "nopad", pad=False)
    encoder = load_encoder(f"decoder:{folder}")
    tokenizer = encoder._model.tokenizer  # type: ignore[attr-defined]
    assert tokenizer.pad_token == tokenizer.eos_token
    assert encoder.encode(TEXTS).shape == (3, 32)


def test_a_chat_template_is_not_applied(decoder: Path) -> None:
    encoder = load_encoder(f"decoder:{decoder}")
    ids = encoder._model.preprocess(["a"])["input_ids"][0].tolist()  # type: ignore[attr-defined]
    assert ids == [*encoder._model.tokenizer("a", add_special_tokens=False)["input_ids"], ids[-1]]  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- training
def _config(base: str, **kwargs: Any) -> TrainConfig:
    defaults: dict[str, Any] = {
        "base_model": base,
        "max_steps": 3,
        "batch_size": 8,
        "save_steps": 2,
        "logging_steps": 1,
        "device": "cpu",
        "learning_rate": 1e-3,
    }
    return TrainConfig(**{**defaults, **kwargs})


def test_lora_training_saves_a_merged_folder_that_loads(decoder: Path, tmp_path: Path) -> None:
    dataset, data = film_examples()
    out = tmp_path / "tuned"
    base = f"decoder:{decoder}?prefixes=e5"
    result = train_embedder(data, dataset.catalog, out, _config(base, lora_r=4), progress=False)
    assert result.steps == 3
    assert not (out / "adapter_config.json").exists()  # merged: an ordinary sentence-transformers folder
    summary = json.loads((out / TRAINING_FILE).read_text())
    assert summary["encoder"] == {
        "backend": "decoder",
        "pooling": "lasttoken",
        "query_prefix": "query: ",
        "item_prefix": "passage: ",
        "lora": "merged into the weights",
    }
    assert "LoRA r=4" in (out / "README.md").read_text()
    for spec in (f"st:{out}", f"decoder:{out}"):
        tuned = load_encoder(spec)
        assert (tuned.query_prefix, tuned.item_prefix) == PREFIX_PRESETS["e5"]  # recorded in the folder
        assert tuned._model.preprocess(["x"])["input_ids"][0][-1] == tuned._model.tokenizer.eos_token_id  # type: ignore[attr-defined]
    original = load_encoder(base)
    vectors = tuned.encode(["a crime film"])
    assert vectors.shape == (1, 32) and not np.allclose(vectors, original.encode(["a crime film"]))
    with pytest.raises(ValueError, match="pools with 'lasttoken'"):
        load_encoder(f"decoder:{out}?pooling=mean")


def test_training_pairs_get_the_prefixes(tiny_st: Path, tmp_path: Path, monkeypatch: Any) -> None:
    from datasets import Dataset as HFDataset

    seen: dict[str, list[str]] = {}
    original = HFDataset.from_dict

    def record(columns: dict[str, list[Any]], *args: Any, **kwargs: Any) -> Any:
        seen.update(columns)
        return original(columns, *args, **kwargs)

    monkeypatch.setattr(HFDataset, "from_dict", record)
    dataset, data = film_examples()
    out = tmp_path / "e5"
    train_embedder(
        data, dataset.catalog, out, _config(f"st:{tiny_st}?prefixes=e5", max_steps=1), progress=False
    )
    assert all(a.startswith("query: ") for a in seen["anchor"])
    assert all(t.startswith("passage: ") for t in seen["positive"] + seen["negative_1"])
    assert (load_encoder(f"st:{out}").query_prefix, load_encoder(f"st:{out}").item_prefix) == PREFIX_PRESETS[
        "e5"
    ]
    plain = tmp_path / "plain"
    train_embedder(data, dataset.catalog, plain, _config(str(tiny_st), max_steps=1), progress=False)
    assert not seen["anchor"][0].startswith("query: ")
    assert "encoder" not in json.loads((plain / TRAINING_FILE).read_text())  # the plain format is unchanged


def test_an_http_encoder_cannot_be_trained(tmp_path: Path) -> None:
    dataset, data = film_examples()
    with pytest.raises(ValueError, match="cannot be trained"):
        train_embedder(data, dataset.catalog, tmp_path / "x", _config("openai:text-embedding-3-small"))


def test_merging_lora_keeps_the_trained_function(decoder: Path) -> None:
    from peft.tuners.tuners_utils import BaseTunerLayer

    from recai.embed.decoder import decoder_sentence_transformer
    from recai.embed.training import add_lora, merge_lora

    model = decoder_sentence_transformer(decoder, device="cpu")
    add_lora(model, TrainConfig(lora_r=4))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)  # only the adapter trains
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)  # a "trained" adapter that changes the output
    model.eval()
    adapted = model.encode(TEXTS)
    merge_lora(model)
    assert not any(isinstance(m, BaseTunerLayer) for m in model.modules())
    assert np.allclose(model.encode(TEXTS), adapted, atol=1e-5)


def test_an_interrupted_lora_run_resumes_from_its_checkpoint(decoder: Path, tmp_path: Path) -> None:
    dataset, data = film_examples()
    out = tmp_path / "tuned"
    config = _config(f"decoder:{decoder}", lora_r=4, max_steps=4)
    with pytest.raises(InterruptError):
        train_embedder(data, dataset.catalog, out, config, progress=False, callbacks=[stop_after(3)])
    result = train_embedder(data, dataset.catalog, out, config, progress=False)
    assert result.resumed_from is not None and result.resumed_from.endswith("checkpoint-2")
    assert result.steps == 4
    assert load_encoder(f"st:{out}").encode(["a crime film"]).shape == (1, 32)
