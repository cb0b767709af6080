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

from recai._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".attributes": ["AttributeExtractor"],
        ".base": ["Extractor"],
        ".cooccurrence": ["CooccurrenceExtractor"],
        ".embedding": ["EmbeddingExtractor"],
        ".evaluation": ["KnowledgeListSystem", "run_knowledge_eval"],
        ".facts": ["KINDS", "Fact", "Query"],
        ".graph": ["GraphExtractor"],
        ".patterns": ["PatternsExtractor"],
        ".ranker": ["KnowledgeRanker", "RankResult", "repair"],
        ".recommender": ["RecommenderExtractor"],
        ".selection": ["Selection", "select"],
        ".store": ["EXTRACTORS", "KnowledgeBase", "parse_kinds"],
        ".tokens": ["ApproximateCounter", "TokenCounter", "token_counter"],
        ".verbalise": ["STYLES", "Verbaliser"],
    },
)

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
