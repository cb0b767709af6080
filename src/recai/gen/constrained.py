"""Catalog-constrained decoding (cgen): free text outside item spans, only catalog names inside them.

:class:`CatalogLogitsProcessor` is a ``transformers`` logits processor. For each row of the batch it
keeps a small state: whether the row is inside a span and at which node of the :class:`ItemTrie`, and
which items are no longer available (already named in this output, or excluded by the caller, e.g. the
user's history). Each step it advances that state by the one new token; it never re-walks a span.

- Outside a span every token is allowed except the end marker (and the start marker once no item is
  left to name).
- Inside a span only tokens that continue some still-available name are allowed, plus the end marker
  where an available name is complete. Names that are prefixes of others ("The Godfather" and "The
  Godfather Part II") allow both.
- An item already named in the output cannot be named again: its count is taken off every node on its
  path, so a branch whose items are all taken is closed.
- Given ``max_new_tokens`` (the ``generate`` budget), a span is opened only when the shortest name not
  yet taken still fits before the budget ends, and inside a span only continuations that can complete
  an available name in time are allowed (the taken set does not change inside a span), so no span is
  cut off by the token limit.

Beam search reorders rows between steps. A row's parent is found by comparing its generated tokens
(minus the newest) with the previous step's rows, one vectorised comparison per step, and the parent's
state is copied; greedy search and sampling never reorder, which the comparison confirms at once. One
processor serves one ``generate`` call: build a new one per call (``GenModel`` does).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from recai.gen.trie import ItemTrie

try:  # the processor subclasses transformers' base class when transformers is installed
    from transformers import LogitsProcessor as _Base
except ImportError:  # pragma: no cover - exercised only without the hf extra
    _Base = object  # type: ignore[assignment,misc]


@dataclass(frozen=True)
class _RowState:
    """Where one row stands: outside a span (node None) or at a trie node, and what is taken.

    ``used[node]`` counts the taken items whose names pass through ``node``; ``taken`` holds them
    (named in this output or excluded by the caller); ``named`` lists this output's items in order.
    States are immutable and share their dicts, so copying a beam's state costs nothing.
    """

    node: int | None = None
    used: dict[int, int] = field(default_factory=dict)
    taken: frozenset[int] = frozenset()
    named: tuple[int, ...] = ()

    def available(self, trie: ItemTrie, node: int) -> bool:
        return trie.count[node] - self.used.get(node, 0) > 0

    def take(self, trie: ItemTrie, item: int, *, named: bool) -> _RowState:
        if item in self.taken:
            return self
        used = dict(self.used)
        for node in (0, *trie.paths[item]):
            used[node] = used.get(node, 0) + 1
        return _RowState(self.node, used, self.taken | {item}, (*self.named, item) if named else self.named)

    def at(self, node: int | None) -> _RowState:
        return _RowState(node, self.used, self.taken, self.named)


class CatalogLogitsProcessor(_Base):  # type: ignore[misc,valid-type]
    """Restricts decoding inside item spans to catalog names not yet named (see the module docstring).

    ``exclude`` gives, per batch entry (prompt), item rows that may not be named at all (the user's
    history); rows of the expanded batch (beams, returned sequences) map to entries in order.

    Args:
        trie: The prefix tree of every catalog name's tokens.
        start_id: The token that opens an item span.
        end_id: The token that closes an item span.
        exclude: Per prompt, the catalog rows never to name; ``None`` excludes nothing.
        max_new_tokens: The ``generate`` call's token budget; no span is opened or extended past what it
            can close. ``None``: no budget.

    Attributes:
        steps: Calls so far, for tests and diagnostics.
        rebuilt: Rows rebuilt by walking because no parent row matched (should stay 0).
        reordered: Rows that continued another row's state (beam search).
    """

    def __init__(
        self,
        trie: ItemTrie,
        start_id: int,
        end_id: int,
        *,
        exclude: Sequence[Iterable[int]] | None = None,
        max_new_tokens: int | None = None,
    ) -> None:
        self.trie = trie
        self.max_new_tokens = max_new_tokens
        self.start_id = int(start_id)
        self.end_id = int(end_id)
        self.exclude = [sorted({int(i) for i in items}) for items in exclude] if exclude is not None else None
        self.states: list[_RowState] = []
        self.steps = 0
        self.rebuilt = 0
        self.reordered = 0
        self._prompt_len = 0
        self._previous: Any = None  # generated tokens of every row at the previous call
        self._children: dict[int, Any] = {}
        self._fresh: dict[int, _RowState] = {}

    # --------------------------------------------------------------- state
    def _fresh_state(self, entry: int) -> _RowState:
        state = self._fresh.get(entry)
        if state is None:
            state = _RowState()
            if self.exclude is not None:
                for item in self.exclude[entry]:
                    if 0 <= item < len(self.trie):
                        state = state.take(self.trie, item, named=False)
            self._fresh[entry] = state
        return state

    def _advance(self, state: _RowState, token: int) -> _RowState:
        if state.node is None:
            return state.at(0) if token == self.start_id else state
        if token == self.end_id:
            item = next((i for i in self.trie.items_at[state.node] if i not in state.taken), None)
            if item is None:  # the end marker was forced past the mask: the span names nothing
                return state.at(None)
            return state.take(self.trie, item, named=True).at(None)
        # A token outside the tree can only come from another processor overriding this one.
        return state.at(self.trie.children[state.node].get(token))

    def _entry(self, row: int, rows: int) -> int:
        if self.exclude is None:
            return 0
        per = max(rows // max(len(self.exclude), 1), 1)
        return min(row // per, len(self.exclude) - 1)

    def _walk_row(self, tokens: Sequence[int], entry: int, *, in_span: bool = False) -> _RowState:
        state = self._fresh_state(entry)
        if in_span:
            state = state.at(0)
        for token in tokens:
            state = self._advance(state, int(token))
        return state

    def _initial_states(self, input_ids: Any) -> list[_RowState]:
        """First call: rows start outside a span unless the prompt ends inside an open one."""
        rows = input_ids.shape[0]
        states = []
        for r in range(rows):
            seq = input_ids[r].tolist()
            opened = max((i for i, t in enumerate(seq) if t == self.start_id), default=-1)
            closed = max((i for i, t in enumerate(seq) if t == self.end_id), default=-1)
            if opened > closed:
                states.append(self._walk_row(seq[opened + 1 :], self._entry(r, rows), in_span=True))
            else:
                states.append(self._fresh_state(self._entry(r, rows)))
        return states

    def _parents(self, generated: Any) -> list[int]:
        """For each row, the previous row it extends (the identity unless beam search reordered)."""
        import torch

        rows = generated.shape[0]
        prefix = generated[:, :-1]
        previous = self._previous
        parents = list(range(rows))
        if prefix.shape[1] == 0:
            return parents
        same = (prefix == previous).all(dim=1)
        if bool(same.all()):
            return parents
        group = rows if self.exclude is None else max(rows // max(len(self.exclude), 1), 1)
        for r in torch.nonzero(~same).flatten().tolist():
            lo = (r // group) * group
            matches = (prefix[r][None, :] == previous[lo : lo + group]).all(dim=1)
            hit = torch.nonzero(matches).flatten()
            parents[r] = lo + int(hit[0]) if len(hit) else -1
        return parents

    # ---------------------------------------------------------------- call
    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        rows, length = input_ids.shape
        continuing = (
            self._previous is not None
            and rows == len(self.states)
            and length == self._prompt_len + self._previous.shape[1] + 1
        )
        if not continuing:
            self._prompt_len = length
            self.states = self._initial_states(input_ids)
        else:
            generated = input_ids[:, self._prompt_len :]
            new_states = []
            for r, p in enumerate(self._parents(generated)):
                if p < 0:
                    self.rebuilt += 1
                    new_states.append(self._walk_row(generated[r].tolist(), self._entry(r, rows)))
                else:
                    self.reordered += p != r
                    new_states.append(self._advance(self.states[p], int(generated[r, -1])))
            self.states = new_states
        self._previous = input_ids[:, self._prompt_len :].clone()
        self.steps += 1
        blocked = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
        # tokens left in the budget, this one included
        left = None if self.max_new_tokens is None else self.max_new_tokens - (length - self._prompt_len)
        for r, state in enumerate(self.states):
            if state.node is None:
                blocked[r, self.end_id] = True
                tight = left is not None and left <= self.trie.longest[0]  # else every name fits
                if not state.available(self.trie, 0) or (
                    tight and 1 + self.trie.finish(0, state.taken) > left
                ):
                    blocked[r, self.start_id] = True
                continue
            blocked[r] = True
            allowed, closed = self._allowed(state, left)
            blocked[r, allowed.to(scores.device)] = False
            if closed:
                blocked[r, closed] = True
        return scores.masked_fill(blocked, float("-inf"))

    def _allowed(self, state: _RowState, left: int | None = None) -> tuple[Any, list[int]]:
        """Tokens that may follow inside a span: (continuations and maybe the end marker, closed tokens).

        A continuation is closed when every item below it is taken; the taken items are few, so they
        are found from ``state.used`` rather than by looking at every child. With ``left`` tokens of
        budget (this one included), a continuation that cannot complete a name in time is left out,
        unless nothing would be left (the span is cut off then whatever is chosen).
        """
        import torch

        trie = self.trie
        node = state.node
        assert node is not None
        tokens = self._children.get(node)
        if tokens is None:
            tokens = self._children[node] = torch.tensor(list(trie.children[node]), dtype=torch.long)
        closed = [
            trie.token[u] for u, n in state.used.items() if trie.parent[u] == node and trie.count[u] - n <= 0
        ]
        can_end = any(i not in state.taken for i in trie.items_at[node])
        if left is not None and trie.longest[node] > left:  # the budget binds: only what still fits
            fits = [t for t, c in trie.children[node].items() if 1 + trie.finish(c, state.taken) <= left]
            if fits or can_end:  # else the span was opened before this processor saw it: it is cut anyway
                tokens = torch.tensor(fits, dtype=torch.long)
        if can_end:
            tokens = torch.cat([tokens, torch.tensor([self.end_id], dtype=torch.long)])
        return tokens, closed
