"""The shared task extension point: definitions are checked, names resolve, parts are refused by name,
seeded generators are stable, and the "Adding a task" examples of the pillar docs run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recai.train.tasks import Task, TaskRegistry, seeded_rng

DOCS = Path(__file__).resolve().parents[2] / "docs"


class Echo(Task[Any, int, str]):
    """Anchor -> its number as text."""

    name = "echo"

    def make(self, ctx: Any, anchor: int, rng: np.random.Generator) -> str | None:
        return str(anchor)


class TrainOnly(Echo):
    """Anchor -> its number, for training only."""

    name = "train_only"
    has_test = False


class Nameless(Task[Any, int, str]):
    """A task that forgot its name."""

    def make(self, ctx: Any, anchor: int, rng: np.random.Generator) -> str | None:
        return None


class Undocumented(Echo):
    name = "undocumented"


class Abstract(Task[Any, int, str]):
    """No make()."""

    name = "abstract"


def test_names_resolve_to_new_instances_and_task_objects_are_kept() -> None:
    registry = TaskRegistry("demo", [Echo, TrainOnly])
    assert (
        registry.names == ("echo", "train_only")
        and "echo" in registry
        and list(registry) == ["echo", "train_only"]
    )
    own = TrainOnly()
    tasks = registry.resolve(["echo", own])
    assert isinstance(tasks[0], Echo) and tasks[1] is own


def test_unknown_names_are_refused_all_at_once_with_the_known_ones() -> None:
    registry = TaskRegistry("demo", [Echo])
    with pytest.raises(ValueError, match=r"unknown task 'nope'; demo tasks: echo"):
        registry.resolve(["nope"])
    with pytest.raises(ValueError, match=r"unknown tasks \['a', 'b'\]"):
        registry.resolve(["a", "echo", "b"])


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (Nameless, "needs a class attribute name"),
        (Undocumented, "needs a docstring"),
        (Abstract, "abstract: implement make"),
    ],
)
def test_a_task_must_be_concrete_named_and_documented(cls: type[Task[Any, Any, Any]], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        TaskRegistry("demo", [cls])


def test_duplicate_names_are_refused() -> None:
    class Again(Echo):
        """Another echo."""

    with pytest.raises(ValueError, match="two demo tasks are named 'echo'"):
        TaskRegistry("demo", [Echo, Again])


def test_parts_are_checked_by_name() -> None:
    registry = TaskRegistry("demo", [Echo, TrainOnly])
    assert isinstance(registry.for_part("echo", "test"), Echo)
    with pytest.raises(ValueError, match="has no test part"):
        registry.for_part("train_only", "test")
    with pytest.raises(ValueError, match="part must be"):
        registry.for_part("echo", "valid")


def test_seeded_generators_depend_only_on_their_parts() -> None:
    a = seeded_rng(0, "echo", "train", 3).integers(2**31, size=4)
    assert (a == seeded_rng(0, "echo", "train", 3).integers(2**31, size=4)).all()
    assert (a != seeded_rng(0, "echo", "train", 4).integers(2**31, size=4)).any()
    assert a.tolist() == [
        int(v) for v in np.random.default_rng(_words(0, "echo", "train", 3)).integers(2**31, size=4)
    ]


def _words(*parts: object) -> list[int]:
    """The derivation the saved benchmark data was built with (SHA-256 of the joined parts)."""
    import hashlib

    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def _adding_a_task(doc: str) -> str:
    section = (DOCS / doc).read_text(encoding="utf-8").split("### Adding a task", 1)[1]
    return section.split("```python\n", 1)[1].split("\n```", 1)[0]


@pytest.mark.parametrize("doc", ["embed.md", "gen.md", "explain.md"])
def test_the_adding_a_task_example_of_each_pillar_runs(doc: str) -> None:
    exec(compile(_adding_a_task(doc), doc, "exec"), {"__name__": doc})
