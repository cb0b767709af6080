"""Prompt files: one wording, or several drawn by a seeded generator."""

from __future__ import annotations

import numpy as np
import pytest

from recai.llm.prompting import prompt_variants, render_prompt, render_variant


def test_a_file_with_several_wordings_is_split_and_refused_by_the_single_renderer() -> None:
    wordings = prompt_variants("count", "recai.gen")
    assert len(wordings) == 3 and all("$k" in w and "---" not in w for w in wordings)
    with pytest.raises(ValueError, match=r"recai.gen/prompts/count.txt has 3 wordings"):
        render_prompt("count", "recai.gen", nouns="films", noun="film", history="- A", k=3)


def test_seeded_draws_cover_every_wording_and_repeat_with_the_seed() -> None:
    values = {"nouns": "films", "noun": "film", "history": "- A", "k": 3}

    def draws(seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        return [render_variant("count", rng, "recai.gen", **values) for _ in range(30)]

    first = draws(0)
    assert first == draws(0)
    assert len(set(first)) == 3 and all("exactly 3" in text for text in first)


def test_a_single_wording_draws_nothing_from_the_generator() -> None:
    rng = np.random.default_rng(7)
    before = rng.bit_generator.state
    text = render_variant("why", rng, "recai.explain", user="the user U", item="Heat")
    assert rng.bit_generator.state == before
    assert text == render_prompt("why", "recai.explain", user="the user U", item="Heat")


def test_a_missing_value_is_an_error_not_a_hole() -> None:
    with pytest.raises(KeyError, match="item"):
        render_variant("why", np.random.default_rng(0), "recai.explain", user="the user U")
