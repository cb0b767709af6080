"""Generate with a trained model, constrained to the catalog or not, and read the output back as item ids.

Parsing prefers the item spans: a span's tokens are looked up in the :class:`ItemTrie` (exact, no
guessing), then its text is matched to a unique item name, and only then grounded fuzzily through the
catalog (a model decoding without constraints may misspell a title inside a span). An output without any
span falls back to :func:`recai.evaluate.parsing.parse_item_list` and catalog grounding, so a zero-shot
model is scored by the same rules as every other system; under constrained decoding only spans name
items (free text is free). A span cut off by the token limit, or left open when another starts, is
counted as an invalid name. Bucketing (valid, invalid, duplicate, already seen) is that of
:mod:`recai.evaluate.parsing`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recai.data.catalog import Catalog
from recai.evaluate.generative import bucket_positions
from recai.evaluate.parsing import GroundedList, parse_item_list
from recai.gen.constrained import CatalogLogitsProcessor
from recai.gen.items import DEFAULT_FORMAT, ItemNames, SpanFormat, span_token_ids
from recai.gen.trie import ItemTrie
from recai.train.chat import prompt_ids

Messages = list[dict[str, str]]


def name_position(names: ItemNames, name: str, threshold: float | None = None) -> int | None:
    """The catalog row a written name stands for: its exact unique name (what a trie path spells), else
    the catalog's fuzzy grounding at ``threshold`` (the catalog's own by default); None when neither."""
    exact = names.position(name)
    if exact is not None:
        return exact
    catalog = names.catalog
    grounding = catalog.ground(
        name, threshold=catalog.grounding_threshold if threshold is None else threshold
    )
    if grounding.item_id is None:
        return None
    return int(catalog.index_of([grounding.item_id])[0])


@dataclass
class Parsed:
    """Names read from one output and the catalog row of each (None when it grounds to nothing).

    Attributes:
        names: The names in the order the output gave them.
        positions: The catalog row of each name, ``None`` where it grounds to nothing.
        spans: Whether the names came from item spans (else from free text).
        partial: Whether the output ended inside an unterminated span.
        token_spans: For names read from item spans in token ids, the ``[start, end)`` range of each
            name's tokens (its markers included), so a reward per item can reach the tokens that wrote
            it; None when the names were read from text.
    """

    names: list[str]
    positions: list[int | None]
    spans: bool
    partial: bool = False
    token_spans: list[tuple[int, int]] | None = None

    def grounded(
        self, catalog: Catalog, *, seen: Iterable[int] = (), candidates: Sequence[int] | None = None
    ) -> GroundedList:
        """Sorted into the buckets of :class:`~recai.evaluate.parsing.GroundedList`, names in order."""
        return bucket_positions(self.positions, catalog, candidates, list(seen), self.names)


@dataclass
class GenOutput:
    """One generated reply: its text (with span markers), its new token ids and what it names.

    Attributes:
        text: The decoded reply, span markers kept.
        token_ids: The newly generated token ids.
        parsed: The names the reply gives and their catalog rows.
        finished: Whether the model ended the reply (end of turn) rather than the token limit.
        meta: Anything else recorded about the generation.
    """

    text: str
    token_ids: list[int]
    parsed: Parsed
    finished: bool
    meta: dict[str, Any] = field(default_factory=dict)


class ReplyParser:
    """Reads replies into catalog rows: the catalog's unique names, the span tokens and their prefix tree.

    Needs no model, so rewards (:mod:`recai.gen.rl`) and evaluation share it with generation.

    Args:
        tokenizer: The tokenizer with the item-span tokens added.
        catalog: The catalog names are read against.
        fmt: The span markers around item names.
        threshold: Title-matching threshold for names outside the trie; ``None`` uses the catalog's own.
    """

    def __init__(
        self,
        tokenizer: Any,
        catalog: Catalog,
        *,
        fmt: SpanFormat = DEFAULT_FORMAT,
        threshold: float | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.catalog = catalog
        self.fmt = fmt
        self.threshold = catalog.grounding_threshold if threshold is None else float(threshold)
        self.names = ItemNames(catalog, fmt)
        self.start_id, self.end_id = span_token_ids(tokenizer, fmt)
        self._trie: ItemTrie | None = None

    @property
    def trie(self) -> ItemTrie:
        """Built on first use (tokenising every name takes a moment on large catalogs)."""
        if self._trie is None:
            self._trie = ItemTrie.from_catalog(self.names, self.tokenizer)
        return self._trie

    # -------------------------------------------------------------- parse
    def _position(self, name: str) -> int | None:
        return name_position(self.names, name, self.threshold)

    def parse_ids(self, token_ids: Sequence[int], *, free_text: bool = True) -> Parsed:
        """Names and rows from generated token ids (see the module docstring for the order of rules).

        ``free_text=False`` reads spans only: under constrained decoding an item is named by a span, and
        a reply without one names nothing (it scores as empty rather than as invented titles).
        """
        names: list[str] = []
        positions: list[int | None] = []
        token_spans: list[tuple[int, int]] = []
        current: list[int] | None = None
        opened = 0  # where the current span's start marker is
        any_span = False
        for index, token in enumerate(token_ids):
            token = int(token)
            if token == self.start_id:
                any_span = True
                if current is not None:  # a span left open and started again: an invalid name
                    names.append(self.tokenizer.decode(current, skip_special_tokens=True).strip())
                    positions.append(None)
                    token_spans.append((opened, index))
                current = []
                opened = index
            elif token == self.end_id:
                if current is not None:
                    text = self.tokenizer.decode(current, skip_special_tokens=True).strip()
                    found = self.trie.lookup(current) if current else None
                    names.append(text)
                    positions.append(found if found is not None else (self._position(text) if text else None))
                    token_spans.append((opened, index + 1))
                current = None
            elif current is not None:
                current.append(token)
        partial = current is not None
        if partial:
            names.append(self.tokenizer.decode(current, skip_special_tokens=True).strip())
            positions.append(None)
            token_spans.append((opened, len(token_ids)))
        if any_span or not free_text:
            return Parsed(names, positions, spans=True, partial=partial, token_spans=token_spans)
        return self.parse_text(self.tokenizer.decode(list(token_ids), skip_special_tokens=True))

    def parse_text(self, text: str) -> Parsed:
        """Names and rows from text: spans when the text has markers, else a list read from free text."""
        found = self.fmt.pattern.findall(text)
        if found:
            names = [n.strip() for n in found]
            return Parsed(names, [self._position(n) if n else None for n in names], spans=True)
        names = parse_item_list(self.fmt.strip(text))
        return Parsed(names, [self._position(n) for n in names], spans=False)


class GenRecommender(ReplyParser):
    """A causal LM with the item-span tokens, the catalog's names and their prefix tree.

    It generates replies that name catalog items inside spans, optionally constrained to names that
    exist, and reads them back into catalog rows.

    Args:
        model: The causal language model (transformers), with the span tokens in its vocabulary.
        tokenizer: Its tokenizer.
        catalog: The catalog the model recommends from.
        fmt: The span markers around item names.
        threshold: Title-matching threshold for names outside the trie; ``None`` uses the catalog's own.
        name: The system's name in reports; defaults to the model's class name.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        catalog: Catalog,
        *,
        fmt: SpanFormat = DEFAULT_FORMAT,
        threshold: float | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(tokenizer, catalog, fmt=fmt, threshold=threshold)
        self.model = model
        self.name = name or type(model).__name__

    @classmethod
    def load(
        cls,
        folder: str | Path,
        catalog: Catalog,
        *,
        dtype: str = "float32",
        device: str = "cpu",
        **kwargs: Any,
    ) -> GenRecommender:
        """A model folder written by ``recai gen train`` (adapter or full) or ``recai gen merge``, or any
        causal-LM folder (a zero-shot baseline: its span tokens are added untrained, so it writes spans
        only by chance and is best evaluated without constraints)."""
        from recai.gen.items import add_item_tokens
        from recai.gen.models import load_gen_model

        model, tokenizer = load_gen_model(folder, dtype=dtype, device=device, merge=True)
        add_item_tokens(tokenizer, model, kwargs.get("fmt", DEFAULT_FORMAT))
        return cls(model, tokenizer, catalog, name=kwargs.pop("name", Path(folder).name), **kwargs)

    def processor(
        self, exclude: Sequence[Iterable[int]] | None = None, *, max_new_tokens: int | None = None
    ) -> CatalogLogitsProcessor:
        """A fresh constraint for one ``generate`` call; ``exclude`` lists rows per prompt never to name,
        ``max_new_tokens`` the call's budget (no span is then opened or extended past what it can close)."""
        return CatalogLogitsProcessor(
            self.trie, self.start_id, self.end_id, exclude=exclude, max_new_tokens=max_new_tokens
        )

    # ------------------------------------------------------------ generate
    def generate(
        self,
        prompts: Sequence[Messages],
        *,
        constrained: bool = True,
        exclude: Sequence[Iterable[int]] | None = None,
        max_new_tokens: int = 256,
        num_beams: int = 1,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float | None = None,
        repetition_penalty: float = 1.0,
        seed: int | None = None,
        batch_size: int = 8,
    ) -> list[GenOutput]:
        """One reply per prompt (a list of chat messages), in batches, left-padded.

        ``repetition_penalty`` is always passed, so a model folder's own generation config (Qwen2.5
        instruct models ship 1.05 to 1.1) never changes decoding behind the caller's back; 1.0 is none."""
        import torch
        from transformers import LogitsProcessorList

        if seed is not None:
            torch.manual_seed(seed)
        outputs: list[GenOutput] = []
        tok = self.tokenizer
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        eos = self.model.generation_config.eos_token_id if self.model.generation_config else None
        device = next(self.model.parameters()).device
        for lo in range(0, len(prompts), batch_size):
            chunk = prompts[lo : lo + batch_size]
            encoded = [prompt_ids(tok, p) for p in chunk]
            width = max(len(e) for e in encoded)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, e in enumerate(encoded):
                ids[i, width - len(e) :] = torch.tensor(e, dtype=torch.long)
                mask[i, width - len(e) :] = 1
            processors = []
            if constrained:
                chunk_exclude = list(exclude[lo : lo + batch_size]) if exclude is not None else None
                processors.append(self.processor(chunk_exclude, max_new_tokens=max_new_tokens))
            kwargs: dict[str, Any] = {
                "max_new_tokens": max_new_tokens,
                "num_beams": num_beams,
                "repetition_penalty": float(repetition_penalty),
                "pad_token_id": pad_id,
                "logits_processor": LogitsProcessorList(processors),
            }
            if do_sample:
                kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=None)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            with torch.no_grad():
                generated = self.model.generate(
                    input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs
                )
            ends = _as_set(eos) | {int(tok.eos_token_id)} if tok.eos_token_id is not None else _as_set(eos)
            for row in generated[:, width:].tolist():
                new = _trim(row, ends, pad_id)
                finished = len(new) < len(row) or (bool(new) and new[-1] in ends)
                body = [t for t in new if t not in ends]
                outputs.append(
                    GenOutput(
                        text=tok.decode(body, skip_special_tokens=False),
                        token_ids=body,
                        parsed=self.parse_ids(body, free_text=not constrained),
                        finished=finished,
                    )
                )
        return outputs

    def as_chat_model(
        self, *, constrained: bool = True, exclude: Iterable[int] = (), exclude_mentioned: bool = True
    ) -> Any:
        """An :class:`~recai.llm.hf.HFChatModel` over this model (the agent's responder, ``recai chat``);
        with ``constrained`` every reply it writes names catalog items only.

        The constraint works as in :meth:`generate`: each call's ``max_tokens`` is its budget, so no item
        span is opened that cannot be closed in it, and the rows in ``exclude`` (e.g. a user's history)
        are never named. ``exclude_mentioned`` also excludes the items the messages name inside item
        spans (the history in a prompt written as the model was trained, or items already recommended
        in the conversation); titles in plain text are left alone, so a prompt may list what to talk
        about.
        """
        from recai.llm.hf import HFChatModel

        fixed = {int(p) for p in exclude}

        def factory(messages: Messages, decoding: Any) -> list[CatalogLogitsProcessor]:
            rows = fixed | (self.mentioned(messages) if exclude_mentioned else set())
            return [self.processor([rows], max_new_tokens=decoding.max_tokens)]

        return HFChatModel(
            self.model,
            tokenizer=self.tokenizer,
            name=self.name,
            logits_processors=factory if constrained else None,
            use_grammar=False,
        )

    def mentioned(self, messages: Messages) -> set[int]:
        """The catalog rows the messages name inside item spans (unknown names are ignored)."""
        rows: set[int] = set()
        for message in messages:
            for name in self.fmt.pattern.findall(str(message.get("content", ""))):
                position = self._position(name.strip()) if name.strip() else None
                if position is not None:
                    rows.add(position)
        return rows


def _as_set(value: Any) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, (list, tuple)):
        return {int(v) for v in value}
    return {int(value)}


def _trim(row: list[int], ends: set[int], pad_id: int) -> list[int]:
    """The tokens up to and including the first end-of-turn token (padding after it dropped)."""
    for i, token in enumerate(row):
        if token in ends:
            return row[: i + 1]
    while row and row[-1] == pad_id and pad_id not in ends:
        row = row[:-1]
    return row
