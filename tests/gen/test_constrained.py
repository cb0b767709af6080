"""Item spans, the prefix tree of catalog names, and the catalog-constrained logits processor."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from recai.data import Catalog  # noqa: E402
from recai.gen.constrained import CatalogLogitsProcessor  # noqa: E402
from recai.gen.items import ITEM_END, ITEM_START, ItemNames, SpanFormat, add_item_tokens  # noqa: E402
from recai.gen.trie import ItemTrie  # noqa: E402
from recai.train.chat import encode_chat  # noqa: E402
from tests.gen.tiny import biased_head, tiny_model, tiny_tokenizer  # noqa: E402

# "The Godfather" is a prefix of "The Godfather Part II" (as names and as tokens), the hard case.
NAMES = ["Pulp Fiction (1994)", "Heat (1995)", "The Godfather", "The Godfather Part II", "Amélie (2001)"]


@pytest.fixture
def tok() -> object:
    tokenizer = tiny_tokenizer()
    add_item_tokens(tokenizer)
    return tokenizer


@pytest.fixture
def trie(tok: object) -> ItemTrie:
    return ItemTrie.from_names(NAMES, tok)


def ids(tok: object) -> tuple[int, int]:
    return tok.convert_tokens_to_ids(ITEM_START), tok.convert_tokens_to_ids(ITEM_END)


# ------------------------------------------------------------------ names and tokens
def test_item_names_are_unique_and_map_back(catalog: Catalog) -> None:
    names = ItemNames(catalog)
    assert len(set(names.names)) == len(catalog)
    assert names[0] == "Pulp Fiction (1994)"
    # the two "Beauty and the Beast" films differ by year, so both keep their display title
    assert "Beauty and the Beast (1946)" in names.names and "Beauty and the Beast (1991)" in names.names
    assert names.position("  Heat   (1995) ") == 2
    assert names.span(2) == f"{ITEM_START}Heat (1995){ITEM_END}"


def test_identical_display_titles_get_the_id_except_the_most_popular(catalog: Catalog) -> None:
    import pandas as pd

    items = catalog.items.copy()
    items.loc[items["item_id"] == 15, "year"] = 1946  # both "Beauty and the Beast (1946)" now
    twin = Catalog(items, catalog.schema)
    twin.attach_interaction_counts(pd.Series([0, 0, 0, 0, 1, 5, 0, 0]).to_numpy())
    names = ItemNames(twin)
    assert names[5] == "Beauty and the Beast (1946)"  # more popular keeps the plain name
    assert names[4] == "Beauty and the Beast (1946) (#14)"
    assert names.position(names[4]) == 4


def test_add_item_tokens_is_idempotent_and_grows_the_model() -> None:
    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer)
    before = model.get_input_embeddings().weight.shape[0]
    start, end = add_item_tokens(tokenizer, model)
    assert model.get_input_embeddings().weight.shape[0] == before + 2 == len(tokenizer)
    assert add_item_tokens(tokenizer, model) == (start, end)
    assert len(tokenizer) == before + 2
    # never split, never merged with the text around them
    encoded = tokenizer("x<|item_start|>Heat<|item_end|>y", add_special_tokens=False)["input_ids"]
    assert start in encoded and end in encoded


def test_span_format_rejects_equal_markers() -> None:
    with pytest.raises(ValueError):
        SpanFormat("<x>", "<x>")


def test_trie_sequences_are_the_tokens_seen_in_a_rendered_chat(tok: object, trie: ItemTrie) -> None:
    """The tree must hold each name exactly as it is tokenised between the markers in context."""
    start, end = ids(tok)
    listing = "\n".join(f"{i}. {ITEM_START}{n}{ITEM_END}" for i, n in enumerate(NAMES, 1))
    messages = [{"role": "user", "content": "films?"}, {"role": "assistant", "content": f"Try:\n{listing}"}]
    rendered = encode_chat(tok, messages).input_ids
    spans, current = [], None
    for token in rendered:
        if token == start:
            current = []
        elif token == end:
            spans.append(tuple(current))
            current = None
        elif current is not None:
            current.append(token)
    assert spans == trie.sequences
    assert [trie.lookup(s) for s in spans] == list(range(len(NAMES)))


def test_trie_counts_and_prefix_names(trie: ItemTrie) -> None:
    assert len(trie) == 5 and trie.count[0] == 5
    assert trie.sequences[3][: len(trie.sequences[2])] == trie.sequences[2]
    godfather = trie.paths[2][-1]
    assert trie.items_at[godfather] == [2]
    assert trie.count[godfather] == 2  # "The Godfather" ends here and "Part II" passes through
    assert trie.lookup(trie.sequences[3][:-1]) is None
    with pytest.raises(ValueError, match="empty"):
        ItemTrie([[1, 2], []])


def test_trie_refuses_a_tokenizer_without_the_markers() -> None:
    with pytest.raises(ValueError, match="add_item_tokens"):
        ItemTrie.from_names(NAMES, tiny_tokenizer())


# ------------------------------------------------------------------ the processor, step by step
def _allowed(processor: CatalogLogitsProcessor, rows: list[list[int]], vocab: int) -> list[set[int]]:
    scores = torch.zeros((len(rows), vocab))
    out = processor(torch.tensor(rows), scores)
    return [set(torch.nonzero(torch.isfinite(r)).flatten().tolist()) for r in out]


def test_processor_masks_step_by_step(tok: object, trie: ItemTrie) -> None:
    start, end = ids(tok)
    vocab = len(tok)
    processor = CatalogLogitsProcessor(trie, start, end)
    seq = [5, 6, 7]
    allowed = _allowed(processor, [seq], vocab)[0]
    assert end not in allowed and start in allowed and len(allowed) == vocab - 1  # free text outside spans
    seq.append(start)
    first_tokens = {s[0] for s in trie.sequences}
    assert _allowed(processor, [seq], vocab)[0] == first_tokens
    for token in trie.sequences[2]:  # "The Godfather"
        seq.append(token)
        allowed = _allowed(processor, [seq], vocab)[0]
    # a complete name that is also a prefix of "Part II": the end and the continuation are both allowed
    continuation = trie.sequences[3][len(trie.sequences[2])]
    assert allowed == {end, continuation}
    seq.append(end)
    assert len(_allowed(processor, [seq], vocab)[0]) == vocab - 1
    assert processor.states[0].named == (2,)
    seq.append(start)
    _allowed(processor, [seq], vocab)
    for token in trie.sequences[2]:
        seq.append(token)
        allowed = _allowed(processor, [seq], vocab)[0]
    assert allowed == {continuation}  # "The Godfather" is taken: no end marker, only "Part II"
    assert processor.rebuilt == 0 and processor.steps == len(seq) - 3 + 1


def test_processor_blocks_the_start_once_every_item_is_taken(tok: object, trie: ItemTrie) -> None:
    start, end = ids(tok)
    processor = CatalogLogitsProcessor(trie, start, end, exclude=[[0, 1, 3, 4]])
    generated = [start, *trie.sequences[2], end]
    for i in range(len(generated) + 1):  # the prompt [9], then one generated token per step
        allowed = _allowed(processor, [[9, *generated[:i]]], len(tok))[0]
    assert start not in allowed and end not in allowed
    # a span in the prompt is context, not output: it takes nothing away
    fresh = CatalogLogitsProcessor(trie, start, end, exclude=[[0, 1, 3, 4]])
    assert start in _allowed(fresh, [[9, *generated]], len(tok))[0]


def test_processor_closes_branches_whose_items_are_excluded(tok: object, trie: ItemTrie) -> None:
    start, end = ids(tok)
    processor = CatalogLogitsProcessor(trie, start, end, exclude=[[2, 3]])  # both Godfathers
    allowed = _allowed(processor, [[9, start]], len(tok))[0]
    shared = any(trie.sequences[i][0] == trie.sequences[2][0] for i in (0, 1, 4))
    assert (trie.sequences[2][0] in allowed) == shared
    # a name forced past the mask (by another processor) leaves nothing to continue with
    forced = CatalogLogitsProcessor(trie, start, end, exclude=[[2, 3]])
    assert _allowed(forced, [[9, start, *trie.sequences[2]]], len(tok))[0] == set()


def test_processor_follows_beam_reordering(tok: object, trie: ItemTrie) -> None:
    start, end = ids(tok)
    processor = CatalogLogitsProcessor(trie, start, end)
    a = trie.sequences[0]
    _allowed(processor, [[9], [9]], len(tok))  # two beams of one prompt
    _allowed(processor, [[9, start], [9, 8]], len(tok))
    # the beams swap places and each adds a token: row 0 now extends old row 1, row 1 old row 0
    allowed = _allowed(processor, [[9, 8, start], [9, start, a[0]]], len(tok))
    assert allowed[0] == {s[0] for s in trie.sequences}
    assert processor.states[1].node == trie.paths[0][0]
    assert processor.reordered == 2 and processor.rebuilt == 0


def test_prompt_ending_inside_a_span_starts_inside(tok: object, trie: ItemTrie) -> None:
    start, end = ids(tok)
    processor = CatalogLogitsProcessor(trie, start, end)
    head = trie.sequences[1][:1]
    allowed = _allowed(processor, [[9, start, *head]], len(tok))[0]
    node = trie.walk(head)
    assert node is not None
    assert allowed == set(trie.children[node]) | ({end} if trie.items_at[node] else set())


# ------------------------------------------------------------------ with generate()
def _spans(tok: object, row: list[int]) -> tuple[list[tuple[int, ...]], bool]:
    start, end = ids(tok)
    spans, current = [], None
    for token in row:
        if token == start:
            assert current is None, "a span opened inside a span"
            current = []
        elif token == end:
            assert current is not None, "an end marker outside a span"
            spans.append(tuple(current))
            current = None
        elif current is not None:
            current.append(token)
    return spans, current is not None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"do_sample": False},
        {"do_sample": True, "temperature": 1.3, "top_k": None, "top_p": None},
        {"do_sample": False, "num_beams": 3, "num_return_sequences": 2},
    ],
    ids=["greedy", "sampling", "beam"],
)
def test_generate_names_only_catalog_items_once_each(tok: object, trie: ItemTrie, kwargs: dict) -> None:
    from transformers import LogitsProcessorList

    start, end = ids(tok)
    model = biased_head(tiny_model(tok, seed=1), [start, end])
    prompts = [
        [{"role": "user", "content": "Recommend 3 films"}],
        [{"role": "user", "content": "More films!"}],
    ]
    texts = [tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    tok.padding_side = "left"
    batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    exclude = [[1], [0, 4]]
    processor = CatalogLogitsProcessor(trie, start, end, exclude=exclude)
    calls = {"advance": 0}
    original = processor._advance

    def counting(state: object, token: int) -> object:
        calls["advance"] += 1
        return original(state, token)

    processor._advance = counting  # type: ignore[method-assign]
    torch.manual_seed(0)
    out = model.generate(
        **batch,
        max_new_tokens=70,
        logits_processor=LogitsProcessorList([processor]),
        pad_token_id=tok.pad_token_id,
        **kwargs,
    )
    width = batch["input_ids"].shape[1]
    per_prompt = out.shape[0] // 2
    named_any = 0
    for r, row in enumerate(out[:, width:].tolist()):
        spans, _ = _spans(tok, row)
        items = [trie.lookup(s) for s in spans]
        assert None not in items, f"a span that is not a catalog name: {spans}"
        assert len(items) == len(set(items)), f"an item named twice: {items}"
        assert not set(items) & set(exclude[r // per_prompt]), "an excluded item was named"
        named_any += len(items)
    assert named_any >= 4  # the biased model does open spans; the test would be empty otherwise
    # incremental: one advance per row per step after the first call, never a walk over a span
    rows = out.shape[0] if "num_beams" not in kwargs else 2 * kwargs["num_beams"]
    assert processor.rebuilt == 0
    assert calls["advance"] == rows * (processor.steps - 1)
    if "num_beams" in kwargs:
        assert processor.reordered > 0


def test_the_trie_knows_the_fewest_tokens_that_finish_an_available_name(trie: ItemTrie) -> None:
    lengths = [len(s) for s in trie.sequences]
    shortest = min(range(len(trie)), key=lambda i: lengths[i])
    assert trie.finish(0) == 1 + lengths[shortest]
    others = [lengths[i] for i in range(len(trie)) if i != shortest]
    assert trie.finish(0, {shortest}) == 1 + min(others)  # the shortest is taken: the next one counts
    for item, path in enumerate(trie.paths):
        assert trie.finish(path[-1]) == 1  # only the end marker is left
        for depth, node in enumerate(path, start=1):  # never more than this name's own rest
            assert trie.finish(node) <= lengths[item] - depth + 1
    assert trie.finish(0, set(range(len(trie)))) > max(lengths) + 1  # nothing left to finish


def test_no_span_is_opened_or_extended_past_the_budget(tok: object, trie: ItemTrie) -> None:
    start, end = ids(tok)
    shortest = min(len(s) for s in trie.sequences)
    budget = 3 + shortest  # a span needs the start marker, the name and the end marker
    processor = CatalogLogitsProcessor(trie, start, end, max_new_tokens=budget)
    row = [9]  # the prompt; every call below adds one generated token
    assert start in _allowed(processor, [row], len(tok))[0]
    row.append(8)
    assert start in _allowed(processor, [row], len(tok))[0]  # exactly the shortest name and its end fit
    row.append(8)
    assert start not in _allowed(processor, [row], len(tok))[0]  # one token later nothing fits
    # inside a span near the end, only continuations that can still close are allowed
    tight = CatalogLogitsProcessor(trie, start, end, max_new_tokens=2 + shortest)
    _allowed(tight, [[9]], len(tok))
    allowed = _allowed(tight, [[9, start]], len(tok))[0]
    assert allowed and all(1 + trie.finish(trie.children[0][t]) <= 1 + shortest for t in allowed)
    too_long = {s[0] for s in trie.sequences} - {s[0] for s in trie.sequences if len(s) == shortest}
    assert not allowed & too_long and too_long  # first tokens of only-longer names are refused


@pytest.mark.parametrize(
    "kwargs",
    [{"do_sample": False}, {"do_sample": True, "temperature": 1.3, "top_k": None, "top_p": None}],
    ids=["greedy", "sampling"],
)
def test_with_the_budget_no_reply_ends_inside_a_span(tok: object, trie: ItemTrie, kwargs: dict) -> None:
    from transformers import LogitsProcessorList

    start, end = ids(tok)
    model = biased_head(tiny_model(tok, seed=1), [start, end])
    text = tok.apply_chat_template(
        [{"role": "user", "content": "Recommend films"}], tokenize=False, add_generation_prompt=True
    )
    batch = tok([text], return_tensors="pt", add_special_tokens=False)
    width = batch["input_ids"].shape[1]
    cut = {True: 0, False: 0}
    for budget in range(4, 40, 3):
        for aware in (True, False):
            processor = CatalogLogitsProcessor(trie, start, end, max_new_tokens=budget if aware else None)
            torch.manual_seed(budget)
            out = model.generate(
                **batch,
                max_new_tokens=budget,
                logits_processor=LogitsProcessorList([processor]),
                pad_token_id=tok.pad_token_id,
                **kwargs,
            )
            _, open_at_end = _spans(tok, out[0, width:].tolist())
            cut[aware] += open_at_end
    assert cut[True] == 0
    assert cut[False] > 0  # without the budget some replies do end inside a span: the test can fail
