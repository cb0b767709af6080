"""Shared fixtures for the gen training tests (SFT, scope loss, RL): small examples from the demo dataset,
a tiny random base-model folder and a quick SFT config. Built in the test process, never downloaded."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from recai.data import load
from recai.gen.examples import GenData
from recai.gen.tasks import build_gen_data
from recai.train.sft import SFTConfig
from tests.gen.tiny import tiny_model, tiny_tokenizer


@cache
def data() -> GenData:
    """Twelve short training examples (no long histories keep the tiny byte-level tokenizer's sequences
    small) and no test part."""
    return build_gen_data(
        load("demo"),
        ["category_cold", "item_category"],
        per_task=6,
        test_per_task=0,
        k=3,
        min_k=2,
        noun="film",
        progress=False,
    )


def base_folder(root: Path, *, tie: bool = True) -> Path:
    """A tiny random Llama and its tokenizer saved under ``root`` (once per folder); ``tie`` ties the
    output head to the embeddings."""
    tokenizer = tiny_tokenizer()
    folder = root / ("base" if tie else "base-untied")
    if not folder.exists():
        model = tiny_model(tokenizer, seed=0, tie=tie)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder


def config(base: Path, **kwargs: object) -> SFTConfig:
    """A LoRA config that trains ``base`` for a few CPU steps, checkpointing every two; ``kwargs``
    override its fields."""
    values = {
        "base_model": str(base),
        "max_steps": 6,
        "batch_size": 4,
        "learning_rate": 5e-3,
        "save_steps": 2,
        "logging_steps": 1,
        "max_length": 512,
        "lora_r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "warmup": 0.0,
        "device": "cpu",
    }
    values.update(kwargs)
    return SFTConfig(**values)  # type: ignore[arg-type]
