"""Fill the user and item slots of an example for one alignment mode.

- ``behaviour``: users as their history titles, items as titles (text only);
- ``intention``: users and items as placeholder tokens (``<|user_emb|>``, ``<|item_emb|>``) whose input
  embeddings the projectors replace with the target model's own vectors;
- ``hybrid``: both, placeholder then text.

Opaque examples (tasks whose answer is in the slot's text) get placeholders only and are skipped in
behaviour mode. Placeholders are collected in the order they appear in the messages, which is the order
they appear in the rendered chat, so vector ``j`` of a row fills placeholder ``j``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from recai.explain.examples import SLOT, ExplainExample
from recai.llm.prompting import render_prompt

if TYPE_CHECKING:
    from recai.data.catalog import Catalog

Mode = Literal["behaviour", "intention", "hybrid"]
MODES: tuple[str, ...] = ("behaviour", "intention", "hybrid")
USER_TOKEN = "<|user_emb|>"
ITEM_TOKEN = "<|item_emb|>"


@dataclass
class Rendered:
    """Messages ready for the chat template, and what fills their placeholders, in order.

    Attributes:
        messages: The chat messages, slots replaced by text or embedding tokens.
        users: Per user embedding token, the user and their history's catalog positions.
        items: Per item embedding token, the item's catalog position.
    """

    messages: list[dict[str, str]]
    users: list[tuple[Any, tuple[int, ...]]] = field(default_factory=list)
    items: list[int] = field(default_factory=list)


def uses_embeddings(mode: str) -> bool:
    return mode in ("intention", "hybrid")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode


class Renderer:
    """Renders examples of one catalog for one mode.

    The mode decides how users and items appear: as titles (behaviour), as placeholder tokens that the
    projectors fill with the target model's vectors (intention), or both (hybrid).

    Args:
        catalog: The catalog the examples' ids belong to.
        mode: ``"behaviour"``, ``"intention"`` or ``"hybrid"``.
    """

    def __init__(self, catalog: Catalog, mode: str) -> None:
        self.catalog = catalog
        self.mode = check_mode(mode)

    def applies(self, example: ExplainExample) -> bool:
        """Whether the example is used in this mode (opaque ones are not in behaviour mode)."""
        return not (example.opaque and self.mode == "behaviour")

    def render(self, example: ExplainExample, *, with_answer: bool = True) -> Rendered:
        history = tuple(int(p) for p in self.catalog.index_of(list(example.history)))
        out = Rendered(messages=[])
        opaque = example.opaque
        titles = "; ".join(self.catalog.display_title(p) for p in history) or "(empty)"

        def fill(match: Any) -> str:
            if match.group(1) == "user":
                if self.mode == "behaviour":
                    return render_prompt("user_behaviour", package="recai.explain", titles=titles)
                out.users.append((example.user, history))
                name = "user_intention" if opaque or self.mode == "intention" else "user_hybrid"
                return render_prompt(name, package="recai.explain", token=USER_TOKEN, titles=titles)
            position = int(self.catalog.index_of([_as_id(match.group(2), self.catalog)])[0])
            title = self.catalog.display_title(position)
            if self.mode == "behaviour":
                return title
            out.items.append(position)
            return ITEM_TOKEN if opaque or self.mode == "intention" else f"{ITEM_TOKEN} {title}"

        messages = example.messages if with_answer else example.messages[:-1]
        out.messages = [{"role": m["role"], "content": SLOT.sub(fill, m["content"])} for m in messages]
        return out


def _as_id(text: str, catalog: Catalog) -> Any:
    """A slot's id as the catalog stores it (slots are text; catalog ids are often integers)."""
    if catalog.ids.dtype.kind in "iu":
        try:
            return int(text)
        except ValueError:
            return text
    return text
