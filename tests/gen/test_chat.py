"""The assistant-only loss mask, derived from the chat template's own renders."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from recai.gen.items import add_item_tokens
from recai.train.chat import IGNORE_INDEX, TemplateError, encode_chat, prompt_ids
from tests.gen.tiny import tiny_tokenizer

ANSWER = "Here:\n1. <|item_start|>Heat (1995)<|item_end|>\n2. <|item_start|>Amélie (2001)<|item_end|>"


@pytest.fixture
def tok() -> object:
    tokenizer = tiny_tokenizer()
    add_item_tokens(tokenizer)
    return tokenizer


def trained_text(tok: object, encoded: object) -> str:
    return tok.decode(
        [i for i, label in zip(encoded.input_ids, encoded.labels, strict=True) if label != IGNORE_INDEX]
    )


def test_only_the_answer_and_its_end_of_turn_are_trained(tok: object) -> None:
    messages = [{"role": "user", "content": "Two films please"}, {"role": "assistant", "content": ANSWER}]
    encoded = encode_chat(tok, messages)
    assert trained_text(tok, encoded) == ANSWER + "<|im_end|>\n"
    labelled = [i for i, label in enumerate(encoded.labels) if label != IGNORE_INDEX]
    assert labelled == list(range(labelled[0], len(encoded.labels)))  # one contiguous block at the end
    assert all(encoded.labels[i] == encoded.input_ids[i] for i in labelled)


def test_the_prompt_tokens_are_what_generation_sees(tok: object) -> None:
    messages = [{"role": "user", "content": "Two films please"}, {"role": "assistant", "content": ANSWER}]
    encoded = encode_chat(tok, messages)
    prompt = prompt_ids(tok, messages[:1])
    assert encoded.input_ids[: len(prompt)] == prompt
    assert set(encoded.labels[: len(prompt)]) == {IGNORE_INDEX}
    assert IGNORE_INDEX not in encoded.labels[len(prompt) :]
    # the default system prompt the template injects is context, never trained
    assert "You are a helpful assistant." in tok.decode(prompt)


def test_every_assistant_turn_of_a_dialogue_is_trained(tok: object) -> None:
    messages = [
        {"role": "system", "content": "You recommend films."},
        {"role": "user", "content": "A crime film?"},
        {"role": "assistant", "content": "<|item_start|>Heat (1995)<|item_end|>"},
        {"role": "user", "content": "Another one"},
        {"role": "assistant", "content": "<|item_start|>Pulp Fiction (1994)<|item_end|>"},
    ]
    encoded = encode_chat(tok, messages)
    text = trained_text(tok, encoded)
    assert text == (
        "<|item_start|>Heat (1995)<|item_end|><|im_end|>\n<|item_start|>Pulp Fiction (1994)<|item_end|><|im_end|>\n"
    )
    assert "Another one" not in text and "You recommend" not in text


def test_a_template_that_rewrites_earlier_turns_is_refused(tok: object) -> None:
    # renders the last message differently from earlier ones, as some "thinking" templates do
    tok.chat_template = (
        "{% for m in messages %}{% if loop.last %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>"
        "{% else %}<|im_start|>{{ m['role'] }}\n[old] {{ m['content'] }}<|im_end|>{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    with pytest.raises(TemplateError, match="differently"):
        encode_chat(tok, messages)


def test_no_template_is_a_clear_error(tok: object) -> None:
    tok.chat_template = None
    with pytest.raises(TemplateError, match="no chat template"):
        prompt_ids(tok, [{"role": "user", "content": "hi"}])
