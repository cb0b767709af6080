"""Chats as token ids with the model's own chat template, and which tokens the loss is computed on.

The loss covers the assistant's turns only. Which tokens those are is read off the template itself, not
hard-coded: for each assistant message ``i`` the template renders the conversation up to message ``i``
with the generation prompt (what the model sees before it answers) and up to and including message
``i``; the characters in between are the answer as the template writes it, end-of-turn marker included
(so the model learns to stop). The full conversation is tokenised once with character offsets, and a
token is trained on when it starts inside one of those ranges. A template that renders earlier turns
differently once later ones follow cannot be split this way, and raises :class:`TemplateError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from recai.errors import RecaiError

IGNORE_INDEX = -100


class TemplateError(ValueError, RecaiError):
    """The tokenizer's chat template cannot be split into prompt and answer ranges."""


@dataclass(frozen=True)
class Encoded:
    """A tokenised chat: ids, labels (``IGNORE_INDEX`` outside assistant turns), and its assistant mask."""

    input_ids: list[int]
    labels: list[int]

    @property
    def assistant_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)

    def __len__(self) -> int:
        return len(self.input_ids)


def _render(tokenizer: Any, messages: Sequence[dict[str, str]], *, generation_prompt: bool) -> str:
    if getattr(tokenizer, "chat_template", None) is None:
        raise TemplateError("the tokenizer has no chat template: set tokenizer.chat_template first")
    return tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=generation_prompt
    )


def assistant_ranges(tokenizer: Any, messages: Sequence[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character ranges of its assistant turns."""
    text = _render(tokenizer, messages, generation_prompt=False)
    ranges = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], generation_prompt=True)
        through = _render(tokenizer, messages[: i + 1], generation_prompt=False)
        if not through.startswith(before) or not text.startswith(through):
            raise TemplateError(
                f"the chat template renders turn {i} differently once later turns follow, so its answer "
                "cannot be located; use a template whose renders of a conversation are prefixes of each other"
            )
        if len(through) > len(before):
            ranges.append((len(before), len(through)))
    return text, ranges


def encode_chat(tokenizer: Any, messages: Sequence[dict[str, str]]) -> Encoded:
    """Token ids of the whole conversation and labels that keep only the assistant turns."""
    text, ranges = assistant_ranges(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    labels = [IGNORE_INDEX] * len(ids)
    for j, (start, end) in enumerate(encoded["offset_mapping"]):
        if end <= start:
            continue
        if any(lo <= start < hi for lo, hi in ranges):
            labels[j] = ids[j]
    return Encoded(ids, labels)


def prompt_ids(tokenizer: Any, messages: Sequence[dict[str, str]]) -> list[int]:
    """Token ids of a prompt with the generation prompt, exactly as generation sees it."""
    text = _render(tokenizer, messages, generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
