"""CatalogPrompter: the shared reply budget and usage component, and the one title list of prompts."""

from __future__ import annotations

from recai.llm import ScriptedChatModel
from recai.llm.catalog_prompter import CatalogPrompter, title_list
from recai.llm.usage import scoped
from recai.testing.data import film_catalog


def test_title_list_bullets_display_titles_and_is_empty_for_no_items() -> None:
    catalog = film_catalog()
    listed = title_list(catalog, [0, 1])
    assert listed.splitlines() == [f"- {catalog.display_title(0)}", f"- {catalog.display_title(1)}"]
    assert title_list(catalog, []) == ""


def test_ask_uses_the_budget_and_meters_the_component() -> None:
    llm = ScriptedChatModel(["one two three four"])
    prompter = CatalogPrompter(llm, film_catalog(), item_noun="films", max_tokens=2)
    with scoped() as usage:
        out = prompter.ask("simulator", [{"role": "user", "content": "hi"}], temperature=0.0)
    assert (out.text, out.finish_reason) == ("one two", "length")
    assert list(usage.report()) == ["simulator"]
    assert prompter == prompter and prompter != CatalogPrompter(llm, prompter.catalog)  # identity equality
