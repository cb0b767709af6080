"""Embedding ranking from an LLM summary of the user: the summary is the query, failures are counted."""

from __future__ import annotations

from recai.data import Catalog
from recai.evaluate.generative import ListEvaluator, ListSample
from recai.evaluate.summaries import SummaryEncoderListSystem, UserSummarizer
from recai.llm.scripted import ScriptedChatModel
from recai.testing.fakes import BagOfWordsEncoder


def test_the_summary_not_the_titles_is_the_query(catalog: Catalog) -> None:
    llm = ScriptedChatModel(lambda m: "Loves French fantasy romance, like the films of Jean Cocteau.")
    system = SummaryEncoderListSystem(BagOfWordsEncoder(), catalog, UserSummarizer(llm, catalog))
    sample = ListSample(
        id="u", user="u", history=[3], target=4
    )  # Amélie, then Cocteau's Beauty and the Beast
    answer = system.answer(sample, None, 3)
    assert answer.positions[0] == 4 and 3 not in answer.positions
    assert answer.details == {"summary": "Loves French fantasy romance, like the films of Jean Cocteau."}
    assert "Amélie" in llm.calls[0][-1]["content"]
    record = ListEvaluator(catalog, k=3, ks=(1,)).evaluate_sample(system, sample)
    assert record["scores"]["hit@1"] == 1.0 and record["counts"]["summary_fallback"] == 0
    assert len(llm.calls) == 1  # one summary per distinct history
    assert system.config()["summarizer"] == "scripted"


def test_an_empty_summary_falls_back_to_the_titles_and_is_counted(catalog: Catalog) -> None:
    system = SummaryEncoderListSystem(
        BagOfWordsEncoder(), catalog, UserSummarizer(ScriptedChatModel(lambda m: "  "), catalog)
    )
    sample = ListSample(id="u", user="u", history=[6], target=7)  # The Godfather, then Part II
    record = ListEvaluator(catalog, k=3, ks=(1,)).evaluate_sample(system, sample)
    assert record["counts"]["summary_fallback"] == 1
    assert record["scores"]["hit@1"] == 1.0  # the titles still find Part II


def test_long_summaries_are_cut(catalog: Catalog) -> None:
    summarizer = UserSummarizer(ScriptedChatModel(lambda m: "word " * 1000), catalog, max_chars=50)
    assert len(summarizer.summary([0, 1])) == 50
