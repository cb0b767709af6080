"""A prefix tree of every catalog name, in token ids, exactly as the names are tokenised inside a span.

A name is not tokenised on its own: a tokenizer may merge or prefix characters differently at the start
of a text than after a special token. Each name is encoded as ``<|item_start|>NAME<|item_end|>`` and the
tokens between the two markers go into the tree, which is what the model reads and writes in context
(a test checks this against full chat renders). Nodes are integers; node 0 is the root.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from recai.gen.items import DEFAULT_FORMAT, ItemNames, SpanFormat, span_token_ids


class ItemTrie:
    """Token sequences of item names, each ending at a node that records which item(s) end there.

    ``count[node]`` is the number of items whose name passes through (or ends at) ``node``; the
    constrained decoder uses it to know when every item below a node is already taken. ``finish(node,
    taken)`` is the fewest tokens that complete a still-available name from ``node`` (the end marker
    counted), so the decoder can refuse to open or extend a span that the token budget cannot close.

    Args:
        sequences: Per item (in catalog row order), the token ids of its name; none may be empty.

    Attributes:
        children: Per node, the child node of each next token.
        parent: Per node, its parent (-1 for the root).
        token: Per node, the token that leads to it (-1 for the root).
        count: Per node, how many items' names pass through or end at it.
        items_at: Per node, the items whose name ends there.
        paths: Per item, the nodes below the root along its name; the last is its end node.
        sequences: Per item, its name's token ids.
    """

    def __init__(self, sequences: Sequence[Sequence[int]]) -> None:
        self.children: list[dict[int, int]] = [{}]
        self.parent: list[int] = [-1]
        self.token: list[int] = [-1]
        self.count: list[int] = [0]
        self.items_at: list[list[int]] = [[]]
        self.paths: list[tuple[int, ...]] = []
        self.sequences: list[tuple[int, ...]] = []
        for item, tokens in enumerate(sequences):
            tokens = tuple(int(t) for t in tokens)
            if not tokens:
                raise ValueError(f"item {item} has an empty token sequence")
            node = 0
            self.count[0] += 1
            path = []
            for token in tokens:
                child = self.children[node].get(token)
                if child is None:
                    child = len(self.children)
                    self.children.append({})
                    self.parent.append(node)
                    self.token.append(token)
                    self.count.append(0)
                    self.items_at.append([])
                    self.children[node][token] = child
                node = child
                self.count[node] += 1
                path.append(node)
            self.items_at[node].append(item)
            self.paths.append(tuple(path))
            self.sequences.append(tokens)
        # Budget bookkeeping (every count includes the end marker): items under each node, shortest
        # first, so the shortest *available* completion is found by skipping the few taken items;
        # ``longest[node]`` bounds every one-token continuation's completion, for the fast path.
        n = len(self.children)
        self.depth: list[int] = [0] * n
        for node in range(1, n):  # children are numbered after their parent
            self.depth[node] = self.depth[self.parent[node]] + 1
        self.by_length: list[list[int]] = [[] for _ in range(n)]
        for item in sorted(range(len(self.paths)), key=lambda i: len(self.sequences[i])):
            for node in (0, *self.paths[item]):
                self.by_length[node].append(item)
        deepest = [max(len(self.sequences[i]) for i in items) - self.depth[u] + 1 if items else 1
                   for u, items in enumerate(self.by_length)]  # fmt: skip
        self.longest: list[int] = [
            max((1 + deepest[c] for c in kids.values()), default=1) for kids in self.children
        ]

    def finish(self, node: int, taken: frozenset[int] | set[int] = frozenset()) -> int:
        """The fewest tokens that complete a name not in ``taken`` from ``node``, the end marker
        included; a number larger than any name when every item below is taken."""
        depth = self.depth[node]
        for item in self.by_length[node]:
            if item not in taken:
                return len(self.sequences[item]) - depth + 1
        return len(self.depth) + 1

    def __len__(self) -> int:
        """Number of items."""
        return len(self.paths)

    @property
    def n_nodes(self) -> int:
        return len(self.children)

    def walk(self, tokens: Sequence[int], node: int = 0) -> int | None:
        """The node reached from ``node`` by ``tokens``, or None when the path leaves the tree."""
        for token in tokens:
            nxt = self.children[node].get(int(token))
            if nxt is None:
                return None
            node = nxt
        return node

    def lookup(self, tokens: Sequence[int]) -> int | None:
        """The item whose name is exactly ``tokens`` (the first, should two names tokenise alike)."""
        node = self.walk(tokens)
        if node is None or not self.items_at[node]:
            return None
        return self.items_at[node][0]

    @classmethod
    def from_names(cls, names: Sequence[str], tokenizer: Any, fmt: SpanFormat = DEFAULT_FORMAT) -> ItemTrie:
        """Tokenise every name in context (after the start marker, before the end marker)."""
        start_id, end_id = span_token_ids(tokenizer, fmt)
        encoded = tokenizer([fmt.wrap(n) for n in names], add_special_tokens=False)["input_ids"]
        sequences = []
        for i, ids in enumerate(encoded):
            if len(ids) < 3 or ids[0] != start_id or ids[-1] != end_id:
                raise ValueError(
                    f"name {names[i]!r} does not tokenise as <start> tokens <end> ({ids[:8]}...): the span "
                    "markers must be special tokens of this tokenizer"
                )
            inner = ids[1:-1]
            if start_id in inner or end_id in inner:
                raise ValueError(f"name {names[i]!r} contains a span marker")
            sequences.append(inner)
        return cls(sequences)

    @classmethod
    def from_catalog(cls, names: ItemNames, tokenizer: Any) -> ItemTrie:
        """The tree of every catalog item; item ``i`` of the tree is catalog row ``i``."""
        return cls.from_names(names.names, tokenizer, names.fmt)
