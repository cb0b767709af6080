"""A chat model prompted about a catalog's items: what the evaluation's LLM components share.

The user simulator, the summariser and the list-answering systems each hold a chat model, the catalog
whose titles their prompts show, what the items are called and a reply budget, and each asks the model
under its own usage component, so a run's report splits the cost of the system under test from the
cost of the machinery around it. :class:`CatalogPrompter` holds those once; :func:`title_list` is the one
way a prompt lists items by title.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass
from typing import Any

from recai.data.catalog import Catalog
from recai.llm.base import ChatModel, Completion
from recai.llm.usage import track


def title_list(catalog: Catalog, positions: Iterable[int]) -> str:
    """The items at ``positions`` as a bulleted list of display titles, one a line ('' for none)."""
    return "\n".join(f"- {catalog.display_title(int(p))}" for p in positions)


@dataclass(eq=False)
class CatalogPrompter:
    """The chat model, catalog, item noun and reply budget of a component that prompts about items.

    Subclasses add their own fields (keyword-only after ``catalog``) and may change ``max_tokens``'s
    default. Equality stays identity, so instances can key caches and sets.

    Attributes:
        llm: The chat model asked.
        catalog: The catalog whose titles the prompts show.
        item_noun: What the catalog's items are called in prompts ("films", "books").
        max_tokens: Longest reply, in tokens.
    """

    llm: ChatModel
    catalog: Catalog
    _: KW_ONLY
    item_noun: str = "items"
    max_tokens: int = 400

    def ask(self, component: str, messages: list[dict[str, str]], **sampling: Any) -> Completion:
        """The model's reply to ``messages`` within ``max_tokens``, metered as ``component``'s usage;
        ``sampling`` passes on the rest of :meth:`~recai.llm.base.ChatModel.complete`'s options."""
        with track(component):
            return self.llm.complete(messages, max_tokens=self.max_tokens, **sampling)
