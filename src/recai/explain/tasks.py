"""Alignment data for RecExplainer, labelled by running the target recommender (never by the held-out log).

Tasks (each example from a seeded generator of its own, so adding a task changes no other):

- ``retrieval``: a user's history -> the target's top-k for it, its top-1 first;
- ``ranking``: a user and a handful of items (shown shuffled) -> those items in the target's order;
- ``classification``: a user and an item -> ``yes`` when the target ranks the item in its top share for
  that user, ``no`` when in its bottom share (the labels alternate: each part is balanced exactly).
  ``negatives="matched"`` picks each ``no`` item among the bottom share as close as it gets to a ``yes``
  item of the same user in how often it is in the target's top share for *training* users, so that
  an item's popularity with the target answers fewer questions (where the bottom share has no item as
  popular, it still helps);
- ``item_title`` / ``item_attributes`` / ``item_similar``: an item -> its title; its title and
  attributes; the items nearest to it in the target's item space;
- ``history``: a user -> the user's history (reconstruction from the user vector);
- ``general``: plain catalog questions (:mod:`recai.gen.tasks`' ``general`` task) so the LLM keeps talking.

``item_title`` and ``history`` are *opaque*: the user or item is given as an embedding only (in
behaviour mode the answer would be copied from the prompt, so they are skipped there). Users are split
into training and test users (``test_share``), so test histories were never seen in training.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from recai.data.dataset import Dataset
from recai.data.errors import plain_value
from recai.data.splits import Split
from recai.explain.examples import ExplainData, ExplainExample, item_slot, user_slot
from recai.explain.target import TargetModel
from recai.llm.prompting import render_variant

USER_TASKS: tuple[str, ...] = ("retrieval", "ranking", "classification", "history")
ITEM_TASKS: tuple[str, ...] = ("item_title", "item_attributes", "item_similar")
TASKS: tuple[str, ...] = (*USER_TASKS[:3], *ITEM_TASKS, "history", "general")
OPAQUE_TASKS: frozenset[str] = frozenset({"item_title", "history"})
#: Tasks with a test part (an alignment metric); attribute descriptions and general questions train only.
TEST_TASKS: tuple[str, ...] = (
    "retrieval",
    "ranking",
    "classification",
    "item_title",
    "item_similar",
    "history",
)
MAX_ATTEMPTS = 20
NEGATIVES: tuple[str, ...] = ("bottom", "matched")
#: Training users whose top shares give each item's popularity with the target (matched negatives).
MATCH_USERS = 500


def _rng(*parts: Any) -> np.random.Generator:
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def numbered(titles: Sequence[str]) -> str:
    """An answer list, one item per line (what :func:`recai.evaluate.parsing.parse_item_list` reads)."""
    return "\n".join(f"{i}. {t}" for i, t in enumerate(titles, start=1))


class ExplainTaskBuilder:
    """Examples of each task for the train and test parts; :func:`build_explain_data` is the front door."""

    def __init__(
        self,
        dataset: Dataset,
        target: TargetModel,
        *,
        split: Split | None = None,
        k: int = 5,
        n_candidates: int = 5,
        top_share: float = 0.1,
        bottom_share: float = 0.5,
        history_len: int = 10,
        min_history: int = 2,
        test_share: float = 0.2,
        negatives: str = "bottom",
        noun: str = "item",
        seed: int = 0,
    ) -> None:
        if negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
        if not 0 < top_share < 1 or not 0 < bottom_share < 1 or top_share + bottom_share > 1:
            raise ValueError(
                f"need 0 < top_share, bottom_share and a sum <= 1, got {top_share}, {bottom_share}"
            )
        if k < 1 or n_candidates < 2 or history_len < 1 or not 1 <= min_history <= history_len:
            raise ValueError("need k >= 1, n_candidates >= 2 and 1 <= min_history <= history_len")
        if not 0 < test_share < 1:
            raise ValueError(f"test_share must be in (0, 1), got {test_share}")
        if target.n_items != len(dataset.catalog):
            raise ValueError(
                f"the target scores {target.n_items} items, the catalog has {len(dataset.catalog)}"
            )
        self.dataset = dataset
        self.catalog = dataset.catalog
        self.target = target
        self.split = split or dataset.split("leave_one_out")
        self.k, self.n_candidates = k, n_candidates
        self.top_share, self.bottom_share = top_share, bottom_share
        self.history_len, self.min_history = history_len, min_history
        self.negatives = negatives
        self.noun, self.seed = noun, seed
        self._top_share_counts: np.ndarray | None = None
        log = self.split.train
        indptr, codes = log.sequence_arrays()
        self._sequences = {
            u: codes[indptr[i] : indptr[i + 1]]
            for i, u in enumerate(log.user_ids)
            if indptr[i + 1] - indptr[i] >= min_history
        }
        users = sorted(self._sequences, key=lambda u: str(u))
        order = _rng(seed, "users").permutation(len(users))
        n_test = max(1, round(test_share * len(users)))
        if len(users) < 2:
            raise ValueError(
                f"explain data needs at least 2 users with {min_history}+ training events (one for training, "
                f"one for test), found {len(users)}"
            )
        n_test = min(n_test, len(users) - 1)  # test users never become training users
        self.test_users = [users[i] for i in order[:n_test]]
        self.train_users = [users[i] for i in order[n_test:]]
        self._titles = [self.catalog.display_title(i) for i in range(len(self.catalog))]

    # ---------------------------------------------------------------- helpers
    def _id(self, position: int) -> Any:
        return plain_value(self.catalog.ids[int(position)])

    def _values(self, **extra: Any) -> dict[str, Any]:
        return {"noun": self.noun, "nouns": f"{self.noun}s", **extra}

    def _prompt(self, task: str, rng: np.random.Generator, **values: Any) -> str:
        """One of the task's wordings, drawn last so that the wordings never change which users and
        items an example is about."""
        return render_variant(task, rng, package="recai.explain", **self._values(**values))

    def _anchor(self, part: str, rng: np.random.Generator) -> tuple[Any, list[int]]:
        """A user and the history the target sees: a random cut of a training user's log (train), or the
        most recent events of a test user's log (test)."""
        users = self.train_users if part == "train" else self.test_users
        user = users[int(rng.integers(len(users)))]
        seq = self._sequences[user]
        end = int(rng.integers(self.min_history, len(seq) + 1)) if part == "train" else len(seq)
        return user, [int(p) for p in seq[max(0, end - self.history_len) : end]]

    def _example(
        self,
        task: str,
        prompt: str,
        answer: str,
        *,
        user: Any = None,
        history: Sequence[int] = (),
        **fields: Any,
    ) -> ExplainExample:
        return ExplainExample(
            id="",
            task=task,
            messages=({"role": "user", "content": prompt}, {"role": "assistant", "content": answer}),
            user=plain_value(user),
            history=tuple(self._id(p) for p in history),
            opaque=task in OPAQUE_TASKS,
            **fields,
        )

    def top_share_counts(self) -> np.ndarray:
        """Per item (position), how many training users have it in the target's top share (their latest
        history; up to ``MATCH_USERS`` users, seeded): the item's popularity with the target."""
        if self._top_share_counts is None:
            users = list(self.train_users)
            if len(users) > MATCH_USERS:
                keep = _rng(self.seed, "matched").choice(len(users), MATCH_USERS, replace=False)
                users = [users[i] for i in sorted(keep)]
            counts = np.zeros(len(self.catalog), dtype=np.int64)
            for user in users:
                ranking = self.target.ranking([int(p) for p in self._sequences[user][-self.history_len :]])
                counts[ranking[: max(1, int(len(ranking) * self.top_share))]] += 1
            self._top_share_counts = counts
        return self._top_share_counts

    # ------------------------------------------------------------------ tasks
    def retrieval(self, part: str, rng: np.random.Generator) -> ExplainExample | None:
        user, history = self._anchor(part, rng)
        top = self.target.ranking(history)[: self.k]
        prompt = self._prompt("retrieval", rng, user=user_slot(), k=len(top))
        return self._example(
            "retrieval", prompt, numbered([self._titles[p] for p in top]), user=user, history=history,
            items=tuple(self._id(p) for p in top),
        )  # fmt: skip

    def ranking(self, part: str, rng: np.random.Generator) -> ExplainExample | None:
        user, history = self._anchor(part, rng)
        ranking = self.target.ranking(history)
        if len(ranking) < self.n_candidates:
            return None
        ranks = np.sort(rng.choice(len(ranking), self.n_candidates, replace=False))
        ordered = [int(ranking[r]) for r in ranks]
        shown = [ordered[i] for i in rng.permutation(len(ordered))]
        candidates = "\n".join(f"- {item_slot(self._id(p))}" for p in shown)
        prompt = self._prompt("ranking", rng, user=user_slot(), candidates=candidates)
        return self._example(
            "ranking", prompt, numbered([self._titles[p] for p in ordered]), user=user, history=history,
            items=tuple(self._id(p) for p in ordered), candidates=tuple(self._id(p) for p in shown),
        )  # fmt: skip

    def classification(
        self, part: str, rng: np.random.Generator, *, positive: bool | None = None
    ) -> ExplainExample | None:
        """``positive`` picks the label (``generate`` alternates it); None draws it from ``rng``."""
        user, history = self._anchor(part, rng)
        ranking = self.target.ranking(history)
        n_top = max(1, int(len(ranking) * self.top_share))
        n_bottom = max(1, int(len(ranking) * self.bottom_share))
        if positive is None:
            positive = bool(rng.random() < 0.5)
        pool = ranking[:n_top] if positive else ranking[len(ranking) - n_bottom :]
        if not positive and self.negatives == "matched":
            counts = self.top_share_counts()
            wanted = counts[int(ranking[int(rng.integers(n_top))])]  # a yes item's popularity, this user
            gap = np.abs(counts[pool] - wanted)
            pool = pool[gap == gap.min()]
        item = int(pool[int(rng.integers(len(pool)))])
        prompt = self._prompt("classification", rng, user=user_slot(), item=item_slot(self._id(item)))
        label = "yes" if positive else "no"
        return self._example(
            "classification", prompt, f"{label.capitalize()}.", user=user, history=history,
            items=(self._id(item),), label=label,
        )  # fmt: skip

    def _item_example(
        self,
        task: str,
        position: int,
        answer: str,
        items: Sequence[int],
        rng: np.random.Generator,
        **values: Any,
    ) -> ExplainExample:
        prompt = self._prompt(task, rng, item=item_slot(self._id(position)), **values)
        example = self._example(task, prompt, answer, items=tuple(self._id(p) for p in items))
        return example

    def item_title(self, position: int, rng: np.random.Generator) -> ExplainExample | None:
        return self._item_example("item_title", position, f"{self._titles[position]}", [position], rng)

    def item_attributes(self, position: int, rng: np.random.Generator) -> ExplainExample | None:
        text = self.catalog.render(position, by_position=True, max_chars=240)
        return self._item_example("item_attributes", position, text, [position], rng)

    def item_similar(self, position: int, rng: np.random.Generator) -> ExplainExample | None:
        similar = self.target.similar(position, self.k)
        answer = numbered([self._titles[p] for p in similar])
        return self._item_example("item_similar", position, answer, similar, rng, k=len(similar))

    def history(self, part: str, rng: np.random.Generator) -> ExplainExample | None:
        user, history = self._anchor(part, rng)
        prompt = self._prompt("history", rng, user=user_slot())
        return self._example(
            "history", prompt, numbered([self._titles[p] for p in history]), user=user, history=history,
            items=tuple(self._id(p) for p in history),
        )  # fmt: skip

    def general(self, n: int) -> list[ExplainExample]:
        """The gen pillar's plain catalog questions, item-span markers removed."""
        from recai.gen.items import DEFAULT_FORMAT
        from recai.gen.tasks import GenTaskBuilder

        builder = GenTaskBuilder(self.dataset, split=self.split, k=1, min_k=1, noun=self.noun, seed=self.seed)
        out = []
        for example in builder.generate("general", n, "train", progress=False):
            messages = tuple(
                {"role": m["role"], "content": DEFAULT_FORMAT.strip(m["content"])} for m in example.messages
            )
            out.append(ExplainExample(id="", task="general", messages=messages, items=tuple(example.items)))
        return out

    # -------------------------------------------------------------- generate
    def generate(self, task: str, n: int, part: str, *, progress: bool = False) -> list[ExplainExample]:
        """Up to ``n`` examples of ``task`` for ``part``; item tasks make one per catalog item at most."""
        if task not in TASKS:
            raise ValueError(f"unknown task '{task}'; available: {', '.join(TASKS)}")
        if part not in ("train", "test"):
            raise ValueError(f"part must be 'train' or 'test', got {part!r}")
        if part == "test" and task not in TEST_TASKS:
            raise ValueError(f"task '{task}' has no test part")
        if task == "general":
            made = self.general(n)
        else:
            made = []
            keys: set[Any] = set()
            order = _rng(self.seed, task, part, "order").permutation(len(self.catalog))
            attempts = n * MAX_ATTEMPTS
            bar = tqdm(total=n, desc=f"{task} ({part})", disable=not progress, unit="ex")
            for attempt in range(attempts):
                if len(made) >= n or (task in ITEM_TASKS and attempt >= len(order)):
                    break
                rng = _rng(self.seed, task, part, attempt)
                if task in ITEM_TASKS:
                    example = getattr(self, task)(int(order[attempt]), rng)
                elif task == "classification":
                    # Labels alternate, so each part is balanced exactly and always answering one label
                    # scores 0.5: a coin per example left the demo benchmark 60/40 in training, 36/64 in test.
                    example = self.classification(part, rng, positive=len(made) % 2 == 0)
                else:
                    example = getattr(self, task)(part, rng)
                if example is None:
                    continue
                key = (example.user, example.history, example.items, example.candidates)
                if key in keys:
                    continue
                keys.add(key)
                made.append(example)
                bar.update(1)
            bar.close()
        from dataclasses import replace

        return [replace(e, id=f"{task}-{part}-{i:06d}") for i, e in enumerate(made)]


def build_explain_data(
    dataset: Dataset,
    target: TargetModel,
    *,
    split: Split | None = None,
    tasks: Sequence[str] | None = None,
    per_task: int = 500,
    test_per_task: int = 100,
    general_share: float = 0.1,
    task_sizes: Mapping[str, int] | None = None,
    test_task_sizes: Mapping[str, int] | None = None,
    seed: int = 0,
    progress: bool = False,
    **builder: Any,
) -> ExplainData:
    """Training and test examples of ``tasks`` (all by default) labelled by ``target``.

    ``general`` makes up ``general_share`` of the training set and has no test part. ``task_sizes`` and
    ``test_task_sizes`` override ``per_task`` and ``test_per_task`` for the tasks they name: a task that
    is hard to learn (classification reads a user-item interaction) can get more examples without
    growing every other task's. Item tasks make one example per catalog item at most, each part in its
    own seeded order, so their test parts ask about the items training saw only when their training
    size covers the catalog.
    """
    tasks = list(tasks or TASKS)
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; available: {', '.join(TASKS)}")
    if not 0 <= general_share < 1:
        raise ValueError(f"general_share must be in [0, 1), got {general_share}")
    sizes = _sizes(task_sizes, "task_sizes", tasks, set(TASKS) - {"general"})
    test_sizes = _sizes(test_task_sizes, "test_task_sizes", tasks, set(TEST_TASKS))
    maker = ExplainTaskBuilder(dataset, target, split=split, seed=seed, **builder)
    train: list[ExplainExample] = []
    test: list[ExplainExample] = []
    for task in tasks:
        if task == "general":
            continue
        train += maker.generate(task, sizes.get(task, per_task), "train", progress=progress)
        if task in TEST_TASKS:
            test += maker.generate(task, test_sizes.get(task, test_per_task), "test", progress=progress)
    if "general" in tasks and general_share > 0 and train:
        train += maker.generate(
            "general", max(1, round(general_share / (1 - general_share) * len(train))), "train"
        )
    meta = {
        "dataset": dataset.name,
        "target": target.name,
        "tasks": tasks,
        "seed": seed,
        "per_task": per_task,
        "test_per_task": test_per_task,
        "general_share": general_share,
        "task_sizes": sizes,
        "test_task_sizes": test_sizes,
        "noun": maker.noun,
        "k": maker.k,
        "n_candidates": maker.n_candidates,
        "top_share": maker.top_share,
        "bottom_share": maker.bottom_share,
        "negatives": maker.negatives,
        "history_len": maker.history_len,
        "train_users": len(maker.train_users),
        "test_users": len(maker.test_users),
    }
    data = ExplainData(train, test, meta, target, dataset.catalog)
    data.meta["counts"] = data.counts()
    return data


def _sizes(
    sizes: Mapping[str, int] | None, name: str, tasks: Sequence[str], allowed: set[str]
) -> dict[str, int]:
    """``sizes`` checked: each key a task that is built and has such a part, each value a count >= 0."""
    out: dict[str, int] = {}
    for task, n in (sizes or {}).items():
        if task not in allowed:
            raise ValueError(f"{name}: '{task}' has no such part; tasks: {', '.join(sorted(allowed))}")
        if task not in tasks:
            raise ValueError(f"{name}: '{task}' is not among the tasks built ({', '.join(tasks)})")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"{name}: '{task}' needs a count >= 0, got {n!r}")
        out[task] = n
    return out


def parse_task_sizes(pairs: Sequence[str] | None, option: str = "--task-size") -> dict[str, int]:
    """``TASK=N`` strings (a command line's repeated option) as a mapping; ``option`` names it in errors.

    Checked here only for form and known task names: :func:`build_explain_data` checks them against the
    tasks it builds and their parts.
    """
    out: dict[str, int] = {}
    for text in pairs or []:
        task, sep, n = (part.strip() for part in text.partition("="))
        if not sep or not n.isdigit():
            raise ValueError(f"{option} takes TASK=N, N a count >= 0; got {text!r}")
        if task not in TASKS:
            raise ValueError(f"{option}: unknown task '{task}'; available: {', '.join(TASKS)}")
        out[task] = int(n)
    return out
