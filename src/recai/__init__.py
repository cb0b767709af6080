"""recai: large language models for recommender systems.

The names a user needs come from one flat import surface::

    from recai import load, Popularity, Agent, ScriptedChatModel

Each name is resolved on first access (PEP 562), so ``import recai`` (and ``recai --help``) imports
neither torch, transformers nor DuckDB; ``recai.Agent`` imports the agent package when it is first used.
Every name is the very object at its deep path (``recai.Agent is recai.agent.agent.Agent``).

The package is organised by layer (see docs/architecture.md): ``recai.data`` holds the catalog and the
interaction log every pillar shares, ``recai.llm`` and ``recai.embed`` the chat models and encoders,
``recai.rec`` the classic recommenders, ``recai.agent``, ``recai.knowledge``, ``recai.gen`` and
``recai.explain`` the LLM pillars, ``recai.evaluate`` the measurements and ``recai.serve`` the HTTP API.
"""

from recai._lazy import lazy_exports

__version__ = "0.1.0"

# not ``from typing import TYPE_CHECKING``: importing typing would double the cost of ``import recai``
TYPE_CHECKING = False

# module (relative to recai) -> the public names it defines; kept in step with __all__ and the
# TYPE_CHECKING block below (tests/test_public_api.py checks all three agree)
_EXPORTS: dict[str, list[str]] = {
    # data: datasets, catalogs, logs, splits, importing your own tables
    ".data.library": ["load", "list_datasets"],
    ".data.dataset": ["Dataset"],
    ".data.catalog": ["Catalog"],
    ".data.schema": ["CatalogSchema"],
    ".data.interactions": ["Interactions"],
    ".data.splits": ["Split", "leave_one_out", "temporal_split"],
    ".data.errors": ["DataError"],
    ".errors": ["RecaiError"],
    ".data.loaders.tabular": ["import_tabular", "ImportSpec"],
    # rec: classic recommenders behind one API
    ".rec.base": ["Recommender"],
    ".rec.popularity": ["Popularity"],
    ".rec.itemcf": ["ItemKNN"],
    ".rec.mf": ["ALS", "BPR"],
    ".rec.sasrec": ["SASRec"],
    ".rec.history": ["resolve_history"],
    # llm: chat models and batch work
    ".llm.base": ["ChatModel", "Completion"],
    ".llm.factory": ["load_chat_model"],
    ".llm.scripted": ["ScriptedChatModel"],
    ".llm.batch": ["BatchSettings", "run_batch"],
    # embed: encoders, vector search, RecLM-emb
    ".embed.encoder": ["Encoder", "load_encoder"],
    ".embed.index": ["VectorIndex"],
    ".embed.tasks.build": ["build_examples"],
    ".embed.training": ["train_embedder"],
    ".embed.evaluation": ["evaluate_retrieval", "compare_retrieval"],
    # agent: the conversational recommender
    ".agent.agent": ["Agent", "Session", "TurnResult", "default_tools"],
    ".agent.context": ["AgentSettings"],
    ".agent.tools.base": ["Tool"],
    # knowledge: domain knowledge in the prompt
    ".knowledge.store": ["KnowledgeBase"],
    ".knowledge.ranker": ["KnowledgeRanker"],
    ".knowledge.evaluation": ["run_knowledge_eval"],
    # gen: RecLM-gen / cgen
    ".gen.tasks": ["build_gen_data"],
    ".train.sft": ["SFTConfig"],
    ".gen.training": ["train_sft"],
    ".gen.generate": ["GenRecommender"],
    # explain: RecExplainer
    ".explain.target": ["fit_target"],
    ".explain.tasks": ["build_explain_data"],
    ".explain.config": ["ExplainConfig"],
    ".explain.training": ["train_explainer"],
    ".explain.model": ["Explainer"],
    ".explain.evaluation": ["run_alignment"],
    # evaluate: what `recai eval` runs, run folders, metrics
    ".evaluate.prepare": ["DataOptions"],
    ".evaluate.generative": ["ListSampling"],
    ".evaluate.sampled": ["RunSettings"],
    ".evaluate.runners": ["run_list_eval", "run_recommender_eval", "run_conversation_eval", "run_judge_eval"],
    ".evaluate.runs": ["RunFolder"],
    ".evaluate.compare": ["compare_runs"],
    ".evaluate.recommender": ["evaluate_recommender"],
    ".evaluate.metrics": ["ranking_metrics", "top_k"],
    # serve: the HTTP API (needs the `serve` extra)
    ".serve.settings": ["ServeSettings"],
    ".serve.app": ["create_app"],
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [  # written out (not derived from _EXPORTS) so that linters and type checkers see it
    # rec
    "ALS",
    "BPR",
    # agent
    "Agent",
    "AgentSettings",
    # llm
    "BatchSettings",
    "Catalog",
    "CatalogSchema",
    "ChatModel",
    "Completion",
    # data
    "DataError",
    # evaluate
    "DataOptions",
    "Dataset",
    # embed
    "Encoder",
    # explain
    "ExplainConfig",
    "Explainer",
    # gen
    "GenRecommender",
    "ImportSpec",
    "Interactions",
    "ItemKNN",
    # knowledge
    "KnowledgeBase",
    "KnowledgeRanker",
    "ListSampling",
    "Popularity",
    "RecaiError",
    "Recommender",
    "RunFolder",
    "RunSettings",
    "SASRec",
    "SFTConfig",
    "ScriptedChatModel",
    # serve
    "ServeSettings",
    "Session",
    "Split",
    "Tool",
    "TurnResult",
    "VectorIndex",
    "__version__",
    "build_examples",
    "build_explain_data",
    "build_gen_data",
    "compare_retrieval",
    "compare_runs",
    "create_app",
    "default_tools",
    "evaluate_recommender",
    "evaluate_retrieval",
    "fit_target",
    "import_tabular",
    "leave_one_out",
    "list_datasets",
    "load",
    "load_chat_model",
    "load_encoder",
    "ranking_metrics",
    "resolve_history",
    "run_alignment",
    "run_batch",
    "run_conversation_eval",
    "run_judge_eval",
    "run_knowledge_eval",
    "run_list_eval",
    "run_recommender_eval",
    "temporal_split",
    "top_k",
    "train_embedder",
    "train_explainer",
    "train_sft",
]

if TYPE_CHECKING:
    from recai.agent.agent import Agent, Session, TurnResult, default_tools
    from recai.agent.context import AgentSettings
    from recai.agent.tools.base import Tool
    from recai.data.catalog import Catalog
    from recai.data.dataset import Dataset
    from recai.data.errors import DataError
    from recai.data.interactions import Interactions
    from recai.data.library import list_datasets, load
    from recai.data.loaders.tabular import ImportSpec, import_tabular
    from recai.data.schema import CatalogSchema
    from recai.data.splits import Split, leave_one_out, temporal_split
    from recai.embed.encoder import Encoder, load_encoder
    from recai.embed.evaluation import compare_retrieval, evaluate_retrieval
    from recai.embed.index import VectorIndex
    from recai.embed.tasks.build import build_examples
    from recai.embed.training import train_embedder
    from recai.errors import RecaiError
    from recai.evaluate.compare import compare_runs
    from recai.evaluate.generative import ListSampling
    from recai.evaluate.metrics import ranking_metrics, top_k
    from recai.evaluate.prepare import DataOptions
    from recai.evaluate.recommender import evaluate_recommender
    from recai.evaluate.runners import (
        run_conversation_eval,
        run_judge_eval,
        run_list_eval,
        run_recommender_eval,
    )
    from recai.evaluate.runs import RunFolder
    from recai.evaluate.sampled import RunSettings
    from recai.explain.config import ExplainConfig
    from recai.explain.evaluation import run_alignment
    from recai.explain.model import Explainer
    from recai.explain.target import fit_target
    from recai.explain.tasks import build_explain_data
    from recai.explain.training import train_explainer
    from recai.gen.generate import GenRecommender
    from recai.gen.tasks import build_gen_data
    from recai.gen.training import train_sft
    from recai.knowledge.evaluation import run_knowledge_eval
    from recai.knowledge.ranker import KnowledgeRanker
    from recai.knowledge.store import KnowledgeBase
    from recai.llm.base import ChatModel, Completion
    from recai.llm.batch import BatchSettings, run_batch
    from recai.llm.factory import load_chat_model
    from recai.llm.scripted import ScriptedChatModel
    from recai.rec.base import Recommender
    from recai.rec.history import resolve_history
    from recai.rec.itemcf import ItemKNN
    from recai.rec.mf import ALS, BPR
    from recai.rec.popularity import Popularity
    from recai.rec.sasrec import SASRec
    from recai.serve.app import create_app
    from recai.serve.settings import ServeSettings
    from recai.train.sft import SFTConfig
