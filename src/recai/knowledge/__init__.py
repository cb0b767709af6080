"""The knowledge plugin: domain knowledge in the prompt of an LLM that cannot be fine-tuned.

Extract (each extractor fitted on training interactions only), select per sample under a token budget
measured with the target model's tokenizer, verbalise, and rank candidates with the LLM:

- extractors: :class:`AttributeExtractor`, :class:`CooccurrenceExtractor`, :class:`EmbeddingExtractor`,
  :class:`RecommenderExtractor`, :class:`PatternsExtractor`, :class:`GraphExtractor`, gathered in a
  :class:`KnowledgeBase`;
- :func:`select` and :mod:`recai.knowledge.tokens` (budgets), :class:`Verbaliser` (styles);
- :class:`KnowledgeRanker` (listwise, JSON list of candidate numbers, repairs counted),
  :class:`KnowledgeListSystem` and :func:`run_knowledge_eval` (evaluation runs), and
  :class:`recai.knowledge.tool.KnowledgeRankTool` for the agent.

The names are imported on first access, so ``recai knowledge --help`` stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recai._lazy import lazy_attributes

_LAZY = {
    "AttributeExtractor": "recai.knowledge.attributes",
    "Extractor": "recai.knowledge.base",
    "CooccurrenceExtractor": "recai.knowledge.cooccurrence",
    "EmbeddingExtractor": "recai.knowledge.embedding",
    "KnowledgeListSystem": "recai.knowledge.evaluation",
    "run_knowledge_eval": "recai.knowledge.evaluation",
    "KINDS": "recai.knowledge.facts",
    "Fact": "recai.knowledge.facts",
    "Query": "recai.knowledge.facts",
    "GraphExtractor": "recai.knowledge.graph",
    "PatternsExtractor": "recai.knowledge.patterns",
    "KnowledgeRanker": "recai.knowledge.ranker",
    "RankResult": "recai.knowledge.ranker",
    "repair": "recai.knowledge.ranker",
    "RecommenderExtractor": "recai.knowledge.recommender",
    "Selection": "recai.knowledge.selection",
    "select": "recai.knowledge.selection",
    "EXTRACTORS": "recai.knowledge.store",
    "KnowledgeBase": "recai.knowledge.store",
    "parse_kinds": "recai.knowledge.store",
    "ApproximateCounter": "recai.knowledge.tokens",
    "TokenCounter": "recai.knowledge.tokens",
    "token_counter": "recai.knowledge.tokens",
    "STYLES": "recai.knowledge.verbalise",
    "Verbaliser": "recai.knowledge.verbalise",
}

__all__ = [
    "EXTRACTORS",
    "KINDS",
    "STYLES",
    "ApproximateCounter",
    "AttributeExtractor",
    "CooccurrenceExtractor",
    "EmbeddingExtractor",
    "Extractor",
    "Fact",
    "GraphExtractor",
    "KnowledgeBase",
    "KnowledgeListSystem",
    "KnowledgeRanker",
    "PatternsExtractor",
    "Query",
    "RankResult",
    "RecommenderExtractor",
    "Selection",
    "TokenCounter",
    "Verbaliser",
    "parse_kinds",
    "repair",
    "run_knowledge_eval",
    "select",
    "token_counter",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)

if TYPE_CHECKING:
    from recai.knowledge.attributes import AttributeExtractor
    from recai.knowledge.base import Extractor
    from recai.knowledge.cooccurrence import CooccurrenceExtractor
    from recai.knowledge.embedding import EmbeddingExtractor
    from recai.knowledge.evaluation import KnowledgeListSystem, run_knowledge_eval
    from recai.knowledge.facts import KINDS, Fact, Query
    from recai.knowledge.graph import GraphExtractor
    from recai.knowledge.patterns import PatternsExtractor
    from recai.knowledge.ranker import KnowledgeRanker, RankResult, repair
    from recai.knowledge.recommender import RecommenderExtractor
    from recai.knowledge.selection import Selection, select
    from recai.knowledge.store import EXTRACTORS, KnowledgeBase, parse_kinds
    from recai.knowledge.tokens import ApproximateCounter, TokenCounter, token_counter
    from recai.knowledge.verbalise import STYLES, Verbaliser
