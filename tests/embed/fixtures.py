"""Shared fixtures for the embed tests: the film dataset's examples, a tiny causal-LM folder, a callback
that interrupts training, and a scripted "capable" reply for the LLM-written tasks."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from recai.data import Dataset
from recai.embed.tasks import ExampleSplit, build_examples
from recai.llm.base import Message
from tests.catalog_fixtures import film_dataset
from tests.gen.tiny import tiny_model, tiny_tokenizer

#: The tasks whose query text an LLM writes.
LLM_TASKS = ["user_summary", "search_query", "conversation"]


@cache
def film_examples() -> tuple[Dataset, ExampleSplit]:
    """The film dataset and eight examples of each task built from it (once per process)."""
    dataset = film_dataset()
    return dataset, build_examples(dataset, per_task=8, seed=0, progress=False)


def tiny_decoder(folder: Path, *, pad: bool = True) -> Path:
    """A 2-layer Llama causal-LM folder over a byte-level BPE tokenizer (with or without a pad token)."""
    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer)
    if not pad:
        tokenizer.pad_token = None
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


class InterruptError(Exception):
    """Raised by :func:`stop_after` to stand for a run killed mid-training."""


def stop_after(step: int) -> Any:
    """A trainer callback that raises :class:`InterruptError` once ``step`` steps are done."""
    from transformers import TrainerCallback

    class StopAfter(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == step:
                raise InterruptError

    return StopAfter()


def prompt_conditions(prompt: str) -> list[str]:
    """The conditions an LLM-task prompt asks the text to state."""
    match = re.search(
        r"(?:mention all of these|gradually states these wishes): (.*?)\. (?:It may|The assistant)", prompt
    )
    assert match, prompt
    return match.group(1).split("; ")


def good_reply(messages: list[Message]) -> str:
    """What a capable model would write, from the prompt alone."""
    prompt = messages[-1]["content"]
    if "summary of this person's tastes" in prompt:
        taste = re.search(r"What stands out in them: (.*)", prompt)
        assert taste
        return f"Summary: Likes {taste.group(1).lower()}."
    if "search query" in prompt:
        return '"' + " ".join(prompt_conditions(prompt)) + '"'
    lines = ["User: Hi, I need something for tonight.", "Assistant: Happy to help. What do you like?"]
    lines += [f"User: I'd like it {c}." for c in prompt_conditions(prompt)]
    return "\n".join(lines)
