"""Selection under a token budget: never over it, strongest first, deterministic, spread over items."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recai.knowledge import ApproximateCounter, Fact, Query, TokenCounter, select
from recai.knowledge.selection import usefulness
from recai.knowledge.tokens import FunctionCounter, token_counter

QUERY = Query.of(history=[10, 11, 12, 13], candidates=[20, 21, 22, 23, 24])


class WordCounter(TokenCounter):
    """One token per word: costs are easy to reason about in the tests."""

    name = "words"

    def count(self, text: str) -> int:
        return len(text.split())


class SurchargeCounter(TokenCounter):
    """Counts more for joined text than for its lines (like BPE merges across line breaks, inverted):
    the final check must still keep the section within the budget."""

    name = "surcharge"

    def count(self, text: str) -> int:
        return len(text.split()) + 3 * text.count("\n")


def fact(
    strength: float, candidate: int | None = 20, anchor: int | None = None, kind: str = "cooccurrence"
) -> Fact:
    return Fact(kind, "co_occurs", strength, candidate=candidate, anchor=anchor)


facts_strategy = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=1.0),
        st.sampled_from([None, 20, 21, 22, 23, 24]),
        st.sampled_from([None, 10, 11, 12, 13]),
        st.integers(min_value=1, max_value=30),  # words in the text
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(
    raw=facts_strategy,
    budget=st.integers(min_value=0, max_value=120),
    counter=st.sampled_from([WordCounter(), SurchargeCounter(), ApproximateCounter(2.5)]),
    per_candidate=st.sampled_from([None, 1, 3]),
)
def test_the_budget_is_never_exceeded(
    raw: list[tuple[float, int | None, int | None, int]],
    budget: int,
    counter: TokenCounter,
    per_candidate: int | None,
) -> None:
    facts = [fact(s, c, a) for s, c, a, _ in raw]
    texts = [" ".join(f"w{i}x{j}" for j in range(n)) for i, (_, _, _, n) in enumerate(raw)]
    chosen = select(facts, texts, counter, budget, query=QUERY, max_per_candidate=per_candidate)
    assert chosen.tokens <= budget
    assert counter.count(chosen.text) == chosen.tokens
    if per_candidate is not None:
        for candidate in {f.candidate for f in chosen.facts if f.candidate is not None}:
            assert sum(f.candidate == candidate for f in chosen.facts) <= per_candidate
    # what is kept comes out most useful first
    assert chosen.usefulness == sorted(chosen.usefulness, reverse=True)


def test_equal_costs_keep_exactly_the_strongest() -> None:
    strengths = [0.1, 0.9, 0.5, 0.7, 0.3, 0.8]
    facts = [fact(s, candidate=20 + i) for i, s in enumerate(strengths)]
    texts = [f"fact number {i} here" for i in range(len(facts))]  # 5 words with "- " each
    cost = WordCounter().count(f"- {texts[0]}\n")
    chosen = select(facts, texts, WordCounter(), budget=3 * cost, query=QUERY, max_per_candidate=None)
    assert [f.strength for f in chosen.facts] == [0.9, 0.8, 0.7]
    assert chosen.tokens <= 3 * cost and chosen.considered == 6


def test_a_weaker_short_fact_fills_what_a_long_one_cannot() -> None:
    facts = [fact(0.9, 20), fact(0.8, 21), fact(0.1, 22)]
    texts = ["a b c d e f g h", "i j k l m n o p q r s t u v w", "short"]
    chosen = select(facts, texts, WordCounter(), budget=12, query=QUERY)
    assert [f.strength for f in chosen.facts] == [0.9, 0.1]


def test_recency_weights_the_anchor() -> None:
    old = fact(0.9, 20, anchor=10)  # the oldest history item: 0.9 ** 3
    recent = fact(0.7, 21, anchor=13)  # the most recent: weight 1
    assert usefulness(old, QUERY.recency(0.9)) == pytest.approx(0.9**4)
    chosen = select([old, recent], ["old fact", "recent fact"], WordCounter(), budget=4, query=QUERY)
    assert [f.anchor for f in chosen.facts] == [13]
    # an anchor outside the history makes a fact worthless
    assert select([fact(1.0, 20, anchor=99)], ["x"], WordCounter(), 10, query=QUERY).facts == []


def test_selection_is_deterministic_whatever_the_input_order() -> None:
    facts = [
        fact(0.5, 20 + i % 5, anchor=10 + i % 4, kind=("cooccurrence", "graph")[i % 2]) for i in range(20)
    ]
    texts = [f"fact {i}" for i in range(20)]
    first = select(facts, texts, WordCounter(), budget=15, query=QUERY)
    pairs = list(zip(facts, texts, strict=True))
    random.Random(3).shuffle(pairs)
    again = select([p[0] for p in pairs], [p[1] for p in pairs], WordCounter(), budget=15, query=QUERY)
    assert first.lines == again.lines and first.facts == again.facts


def test_repeats_and_same_topic_facts_are_taken_once() -> None:
    a = Fact("cooccurrence", "co_occurs", 0.9, candidate=20, anchor=13, topic=("cooccurrence", 20, 13))
    b = Fact("graph", "path", 0.8, candidate=20, anchor=13, topic=("cooccurrence", 20, 13))
    c = Fact("embedding", "similar", 0.7, candidate=21, anchor=13)
    chosen = select([a, b, c, c], ["a", "b", "c", "c"], WordCounter(), budget=100, query=QUERY)
    assert chosen.lines == ["a", "c"]


def test_per_anchor_cap_spreads_the_history() -> None:
    facts = [fact(0.9 - i / 100, 20 + i, anchor=13) for i in range(4)] + [fact(0.5, 24, anchor=12)]
    texts = [f"t{i}" for i in range(5)]
    chosen = select(facts, texts, WordCounter(), budget=100, query=QUERY, decay=1.0, max_per_anchor=2)
    assert [f.anchor for f in chosen.facts] == [13, 13, 12]


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="2 texts for 1 facts"):
        select([fact(0.5)], ["a", "b"], WordCounter(), 10, query=QUERY)
    with pytest.raises(ValueError, match="budget"):
        select([], [], WordCounter(), -1, query=QUERY)
    assert select([fact(0.5)], ["a"], WordCounter(), 0, query=QUERY).lines == []


def test_token_counters_find_the_models_tokenizer_or_say_they_approximate() -> None:
    approx = token_counter(None)
    assert not approx.exact and approx.count("abcdefg") == 3  # ceil(7 / 3)
    assert token_counter("openai:some-unknown-model").exact is False
    assert token_counter("not a spec").exact is False

    class FakeTokenizer:
        def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
            assert add_special_tokens is False
            return list(range(len(text.split())))

    class FakeHF:
        name = "fake-hf"
        tokenizer = FakeTokenizer()

    class Cached:
        inner = FakeHF()

    counter = token_counter(Cached())
    assert counter.exact and counter.name == "hf:fake-hf" and counter.count("one two three") == 3
    assert FunctionCounter(lambda t: t.split(), name="w").count("") == 0


def test_the_gguf_vocabulary_counts_without_loading_weights() -> None:
    """llama.cpp's vocab-only load of the small packaged model: the exact tokenizer, no inference."""
    pytest.importorskip("llama_cpp")
    from recai.llm.resolve import KNOWN_MODELS, packaged_parts

    _, missing = packaged_parts(KNOWN_MODELS["smollm2-135m-instruct"])
    if missing:
        pytest.skip("the smollm2 weight package is not installed")
    counter = token_counter("local:smollm2-135m-instruct")
    assert counter.exact and counter.name.startswith("gguf:")
    text = "People who watched Heat (1995) often also watched Collateral (2004) [4]."
    assert 5 < counter.count(text) < len(text)
