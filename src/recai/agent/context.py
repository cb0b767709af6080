"""What every tool can use: the catalog and log, lazily built retrieval and ranking resources, the user's
profile and the agent's settings. Heavy resources (item index, item-CF neighbours, a trained SASRec)
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
    """Knobs of the agent that are not prompts."""

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


@dataclass
class AgentContext:
    dataset: Dataset
    settings: AgentSettings = field(default_factory=AgentSettings)
    profile: Profile = field(default_factory=Profile)
    progress: bool = True
    #: the previous answer's items (positions): what it showed, and every candidate it kept
    previous_shown: list[int] = field(default_factory=list)
    previous_candidates: list[int] = field(default_factory=list)
    #: names the user gave that the catalog does not have (name -> closest titles), for the reply
    not_found: dict[str, list[str]] = field(default_factory=dict)

    @property
    def catalog(self) -> Any:
        return self.dataset.catalog

    @cached_property
    def cache_dir(self) -> Path:
        """A folder for this dataset's agent resources, keyed by its content (so edits invalidate it)."""
        ids = ",".join(map(str, self.catalog.ids[:1000]))
        key = f"{self.dataset.name}|{len(self.catalog)}|{len(self.dataset.interactions)}|{ids}"
        return data_home() / "agent" / f"{self.dataset.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"

    @cached_property
    def encoder(self) -> Any:
        from recai.embed import load_encoder

        return load_encoder(self.settings.encoder)

    @cached_property
    def item_index(self) -> Any:
        return self.catalog.index(self.encoder, progress=self.progress)

    @cached_property
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

    @cached_property
    def itemcf(self) -> Any:
        from recai.rec import MODELS

        path = self.cache_dir / "itemcf"
        if (path / "meta.json").exists():
            return MODELS["itemcf"].load(path)
        model = MODELS.build("itemcf").fit(self.dataset.interactions)
        model.save(path)
        return model

    @cached_property
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

    def for_turn(
        self,
        profile: Profile | None = None,
        *,
        previous_shown: list[int] | None = None,
        previous_candidates: list[int] | None = None,
    ) -> TurnContext:
        """A context for one turn: its own profile and the previous answer's items (positions: what was
        shown, and every candidate it kept), and this context's resources (built once, shared)."""
        turn = TurnContext(self, profile)
        turn.previous_shown = list(previous_shown or [])
        turn.previous_candidates = list(previous_candidates or previous_shown or [])
        return turn


_SHARED = tuple(name for name, value in vars(AgentContext).items() if isinstance(value, cached_property))


class TurnContext(AgentContext):
    """An AgentContext with its own profile whose lazily built resources are the shared context's.

    The tools read the user's profile from the context. One context per turn lets several sessions use
    one Agent at once (a server, a threaded evaluation) without reading each other's profile, while the
    heavy resources (item index, item-CF, SASRec, encoder) are built once, under a lock, and shared.
    """

    _build_locks: dict[str, threading.Lock] = {name: threading.Lock() for name in _SHARED}  # noqa: RUF012

    def __init__(self, shared: AgentContext, profile: Profile | None = None) -> None:
        if isinstance(shared, TurnContext):
            shared = shared._shared
        super().__init__(shared.dataset, shared.settings, profile or Profile(), shared.progress)
        self._shared = shared

    def _resource(self, name: str) -> Any:
        built = self._shared.__dict__
        if name not in built:  # first use: build once, whichever turn gets here first
            with self._build_locks[name]:
                return getattr(self._shared, name)
        return built[name]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHARED:  # setting a resource (e.g. an encoder) sets it for every turn
            setattr(self._shared, name, value)
        else:
            super().__setattr__(name, value)


def _delegate(name: str) -> property:
    return property(lambda self: self._resource(name), doc=f"The shared context's {name}.")


for _name in _SHARED:
    setattr(TurnContext, _name, _delegate(_name))
