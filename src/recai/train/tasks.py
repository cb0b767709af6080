"""The one extension point for training data: a task turns an anchor into one example.

Every fine-tuning pillar builds its examples the same way. A driver (the pillar's builder) walks a
task's anchors (a user's cut point, a catalog item, a test user) in a seeded order, gives each attempt
a random generator of its own, and asks the task for one example from a shared, read-only context; it
keeps or drops what comes back (checks, duplicates) and numbers the kept ones. So a task is a name, a
docstring that says what it teaches, and :meth:`Task.make`.

Each pillar fixes the types in a base class of its own: ``recai.embed.tasks.EmbedTask`` (a query, a
positive and hard negatives), ``recai.gen.tasks.GenTask`` (a chat whose answer names catalog items) and
``recai.explain.tasks.ExplainTask`` (a chat about what a target recommender does). To add a task,
subclass the pillar's base and pass an instance where the pillar's builder takes task names; each
pillar's :class:`TaskRegistry` holds its built-in tasks by name. gen and explain build their train and
test parts, and the ``general`` share of training, with one loop, :func:`build_parts`.
"""

from __future__ import annotations

import hashlib
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

#: The parts a pillar builds examples for.
PARTS: tuple[str, ...] = ("train", "test")
ContextT = TypeVar("ContextT")
AnchorT = TypeVar("AnchorT")
ExampleT = TypeVar("ExampleT")


def seeded_rng(*parts: object) -> np.random.Generator:
    """A generator seeded from a stable hash of ``parts`` (Python's ``hash`` of text changes between runs),
    so that an example depends only on the seed, its task and its attempt: a rebuild is byte-identical
    and adding a task changes no other task's examples."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return np.random.default_rng([int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)])


class Task(ABC, Generic[ContextT, AnchorT, ExampleT]):
    """One kind of training example; subclass a pillar's base (``EmbedTask``, ``GenTask``,
    ``ExplainTask``), which fixes the context, anchor and example types and how anchors are walked.

    A concrete task sets ``name``, has a docstring saying what the task teaches, and implements
    :meth:`make`. Tasks hold no state: everything an example needs comes from the
    context, the anchor and the generator, which is what makes builds reproducible.

    Attributes:
        name: the task's name in example files (each example's ``task`` field), ``meta.json`` and
            command-line options; unique within its pillar.
        has_test: whether the task makes examples for the test part (gen and explain build each part
            separately; a task that only grounds the model in the catalog trains only).
    """

    name: ClassVar[str]
    has_test: ClassVar[bool] = True

    @abstractmethod
    def make(self, ctx: ContextT, anchor: AnchorT, rng: np.random.Generator) -> ExampleT | None:
        """One example from ``anchor``, or None when this anchor cannot give one this time (the driver
        moves on to the next anchor). Draw every random choice from ``rng``."""

    @classmethod
    def check_definition(cls) -> None:
        """Raise ``TypeError`` unless the class can be used as a task: concrete, named, documented."""
        if inspect.isabstract(cls):
            missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
            raise TypeError(f"{cls.__qualname__} is abstract: implement {missing}")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name.strip():
            raise TypeError(f"{cls.__qualname__} needs a class attribute name = '...'")
        if not cls.__doc__ or not cls.__doc__.strip():
            raise TypeError(f"task '{name}' ({cls.__qualname__}) needs a docstring saying what it teaches")


TaskT = TypeVar("TaskT", bound=Task[Any, Any, Any])


class TaskRegistry(Generic[TaskT]):
    """A pillar's built-in tasks by name, in their default order: how a builder turns the names a user
    typed (``--tasks``) into task objects, refusing unknown names all at once.

    Args:
        pillar: the pillar's name, for error messages ("gen").
        tasks: the task classes; each is checked (concrete, named, documented) and names must be unique.
    """

    def __init__(self, pillar: str, tasks: Iterable[type[TaskT]]) -> None:
        self.pillar = pillar
        self._classes: dict[str, type[TaskT]] = {}
        for cls in tasks:
            cls.check_definition()
            if cls.name in self._classes:
                raise ValueError(f"two {pillar} tasks are named '{cls.name}'")
            self._classes[cls.name] = cls

    @property
    def names(self) -> tuple[str, ...]:
        """Every task's name, in registration order."""
        return tuple(self._classes)

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __getitem__(self, name: str) -> type[TaskT]:
        return self._classes[name]

    def check_known(self, requested: Iterable[str | TaskT]) -> None:
        """Raise ``ValueError`` naming every unknown task name in ``requested`` (task objects always
        count as known) and the known ones."""
        unknown = [t for t in requested if isinstance(t, str) and t not in self._classes]
        if unknown:
            listed = f"'{unknown[0]}'" if len(unknown) == 1 else str(unknown)
            raise ValueError(
                f"unknown task{'' if len(unknown) == 1 else 's'} {listed}; "
                f"{self.pillar} tasks: {', '.join(self._classes)}"
            )

    def for_part(self, task: str | TaskT, part: str) -> TaskT:
        """The task object that builds ``part`` ("train" or "test"); refuses an unknown task or part and
        a test part the task does not have."""
        (resolved,) = self.resolve([task])
        if part not in PARTS:
            raise ValueError(f"part must be 'train' or 'test', got {part!r}")
        if part == "test" and not resolved.has_test:
            raise ValueError(f"task '{resolved.name}' has no test part")
        return resolved

    def resolve(self, requested: Sequence[str | TaskT]) -> list[TaskT]:
        """Task objects for ``requested``: names become new instances of the registered classes, task
        objects (tasks of your own) are checked and kept."""
        self.check_known(requested)
        tasks: list[TaskT] = []
        for item in requested:
            task = self._classes[item]() if isinstance(item, str) else item
            type(task).check_definition()
            tasks.append(task)
        return tasks


def build_parts(
    tasks: Sequence[TaskT],
    generate: Callable[[TaskT, int, str, Sequence[ExampleT]], list[ExampleT]],
    size: Callable[[TaskT, str], int],
    *,
    fills_share: Callable[[TaskT], bool],
    share: float,
) -> tuple[list[ExampleT], list[ExampleT]]:
    """The train and test examples of ``tasks``, in the order gen and explain build them.

    Every task but the share-filling ones (``general``: plain catalog questions that keep an LLM
    talking) makes ``size(task, part)`` examples of each part it has, train before test;
    ``generate(task, n, part, trained)`` makes them, ``trained`` being the task's training examples when
    it makes a test part (gen skips test prompts that training showed). Then each share-filling task
    makes ``share`` of the final training set, at least one example; none when nothing else trains.
    A test part of size 0 is not built.
    """
    train: list[ExampleT] = []
    test: list[ExampleT] = []
    for task in tasks:
        if fills_share(task):
            continue
        trained = generate(task, size(task, "train"), "train", ())
        train += trained
        if task.has_test and (n_test := size(task, "test")) > 0:
            test += generate(task, n_test, "test", trained)
    for task in tasks:
        if fills_share(task) and share > 0 and train:
            train += generate(task, max(1, round(share / (1.0 - share) * len(train))), "train", ())
    return train, test
