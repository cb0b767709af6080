"""Training data for RecLM-emb: the ten matching tasks (plus an optional dialogue task).

Each task turns a dataset into examples (query, positive item, hard negatives). Queries that state
conditions carry them as predicates, so that positives provably satisfy the query, hard negatives
provably violate it, and evaluation can measure coverage@k with the very same objects.

```python
from recai.data import load
from recai.embed.tasks import build_examples

data = build_examples(load("demo"), per_task=500, seed=0, noun="film")
data.save("embed-data")  # train.jsonl, test.jsonl, meta.json
```

A task of your own subclasses :class:`EmbedTask` and goes among the task names.
"""

from recai.embed.tasks.base import Draft, EmbedTask
from recai.embed.tasks.build import (
    EMBED_TASKS,
    OPTIONAL_TASKS,
    TASKS,
    ExampleBuilder,
    InvalidExampleError,
    build_examples,
)
from recai.embed.tasks.context import TaskContext
from recai.embed.tasks.example import Example, ExampleSplit
from recai.embed.tasks.predicates import (
    Age,
    HasValue,
    InRange,
    Not,
    Popularity,
    Predicate,
    PredicateError,
    predicate_from_dict,
    satisfies,
    violations,
)
from recai.embed.tasks.profile import CatalogProfile, ColumnInfo, ColumnKind
from recai.embed.tasks.split import normalise_query

__all__ = [
    "EMBED_TASKS",
    "OPTIONAL_TASKS",
    "TASKS",
    "Age",
    "CatalogProfile",
    "ColumnInfo",
    "ColumnKind",
    "Draft",
    "EmbedTask",
    "Example",
    "ExampleBuilder",
    "ExampleSplit",
    "HasValue",
    "InRange",
    "InvalidExampleError",
    "Not",
    "Popularity",
    "Predicate",
    "PredicateError",
    "TaskContext",
    "build_examples",
    "normalise_query",
    "predicate_from_dict",
    "satisfies",
    "violations",
]
