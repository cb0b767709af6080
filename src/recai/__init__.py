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

# not ``from typing import TYPE_CHECKING``: importing typing would double the cost of ``import recai``
TYPE_CHECKING = False

__version__ = "0.1.0"

# name -> the module that defines it; kept in step with __all__ and the TYPE_CHECKING block below
# (tests/test_public_api.py checks all three agree)
_LAZY: dict[str, str] = {
    # data: datasets, catalogs, logs, splits, importing your own tables
    "load": "recai.data",
    "list_datasets": "recai.data",
    "Dataset": "recai.data.dataset",
    "Catalog": "recai.data.catalog",
    "CatalogSchema": "recai.data.schema",
    "Interactions": "recai.data.interactions",
    "Split": "recai.data.splits",
    "leave_one_out": "recai.data.splits",
    "temporal_split": "recai.data.splits",
    "DataError": "recai.data.errors",
    "RecaiError": "recai.errors",
    "import_tabular": "recai.data.loaders.tabular",
    "ImportSpec": "recai.data.loaders.tabular",
    # rec: classic recommenders behind one API
    "Recommender": "recai.rec.base",
    "Popularity": "recai.rec.popularity",
    "ItemKNN": "recai.rec.itemcf",
    "ALS": "recai.rec.mf",
    "BPR": "recai.rec.mf",
    "SASRec": "recai.rec.sasrec",
    "resolve_history": "recai.rec.history",
    # llm: chat models and batch work
    "ChatModel": "recai.llm.base",
    "Completion": "recai.llm.base",
    "load_chat_model": "recai.llm.factory",
    "ScriptedChatModel": "recai.llm.scripted",
    "BatchSettings": "recai.llm.batch",
    "run_batch": "recai.llm.batch",
    # embed: encoders, vector search, RecLM-emb
    "Encoder": "recai.embed.encoder",
    "load_encoder": "recai.embed.encoder",
    "VectorIndex": "recai.embed.index",
    "build_examples": "recai.embed.tasks.build",
    "train_embedder": "recai.embed.training",
    "evaluate_retrieval": "recai.embed.evaluation",
    "compare_retrieval": "recai.embed.evaluation",
    # agent: the conversational recommender
    "Agent": "recai.agent.agent",
    "Session": "recai.agent.agent",
    "TurnResult": "recai.agent.agent",
    "default_tools": "recai.agent.agent",
    "AgentSettings": "recai.agent.context",
    "Tool": "recai.agent.tools.base",
    # knowledge: domain knowledge in the prompt
    "KnowledgeBase": "recai.knowledge.store",
    "KnowledgeRanker": "recai.knowledge.ranker",
    "run_knowledge_eval": "recai.knowledge.evaluation",
    # gen: RecLM-gen / cgen
    "build_gen_data": "recai.gen.tasks",
    "SFTConfig": "recai.train.sft",
    "train_sft": "recai.gen.training",
    "GenRecommender": "recai.gen.generate",
    # explain: RecExplainer
    "fit_target": "recai.explain.target",
    "build_explain_data": "recai.explain.tasks",
    "ExplainConfig": "recai.explain.config",
    "train_explainer": "recai.explain.training",
    "Explainer": "recai.explain.model",
    "run_alignment": "recai.explain.evaluation",
    # evaluate: what `recai eval` runs, run folders, metrics
    "DataOptions": "recai.evaluate.prepare",
    "run_list_eval": "recai.evaluate.runners",
    "run_recommender_eval": "recai.evaluate.runners",
    "run_conversation_eval": "recai.evaluate.runners",
    "run_judge_eval": "recai.evaluate.runners",
    "RunFolder": "recai.evaluate.runs",
    "compare_runs": "recai.evaluate.compare",
    "evaluate_recommender": "recai.evaluate.recommender",
    "ranking_metrics": "recai.evaluate.metrics",
    "top_k": "recai.evaluate.metrics",
    # serve: the HTTP API (needs the `serve` extra)
    "ServeSettings": "recai.serve.settings",
    "create_app": "recai.serve.app",
}

__all__ = [  # written out (not ``[*_LAZY]``) so that linters and type checkers see it
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
    "Popularity",
    "RecaiError",
    "Recommender",
    "RunFolder",
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


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(
            f"module 'recai' has no attribute {name!r}; the public names are listed in recai.__all__, "
            "and everything else is imported from its package (e.g. recai.evaluate.metrics)"
        )
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolved once; later accesses do not come back here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from recai.agent.agent import Agent, Session, TurnResult, default_tools
    from recai.agent.context import AgentSettings
    from recai.agent.tools.base import Tool
    from recai.data import list_datasets, load
    from recai.data.catalog import Catalog
    from recai.data.dataset import Dataset
    from recai.data.errors import DataError
    from recai.data.interactions import Interactions
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
