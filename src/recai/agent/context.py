"""What every tool can use: the agent's settings, its shared resources (:class:`AgentResources`: the
catalog and log, lazily built retrieval and ranking models) and, per turn, the user's profile
(:class:`AgentContext`). Heavy resources (item index, item-CF neighbours, a trained SASRec)
are built on first use with progress bars and cached on disk next to the dataset's other caches."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from recai.agent.memory import Profile
from recai.data.atomic import write_text_atomic
from recai.data.dataset import Dataset
from recai.data.home import data_home


@dataclass
class AgentSettings:
    """Knobs of the agent that are not prompts, in one place so a CLI flag, a server option or a benchmark
    changes one field rather than a constructor argument deep inside.

    Attributes:
        k: items in a recommendation.
        retrieve_k: how many items retrieval tools keep on the bus (deep enough to refine).
        sql_max_rows: rows an information query returns at most.
        sql_timeout_s: how long one SQL query may run.
        facts_chars: budget for tool facts in the responder prompt.
        item_chars: budget for each item's description in the responder prompt.
        responder_items: how many of the items the responder is shown (the user sees all ``k``).
        history_tokens: dialogue kept verbatim in prompts (older turns are compressed).
        reply_tokens: longest reply the responder may write.
        max_steps: most steps a plan may have.
        replan: go back to the planner once when a step fails or empties the candidates.
        reflect: have a critic judge the drafted answer (one replan when it is judged wrong).
        demonstrations: how many of the user's own examples the planner is shown per request.
        sasrec_budget_s: training time of the sequential model preference ranking uses.
        encoder: the text encoder's spec (None: the default embedder).
        preference_model: what ranks by preference: "sasrec", "itemcf", or "auto".
        kept_candidates: candidates a turn remembers for a follow-up to refine.
        planner_prompt_tokens: budget of the planner's fixed system message, examples included.
        demonstrations_file: the user's own (request, plan) examples, added to the derived ones.
    """

    k: int = 5  # items in a recommendation
    retrieve_k: int = 200  # how many items retrieval tools keep on the bus (deep enough to refine)
    sql_max_rows: int = 20
    sql_timeout_s: float = 5.0
    facts_chars: int = 1200  # budget for tool facts in the responder prompt
    item_chars: int = 130  # budget for each item's description in the responder prompt
    responder_items: int = 2  # how many of the items the responder is shown (the user sees all k)
    history_tokens: int = 300  # dialogue kept verbatim in prompts (older turns are compressed)
    reply_tokens: int = 70  # longest reply the responder may write
    max_steps: int = 6
    replan: bool = True
    reflect: bool = False
    demonstrations: int = 3
    sasrec_budget_s: float = 120.0
    encoder: str | None = None  # None: the default embedder
    #: what ranks by preference: "sasrec", "itemcf", or "auto" (SASRec on a log with timestamps, whose
    #: order it can learn; item-CF on a log without, where sequences are only file order)
    preference_model: str = "auto"
    kept_candidates: int = 1000  # candidates a turn remembers for a follow-up to refine
    #: the planner's fixed system message, examples included (estimated): with the dialogue and the
    #: message a prompt stays under ~1,000 tokens, which keeps planning fast on a CPU
    planner_prompt_tokens: int = 880
    demonstrations_file: str | None = None  # the user's own (request, plan) examples, added to derived ones


class _BuiltOnce(cached_property):
    """A resource built on first use, once per :class:`AgentResources` even when several turns ask for it
    at the same moment (a server, a threaded evaluation): each resource has its own lock."""

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        with instance.build_locks[self.attrname]:
            return super().__get__(instance, owner)


class AgentResources:
    """The heavy, shared things an agent's tools use: the dataset, its item index and encoder, item-CF
    neighbours, a trained SASRec, item popularity. Each is built on first use (with progress bars), and
    cached on disk next to the dataset's other caches, so an agent that never ranks by preference never
    trains a model. One object serves every turn and session of an agent.

    Args:
        dataset: the catalog and interaction log the resources are built from.
        settings: the agent's settings (the encoder to load, SASRec's time budget, ...).
        progress: show progress bars while building.
        encoder: a text encoder to use instead of loading ``settings.encoder`` on first use.
    """

    def __init__(
        self,
        dataset: Dataset,
        settings: AgentSettings | None = None,
        *,
        progress: bool = True,
        encoder: Any = None,
    ) -> None:
        self.dataset = dataset
        self.settings = settings or AgentSettings()
        self.progress = progress
        self.build_locks = {name: threading.Lock() for name in _BUILT_ONCE}
        if encoder is not None:  # otherwise the default embedder loads on first use
            self.encoder = encoder

    @property
    def catalog(self) -> Any:
        return self.dataset.catalog

    @cached_property
    def cache_dir(self) -> Path:
        """A folder for this dataset's agent resources, keyed by its content (so edits invalidate it)."""
        ids = ",".join(map(str, self.catalog.ids[:1000]))
        key = f"{self.dataset.name}|{len(self.catalog)}|{len(self.dataset.interactions)}|{ids}"
        return data_home() / "agent" / f"{self.dataset.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"

    @_BuiltOnce
    def encoder(self) -> Any:
        from recai.embed import load_encoder

        return load_encoder(self.settings.encoder)

    @_BuiltOnce
    def item_index(self) -> Any:
        return self.catalog.index(self.encoder, progress=self.progress)

    @_BuiltOnce
    def popularity(self) -> np.ndarray:
        """Distinct users per item: the same number as the ``popularity`` column of the SQL view."""
        from recai.data.popularity import user_counts

        return user_counts(self.dataset.interactions).astype(np.float64)

    @property
    def preference_model(self) -> str:
        """The model preference ranking uses (see :attr:`AgentSettings.preference_model`)."""
        choice = self.settings.preference_model
        if choice not in ("auto", "sasrec", "itemcf"):
            raise ValueError(f"preference_model must be auto, sasrec or itemcf, not {choice!r}")
        if choice == "auto":
            return "sasrec" if self.dataset.interactions.has_timestamps else "itemcf"
        return choice

    def preference_scores(self, history: np.ndarray) -> np.ndarray:
        """Scores of every item for a user whose known items (positions, oldest first) are ``history``."""
        model = self.sequential if self.preference_model == "sasrec" else self.itemcf
        return np.asarray(model.score([np.asarray(history, dtype=np.int64)])[0], dtype=np.float64)

    @_BuiltOnce
    def itemcf(self) -> Any:
        from recai.rec import MODELS

        path = self.cache_dir / "itemcf"
        if (path / "meta.json").exists():
            return MODELS["itemcf"].load(path)
        model = MODELS.build("itemcf").fit(self.dataset.interactions)
        model.save(path)
        return model

    @_BuiltOnce
    def sequential(self) -> Any:
        """A SASRec trained once on the whole log (validated on each user's last event)."""
        from recai.data.splits import leave_one_out
        from recai.rec import MODELS

        path = self.cache_dir / "sasrec"
        if (path / "meta.json").exists():
            return MODELS["sasrec"].load(path)
        split = leave_one_out(self.dataset.interactions, min_train=1)
        # A smaller budget than SASRec's default on purpose: this trains while the user waits for the
        # agent's first answer, so it stops after 10 epochs without gain (and at the settings' budget).
        model = MODELS.build(
            "sasrec", {"patience": 10}, time_budget_s=self.settings.sasrec_budget_s, progress=self.progress
        )
        model.fit(split.train_and_valid(), valid=split.test)
        model.save(path)
        write_text_atomic(path / "trained.json", json.dumps({"history": model.history_}, default=float))
        return model


_BUILT_ONCE = tuple(
    name for name, value in vars(AgentResources).items() if isinstance(value, cached_property)
)


@dataclass
class AgentContext:
    """What a tool works with in one turn: the agent's shared resources, the user's profile, the previous
    answer's items and the names the catalog lacks. One context per turn lets several sessions use one
    agent at once without reading each other's profile; the resources are the agent's, built once.

    Attributes:
        resources: the agent's shared resources (catalog, encoder, item index, recommenders).
        profile: the session's profile (tools add liked items to it; ranking reads it).
        previous_shown: positions of the items the previous answer showed.
        previous_candidates: positions of every candidate the previous answer kept (best first).
        not_found: names the user gave that the catalog does not have (name -> closest titles), for the
            reply.
    """

    resources: AgentResources
    profile: Profile = field(default_factory=Profile)
    previous_shown: list[int] = field(default_factory=list)
    previous_candidates: list[int] = field(default_factory=list)
    not_found: dict[str, list[str]] = field(default_factory=dict)

    @property
    def catalog(self) -> Any:
        return self.resources.dataset.catalog

    @property
    def settings(self) -> AgentSettings:
        return self.resources.settings
